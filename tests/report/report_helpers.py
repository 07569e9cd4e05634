"""Build migrations in several states through the real store APIs, for the report tests.

Bundles are real (a copy of support-chat, registered with their content), the migration moves through
``MigrationStore``, the fine-tune job through ``FineTuneJobStore``, the re-chunk through ``rechunk_corpus``
on the bundle's own corpus, the gate is ``evaluation.gate.compare`` on per-item results stored with
``EvaluationStore.record``, and the canary runs the real controller (``decide`` + ``Applier``) over request
records inserted into the gateway's table, so the report reads exactly what a migration leaves behind.
"""

from __future__ import annotations

import html.parser
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from modelshift.audit import Reason
from modelshift.bundle import Bundle
from modelshift.bundle.manifest import Canary, Evaluation, Threshold
from modelshift.evaluation.gate import compare
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.report import GateReport
from modelshift.evaluation.results import ItemResult
from modelshift.evaluation.runner import BundleRun
from modelshift.finetune.records import FineTuneJobStore, FineTunePhase
from modelshift.gateway.metrics import RequestRecord, insert_records, observe
from modelshift.grounding.chunking import Chunker
from modelshift.grounding.corpus import load_corpus
from modelshift.grounding.index import LocalIndexStore
from modelshift.migration import MigrationPhase, MigrationStore
from modelshift.prepare.rechunk import RechunkResult
from modelshift.registry import register
from modelshift.rollout import RolloutSpec, RolloutStatus, decide, pair_from_windows
from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend
from modelshift.rollout.phases import is_terminal
from modelshift.store import BundleStatus, Store
from tests.gateway.gateway_helpers import MovableClock, write_bundle

APP = "shop"
TARGET = "gpt-4o-mini@2024-07-18"
ITEMS = 40
#: requests the gateway serves per analysis window (both bundles together)
PER_WINDOW = 400
WINDOW_S = 60
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


@dataclass
class Built:
    """What a scenario made: ids and digests, the gate's report, and the canary's step windows."""

    migration_id: str
    baseline: str
    candidate: str
    phase: MigrationPhase
    report: GateReport | None = None
    canary_weights: list[int] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)


def bundles(store: Store, root: Path) -> tuple[Bundle, Bundle]:
    """A production baseline (support-chat copy with retrieval) and a registered candidate."""
    prod = write_bundle(root, APP, "1.0.0", "red", "support-chat-4o", retrieval=True)
    cand = write_bundle(root, APP, "2.0.0", "blue", "faq-4o-mini", retrieval=True)
    register(store, prod, actor="test", adopt=True)
    register(store, cand, actor="test")
    return prod, cand


def plan_dict(baseline: Bundle) -> dict[str, Any]:
    """A plan in the stored shape (``MigrationPlan.model_dump(mode="json")``)."""
    return {
        "app": APP,
        "status": "ready",
        "target": {"name": "gpt-4o-mini", "version": "2024-07-18"},
        "target_why": "replacementConfig names it",
        "scope": {"scope": "variant", "reason": "gpt-4o and gpt-4o-mini are variants of gpt-4o"},
        "stages": [
            {"name": "fine_tune", "runs": True, "why": "the bundle is fine-tuned"},
            {"name": "rechunk", "runs": True, "why": "context window 128000 -> 16000 tokens"},
            {"name": "evaluate", "runs": True, "why": "always"},
            {"name": "canary", "runs": True, "why": "always"},
        ],
        "rechunk": {"runs": True, "why": "smaller context window", "how": "o200k_base, 256/32 tokens"},
        "candidate_deployment": {"name": "faq-4o-mini", "sku_name": "GlobalStandard", "capacity": 50},
        "quota": {
            "status": "ok",
            "usage_name": "OpenAI.GlobalStandard.gpt-4o-mini",
            "needed": 50,
            "message": "50 of 1000 left",
        },
        "canary": {
            "steps": [{"weight": w, "min_requests": 20, "min_duration_seconds": 60} for w in (10, 50, 100)]
        },
        "baseline": {"digest": baseline.digest},
    }


def items(*, shift: float, latency: float) -> tuple[list[ItemResult], list[ItemResult]]:
    """Baseline and candidate per-item results; the candidate's F1 moved by ``shift``."""
    base, cand = [], []
    for i in range(ITEMS):
        f1 = 0.5 + (i % 10) / 25
        base.append(ItemResult(item_id=f"q{i}", answer_f1=f1, latency_ms=100.0 + i, refusal=i % 8 == 0))
        cand.append(
            ItemResult(
                item_id=f"q{i}",
                answer_f1=min(max(f1 + shift + (i % 3) * 0.01, 0.0), 1.0),
                latency_ms=latency + i,
                refusal=i % 8 == 0,
            )
        )
    return base, cand


POLICY = Evaluation(
    dataset="golden.jsonl",
    min_items=10,
    metrics={
        "answer_f1": Threshold(greater_is_better=True, absolute_margin=0.03, critical=True),
        "latency_p95_ms": Threshold(greater_is_better=False, relative_margin=0.5),
        "refusal_rate": Threshold(greater_is_better=False, absolute_margin=0.05),
    },
)


def _prepare(store: Store, clock: MovableClock, mid: str, prod: Bundle, cand: Bundle, root: Path) -> None:
    migrations = MigrationStore(store, clock=clock)
    migrations.advance(mid, MigrationPhase.PREPARING, actor="tester", evidence={"stages": ["fine_tune"]})
    jobs = FineTuneJobStore(store, actor="tester")
    key = "k" * 64
    jobs.create(
        now=clock.advance(1),
        identity={
            "key": key,
            "migration_id": mid,
            "app": APP,
            "target_model": TARGET,
            "training_sha256": "a" * 64,
            "validation_sha256": None,
            "hyperparameters": {"n_epochs": 3},
            "suffix": "shop",
            "seed": 7,
        },
        changes={"phase": FineTunePhase.UPLOADED.value, "training_file_id": "file-train"},
        data={},
    )
    jobs.update(
        key,
        now=clock.advance(5),
        changes={"job_id": "ftjob-report-1", "phase": FineTunePhase.SUBMITTED.value, "job_status": "running"},
        reason=Reason.FINETUNE_SUBMITTED,
    )
    done = clock.advance(600)
    jobs.update(
        key,
        now=done,
        changes={
            "phase": FineTunePhase.SUCCEEDED.value,
            "job_status": "succeeded",
            "fine_tuned_model": "gpt-4o-mini-2024-07-18.ft-report",
            "finished_at": done,
        },
        reason=Reason.FINETUNE_SUCCEEDED,
    )
    clock.advance(10)
    # the index build is real; rechunk_corpus would also run the GX chunk suite (seconds of import time)
    assert prod.manifest.retrieval is not None
    corpus = load_corpus(prod.root / prod.manifest.retrieval.corpus)
    generation = LocalIndexStore(root / "home", clock).build(APP, corpus, Chunker("o200k_base", 256, 32))
    summary = RechunkResult(generation=generation, report=None, reused=False).summary()  # type: ignore[arg-type]
    store.append_audit(
        Reason.GROUNDING_RECHUNKED,
        f"bundle:{APP}@1.0.0",
        {**summary, "baseline_generation": prod.manifest.retrieval.index_generation},
        actor="tester",
        migration_id=mid,
    )
    store.append_audit(
        Reason.DEPLOYMENT_CREATED,
        "deployment:contoso-aoai-eus/faq-4o-mini",
        {"deployment": "faq-4o-mini", "account": "contoso-aoai-eus", "model": TARGET, "created": True},
        actor="tester",
        migration_id=mid,
    )
    store.append_audit(
        Reason.CANDIDATE_COMPOSED,
        f"bundle:{APP}@2.0.0",
        {
            "baseline_digest": prod.digest,
            "candidate_digest": cand.digest,
            "version": "2.0.0",
            "model": TARGET,
        },
        actor="tester",
        migration_id=mid,
    )
    migrations.advance(
        mid,
        MigrationPhase.PREPARED,
        actor="tester",
        evidence={
            "candidate_digest": cand.digest,
            "baseline_digest": prod.digest,
            "deployment": "faq-4o-mini",
            "index_generation": generation.generation,
        },
    )


def _evaluate(
    store: Store, clock: MovableClock, mid: str, prod: Bundle, cand: Bundle, *, shift: float
) -> GateReport:
    migrations = MigrationStore(store, clock=clock)
    migrations.advance(
        mid, MigrationPhase.EVALUATING, actor="tester", evidence={"candidate_digest": cand.digest}
    )
    base_items, cand_items = items(shift=shift, latency=110.0)
    report = compare(cand_items, base_items, POLICY, seed=1, n_resamples=2000)
    runs = [
        BundleRun(bundle_digest=b.digest, dataset_digest="sha256:golden", evaluator_version="1", outcomes=())
        for b in (prod, cand)
    ]
    clock.advance(30)
    record = EvaluationStore(store, clock=clock).record(
        baseline=runs[0],
        candidate=runs[1],
        baseline_items=base_items,
        candidate_items=cand_items,
        report=report,
        actor="tester",
        migration_id=mid,
    )
    evidence = {
        "candidate_digest": cand.digest,
        "verdict": report.verdict.value,
        "gate": report.summary(),
        "record_id": record.id,
    }
    if report.passed:
        store.set_status(cand.digest, BundleStatus.EVALUATED, actor="tester", reason="gate passed")
        migrations.advance(mid, MigrationPhase.EVALUATED, actor="tester", evidence=evidence)
    else:
        store.set_status(cand.digest, BundleStatus.REJECTED, actor="tester", reason="gate failed")
        evidence |= {
            "stage": "evaluate",
            "error": f"candidate rejected by the offline gate: {report.summary()}",
        }
        migrations.advance(mid, MigrationPhase.FAILED, actor="tester", evidence=evidence)
    return report


def _serve(
    store: Store, clock: MovableClock, spec: RolloutSpec, weight: int, *, bad: bool, n: int
) -> dict[str, int]:
    """``PER_WINDOW`` requests over the next window, split by ``weight``; the clock ends after them."""
    start = clock.now
    records = []
    served = 0
    for i in range(PER_WINDOW):
        # spread the canary's share evenly over the window, as sticky routing of many users would
        on_canary = (i + 1) * weight // 100 != i * weight // 100
        digest = spec.candidate_digest if on_canary else spec.baseline_digest
        failed = on_canary and bad and served % 3 == 0
        served += on_canary
        records.append(
            RequestRecord(
                request_id=f"r{n}-{i}",
                app=spec.app,
                bundle_digest=digest,
                started_at=start + timedelta(seconds=WINDOW_S * i / PER_WINDOW),
                latency_ms=(150.0 if on_canary and bad else 100.0) + i % 20,
                status=500 if failed else 200,
                error_class="TransientPlatformError" if failed else None,
                prompt_tokens=300,
                completion_tokens=40,
            )
        )
    insert_records(store, records)
    clock.advance(WINDOW_S)
    return {"canary": served, "baseline": PER_WINDOW - served}


def _canary(
    store: Store,
    clock: MovableClock,
    mid: str,
    prod: Bundle,
    cand: Bundle,
    built: Built,
    *,
    bad: bool,
    windows: int | None = None,
) -> None:
    """The canary to its end, or (``windows``) only that many served windows: still running."""
    migrations = MigrationStore(store, clock=clock)
    migrations.advance(mid, MigrationPhase.CANARY, actor="tester", evidence={"candidate_digest": cand.digest})
    spec = RolloutSpec.from_canary(
        app=APP,
        baseline_digest=prod.digest,
        candidate_digest=cand.digest,
        canary=Canary(steps=[10, 50, 100], min_requests_per_step=20, step_duration_seconds=WINDOW_S),
        lease_seconds=600,
    )
    applier = Applier(
        store=store,
        backend=StoreRouterBackend(store, actor="canary", migration_id=mid),
        remover=DeploymentRemover(None),
        actor="canary",
        migration_id=mid,
        grace_seconds=0.0,
    )
    status, observation, n = RolloutStatus(), None, 0
    while True:
        now = clock.advance(1)
        outcome = applier.apply(spec, decide(spec, status, observation, now), now)
        status = outcome.status
        if is_terminal(status.phase):
            break
        weight = status.weights.get(spec.candidate_digest, 0)
        built.canary_weights.append(weight)
        served = _serve(store, clock, spec, weight, bad=bad, n=n)
        n += 1
        for side, count in served.items():
            built.requests[side] = built.requests.get(side, 0) + count
        if windows is not None and n >= windows:
            return
        assert status.step_started_at is not None
        observation = pair_from_windows(spec, observe(store, APP, status.step_started_at, clock.now))
    clock.advance(1)
    if status.phase.value == "promoted":
        migrations.advance(mid, MigrationPhase.PROMOTING, actor="tester")
        migrations.advance(mid, MigrationPhase.SUCCEEDED, actor="tester", evidence={"note": "promoted"})
    else:
        migrations.advance(mid, MigrationPhase.ROLLING_BACK, actor="tester")
        migrations.advance(
            mid, MigrationPhase.ROLLED_BACK, actor="tester", evidence={"error": status.outcome_reason}
        )


def build(store: Store, clock: MovableClock, root: Path, until: str, *, hostile: bool = False) -> Built:
    """A migration of ``shop`` run up to ``until``: planned, prepared, rejected, evaluated, canary (two
    windows served, still running), promoted or rolled_back. ``hostile`` puts markup into the free-text
    fields a person or the platform controls."""
    prod, cand = bundles(store, root)
    migrations = MigrationStore(store, clock=clock)
    actor = HOSTILE if hostile else "tester"
    reason = f"retiring {HOSTILE}" if hostile else "gpt-4o 2024-05-13 retires"
    started = migrations.start(
        app=APP,
        baseline_digest=prod.digest,
        target=TARGET,
        trigger="cli",
        reason=reason,
        actor=actor,
        parameters={"app": APP},
    )
    mid = started.migration.id
    built = Built(mid, prod.digest, cand.digest, MigrationPhase.PENDING)
    assessment = {
        "app": APP,
        "model": "gpt-4o@2024-05-13",
        "status": "retiring",
        "retirement": "2026-02-14",
        "days_left": 30,
        "target": TARGET,
        "risks": [HOSTILE if hostile else "auto-upgrade pending"],
    }
    migrations.advance(mid, MigrationPhase.ASSESSING, actor="tester", evidence=assessment)
    clock.advance(2)
    migrations.advance(
        mid, MigrationPhase.PLANNED, actor="tester", plan=plan_dict(prod), evidence={"note": "planned"}
    )
    built.phase = MigrationPhase.PLANNED
    if until == "planned":
        return built
    clock.advance(5)
    _prepare(store, clock, mid, prod, cand, root)
    built.phase = MigrationPhase.PREPARED
    if until == "prepared":
        return built
    built.report = _evaluate(store, clock, mid, prod, cand, shift=-0.3 if until == "rejected" else 0.02)
    built.phase = MigrationPhase.FAILED if until == "rejected" else MigrationPhase.EVALUATED
    if until in ("rejected", "evaluated"):
        return built
    if until == "canary":
        _canary(store, clock, mid, prod, cand, built, bad=False, windows=2)
        built.phase = MigrationPhase.CANARY
        return built
    _canary(store, clock, mid, prod, cand, built, bad=until == "rolled_back")
    built.phase = MigrationPhase.SUCCEEDED if until == "promoted" else MigrationPhase.ROLLED_BACK
    return built


class Page(html.parser.HTMLParser):
    """A parsed report: every start tag with its attributes, text per section id, and the ids seen."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.sections: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._section: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "section" and "id" in attributes:  # the report's sections are never nested
            self._section = attributes["id"]
            self.sections[self._section] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._section is not None:
            self.sections[self._section].append(data)

    def section(self, ident: str) -> str:
        """The text of section ``ident``, whitespace collapsed."""
        return " ".join(" ".join(self.sections[ident]).split())

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        """Attributes of every ``tag`` (whose class list holds ``cls``, if given)."""
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]
