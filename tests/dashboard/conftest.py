"""Dashboard fixtures: the emulator, a store holding apps in every state the fleet table knows, and a
dashboard served by uvicorn on a loopback port over both.

The fleet (all registered through the store's own audited calls):

=============== ========================================================================================
support-chat    the example bundle in production, nothing else (its lifecycle comes from the emulator)
hr-handbook     the example bundle; a finished dry run whose plan is ready
faq             a real migration in flight (evaluating)
claims          a candidate in canary at 25 % whose canary asked for a person's approval
billing         the latest migration failed in prepare, with the reason
search          a candidate that was rolled back in its canary (the migration ended rolled_back)
=============== ========================================================================================
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshift.audit import Reason
from modelshift.bundle import Bundle, load_bundle
from modelshift.clock import utcnow
from modelshift.dashboard import open_dashboard, running_dashboard
from modelshift.dashboard.app import Dashboard
from modelshift.emulator.testing import EmulatorHandle, running_emulator
from modelshift.gateway.metrics import RequestRecord, insert_records
from modelshift.migration import MigrationPhase, MigrationStore, Trigger
from modelshift.registry import register
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store
from tests.gateway.gateway_helpers import REPO, MovableClock, adopt, scenario, write_bundle

TOKEN = "s3cret-operator-token"
_P = MigrationPhase
#: the path of a real migration up to (and including) the canary stage
_TO_CANARY = [_P.ASSESSING, _P.PLANNED, _P.PREPARING, _P.PREPARED, _P.EVALUATING, _P.EVALUATED, _P.CANARY]
#: the clock the fleet is written with: an hour ago, moved on by hand so stages and the canary take time
CLOCK = MovableClock()
READY_PLAN: dict[str, Any] = {"status": "ready", "target": {"name": "gpt-4o", "version": "2024-11-20"}}


@dataclass
class Fleet:
    """The digests and migration ids of the test fleet."""

    production: dict[str, str]
    candidates: dict[str, str]
    migrations: dict[str, str]


def migration(
    store: Store,
    app: str,
    baseline: str,
    phases: list[MigrationPhase],
    *,
    dry_run: bool = False,
    target: str | None = "gpt-4o@2024-11-20",
    plan: dict[str, Any] | None = None,
    last_evidence: dict[str, Any] | None = None,
    candidate: str | None = None,
) -> str:
    """A migration record moved through ``phases`` (audited at each move); its id."""
    migrations = MigrationStore(store, clock=CLOCK)
    started = migrations.start(
        app=app,
        baseline_digest=baseline,
        target=target,
        trigger=Trigger.CLI,
        reason="test",
        actor="test",
        parameters={"app": app},
        dry_run=dry_run,
    )
    for index, phase in enumerate(phases):
        CLOCK.advance(5)
        last = index == len(phases) - 1
        migrations.advance(
            started.migration.id,
            phase,
            actor="test",
            plan=plan if phase in (_P.PLANNED, _P.DRY_RUN_DONE) else None,
            evidence=last_evidence
            if last
            else ({"candidate_digest": candidate} if phase is _P.PREPARED else None),
        )
    return started.migration.id


def start_canary(
    store: Store, bundle: Bundle, migration_id: str, weight: int, *, candidate_errors: int
) -> None:
    """Register, evaluate (passing) and canary ``bundle`` at ``weight`` % for ``migration_id``, as the
    flows do (audited with the migration id), with 40 gateway requests per side and one live analysis."""
    register(store, bundle, actor="test", migration_id=migration_id)
    report = {
        "verdict": "pass",
        "rows": [
            {
                "name": "answer_f1",
                "candidate": 0.81,
                "baseline": 0.8,
                "diff": 0.01,
                "ci_low": -0.01,
                "ci_high": 0.03,
                "p_value": 0.2,
                "margin": 0.03,
                "greater_is_better": True,
                "critical": True,
                "n": 62,
                "verdict": "pass",
                "reason": "within the margin",
            },
        ],
    }
    store.record_evaluation(
        bundle.digest,
        "golden",
        True,
        "pass",
        report,
        actor="test",
        migration_id=migration_id,
        baseline_digest=store.get_bundle(bundle.app).digest,
    )
    store.set_status(
        bundle.digest, BundleStatus.EVALUATED, actor="test", reason="gate passed", migration_id=migration_id
    )
    store.set_status(
        bundle.digest,
        BundleStatus.CANARY,
        actor="canary-flow",
        reason="canary rollout started",
        migration_id=migration_id,
    )
    state = store.get_router(bundle.app)
    production = next(d for d in state.weights if d != bundle.digest)
    store.set_router(
        bundle.app,
        {production: 100 - weight, bundle.digest: weight},
        expected_revision=state.revision,
        actor="canary-flow",
        reason="canary step",
        migration_id=migration_id,
        lease_expires_at=utcnow() + timedelta(hours=1),
    )
    subject = f"rollout {bundle.app} -> {bundle.digest}"
    store.append_audit(
        Reason.CANARY_STEP,
        subject,
        {"app": bundle.app, "step": 0, "kind": "set_weight"},
        actor="canary-flow",
        migration_id=migration_id,
    )
    now = CLOCK.advance(1)
    records = [
        RequestRecord(
            request_id=str(uuid.uuid4()),
            app=bundle.app,
            bundle_digest=digest,
            started_at=now + timedelta(seconds=i * 0.4),
            latency_ms=120.0 + i,
            status=status,
            error_class=None if status == 200 else "TransientPlatformError",
        )
        for digest, errors in ((bundle.digest, candidate_errors), (production, 0))
        for i in range(40)
        for status in [500 if i < errors else 200]
    ]
    insert_records(store, records)
    CLOCK.advance(20)
    metrics = [
        {
            "name": "error_rate",
            "verdict": "failed" if candidate_errors else "successful",
            "canary": candidate_errors / 40,
            "baseline": 0.0,
            "n_canary": 40,
            "n_baseline": 40,
        },
        {
            "name": "latency",
            "verdict": "successful",
            "canary": 140.0,
            "baseline": 139.0,
            "n_canary": 40,
            "n_baseline": 40,
        },
    ]
    store.append_audit(
        Reason.CANARY_ANALYSIS,
        subject,
        {
            "app": bundle.app,
            "step": 1,
            "verdict": metrics[0]["verdict"],
            "reason": "analysis",
            "metrics": metrics,
        },
        actor="canary-flow",
        migration_id=migration_id,
    )


def build_fleet(store: Store, root: Path) -> Fleet:
    """Register the six apps of the module docstring."""
    production: dict[str, str] = {}
    for app in ("support-chat", "hr-handbook"):
        bundle = load_bundle(REPO / "bundles" / app / "1.0.0")
        register(store, bundle, actor="test", adopt=True)
        production[app] = bundle.digest
    for app in ("faq", "claims", "billing", "search"):
        production[app] = adopt(store, write_bundle(root, app, "1.0.0", "blue", "support-chat-4o"))
    ids = {
        "hr-handbook": migration(
            store,
            "hr-handbook",
            production["hr-handbook"],
            [_P.ASSESSING, _P.DRY_RUN_DONE],
            dry_run=True,
            plan=READY_PLAN,
        ),
        "faq": migration(store, "faq", production["faq"], _TO_CANARY[:5], plan=READY_PLAN),
        "billing": migration(
            store,
            "billing",
            production["billing"],
            [_P.ASSESSING, _P.PLANNED, _P.PREPARING, _P.FAILED],
            plan=READY_PLAN,
            last_evidence={"stage": "deploy", "error": "quota exceeded for gpt-4o GlobalStandard in eastus"},
        ),
    }
    candidates: dict[str, str] = {}
    # claims: a canary at 25 % that asked for approval (the canary flow's event, as the controller writes it)
    claims = write_bundle(root, "claims", "1.1.0", "red", "legacy-35-0613")
    ids["claims"] = migration(
        store, "claims", production["claims"], _TO_CANARY, plan=READY_PLAN, candidate=claims.digest
    )
    start_canary(store, claims, ids["claims"], 25, candidate_errors=0)
    candidates["claims"] = claims.digest
    store.append_audit(
        Reason.CANARY_APPROVAL_REQUESTED,
        f"rollout claims -> {claims.digest}",
        {"app": "claims", "step": 1, "reason": "approval required before 100 %"},
        actor="canary-flow",
        migration_id=ids["claims"],
    )
    # search: canary rolled back by the analysis
    search = write_bundle(root, "search", "1.1.0", "red", "support-chat-4o")
    ids["search"] = migration(
        store, "search", production["search"], _TO_CANARY, plan=READY_PLAN, candidate=search.digest
    )
    start_canary(store, search, ids["search"], 25, candidate_errors=8)
    store.roll_back(
        search.digest, actor="canary-flow", reason="error_rate failed", migration_id=ids["search"]
    )
    store.append_audit(
        Reason.CANARY_ROLLED_BACK,
        f"rollout search -> {search.digest}",
        {"app": "search", "verdict": "failed", "reason": "error_rate: canary 0.2 vs baseline 0.0"},
        actor="canary-flow",
        migration_id=ids["search"],
    )
    MigrationStore(store, clock=CLOCK).advance(ids["search"], _P.ROLLING_BACK, actor="canary-flow")
    MigrationStore(store, clock=CLOCK).advance(
        ids["search"], _P.ROLLED_BACK, actor="canary-flow", evidence={"reason": "error_rate failed"}
    )
    candidates["search"] = search.digest
    assert store.get_bundle_by_digest(search.digest).status is BundleStatus.ROLLED_BACK
    return Fleet(production=production, candidates=candidates, migrations=ids)


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A fresh emulator per test: a rollback deletes a deployment in it."""
    with running_emulator(scenario(), latency_scale=0.0) as emu:
        yield emu


@pytest.fixture
def settings(tmp_path: Path, emulator: EmulatorHandle) -> Settings:
    """Settings pointing the store at a temp SQLite file and ARM at the emulator, with an operator token."""
    return Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        arm_url=emulator.arm_url,
        arm_token=emulator.bearer_token,
        api_key=emulator.api_key,
        dashboard_token=TOKEN,
        retire_grace_seconds=0,
    )


@pytest.fixture
def fleet(settings: Settings, tmp_path: Path) -> Fleet:
    """The six apps in the store."""
    CLOCK.now = utcnow() - timedelta(hours=1)
    with Store.open(settings.resolved_database_url, clock=CLOCK) as store:
        return build_fleet(store, tmp_path / "bundles")


@dataclass
class Live:
    """A dashboard served on a loopback port."""

    url: str
    dashboard: Dashboard
    fleet: Fleet

    def client(self) -> httpx.Client:
        """An HTTP client for the dashboard (close it when done)."""
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture
def live(settings: Settings, fleet: Fleet) -> Iterator[Live]:
    """The dashboard over the fleet, served by uvicorn."""
    with open_dashboard(settings, mode="in_process") as dash, running_dashboard(dash) as url:
        yield Live(url=url, dashboard=dash, fleet=fleet)


def login(client: httpx.Client, name: str = "dana", token: str = TOKEN) -> str:
    """Log ``name`` in through the form; the CSRF token of the new session (read from a page)."""
    response = client.post("/login", data={"operator": name, "token": token, "next": "/"})
    assert response.status_code == 303, response.text
    page = client.get("/")  # every page carries the session's CSRF token in its log-out form
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)
