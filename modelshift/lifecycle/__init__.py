"""Model lifecycle: assess production bundles against the catalog, classify the change scope, plan migrations,
and scan a whole fleet from live ARM or recordings (DESIGN §2, Assess).

Pure functions (:func:`assess`, :func:`classify_scope`, :func:`build_plan`, :func:`scan_fleet`) take values
and an ``as_of`` date; :func:`fetch_live` and :func:`load_recordings` produce the :class:`FleetSnapshot`.
"""

from __future__ import annotations

from modelshift.grounding.policy import RechunkDecision, decide_rechunk
from modelshift.lifecycle.arm_reader import AsyncArmReader
from modelshift.lifecycle.assess import Assessment, AssessmentStatus, Finding, Risk, assess
from modelshift.lifecycle.bundleref import BundleRef
from modelshift.lifecycle.families import Family, FamilyTable, load_families
from modelshift.lifecycle.modelinfo import ModelFacts, model_facts
from modelshift.lifecycle.plan import MigrationPlan, Stage, build_plan, candidate_deployment_name
from modelshift.lifecycle.scan import (
    DEFAULT_HORIZON_DAYS,
    ScanReport,
    assess_bundle,
    parse_target,
    plan_migration,
    scan_fleet,
)
from modelshift.lifecycle.scope import ChangeScope, ModelPoint, ScopeDecision, classify_scope
from modelshift.lifecycle.sources import FleetSnapshot, fetch_live, load_recordings
from modelshift.lifecycle.targets import RejectedTarget, TargetCandidate

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "Assessment",
    "AssessmentStatus",
    "AsyncArmReader",
    "BundleRef",
    "ChangeScope",
    "Family",
    "FamilyTable",
    "Finding",
    "FleetSnapshot",
    "MigrationPlan",
    "ModelFacts",
    "ModelPoint",
    "RechunkDecision",
    "RejectedTarget",
    "Risk",
    "ScanReport",
    "ScopeDecision",
    "Stage",
    "TargetCandidate",
    "assess",
    "assess_bundle",
    "build_plan",
    "candidate_deployment_name",
    "classify_scope",
    "decide_rechunk",
    "fetch_live",
    "load_families",
    "load_recordings",
    "model_facts",
    "parse_target",
    "plan_migration",
    "scan_fleet",
]
