"""Everything the migration report shows, gathered from the state store for one migration id.

:func:`load_migration_view` reads the migration record and its phase moves, the audit events of the
migration, the fine-tune jobs, the evaluation record with its per-item table and the gateway's request
metrics over the canary, and returns one :class:`MigrationView`: plain pydantic, free of HTML, so the CLI's
``--json``, the HTML report and the dashboard all read the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from modelshift.audit import AuditEvent, Reason
from modelshift.clock import Clock, ensure_utc, utcnow
from modelshift.errors import NotFoundError
from modelshift.evaluation.records import EvaluationStore
from modelshift.evaluation.results import METRICS, ItemResult
from modelshift.evaluation.stage import latest_record
from modelshift.finetune.records import FineTuneJobStore, FineTuneRecord
from modelshift.migration import Migration, MigrationPhase, MigrationStore
from modelshift.report.timeline import CanaryTimeline, build_timeline
from modelshift.store import Store

_MIGRATION_REASONS = frozenset(
    {
        Reason.MIGRATION_STARTED,
        Reason.MIGRATION_PLANNED,
        Reason.MIGRATION_PREPARED,
        Reason.MIGRATION_FINISHED,
    }
)

#: the report's stages and the migration phases that belong to each, in the order they run
STAGES: tuple[tuple[str, frozenset[MigrationPhase]], ...] = (
    ("assess", frozenset({MigrationPhase.ASSESSING})),
    ("prepare", frozenset({MigrationPhase.PREPARING, MigrationPhase.PREPARED})),
    ("evaluate", frozenset({MigrationPhase.EVALUATING, MigrationPhase.EVALUATED})),
    ("canary", frozenset({MigrationPhase.CANARY})),
    ("promote", frozenset({MigrationPhase.PROMOTING})),
    ("roll back", frozenset({MigrationPhase.ROLLING_BACK})),
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class BundleInfo(_View):
    """One side of the migration: the bundle, its model and deployment (None where nothing is known)."""

    digest: str | None
    app: str | None = None
    version: str | None = None
    model: str | None = None
    model_version: str | None = None
    deployment: str | None = None
    status: str | None = None

    @property
    def model_label(self) -> str:
        """``name@version``, or what is known of it."""
        if self.model and self.model_version:
            return f"{self.model}@{self.model_version}"
        return self.model or "-"


class PhaseMove(_View):
    """One audited phase change of the migration, with the evidence recorded with it."""

    seq: int
    at: datetime
    from_phase: str | None
    to_phase: str
    actor: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class StageView(_View):
    """A stage of the DAG: ``done``, ``running``, ``failed``, ``cancelled`` or ``not reached``."""

    name: str
    state: str
    started_at: datetime | None = None
    ended_at: datetime | None = None


class PlanStage(_View):
    """A stage the plan decided to run or skip, and why."""

    name: str
    runs: bool
    why: str = ""


class PlanView(_View):
    """The migration plan as stored (the fields the report shows, and the whole plan in ``raw``)."""

    status: str | None = None
    target: str | None = None
    target_why: str | None = None
    scope: str | None = None
    scope_reason: str | None = None
    stages: list[PlanStage] = Field(default_factory=list)
    rechunk: dict[str, Any] | None = None
    candidate_deployment: dict[str, Any] | None = None
    quota: dict[str, Any] | None = None
    canary_steps: list[int] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)


class FineTuneView(_View):
    """A fine-tune re-run of the migration (``finetune_jobs``)."""

    job_id: str | None
    phase: str
    status: str | None
    base_model: str
    fine_tuned_model: str | None
    deployment: str | None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class ChunkingView(_View):
    """The re-chunked grounding data: the new index generation and its statistics."""

    generation: str
    tokenizer: str | None = None
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None
    documents: int | None = None
    chunks: int | None = None
    corpus_digest: str | None = None
    reused: bool = False
    baseline_generation: str | None = None


class PrepareView(_View):
    """What the prepare stage made: fine-tune jobs, the re-chunked index, the deployment, the candidate."""

    fine_tunes: list[FineTuneView] = Field(default_factory=list)
    chunking: ChunkingView | None = None
    deployment: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None


class MetricComparison(_View):
    """One gate metric: both values, the difference with its CI and p-value, the margin, the verdict, and the
    per-item scores of both bundles (the values the metric is computed from)."""

    name: str
    description: str = ""
    unit: str = ""
    greater_is_better: bool
    critical: bool
    baseline: float | None
    candidate: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    margin: float | None
    n: int
    verdict: str
    reason: str
    baseline_scores: list[float] = Field(default_factory=list)
    candidate_scores: list[float] = Field(default_factory=list)


class EvaluationView(_View):
    """The offline gate's record: verdict, settings, item counts and one :class:`MetricComparison` each."""

    record_id: int
    verdict: str
    passed: bool
    summary: str
    dataset_digest: str
    confidence: float | None = None
    min_items: int | None = None
    paired: int | None = None
    baseline_items: int = 0
    candidate_items: int = 0
    recorded_at: datetime
    metrics: list[MetricComparison] = Field(default_factory=list)


class DecisionView(_View):
    """How the migration ended (or where it stands) and why."""

    outcome: str
    phase: str
    final: bool
    reason: str
    at: datetime | None = None
    actor: str | None = None
    gate_verdict: str | None = None
    canary_verdict: str | None = None


class AuditEntry(_View):
    """One audit event of the migration, with the digests it names."""

    seq: int
    at: datetime
    actor: str
    reason: str
    subject: str
    digests: dict[str, str] = Field(default_factory=dict)
    hash: str
    prev_hash: str
    data: dict[str, Any] = Field(default_factory=dict)


class MigrationView(_View):
    """Everything the migration report shows, for one migration id."""

    id: str
    app: str
    phase: str
    trigger: str
    actor: str
    reason: str
    dry_run: bool
    target: str | None
    flow_run_id: str | None
    created_at: datetime
    updated_at: datetime
    generated_at: datetime
    baseline: BundleInfo
    candidate: BundleInfo | None = None
    stages: list[StageView]
    moves: list[PhaseMove]
    assessment: dict[str, Any] = Field(default_factory=dict)
    plan: PlanView | None = None
    prepare: PrepareView
    evaluation: EvaluationView | None = None
    canary: CanaryTimeline | None = None
    decision: DecisionView
    audit: list[AuditEntry]
    audit_verified: bool | None = None
    audit_problem: str | None = None
    audit_head_hash: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def from_model(self) -> str:
        """The baseline's model, ``name@version``."""
        return self.baseline.model_label

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_model(self) -> str:
        """The candidate's model, else the plan's target, else the requested target."""
        if self.candidate is not None and self.candidate.model:
            return self.candidate.model_label
        if self.plan is not None and self.plan.target:
            return self.plan.target
        return self.target or "-"


# ------------------------------------------------------------------------------------------------ loading


def load_migration_view(
    store: Store, migration_id: str, *, clock: Clock = utcnow, verify_audit: bool = True
) -> MigrationView:
    """Gather the view of ``migration_id`` from ``store``; NotFoundError naming the id when it is unknown.

    ``clock`` ends the canary timeline of a migration still in canary; ``verify_audit`` recomputes the whole
    audit chain (one pass over it) so the report can say whether its trail is intact.
    """
    if not migration_id.strip():
        raise NotFoundError("no migration id given; pass one from `modelshift audit show`")
    migration = MigrationStore(store).get(migration_id)
    events = store.audit_events(migration_id=migration.id)
    moves = _moves(events)
    baseline = _bundle(store, migration.baseline_digest)
    candidate_digest = _candidate_digest(events)
    candidate = None if candidate_digest is None else _bundle(store, candidate_digest)
    evaluation = None
    if candidate_digest is not None:
        evaluation = _evaluation(store, candidate_digest, migration.baseline_digest)
    canary = None
    if candidate_digest is not None:
        canary = build_timeline(
            store, migration.app, events, candidate_digest, migration.baseline_digest, now=ensure_utc(clock())
        )
    verified = store.verify_audit() if verify_audit else None
    return MigrationView(
        id=migration.id,
        app=migration.app,
        phase=migration.phase.value,
        trigger=migration.trigger.value,
        actor=migration.actor,
        reason=migration.reason,
        dry_run=migration.dry_run,
        target=migration.target,
        flow_run_id=migration.flow_run_id,
        created_at=migration.created_at,
        updated_at=migration.updated_at,
        generated_at=ensure_utc(clock()),
        baseline=baseline,
        candidate=candidate,
        stages=_stages(moves, migration),
        moves=moves,
        assessment=_assessment(moves),
        plan=None if migration.plan is None else _plan(migration.plan),
        prepare=_prepare(store, migration.id, events),
        evaluation=evaluation,
        canary=canary,
        decision=_decision(migration, moves, events, evaluation),
        audit=[_entry(e) for e in events],
        audit_verified=None if verified is None else verified.ok,
        audit_problem=None if verified is None else verified.problem,
        audit_head_hash=None if verified is None else verified.head_hash,
    )


def _moves(events: Sequence[AuditEvent]) -> list[PhaseMove]:
    moves = []
    for e in events:
        if e.reason not in _MIGRATION_REASONS or "to" not in e.data:
            continue
        evidence = {k: v for k, v in e.data.items() if k not in ("from", "to", "stage")}
        moves.append(
            PhaseMove(
                seq=e.seq,
                at=e.occurred_at,
                from_phase=e.data.get("from"),
                to_phase=str(e.data["to"]),
                actor=e.actor,
                evidence=evidence,
            )
        )
    return moves


def _stages(moves: Sequence[PhaseMove], migration: Migration) -> list[StageView]:
    stages = []
    for name, phases in STAGES:
        entered = [i for i, m in enumerate(moves) if m.to_phase in phases]
        if not entered:
            if name != "roll back":
                stages.append(StageView(name=name, state="not reached"))
            continue
        first = entered[0]
        leave = next((i for i in range(first + 1, len(moves)) if moves[i].to_phase not in phases), None)
        if leave is None:
            state = "running" if migration.phase in phases else "done"
            stages.append(StageView(name=name, state=state, started_at=moves[first].at))
            continue
        after = moves[leave].to_phase
        state = {MigrationPhase.FAILED: "failed", MigrationPhase.CANCELLED: "cancelled"}.get(
            MigrationPhase(after), "done"
        )
        stages.append(StageView(name=name, state=state, started_at=moves[first].at, ended_at=moves[leave].at))
    return stages


def _assessment(moves: Sequence[PhaseMove]) -> dict[str, Any]:
    for move in moves:
        if move.to_phase == MigrationPhase.ASSESSING.value:
            return dict(move.evidence)
    return {}


def _model_ref(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("name"):
        version = value.get("version")
        return f"{value['name']}@{version}" if version else str(value["name"])
    return None if value is None else str(value)


def _plan(raw: dict[str, Any]) -> PlanView:
    scope: dict[str, Any] = raw["scope"] if isinstance(raw.get("scope"), dict) else {}
    canary: dict[str, Any] = raw["canary"] if isinstance(raw.get("canary"), dict) else {}
    steps = [s.get("weight") for s in canary.get("steps") or [] if isinstance(s, dict)]
    return PlanView(
        status=raw.get("status"),
        target=_model_ref(raw.get("target")),
        target_why=raw.get("target_why"),
        scope=scope.get("scope"),
        scope_reason=scope.get("reason"),
        stages=[
            PlanStage(name=str(s.get("name", "?")), runs=bool(s.get("runs")), why=str(s.get("why", "")))
            for s in raw.get("stages") or []
            if isinstance(s, dict)
        ],
        rechunk=raw.get("rechunk"),
        candidate_deployment=raw.get("candidate_deployment"),
        quota=raw.get("quota"),
        canary_steps=[int(w) for w in steps if isinstance(w, int)],
        next_steps=[str(s) for s in raw.get("next_steps") or []],
        raw=raw,
    )


def _bundle(store: Store, digest: str) -> BundleInfo:
    try:
        bundle = store.get_bundle_by_digest(digest)
    except NotFoundError:  # a digest the store no longer (or never) held: show what is known
        return BundleInfo(digest=digest)
    model: dict[str, Any] = bundle.manifest.get("model") or {}
    return BundleInfo(
        digest=digest,
        app=bundle.app,
        version=bundle.version,
        model=model.get("name"),
        model_version=None if model.get("version") is None else str(model["version"]),
        deployment=model.get("deployment"),
        status=bundle.status.value,
    )


def _candidate_digest(events: Sequence[AuditEvent]) -> str | None:
    """The candidate the migration prepared: its prepared move, else its composed event, else any move."""
    for reason in (Reason.MIGRATION_PREPARED, Reason.CANDIDATE_COMPOSED, Reason.MIGRATION_STARTED):
        for event in reversed(events):
            if event.reason == reason and event.data.get("candidate_digest"):
                return str(event.data["candidate_digest"])
    return None


def _latest(events: Sequence[AuditEvent], reason: Reason) -> AuditEvent | None:
    return next((e for e in reversed(events) if e.reason == reason), None)


def _finetune(record: FineTuneRecord) -> FineTuneView:
    return FineTuneView(
        job_id=record.job_id,
        phase=record.phase.value,
        status=record.job_status,
        base_model=record.target_model,
        fine_tuned_model=record.fine_tuned_model,
        deployment=record.deployment_name,
        hyperparameters=dict(record.hyperparameters),
        error_code=record.error_code,
        error_message=record.error_message,
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


def _prepare(store: Store, migration_id: str, events: Sequence[AuditEvent]) -> PrepareView:
    jobs = FineTuneJobStore(store, actor="report").for_migration(migration_id)
    rechunked = _latest(events, Reason.GROUNDING_RECHUNKED)
    chunking = None
    if rechunked is not None and rechunked.data.get("generation"):
        known = set(ChunkingView.model_fields)
        chunking = ChunkingView.model_validate({k: v for k, v in rechunked.data.items() if k in known})
    deployed = _latest(events, Reason.DEPLOYMENT_CREATED)
    composed = _latest(events, Reason.CANDIDATE_COMPOSED)
    deployment = None if deployed is None else dict(deployed.data)
    if deployment is None:
        prepared = _latest(events, Reason.MIGRATION_PREPARED)
        if prepared is not None and prepared.data.get("deployment"):
            # reused (not created) by this run: the prepared move names it
            deployment = {"deployment": prepared.data["deployment"], "created": False}
    return PrepareView(
        fine_tunes=[_finetune(j) for j in jobs],
        chunking=chunking,
        deployment=deployment,
        candidate=None if composed is None else dict(composed.data),
    )


def _scores(items: Sequence[ItemResult], field: str, paired: set[str] | None) -> list[float]:
    out = []
    for item in items:
        if paired is not None and item.item_id not in paired:
            continue
        value = item.value(field)
        if value is not None:
            out.append(value)
    return out


def _evaluation(store: Store, candidate_digest: str, baseline_digest: str) -> EvaluationView | None:
    record = latest_record(store, candidate_digest, baseline_digest)
    if record is None:
        return None
    items = EvaluationStore(store).items(record.id)
    report = record.report
    rows = [r for r in report.get("rows") or [] if isinstance(r, dict)]
    base_ok = {i.item_id for i in items["baseline"] if not i.failed}
    cand_ok = {i.item_id for i in items["candidate"] if not i.failed}
    both = base_ok & cand_ok
    metrics = []
    for row in rows:
        spec = METRICS.get(str(row.get("name")))
        field = spec.field if spec is not None else str(row.get("name"))
        # the gate pairs items both sides answered; error_rate is about every item both sides ran
        paired = None if field == "error" else both
        metrics.append(
            MetricComparison(
                name=str(row.get("name")),
                description="" if spec is None else spec.description,
                unit="" if spec is None else spec.unit,
                greater_is_better=bool(row.get("greater_is_better")),
                critical=bool(row.get("critical")),
                baseline=row.get("baseline"),
                candidate=row.get("candidate"),
                diff=row.get("diff"),
                ci_low=row.get("ci_low"),
                ci_high=row.get("ci_high"),
                p_value=row.get("p_value"),
                margin=row.get("margin"),
                n=int(row.get("n") or 0),
                verdict=str(row.get("verdict")),
                reason=str(row.get("reason") or ""),
                baseline_scores=_scores(items["baseline"], field, paired),
                candidate_scores=_scores(items["candidate"], field, paired),
            )
        )
    counts: dict[str, Any] = report["counts"] if isinstance(report.get("counts"), dict) else {}
    failing = [m.name for m in metrics if m.verdict == "fail"]
    unsure = [m.name for m in metrics if m.verdict == "inconclusive"]
    summary = f"gate {record.verdict.upper()}"
    if failing:
        summary += "; failing: " + ", ".join(failing)
    if unsure:
        summary += "; inconclusive: " + ", ".join(unsure)
    return EvaluationView(
        record_id=record.id,
        verdict=record.verdict,
        passed=record.passed,
        summary=summary,
        dataset_digest=record.dataset_digest,
        confidence=report.get("confidence"),
        min_items=report.get("min_items"),
        paired=counts.get("paired"),
        baseline_items=len(items["baseline"]),
        candidate_items=len(items["candidate"]),
        recorded_at=record.created_at,
        metrics=metrics,
    )


_OUTCOMES = {
    MigrationPhase.SUCCEEDED: "promoted",
    MigrationPhase.ROLLED_BACK: "rolled back",
    MigrationPhase.FAILED: "failed",
    MigrationPhase.CANCELLED: "cancelled",
    MigrationPhase.DRY_RUN_DONE: "dry run (planned only)",
}


def _decision(
    migration: Migration,
    moves: Sequence[PhaseMove],
    events: Sequence[AuditEvent],
    evaluation: EvaluationView | None,
) -> DecisionView:
    last = moves[-1] if moves else None
    ended = _latest(events, Reason.CANARY_PROMOTED) or _latest(events, Reason.CANARY_ROLLED_BACK)
    canary_verdict = None
    if ended is not None:
        canary_verdict = "successful" if ended.reason == Reason.CANARY_PROMOTED else ended.data.get("verdict")
    final = migration.phase in _OUTCOMES
    outcome = _OUTCOMES.get(migration.phase, f"in progress ({migration.phase.value})")
    if migration.phase is MigrationPhase.FAILED and evaluation is not None and not evaluation.passed:
        outcome = "rejected by the offline gate"
    reason = ""
    if ended is not None and migration.phase in (
        MigrationPhase.SUCCEEDED,
        MigrationPhase.ROLLED_BACK,
        MigrationPhase.PROMOTING,
        MigrationPhase.ROLLING_BACK,
    ):
        reason = str(ended.data.get("reason") or "")
    if not reason and last is not None:
        evidence = last.evidence
        reason = str(evidence.get("error") or evidence.get("note") or evidence.get("gate") or "")
    if not reason and evaluation is not None and migration.phase is MigrationPhase.EVALUATED:
        reason = evaluation.summary
    return DecisionView(
        outcome=outcome,
        phase=migration.phase.value,
        final=final,
        reason=reason,
        at=None if last is None else last.at,
        actor=None if last is None else last.actor,
        gate_verdict=None if evaluation is None else evaluation.verdict,
        canary_verdict=None if canary_verdict is None else str(canary_verdict),
    )


def _digests(data: dict[str, Any]) -> dict[str, str]:
    found = {k: v for k, v in data.items() if isinstance(v, str) and k.endswith("digest")}
    weights = data.get("weights")
    if isinstance(weights, dict):
        for i, (digest, weight) in enumerate(sorted(weights.items()), start=1):
            found[f"weights #{i} ({weight} %)"] = str(digest)
    return dict(sorted(found.items()))


def _entry(event: AuditEvent) -> AuditEntry:
    return AuditEntry(
        seq=event.seq,
        at=event.occurred_at,
        actor=event.actor,
        reason=event.reason,
        subject=event.subject,
        digests=_digests(event.data),
        hash=event.hash,
        prev_hash=event.prev_hash,
        data=event.data,
    )
