"""``modelshift demo``: the whole model-migration DAG on the embedded default, end to end, in a few minutes.

On the local Azure emulator (default scenario) with a fresh store in ``<home>/demo/`` and Prefect's local API
(``PREFECT_HOME`` = ``<home>/prefect``, never the user's own Prefect database), it

1. registers the example bundles (bundles/) and adopts each as its app's production bundle;
2. runs the ``retirement-scan`` flow, which finds the apps at risk and plans a migration for each;
3. runs the planned migrations, plus a fine-tune re-run of the claims app onto gpt-4.1, concurrently
   (one thread each) through prepare -> evaluate -> canary -> promote | roll back, with a gateway on a free
   loopback port and a live-traffic generator per app while it is in canary;
4. checks each outcome the demo promises (``EXPECTED``), that the audit chain verifies, and writes each
   migration's HTML report.

Demo-only settings (stated in the output, see ``DemoSettings``): the bundles are copied into the demo home
with a short canary policy, the emulator's clock runs fast (a 70-minute fine-tune takes seconds), deployment
rate limits are raised for the live traffic, and a retired baseline's deployment is deleted at once. The
analysis, the gates and every stage are the real ones.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from modelshift.bundle import Bundle, discover_bundles, load_bundle
from modelshift.errors import ConfigError
from modelshift.settings import Settings, get_settings


@dataclass(frozen=True)
class DemoSettings:
    """The demo-only shortcuts, all stated in the demo's output."""

    #: the RAG support app's ramp (the repo's policy); the other apps ramp from 25 % to keep the demo short
    canary_steps: tuple[int, ...] = (5, 25, 50, 100)
    other_canary_steps: tuple[int, ...] = (25, 50, 100)
    canary_steps_app: str = "support-chat"
    #: per step and side; also the latency/tokens analysis's minimum sample count (20)
    min_requests_per_step: int = 20
    step_duration_seconds: int = 8
    max_step_extensions: int = 10
    #: emulated successors answer at another speed and length by design (gpt-4.1 has a 68 % higher median
    #: latency than gpt-4o-mini), and wall-clock latency through a gateway on a busy 2-core machine swings
    #: by 2x between windows: errors and big slow-downs (the degrading successor's 6x) decide
    latency_tolerance: float = 3.0
    tokens_tolerance: float = 1.0
    #: the offline gate's latency_p95_ms margin: wall-clock latency while four evaluations, a gateway and
    #: the emulator share a busy 2-core machine is mostly noise
    latency_p95_margin: float = 3.0
    clock_speed: float = 600.0
    #: deployment capacities (and the quotas and SKU maxima that bound them) times this
    capacity_scale: int = 100
    canary_poll_seconds: float = 0.5
    finetune_poll_seconds: float = 1.0
    traffic_threads: int = 4
    #: how often a migration run that raised is run again (it resumes where it stopped)
    migration_reruns: int = 2

    def describe(self) -> list[str]:
        """One line per shortcut, for the output."""
        return [
            f"canary policy of the bundle copies: steps {'/'.join(map(str, self.canary_steps))} % for "
            f"{self.canary_steps_app}, {'/'.join(map(str, self.other_canary_steps))} % for the others, each "
            f">= {self.step_duration_seconds} s and >= {self.min_requests_per_step} requests per side, no "
            f"approval, latency tolerance {self.latency_tolerance:.0%}, tokens tolerance "
            f"{self.tokens_tolerance:.0%} (the repo's bundles use 20 s steps)",
            f"offline gate: latency_p95_ms may rise by up to {self.latency_p95_margin:.0%} (wall-clock "
            "latency on a shared machine running four evaluations at once is noise); other metrics as in the "
            "repo",
            f"emulator clock x{self.clock_speed:g} (fine-tune queue and training minutes pass in seconds)",
            f"deployment capacities, quotas and SKU maxima x{self.capacity_scale} in the scenario and the "
            "bundle copies (the default scenario's 20-60k TPM would throttle evaluation and live traffic)",
            "retired baseline deployments deleted at once (MODELSHIFT_RETIRE_GRACE_SECONDS=0)",
        ]

    def steps_for(self, app: str) -> list[int]:
        """The canary ramp of ``app``'s bundle copy."""
        return list(self.canary_steps if app == self.canary_steps_app else self.other_canary_steps)

    def canary_policy(self, app: str) -> dict[str, Any]:
        """The ``canary:`` section written into ``app``'s bundle copy."""
        return {
            "steps": self.steps_for(app),
            "min_requests_per_step": self.min_requests_per_step,
            "step_duration_seconds": self.step_duration_seconds,
            "max_step_extensions": self.max_step_extensions,
            "approval_required": False,
            "on_inconclusive": "rollback",
            "analysis": {
                "latency_tolerance": self.latency_tolerance,
                "tokens_tolerance": self.tokens_tolerance,
            },
        }


@dataclass(frozen=True)
class Expected:
    """What must happen to one app's migration for the demo to pass."""

    phase: str
    canary_verdict: str
    what: str
    target: str | None = None
    #: prepare must have re-chunked into a new index generation
    rechunk: bool = False
    #: prepare must have re-run the fine-tune on the new base
    fine_tune: bool = False
    #: the canary must have stepped through the demo's steps
    all_steps: bool = True
    #: not found by the scan: the demo starts it with this explicit target
    explicit_target: str | None = None


#: the outcomes the demo promises, per example app
EXPECTED: dict[str, Expected] = {
    "support-chat": Expected(
        phase="succeeded",
        canary_verdict="successful",
        target="gpt-4o@2024-11-20",
        what="RAG support app migrates off retiring gpt-4o 2024-05-13: evaluate -> canary -> promoted",
    ),
    "hr-handbook": Expected(
        phase="succeeded",
        canary_verdict="successful",
        target="gpt-4o-mini@2024-07-18",
        rechunk=True,
        what="cl100k app crosses a tokenizer and context-window change: re-chunked, evaluated, promoted",
    ),
    "claims-assistant": Expected(
        phase="succeeded",
        canary_verdict="successful",
        target="gpt-4.1@2025-04-14",
        fine_tune=True,
        explicit_target="gpt-4.1@2025-04-14",
        what="fine-tuned app re-runs its fine-tune on the new base and is promoted",
    ),
    "backup-faq": Expected(
        phase="rolled_back",
        canary_verdict="failed",
        target="gpt-4.1-nano@2025-04-14",
        all_steps=False,
        what="a successor that passes offline but degrades live is caught by the canary and rolled back",
    ),
}


@dataclass
class DemoStep:
    """One thing the demo did, with its outcome and the numbers behind it."""

    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoResult:
    """Everything the demo did; ``ok`` only if every step did what it should."""

    steps: list[DemoStep] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    state_dir: str = ""
    demo_settings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: seconds since the start when each part ended (start-up, scan, migrations, reports)
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, part: str, started: float) -> None:
        """Note that ``part`` ended now (``started``: the demo's monotonic start)."""
        self.timings[part] = round(time.monotonic() - started, 1)

    @property
    def ok(self) -> bool:
        """True when every step succeeded."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def failures(self) -> list[str]:
        """What did not happen, one line per failed step."""
        return [f"{s.name}: {s.summary}" for s in self.steps if not s.ok]


# ------------------------------------------------------------------------------------------- set-up


def select_apps(only: Sequence[str] | None) -> list[str]:
    """The example apps whose migrations the demo runs (all by default); ConfigError for an unknown one."""
    if not only:
        return list(EXPECTED)
    unknown = sorted(set(only) - set(EXPECTED))
    if unknown:
        raise ConfigError(
            f"modelshift demo --only: unknown app(s) {', '.join(unknown)}; the demo's apps are "
            f"{', '.join(EXPECTED)}"
        )
    return [app for app in EXPECTED if app in only]


def demo_scenario(scenario: Any, demo: DemoSettings) -> dict[str, Any]:
    """The emulator scenario (default: the packaged default) with capacities, quotas and SKU maxima scaled,
    validated, as a mapping."""
    from modelshift.emulator.scenario import default_scenario_data, parse_scenario
    from modelshift.emulator.testing import resolve_scenario

    if scenario is None:
        data = default_scenario_data()
    else:
        data = resolve_scenario(scenario).model_dump(mode="json", exclude_none=True)
    k = demo.capacity_scale
    for sub in data["subscriptions"]:
        for group in sub["resource_groups"]:
            for account in group["accounts"]:
                for dep in account.get("deployments", []):
                    sku = dep.setdefault("sku", {})
                    sku["capacity"] = int(sku.get("capacity", 10)) * k
    for model in data.get("catalog", []):
        if "max_capacity" in model:
            model["max_capacity"] = int(model["max_capacity"]) * k
        for sku in model.get("skus", []):
            capacity = sku.get("capacity") or {}
            for key in ("default", "maximum"):
                if key in capacity:
                    capacity[key] = int(capacity[key]) * k
    for usages in data.get("usages", {}).values():
        for usage in usages:
            usage["limit"] = int(usage["limit"]) * k
    data["default_usage_limit"] = int(data.get("default_usage_limit", 1000)) * k
    parse_scenario(data, "the demo's scenario")
    return data


def copy_bundles(source: Path, dest: Path, demo: DemoSettings) -> list[Bundle]:
    """Copy the example bundles to ``dest`` with the demo's canary policy, gate latency margin and scaled
    deployment capacity; return them loaded."""
    shutil.copytree(source, dest)
    bundles = []
    for manifest_path in discover_bundles(dest):
        manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
        manifest["canary"] = demo.canary_policy(str(manifest["app"]))
        sku = manifest["model"].get("sku") or {}
        if sku.get("capacity"):
            sku["capacity"] = int(sku["capacity"]) * demo.capacity_scale
        latency = (manifest.get("evaluation") or {}).get("metrics", {}).get("latency_p95_ms")
        if latency is not None:
            latency["relative_margin"] = demo.latency_p95_margin
        manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        bundles.append(load_bundle(manifest_path))
    return bundles


@contextmanager
def _environment(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    """Set ``values`` (and unset ``drop``) in os.environ for the block; restore everything afterwards."""
    saved = {k: os.environ.get(k) for k in [*values, *drop]}
    try:
        for key in drop:
            os.environ.pop(key, None)
        os.environ.update(values)
        get_settings.cache_clear()
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def _register(bundles: list[Bundle], result: DemoResult) -> None:
    from modelshift.registry import register
    from modelshift.store import Store

    with Store.open(get_settings().resolved_database_url) as store:
        rows = [
            {
                "app": b.app,
                "digest": b.digest,
                "model": f"{b.manifest.model.name}@{b.manifest.model.version}",
                "status": str(register(store, b, actor="demo", adopt=True).bundle.status),
            }
            for b in bundles
        ]
    result.steps.append(
        DemoStep(
            "register",
            all(r["status"] == "production" for r in rows),
            f"registered {len(rows)} example bundle(s) and adopted each as its app's production bundle",
            {"bundles": rows},
        )
    )


# ------------------------------------------------------------------------------------------- scan


def _scan(as_of: date, apps: list[str], result: DemoResult) -> dict[str, Any]:
    """The ``retirement-scan`` flow, plan-only: it finds the apps at risk and plans their migrations."""
    from modelshift.launcher import run_scan
    from modelshift.migration import MigrationStore
    from modelshift.store import Store

    with _environment({"MODELSHIFT_STOP_AFTER": "plan"}):
        scan = run_scan(as_of=as_of)
    planned: dict[str, Any] = {}
    with Store.open(get_settings().resolved_database_url) as store:
        migrations = MigrationStore(store)
        for row in scan.get("started", []):
            record = migrations.get(str(row["migration_id"]))
            stages = [s["name"] for s in (record.plan or {}).get("stages", []) if s.get("runs")]
            planned[record.app] = {
                "migration_id": record.id,
                "phase": str(record.phase),
                "target": record.target,
                "reason": record.reason,
                "stages": stages,
            }
    expected = sorted(app for app in apps if EXPECTED[app].explicit_target is None)
    missing = [app for app in expected if app not in planned]
    wrong = [
        f"{app} -> {planned[app]['target']} (expected {EXPECTED[app].target})"
        for app in expected
        if app in planned and planned[app]["target"] != EXPECTED[app].target
    ]
    summary = (
        f"retirement-scan as of {as_of.isoformat()}: {scan.get('assessed', 0)} app(s) assessed, "
        f"{len(planned)} at risk and planned: "
        + "; ".join(f"{app} -> {p['target']} ({p['reason']})" for app, p in sorted(planned.items()))
    )
    if missing:
        summary += f"; NOT found at risk: {', '.join(missing)}"
    if wrong:
        summary += f"; wrong target: {', '.join(wrong)}"
    result.steps.append(
        DemoStep(
            "scan",
            not missing and not wrong,
            summary,
            {"assessed": scan.get("assessed"), "planned": planned, "skipped": scan.get("skipped", [])},
        )
    )
    return planned


# ------------------------------------------------------------------------------------------- migrate


class _TrafficDuringCanary:
    """Starts a live-traffic generator for each app once its candidate is in canary; stops them at the end."""

    def __init__(self, gateway_url: str, questions: dict[str, list[str]], threads: int) -> None:
        self.url = gateway_url
        self.questions = questions
        self.threads = threads
        #: app -> its running Traffic, or None once its migration ended
        self.running: dict[str, Any] = {}
        self.sent: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="demo-traffic-watch", daemon=True)

    def _watch(self) -> None:
        from modelshift.gateway.traffic import Traffic
        from modelshift.store import BundleStatus, Store

        with Store.open(get_settings().resolved_database_url) as store:
            while not self._stop.wait(0.25):
                for app, questions in self.questions.items():
                    if app in self.running:
                        continue
                    try:
                        in_canary = bool(store.list_bundles(app, BundleStatus.CANARY))
                    except Exception:  # a busy store (database locked): look again in a moment
                        continue
                    if in_canary:
                        traffic = Traffic(
                            self.url, app, questions, limit=None, threads=self.threads, pause_s=0.01, seed=7
                        )
                        with self._lock:
                            if app in self.running:  # its migration ended meanwhile
                                continue
                            self.running[app] = traffic.start()

    def __enter__(self) -> _TrafficDuringCanary:
        self._watcher.start()
        return self

    def finish(self, app: str) -> None:
        """``app``'s migration ended: stop its traffic (and never start it) and keep its counts."""
        with self._lock:
            traffic = self.running.get(app)
            self.running[app] = None
        if traffic is not None:
            traffic.stop()
            self.sent[app] = {
                "requests": traffic.sent,
                "by_status": {str(k): v for k, v in sorted(traffic.by_status.items())},
                "by_digest": dict(traffic.by_digest),
            }

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watcher.join(timeout=30)
        for app in list(self.running):
            self.finish(app)


def _questions(bundle: Bundle, limit: int = 30) -> list[str]:
    from modelshift.evaluation.dataset import load_dataset

    dataset = bundle.manifest.evaluation.dataset
    return [item.question for item in load_dataset(bundle.root / dataset).items][:limit]


def _migrate_all(
    apps: list[str],
    planned: dict[str, Any],
    as_of: date,
    bundles: list[Bundle],
    gateway_url: str,
    demo: DemoSettings,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Run the planned migrations of ``apps`` (and their explicit ones) concurrently: per app the outcome
    or the last error, the live traffic it got, and the errors of runs that were run again."""
    from modelshift.launcher import run_migration
    from modelshift.migration import Trigger
    from modelshift.migration.params import MigrationParams

    jobs: dict[str, MigrationParams] = {}
    for app, plan in planned.items():
        if app not in apps:
            continue
        jobs[app] = MigrationParams(
            app=app,
            target=plan["target"],
            reason=f"demo: carry out the migration the retirement scan planned ({plan['reason']})",
            trigger=Trigger.CLI,
            as_of=as_of,
            actor="demo",
        )
    for app in apps:
        expected = EXPECTED[app]
        if expected.explicit_target and app not in jobs:
            jobs[app] = MigrationParams(
                app=app,
                target=expected.explicit_target,
                reason=f"demo: proactive move to {expected.explicit_target} (re-run the fine-tune on it)",
                trigger=Trigger.CLI,
                as_of=as_of,
                actor="demo",
            )
    outcomes: dict[str, Any] = {}

    def work(app: str, params: MigrationParams, traffic: _TrafficDuringCanary) -> None:
        # a run that dies (e.g. the local Prefect API answering 503 under load) is run again, which resumes
        # the migration where it stopped - what a Prefect "Retry" does; the demo says so
        crashes: list[str] = []
        for _ in range(1 + demo.migration_reruns):
            try:
                outcomes[app] = run_migration(params)
                break
            except Exception as exc:  # reported per app; the other migrations go on
                outcomes[app] = exc
                crashes.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        reruns[app] = crashes
        traffic.finish(app)

    by_app = {b.app: b for b in bundles}
    questions = {app: _questions(by_app[app]) for app in jobs if app in by_app}
    reruns: dict[str, list[str]] = {}
    with _TrafficDuringCanary(gateway_url, questions, demo.traffic_threads) as traffic:
        threads = [
            threading.Thread(target=work, args=(a, p, traffic), name=f"migrate-{a}") for a, p in jobs.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes, traffic.sent, reruns


# ------------------------------------------------------------------------------------------- results


def _metric_rows(view: Any) -> list[dict[str, Any]]:
    if view.evaluation is None:
        return []
    return [
        {
            "name": m.name,
            "baseline": m.baseline,
            "candidate": m.candidate,
            "diff": m.diff,
            "ci": [m.ci_low, m.ci_high],
            "verdict": m.verdict,
        }
        for m in view.evaluation.metrics
    ]


def _canary_rows(view: Any) -> dict[str, Any] | None:
    canary = view.canary
    if canary is None:
        return None
    analyses = []
    for point in canary.analyses:
        errors = next((m for m in point.metrics if m.name == "error_rate"), None)
        latency = next((m for m in point.metrics if m.name == "latency"), None)
        analyses.append(
            {
                "step": point.step,
                "verdict": point.verdict,
                "error_rate": None
                if errors is None
                else {"canary": errors.canary, "baseline": errors.baseline},
                "latency_ms": None
                if latency is None
                else {"canary": latency.canary, "baseline": latency.baseline},
                "requests": None
                if errors is None
                else {"canary": errors.n_canary, "baseline": errors.n_baseline},
            }
        )
    weights: list[int] = []
    for change in canary.weights:
        if not weights or weights[-1] != change.candidate_weight:
            weights.append(change.candidate_weight)
    return {
        "weights": weights,
        "verdict": canary.verdict,
        "outcome": canary.outcome,
        "reason": canary.reason,
        "analyses": analyses,
    }


def _problems(app: str, row: dict[str, Any], demo: DemoSettings) -> list[str]:
    """What the demo promised for ``app`` and did not happen."""
    expected = EXPECTED[app]
    problems = []
    if row.get("error"):
        problems.append(f"the migration raised: {row['error']}")
    if row.get("final_status") != expected.phase:
        problems.append(f"ended {row.get('final_status')}, expected {expected.phase} ({row.get('message')})")
    if expected.target and row.get("to_model") != expected.target:
        problems.append(f"candidate on {row.get('to_model')}, expected {expected.target}")
    if row.get("gate_verdict") is None or not row.get("gate_passed"):
        problems.append(f"offline gate did not pass (verdict {row.get('gate_verdict')})")
    if row.get("canary_verdict") != expected.canary_verdict:
        problems.append(f"canary verdict {row.get('canary_verdict')}, expected {expected.canary_verdict}")
    steps = (row.get("canary") or {}).get("weights", [])
    if expected.all_steps and [w for w in steps if w] != demo.steps_for(app):
        problems.append(f"canary weights went {steps}, expected {demo.steps_for(app)}")
    if expected.rechunk and not (row.get("index_generation") and "rechunk" in row.get("stages_planned", [])):
        problems.append("no re-chunk into a new index generation")
    if expected.fine_tune and not row.get("fine_tuned_model"):
        problems.append("no fine-tune re-run on the new base")
    if not row.get("report") or not Path(row["report"]).is_file():
        problems.append("no report file")
    return problems


def _summarize(
    apps: list[str],
    outcomes: dict[str, Any],
    traffic: dict[str, dict[str, Any]],
    reruns: dict[str, list[str]],
    demo: DemoSettings,
    result: DemoResult,
) -> None:
    from modelshift.errors import NotFoundError
    from modelshift.report import load_migration_view, write_report
    from modelshift.report.html import report_path

    cfg = get_settings()
    from modelshift.store import Store

    with Store.open(cfg.resolved_database_url) as store:
        for app in apps:
            outcome = outcomes.get(app)
            row: dict[str, Any] = {"app": app, "expected": EXPECTED[app].what}
            if outcome is None:
                row["error"] = "no migration ran (the scan did not plan one)"
            elif isinstance(outcome, Exception):
                row["error"] = f"{type(outcome).__name__}: {outcome}"
            if outcome is not None and not isinstance(outcome, Exception) and outcome.migration_id:
                row["migration_id"] = outcome.migration_id
                row["message"] = outcome.message
                try:
                    view = load_migration_view(store, outcome.migration_id)
                except NotFoundError as exc:
                    row["error"] = str(exc)
                else:
                    path = write_report(view, report_path(cfg.home, view.id))
                    chunking = view.prepare.chunking
                    tunes = [f for f in view.prepare.fine_tunes if f.fine_tuned_model]
                    row |= {
                        "from_model": view.from_model,
                        "from_digest": view.baseline.digest,
                        "to_model": view.to_model,
                        "to_digest": view.candidate.digest if view.candidate else None,
                        "stages": [m.to_phase for m in view.moves],
                        "stages_planned": [s.name for s in view.plan.stages if s.runs] if view.plan else [],
                        "gate_verdict": view.evaluation.verdict if view.evaluation else None,
                        "gate_passed": bool(view.evaluation and view.evaluation.passed),
                        "gate_summary": view.evaluation.summary if view.evaluation else None,
                        "gate_metrics": _metric_rows(view),
                        "canary_verdict": view.canary.verdict if view.canary else None,
                        "canary": _canary_rows(view),
                        "final_status": view.phase,
                        "index_generation": chunking.generation if chunking else None,
                        "chunking": None
                        if chunking is None
                        else {
                            "tokenizer": chunking.tokenizer,
                            "chunk_tokens": chunking.chunk_tokens,
                            "chunks": chunking.chunks,
                            "baseline_generation": chunking.baseline_generation,
                        },
                        "fine_tuned_model": tunes[0].fine_tuned_model if tunes else None,
                        "fine_tune_job": tunes[0].job_id if tunes else None,
                        "report": str(path.resolve()),
                    }
            row["live_traffic"] = traffic.get(app)
            row["resumed_after"] = reruns.get(app, [])
            problems = _problems(app, row, demo)
            row["ok"] = not problems
            row["problems"] = problems
            result.migrations.append(row)
            result.steps.append(
                DemoStep(
                    app,
                    not problems,
                    EXPECTED[app].what if not problems else "; ".join(problems),
                    {"migration": row},
                )
            )


def _verify_audit(result: DemoResult) -> None:
    from modelshift.audit import verify
    from modelshift.store import Store

    with Store.open(get_settings().resolved_database_url) as store:
        outcome = verify(store)
    result.steps.append(
        DemoStep(
            "audit",
            outcome.ok,
            f"audit chain of {outcome.count} event(s) "
            + ("verifies" if outcome.ok else f"is broken at seq {outcome.first_bad_seq}"),
            {"count": outcome.count, "verified": outcome.ok},
        )
    )


# ------------------------------------------------------------------------------------------- run


def run(
    bundles_dir: Path | None = None,
    settings: Settings | None = None,
    demo: DemoSettings | None = None,
    scenario: Any = None,
    only: Sequence[str] | None = None,
) -> DemoResult:
    """Run the demo and return what happened (no printing).

    ``scenario`` replaces the emulator's default scenario (a file, mapping or Scenario); ``only`` limits the
    migrations (and the outcomes checked) to these example apps. An unknown app is a ConfigError."""
    from modelshift.launcher import use_local_prefect_home

    started = time.monotonic()
    apps = select_apps(only)
    demo = demo or DemoSettings()
    base = settings or get_settings()
    state_dir = (base.home / "demo").resolve()
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    result = DemoResult(state_dir=str(state_dir), demo_settings=demo.describe())
    # Prefect's local API keeps its database in <home>/prefect, never the user's own; a configured Prefect
    # server is not used by the demo either
    # Prefect's own INFO logs would bury the summary; its telemetry heartbeat only contends for the database
    # Four flows at once on Prefect's SQLite-backed local API: give its database and its clients more patience
    quiet = {
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLIENT_MAX_RETRIES": "12",
        "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
        "PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT": "30",
    }
    with _environment(quiet, drop=("PREFECT_API_URL",)):
        use_local_prefect_home(base)
        bundles = copy_bundles((bundles_dir or base.bundles_dir).resolve(), state_dir / "bundles", demo)
        _run_on_emulator(state_dir, bundles, apps, demo, scenario, result, started)
    result.seconds = round(time.monotonic() - started, 1)
    return result


#: the emulator's child process: the demo's scenario file and port, no access log
_EMULATOR = (
    "import sys, uvicorn\n"
    "from modelshift.emulator.app import create_app\n"
    "from modelshift.emulator.scenario import load_scenario\n"
    "uvicorn.run(create_app(load_scenario(sys.argv[1])), host='127.0.0.1', port=int(sys.argv[2]),"
    " log_level='warning', access_log=False, timeout_graceful_shutdown=2)\n"
)
#: the gateway's child process: ``modelshift gateway serve`` without a log line per upstream call
_GATEWAY = (
    "import logging\n"
    "logging.getLogger('httpx').setLevel(logging.WARNING)\n"
    "from modelshift.cli import main\n"
    "main()\n"
)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _child(name: str, code: str, args: list[str], logs: Path, ready: Callable[[], bool]) -> Iterator[None]:
    """Run ``python -c CODE ARGS`` as a child process (output in ``logs/<name>.log``) until the block ends.

    The emulator and the gateway run in their own processes so they do not share one interpreter (and one
    core) with the four migrations and the traffic generators."""
    import subprocess
    import sys

    import httpx

    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise ConfigError(f"the demo's {name} exited with {proc.returncode} at start; see {log}")
                try:
                    if ready():
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ConfigError(f"the demo's {name} did not answer within 120 s; see {log}")
                time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _run_on_emulator(
    state_dir: Path,
    bundles: list[Bundle],
    apps: list[str],
    demo: DemoSettings,
    scenario: Any,
    result: DemoResult,
    started: float,
) -> None:
    import httpx

    from modelshift.emulator.testing import EmulatorHandle

    data = demo_scenario(scenario, demo)
    scenario_file = state_dir / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    port = _free_port()
    emu = EmulatorHandle(
        base_url=f"http://127.0.0.1:{port}",
        api_key=str(data["auth"]["api_keys"][0]),
        bearer_token=str(data["auth"]["bearer_tokens"][0]),
        subscription_id=str(data["subscriptions"][0]["id"]),
    )
    logs = state_dir / "logs"
    with _child("emulator", _EMULATOR, [str(scenario_file), str(port)], logs, lambda: bool(emu.now())):
        as_of = emu.now().date()
        emu.set_clock(emu.now(), speed=demo.clock_speed)
        env = {
            "MODELSHIFT_HOME": str(state_dir),
            "MODELSHIFT_DATABASE_URL": f"sqlite:///{state_dir / 'state.db'}",
            "MODELSHIFT_BUNDLES_DIR": str(state_dir / "bundles"),
            "MODELSHIFT_ARM_URL": emu.arm_url,
            "MODELSHIFT_ARM_TOKEN": emu.bearer_token,
            "MODELSHIFT_API_KEY": emu.api_key,
            "MODELSHIFT_ACTOR": "demo",
            "MODELSHIFT_CANARY_POLL_SECONDS": str(demo.canary_poll_seconds),
            "MODELSHIFT_RETIRE_GRACE_SECONDS": "0",
            "MODELSHIFT_FINETUNE_POLL_SECONDS": str(demo.finetune_poll_seconds),
        }
        with _environment(env, drop=("MODELSHIFT_STOP_AFTER", "MODELSHIFT_FAMILIES_FILE")):
            _register(bundles, result)
            result.mark("emulator up, bundles registered", started)
            planned = _scan(as_of, apps, result)
            result.mark("retirement scan (starts Prefect's local API)", started)
            gateway_port = _free_port()
            url = f"http://127.0.0.1:{gateway_port}"
            gateway_args = [
                "gateway",
                "serve",
                "--port",
                str(gateway_port),
                "--flush-ms",
                "100",
                "--cache-seconds",
                "0.1",
            ]
            with _child(
                "gateway",
                _GATEWAY,
                gateway_args,
                logs,
                lambda: httpx.get(f"{url}/healthz", timeout=5).is_success,
            ):
                outcomes, traffic, reruns = _migrate_all(apps, planned, as_of, bundles, url, demo)
            result.mark("migrations", started)
            _summarize(apps, outcomes, traffic, reruns, demo, result)
            _verify_audit(result)
            result.mark("reports and audit check", started)


# ------------------------------------------------------------------------------------------- output


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    return str(value)


def _short(digest: str | None) -> str:
    return "-" if not digest else digest.removeprefix("sha256:")[:12]


def render_text(result: DemoResult, emit: Callable[[str], None]) -> None:
    """The demo's outcome as a person reads it, one line at a time through ``emit`` (plain text)."""
    emit(f"modelshift demo - local Azure emulator (default scenario); state in {result.state_dir}")
    emit("demo-only settings:")
    for line in result.demo_settings:
        emit(f"  - {line}")
    for step in result.steps:
        mark = "ok    " if step.ok else "FAILED"
        if step.name in EXPECTED:
            row = step.details["migration"]
            emit("")
            emit(f"{mark} {step.name}: {EXPECTED[step.name].what}")
            emit(
                f"       {row.get('from_model', '-')} ({_short(row.get('from_digest'))}) -> "
                f"{row.get('to_model', '-')} ({_short(row.get('to_digest'))}): {row.get('final_status', '-')}"
            )
            if row.get("stages"):
                emit(f"       phases: {' -> '.join(row['stages'])}")
            if row.get("chunking"):
                c = row["chunking"]
                emit(
                    f"       re-chunked: {c['tokenizer']}, {c['chunk_tokens']}-token chunks, {c['chunks']} "
                    f"chunks in new index generation {row['index_generation']}"
                )
            if row.get("fine_tuned_model"):
                emit(f"       fine-tune re-run: job {row['fine_tune_job']} -> {row['fine_tuned_model']}")
            if row.get("gate_verdict"):
                emit(f"       offline gate: {row['gate_verdict']}")
                for m in row.get("gate_metrics", []):
                    emit(
                        f"         {m['name']:<20} baseline {_fmt(m['baseline'])}  candidate "
                        f"{_fmt(m['candidate'])}  diff {_fmt(m['diff'], signed=True)}  {m['verdict']}"
                    )
            canary = row.get("canary")
            if canary:
                steps = " -> ".join(f"{w}%" for w in canary["weights"])
                emit(f"       canary: {steps}: verdict {canary['verdict']} ({canary['reason']})")
                # the last analysis of each step is the one that decided it
                last = {a["step"]: a for a in canary["analyses"]}
                for a in last.values():
                    err, lat, n = a["error_rate"] or {}, a["latency_ms"] or {}, a["requests"] or {}
                    emit(
                        f"         step {a['step']}: {a['verdict']:<12} errors {_pct(err.get('canary'))} vs "
                        f"{_pct(err.get('baseline'))}, median latency {_fmt(lat.get('canary'))} vs "
                        f"{_fmt(lat.get('baseline'))} ms, requests {n.get('canary', '-')} vs "
                        f"{n.get('baseline', '-')}"
                    )
            if row.get("live_traffic"):
                t = row["live_traffic"]
                emit(f"       live traffic: {t['requests']} requests, HTTP status {t['by_status']}")
            for crash in row.get("resumed_after") or []:
                emit(f"       a run ended early and was run again (it resumed): {crash}")
            if row.get("report"):
                emit(f"       report: {row['report']}")
            for problem in row.get("problems", []):
                emit(f"       NOT DONE: {problem}")
        else:
            emit(f"{mark} {step.name}: {step.summary}")
    emit("")
    if result.timings:
        emit("time: " + ", ".join(f"{part} done at {t:.0f} s" for part, t in result.timings.items()))
    if result.ok:
        emit(f"every promised outcome happened ({result.seconds:.0f} s)")
    else:
        emit(f"FAILED ({result.seconds:.0f} s) - what did not happen:")
        for failure in result.failures:
            emit(f"  - {failure}")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def to_json(result: DemoResult) -> dict[str, Any]:
    """The demo's outcome as JSON data."""
    return {
        "ok": result.ok,
        "seconds": result.seconds,
        "timings": result.timings,
        "state_dir": result.state_dir,
        "demo_settings": result.demo_settings,
        "migrations": result.migrations,
        "steps": [
            {"name": s.name, "ok": s.ok, "summary": s.summary, "details": s.details}
            for s in result.steps
            if s.name not in EXPECTED
        ],
        "failures": result.failures,
    }


def run_demo(*, as_json: bool = False, scenario: Path | None = None, only: Sequence[str] = ()) -> int:
    """CLI body of ``modelshift demo``: run, print, exit 0 only if every promised outcome happened."""
    from modelshift.cli._common import print_json

    result = run(scenario=scenario, only=list(only) or None)
    if as_json:
        print_json(to_json(result))
    else:
        render_text(result, lambda line: print(line, flush=True))
    return 0 if result.ok else 1
