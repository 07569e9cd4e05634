"""The end-to-end demo on the embedded default: the local Azure emulator, a fresh store, the example apps.

It runs every stage of the migration DAG that exists so far and says what it did. Its state lives in
``<home>/demo/`` (default ``.modelshift/demo``), never in the user's own store or Prefect database.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from modelshift.bundle import Bundle, discover_bundles, load_bundle
from modelshift.errors import ModelshiftError
from modelshift.settings import Settings, get_settings


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
    state_dir: str = ""

    @property
    def ok(self) -> bool:
        """True when every step succeeded."""
        return all(step.ok for step in self.steps)


def _demo_settings(base: Settings, state_dir: Path, arm_url: str, api_key: str, token: str) -> Settings:
    return base.model_copy(
        update={
            "home": state_dir,
            "database_url": f"sqlite:///{(state_dir / 'state.db').resolve()}",
            "arm_url": arm_url,
            "api_key": SecretStr(api_key),
            "arm_token": SecretStr(token),
            "actor": "demo",
        }
    )


def _register_examples(cfg: Settings, bundles: list[Bundle], result: DemoResult) -> None:
    from modelshift.registry import register
    from modelshift.store import Store

    store = Store.open(cfg.resolved_database_url)
    try:
        rows = []
        for bundle in bundles:
            adopted = register(store, bundle, actor=cfg.actor, adopt=True).bundle
            rows.append(
                {
                    "app": bundle.app,
                    "version": bundle.version,
                    "digest": bundle.digest,
                    "status": str(adopted.status),
                }
            )
        result.steps.append(
            DemoStep(
                "register",
                all(r["status"] == "production" for r in rows),
                f"registered {len(rows)} example bundle(s) and adopted each as its app's production bundle",
                {"bundles": rows},
            )
        )
    finally:
        store.close()


def _serve_each(cfg: Settings, bundles: list[Bundle], result: DemoResult) -> None:
    """One grounded chat call per app through the Azure adapter, to show each production bundle serving."""
    from modelshift.platforms.azure import arm_client, openai_client
    from modelshift.platforms.base import AccountRef

    rows = []
    with httpx.Client(timeout=30) as client:
        arm = arm_client(cfg, client=client)
        for bundle in bundles:
            m = bundle.manifest.model
            if m.platform != "azure-openai" or not (m.subscription and m.resource_group and m.account):
                continue
            ref = AccountRef(subscription_id=m.subscription, resource_group=m.resource_group, name=m.account)
            account = next(
                a for a in arm.accounts(m.subscription, m.resource_group) if a.ref.name == m.account
            )
            dep = arm.get(ref, m.deployment)
            aoai = openai_client(account.endpoint, cfg, client=client)
            prompts = bundle.prompt_for(m.name)
            question = "What is this assistant for?"
            messages = [{"role": "system", "content": prompts.system}, {"role": "user", "content": question}]
            try:
                answer = aoai.chat(m.deployment, messages, max_tokens=60, temperature=0)
                rows.append(
                    {
                        "app": bundle.app,
                        "deployment": m.deployment,
                        "model": f"{dep.model.name}@{dep.model.version}",
                        "answer": answer.content[:120],
                        "tokens": answer.usage.total_tokens,
                    }
                )
            except ModelshiftError as exc:
                rows.append(
                    {
                        "app": bundle.app,
                        "deployment": m.deployment,
                        "model": f"{dep.model.name}@{dep.model.version}",
                        "error": str(exc),
                    }
                )
    result.steps.append(
        DemoStep(
            "serve",
            bool(rows),
            f"called {len(rows)} production deployment(s) through the Azure adapter",
            {"calls": rows},
        )
    )


def _scan_and_plan(cfg: Settings, as_of: datetime, result: DemoResult) -> None:
    """The retirement scan over the live (emulated) fleet, then a plan for every app that must move."""
    import asyncio

    from modelshift.lifecycle import (
        AsyncArmReader,
        BundleRef,
        fetch_live,
        load_families,
        plan_migration,
        scan_fleet,
    )
    from modelshift.store import BundleStatus, Store

    with Store.open(cfg.resolved_database_url) as store:
        bundles = [BundleRef.from_registered(b) for b in store.list_bundles(status=BundleStatus.PRODUCTION)]

    async def live() -> Any:
        async with httpx.AsyncClient(timeout=60) as client:
            return await fetch_live(AsyncArmReader.from_settings(client, cfg), bundles)

    snapshot = asyncio.run(live())
    report = scan_fleet(bundles, snapshot, as_of=as_of)
    at_risk = report.needs_migration()
    rows = [
        {
            "app": a.app,
            "model": str(a.pinned_model),
            "status": a.status.value,
            "retirement": a.retirement.date().isoformat() if a.retirement else None,
            "days_left": a.days_left,
            "target": str(a.targets[0].model) if a.targets else None,
        }
        for a in report.managed
    ]
    result.steps.append(
        DemoStep(
            "scan",
            bool(at_risk),
            f"retirement scan as of {as_of.date().isoformat()}: {len(report.managed)} app(s), "
            f"{len(at_risk)} need a migration ("
            + ", ".join(f"{a.app} {a.status.value}, {a.days_left} days left" for a in at_risk)
            + f"); {len(report.unmanaged)} unmanaged deployment(s)",
            {"assessments": rows, "unmanaged": [u.deployment for u in report.unmanaged]},
        )
    )
    families = load_families(cfg.families_file)
    by_app = {b.app: b for b in bundles}
    plans: list[dict[str, Any]] = []
    for assessment in at_risk:
        if assessment.app is None:
            continue
        plan = plan_migration(by_app[assessment.app], snapshot, families, as_of=as_of)
        plans.append(
            {
                "app": plan.app,
                "status": plan.status,
                "target": str(plan.target) if plan.target else None,
                "scope": plan.scope.scope.value if plan.scope else None,
                "stages": [st.name for st in plan.stages if st.runs],
                "candidate_deployment": plan.candidate_deployment.name if plan.candidate_deployment else None,
            }
        )
    result.steps.append(
        DemoStep(
            "plan",
            bool(plans) and all(p["status"] == "ready" for p in plans),
            "; ".join(
                f"{p['app']}: -> {p['target']} ({p['scope']}), stages {', '.join(p['stages'])}" for p in plans
            )
            or "no plan",
            {"plans": plans},
        )
    )


def _verify_audit(cfg: Settings, result: DemoResult) -> None:
    from modelshift.audit import verify
    from modelshift.store import Store

    store = Store.open(cfg.resolved_database_url)
    try:
        outcome = verify(store)
    finally:
        store.close()
    result.steps.append(
        DemoStep(
            "audit",
            outcome.ok,
            f"audit chain of {outcome.count} event(s) "
            + ("verifies" if outcome.ok else f"is broken at seq {outcome.first_bad_seq}"),
            {"count": outcome.count},
        )
    )


def run(bundles_dir: Path | None = None, settings: Settings | None = None) -> DemoResult:
    """Run the demo and return what happened (no printing)."""
    from modelshift.emulator.testing import running_emulator

    base = settings or get_settings()
    state_dir = (base.home / "demo").resolve()
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    result = DemoResult(state_dir=str(state_dir))
    bundles = [load_bundle(p) for p in discover_bundles(bundles_dir or base.bundles_dir)]
    with running_emulator() as emu:
        cfg = _demo_settings(base, state_dir, emu.arm_url, emu.api_key, emu.bearer_token)
        os.environ.setdefault("MODELSHIFT_HOME", str(state_dir))
        _register_examples(cfg, bundles, result)
        _serve_each(cfg, bundles, result)
        _scan_and_plan(cfg, emu.now(), result)
        _verify_audit(cfg, result)
    return result


def run_demo(*, as_json: bool = False) -> int:
    """CLI body of ``modelshift demo``: run, print, exit 0 only if every step succeeded."""
    from modelshift.cli._common import console, print_json

    result = run()
    if as_json:
        print_json({"ok": result.ok, "state_dir": result.state_dir, "steps": result.steps})
    else:
        console.print(f"[bold]modelshift demo[/] — state in {result.state_dir} (local Azure emulator)")
        for step in result.steps:
            mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
            console.print(f"  {mark}  {step.name:<9} {step.summary}")
    return 0 if result.ok else 1
