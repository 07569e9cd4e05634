"""The migration plan: target, scope, the stages that run and why, the side-by-side deployment, quota and
canary schedule. Built from an :class:`Assessment`; changing nothing (DESIGN §2: a dry run stops here)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelshift.grounding.policy import DEFAULT_PROMPT_BUDGET, RechunkDecision, decide_rechunk
from modelshift.lifecycle.assess import Assessment
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.lifecycle.catalog import find_catalog_entry
from modelshift.lifecycle.families import FamilyTable
from modelshift.lifecycle.modelinfo import model_facts
from modelshift.lifecycle.scope import ChangeScope, ModelPoint, ScopeDecision, at_least, classify_scope
from modelshift.platforms.base import CatalogModel, ModelRef, QuotaUsage, VersionUpgradeOption

StageName = Literal["fine_tune", "rechunk", "prompt_variant", "evaluate", "canary"]
_MAX_DEPLOYMENT_NAME = 64


class Stage(BaseModel):
    """One stage of the migration DAG: whether it runs, and why."""

    model_config = ConfigDict(frozen=True)

    name: StageName
    runs: bool
    why: str


class Baseline(BaseModel):
    """The production bundle the migration starts from."""

    model_config = ConfigDict(frozen=True)

    app: str
    version: str
    digest: str
    model: ModelRef
    fine_tuned_model: str | None = None
    deployment: str | None = None
    account: str | None = None
    location: str | None = None
    sku_name: str | None = None
    capacity: int | None = None


class CandidateDeployment(BaseModel):
    """The side-by-side deployment a migration would create (never auto-upgraded)."""

    model_config = ConfigDict(frozen=True)

    name: str
    account: str | None
    location: str | None
    model: ModelRef
    model_note: str | None = None
    sku_name: str
    capacity: int
    version_upgrade_option: VersionUpgradeOption = VersionUpgradeOption.NO_AUTO_UPGRADE


class QuotaCheck(BaseModel):
    """Whether the candidate's capacity fits the location's quota line next to the baseline."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "blocked", "unknown"]
    usage_name: str
    needed: int
    limit: float | None = None
    current: float | None = None
    available: float | None = None
    message: str


class CanaryStepPlan(BaseModel):
    """One traffic step and the evidence it waits for."""

    model_config = ConfigDict(frozen=True)

    weight: int
    min_requests: int
    min_duration_seconds: int


class CanarySchedule(BaseModel):
    """The bundle's canary policy as a schedule."""

    model_config = ConfigDict(frozen=True)

    steps: list[CanaryStepPlan]
    approval_required: bool
    on_inconclusive: str
    max_step_extensions: int
    min_total_seconds: int


class MigrationPlan(BaseModel):
    """Everything a migration of one app would do, and why; JSON-serialisable, rendered by ``render_text``."""

    model_config = ConfigDict(frozen=True)

    app: str
    status: Literal["ready", "blocked", "no_target"]
    baseline: Baseline
    assessment: Assessment
    target: ModelRef | None = None
    target_why: str | None = None
    scope: ScopeDecision | None = None
    stages: list[Stage] = Field(default_factory=list)
    rechunk: RechunkDecision | None = None
    candidate_deployment: CandidateDeployment | None = None
    quota: QuotaCheck | None = None
    canary: CanarySchedule
    next_steps: list[str] = Field(default_factory=list)

    def stage(self, name: StageName) -> Stage:
        """The stage called ``name``."""
        return next(s for s in self.stages if s.name == name)

    def render_text(self) -> str:
        """The plan as plain text for a terminal or a Prefect markdown artifact."""
        b = self.baseline
        lines = [
            f"Migration plan for {self.app}  [{self.status}]",
            f"  baseline  {b.app}@{b.version} ({b.digest[:19]}…) on {b.model}"
            + (f" (fine-tuned: {b.fine_tuned_model})" if b.fine_tuned_model else ""),
            f"  status    {self.assessment.status.value}"
            + (
                f", retires {self.assessment.retirement.date().isoformat()} "
                f"({self.assessment.days_left} days)"
                if self.assessment.retirement
                else ""
            ),
        ]
        if self.target is not None:
            lines.append(f"  target    {self.target} — {self.target_why}")
        if self.scope is not None:
            lines.append(f"  scope     {self.scope.scope.value} — {self.scope.reason}")
        lines.append("  stages")
        for stage in self.stages:
            mark = "run " if stage.runs else "skip"
            lines.append(f"    [{mark}] {stage.name:<15} {stage.why}")
        if self.rechunk is not None and self.rechunk.runs and self.rechunk.chunk_tokens is not None:
            lines.append(
                f"  re-chunk  {self.rechunk.tokenizer_to}, {self.rechunk.chunk_tokens} tokens, "
                f"overlap {self.rechunk.overlap_tokens}"
            )
        if self.rechunk is not None and self.rechunk.how:
            # the chunk policy with its numbers, exactly as the re-chunk applies it
            lines.append("  chunking  " + "\n            ".join(self.rechunk.how.split("\n")))
        if self.candidate_deployment is not None:
            c = self.candidate_deployment
            lines.append(
                f"  deploy    {c.name} in {c.account} ({c.location}): {c.model}"
                + (f" [{c.model_note}]" if c.model_note else "")
                + f", {c.sku_name} x {c.capacity}, {c.version_upgrade_option.value}"
            )
        if self.quota is not None:
            lines.append(f"  quota     [{self.quota.status}] {self.quota.message}")
        steps = ", ".join(f"{s.weight}%" for s in self.canary.steps)
        lines.append(
            f"  canary    {steps}; >= {self.canary.steps[0].min_requests} requests and "
            f"{self.canary.steps[0].min_duration_seconds}s per step"
            + ("; approval required" if self.canary.approval_required else "")
            + f"; inconclusive -> {self.canary.on_inconclusive}"
        )
        for step in self.next_steps:
            lines.append(f"  next      {step}")
        return "\n".join(lines)


def candidate_deployment_name(app: str, target: ModelRef) -> str:
    """``<app>-<model>-<version>``, ARM-safe and at most 64 characters (a hash keeps long names unique)."""
    raw = f"{app}-{target.name}-{target.version or 'default'}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.")
    if len(name) > _MAX_DEPLOYMENT_NAME:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_DEPLOYMENT_NAME - 9].rstrip('-.')}-{digest}"
    return name


def quota_usage_name(entry: CatalogModel | None, target: ModelRef, sku_name: str, fine_tuned: bool) -> str:
    """The quota line a deployment of ``target`` with ``sku_name`` draws from (catalog ``usageName`` when
    given; fine-tuned deployments draw from ``<format>.<sku>.<base>-finetune``)."""
    sku = entry.sku(sku_name) if entry is not None else None
    if sku is not None and sku.usage_name and not fine_tuned:
        return sku.usage_name
    prefix = "OpenAI" if (target.format or "OpenAI") == "OpenAI" else "AIServices"
    return f"{prefix}.{sku.name if sku else sku_name}.{target.name}{'-finetune' if fine_tuned else ''}"


def check_quota(
    usage_name: str, needed: int, usages: Sequence[QuotaUsage] | None, location: str | None
) -> QuotaCheck:
    """``limit - currentValue >= capacity`` on the quota line, else blocked with the numbers and next step."""
    if usages is None:
        return QuotaCheck(
            status="unknown",
            usage_name=usage_name,
            needed=needed,
            message=f"quota of {location} was not read (recorded input without usages); check {usage_name} "
            "before migrating: `az cognitiveservices usage list -l LOCATION`",
        )
    line = next((u for u in usages if u.name.lower() == usage_name.lower()), None)
    if line is None:
        return QuotaCheck(
            status="unknown",
            usage_name=usage_name,
            needed=needed,
            message=f"location {location} reports no quota line {usage_name}; check that the model "
            "and SKU are offered there",
        )
    available = line.limit - line.current_value
    if available >= needed:
        return QuotaCheck(
            status="ok",
            usage_name=usage_name,
            needed=needed,
            limit=line.limit,
            current=line.current_value,
            available=available,
            message=f"{usage_name}: {available:g} of {line.limit:g} free, {needed} needed",
        )
    return QuotaCheck(
        status="blocked",
        usage_name=usage_name,
        needed=needed,
        limit=line.limit,
        current=line.current_value,
        available=available,
        message=f"{usage_name} in {location}: limit {line.limit:g}, in use {line.current_value:g}, free "
        f"{available:g}, but the side-by-side deployment needs {needed}; request more quota for {usage_name} "
        "or free capacity in that location, then plan again",
    )


def _canary(bundle: BundleRef) -> CanarySchedule:
    c = bundle.manifest.canary
    steps = [
        CanaryStepPlan(
            weight=w, min_requests=c.min_requests_per_step, min_duration_seconds=c.step_duration_seconds
        )
        for w in c.steps
    ]
    return CanarySchedule(
        steps=steps,
        approval_required=c.approval_required,
        on_inconclusive=c.on_inconclusive,
        max_step_extensions=c.max_step_extensions,
        min_total_seconds=c.step_duration_seconds * len(steps),
    )


def _override_for(bundle: BundleRef, target_name: str) -> str | None:
    matches = [f for f in bundle.manifest.prompts.overrides if target_name.startswith(f)]
    return max(matches, key=len) if matches else None


def build_plan(
    bundle: BundleRef,
    assessment: Assessment,
    catalog: Sequence[CatalogModel],
    usages: Sequence[QuotaUsage] | None,
    families: FamilyTable,
    *,
    prompt_budget: int = DEFAULT_PROMPT_BUDGET,
) -> MigrationPlan:
    """The plan for moving ``bundle`` to the first-ranked target of ``assessment`` (pure)."""
    m = bundle.manifest.model
    baseline = Baseline(
        app=bundle.app,
        version=bundle.version,
        digest=bundle.digest,
        model=bundle.model,
        fine_tuned_model=bundle.fine_tuned_model,
        deployment=m.deployment,
        account=m.account,
        location=m.location,
        sku_name=assessment.sku_name or (m.sku.name if m.sku else None),
        capacity=assessment.capacity or (m.sku.capacity if m.sku else None),
    )
    canary = _canary(bundle)
    candidate = assessment.target
    if candidate is None:
        why = (
            "; ".join(f"{r.model}: {r.why}" for r in assessment.rejected_targets) or "the catalog offers none"
        )
        return MigrationPlan(
            app=bundle.app,
            status="no_target",
            baseline=baseline,
            assessment=assessment,
            canary=canary,
            next_steps=[
                f"no target candidate ({why}); name one with "
                f"`modelshift plan {bundle.app} --target NAME@VERSION`"
            ],
        )
    target = candidate.model
    scope = classify_scope(
        ModelPoint(name=bundle.model.name, version=bundle.model.version, platform=bundle.platform),
        ModelPoint(name=target.name, version=target.version, platform=bundle.platform),
        families,
    )
    base_entry = find_catalog_entry(catalog, bundle.model.name, bundle.model.version)
    target_entry = find_catalog_entry(catalog, target.name, target.version)
    base_facts = model_facts(bundle.model.name, bundle.model.version, base_entry)
    target_facts = model_facts(target.name, target.version, target_entry)
    rechunk = decide_rechunk(
        bundle.manifest.retrieval,
        bundle.manifest.parameters.max_tokens,
        baseline_window=base_facts.context_window,
        target_window=target_facts.context_window,
        target_tokenizer=target_facts.tokenizer,
        prompt_budget=prompt_budget,
    )
    stages = [_fine_tune_stage(bundle, target), Stage(name="rechunk", runs=rechunk.runs, why=rechunk.why)]
    stages.append(_prompt_stage(bundle, target, scope))
    stages.append(
        Stage(
            name="evaluate",
            runs=True,
            why="always: the candidate must match the baseline on the same golden data",
        )
    )
    stages.append(
        Stage(name="canary", runs=True, why="always: live traffic moves in steps with analysis at each")
    )
    sku_name = baseline.sku_name or "Standard"
    capacity = baseline.capacity or 1
    deployment = CandidateDeployment(
        name=candidate_deployment_name(bundle.app, target),
        account=m.account,
        location=m.location,
        model=target,
        model_note=f"the fine-tune of {target} from the re-run" if bundle.fine_tuned else None,
        sku_name=sku_name,
        capacity=capacity,
    )
    usage = quota_usage_name(target_entry, target, sku_name, bundle.fine_tuned)
    quota = check_quota(usage, capacity, usages, m.location)
    next_steps: list[str] = []
    status: Literal["ready", "blocked"] = "ready"
    if quota.status == "blocked":
        status = "blocked"
        next_steps.append(quota.message)
    if rechunk.runs and rechunk.chunk_tokens is None:
        # the target's window cannot hold the retrieved chunks next to the prompt: no candidate can work
        status = "blocked"
        next_steps.append(rechunk.why)
    if not candidate.in_catalog:
        next_steps.append(f"{target} is not in the catalog of {m.location}; check the name and version")
    return MigrationPlan(
        app=bundle.app,
        status=status,
        baseline=baseline,
        assessment=assessment,
        target=target,
        target_why=candidate.why,
        scope=scope,
        stages=stages,
        rechunk=rechunk,
        candidate_deployment=deployment,
        quota=quota,
        canary=canary,
        next_steps=next_steps,
    )


def _fine_tune_stage(bundle: BundleRef, target: ModelRef) -> Stage:
    if not bundle.fine_tuned:
        return Stage(name="fine_tune", runs=False, why="the bundle is not fine-tuned")
    return Stage(
        name="fine_tune",
        runs=True,
        why=f"the bundle is fine-tuned on {bundle.model}; a fine-tune must be re-run on {target} "
        "with the same data and hyperparameters before use",
    )


def _prompt_stage(bundle: BundleRef, target: ModelRef, scope: ScopeDecision) -> Stage:
    family = _override_for(bundle, target.name)
    if family is not None:
        return Stage(
            name="prompt_variant",
            runs=True,
            why=f"the bundle has a prompt override for family {family!r}, which {target.name} belongs to",
        )
    if at_least(scope.scope, ChangeScope.INTERMEDIATE):
        return Stage(
            name="prompt_variant",
            runs=True,
            why=f"scope {scope.scope.value} is intermediate or wider; the bundle has no override for "
            f"{target.name}, so add prompts.overrides for it or the default prompts are evaluated "
            "as they are",
        )
    return Stage(
        name="prompt_variant",
        runs=False,
        why=f"scope {scope.scope.value} keeps the prompts and the bundle has no override for {target.name}",
    )
