"""The scope of a model change, in the eight terms of the Azure Well-Architected article (DESIGN §2).

``classify_scope`` compares where a bundle runs now with where it would run after the change, using the
family table (:mod:`modelshift.lifecycle.families`). The scope decides the plan: a change of
``intermediate`` width or wider gets the target family's prompt variant (see :data:`SCOPE_WIDTH`).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from modelshift.lifecycle.families import Family, FamilyTable


class ChangeScope(StrEnum):
    """How far a change reaches, from a new version of the same model to another way of hosting it."""

    MINOR_VERSION = "minor_version"
    INTERMEDIATE = "intermediate"
    MAJOR = "major"
    VARIANT = "variant"
    GENERATIONAL = "generational"
    GENERAL_MODEL_CHANGE = "general_model_change"
    SPECIALIZED_MODEL_CHANGE = "specialized_model_change"
    DEPLOYMENT_OPTION_CHANGE = "deployment_option_change"


#: How much of the workload a scope can disturb, narrowest first. A deployment-option change keeps the model,
#: so it sits just above a minor version; any change of model at least ``intermediate`` wide asks for the
#: target family's prompts (the seed: prompts are designed for one model version).
SCOPE_WIDTH: dict[ChangeScope, int] = {
    ChangeScope.MINOR_VERSION: 0,
    ChangeScope.DEPLOYMENT_OPTION_CHANGE: 1,
    ChangeScope.INTERMEDIATE: 2,
    ChangeScope.VARIANT: 3,
    ChangeScope.GENERATIONAL: 4,
    ChangeScope.MAJOR: 5,
    ChangeScope.SPECIALIZED_MODEL_CHANGE: 6,
    ChangeScope.GENERAL_MODEL_CHANGE: 7,
}


def at_least(scope: ChangeScope, floor: ChangeScope) -> bool:
    """True when ``scope`` is as wide as ``floor`` or wider."""
    return SCOPE_WIDTH[scope] >= SCOPE_WIDTH[floor]


class ModelPoint(BaseModel):
    """One side of a change: the model name and version, and the bundle platform that hosts it."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str | None = None
    platform: str = "azure-openai"


class ScopeDecision(BaseModel):
    """The scope, the families on each side and why; ``platform_changed`` is kept even when the model
    change is the wider of the two."""

    model_config = ConfigDict(frozen=True)

    scope: ChangeScope
    reason: str
    from_family: str | None
    to_family: str | None
    platform_changed: bool


def _model_scope(a: Family, b: Family, families: FamilyTable) -> tuple[ChangeScope, str]:
    if b.kind == "specialized" and a.kind != "specialized":
        return ChangeScope.SPECIALIZED_MODEL_CHANGE, f"{b.name} is a specialized ({b.line}) model"
    if a.provider != b.provider:
        return ChangeScope.GENERAL_MODEL_CHANGE, f"provider changes from {a.provider} to {b.provider}"
    if a.kind == "specialized" and b.kind != "specialized":
        return ChangeScope.GENERAL_MODEL_CHANGE, f"{a.name} is specialized, {b.name} is a general model"
    if a.root == b.root:
        return ChangeScope.VARIANT, f"{a.name} and {b.name} are variants of {a.root}"
    # a variant of a successor is still generational (gpt-4 -> gpt-4o-mini), so compare the roots
    b_root = families.get(b.root) or b
    if b_root.successor_of == a.root:
        return ChangeScope.GENERATIONAL, f"{b.root} is the generation after {a.root}"
    if a.line != b.line:
        return ChangeScope.GENERAL_MODEL_CHANGE, f"model line changes from {a.line} to {b.line}"
    if a.major != b.major:
        return ChangeScope.MAJOR, f"major version changes from {a.line}-{a.major} to {b.line}-{b.major}"
    return ChangeScope.INTERMEDIATE, f"{a.line} {a.generation} -> {b.generation} within major {a.major}"


def classify_scope(current: ModelPoint, target: ModelPoint, families: FamilyTable) -> ScopeDecision:
    """The scope of moving from ``current`` to ``target`` (pure; names unknown to the table are a general
    model change, the widest scope, so the plan runs every stage)."""
    platform_changed = current.platform != target.platform
    a, b = families.family_of(current.name), families.family_of(target.name)
    fam_a, fam_b = (a.name if a else None), (b.name if b else None)
    same_model = current.name.lower().split(".ft-", 1)[0] == target.name.lower().split(".ft-", 1)[0]
    if a is None or b is None:
        unknown = current.name if a is None else target.name
        return ScopeDecision(
            scope=ChangeScope.GENERAL_MODEL_CHANGE,
            reason=f"model {unknown!r} is in no family of the table; add it in MODELSHIFT_FAMILIES_FILE "
            "(treated as a general model change, so every stage runs)",
            from_family=fam_a,
            to_family=fam_b,
            platform_changed=platform_changed,
        )
    if a.name == b.name:
        if platform_changed:
            reason = f"hosting moves from {current.platform} to {target.platform}"
            if not (same_model and current.version == target.version):
                reason += f" (and {current.name}@{current.version} -> {target.name}@{target.version})"
            return ScopeDecision(
                scope=ChangeScope.DEPLOYMENT_OPTION_CHANGE,
                reason=reason,
                from_family=fam_a,
                to_family=fam_b,
                platform_changed=True,
            )
        return ScopeDecision(
            scope=ChangeScope.MINOR_VERSION,
            reason=f"new version of the same model family {a.name} ({current.version} -> {target.version})",
            from_family=fam_a,
            to_family=fam_b,
            platform_changed=False,
        )
    scope, reason = _model_scope(a, b, families)
    if platform_changed:
        reason += f"; hosting also moves from {current.platform} to {target.platform}"
    return ScopeDecision(
        scope=scope, reason=reason, from_family=fam_a, to_family=fam_b, platform_changed=platform_changed
    )
