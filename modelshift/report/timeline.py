"""The canary timeline of a migration: weight steps over time, with canary vs baseline error rate and latency.

Weights come from the migration's ``router.updated`` audit events, the analyses from its
``canary.analysis`` events, and the per-window numbers from the gateway's request records
(``request_metrics``, read once for the whole canary and counted the way
:func:`modelshift.gateway.metrics.observe` counts them): per weight step (the window a weight was in force)
and per equal time bucket over the whole canary (the series the plot draws).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from modelshift.audit import AuditEvent, Reason
from modelshift.clock import ensure_utc
from modelshift.gateway.metrics import DigestWindow, RequestMetricRow
from modelshift.store import Store
from modelshift.store.engine import run_read

#: most time buckets the canary's series is cut into (empty buckets are left out)
DEFAULT_BUCKETS = 24
#: canary requests a bucket should hold on average: fewer buckets for a thin canary, so a point is a rate
MIN_PER_BUCKET = 10


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SideStats(_View):
    """One bundle's requests in a window: counts, error rate and latency of the successful requests."""

    requests: int = 0
    errors: int = 0
    error_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class TimelineWindow(_View):
    """A window of the canary: the candidate's weight in force, and what each side served in it."""

    start: datetime
    end: datetime
    candidate_weight: int
    canary: SideStats
    baseline: SideStats


class WeightChange(_View):
    """A router write of the migration: the candidate's share from ``at`` on."""

    at: datetime
    candidate_weight: int
    baseline_weight: int
    revision: int | None = None
    why: str = ""
    actor: str = ""


class AnalysisMetric(_View):
    """One metric of a live analysis (as the controller audited it)."""

    name: str
    verdict: str
    canary: float | None = None
    baseline: float | None = None
    difference: float | None = None
    p_value: float | None = None
    n_canary: int = 0
    n_baseline: int = 0
    reason: str = ""


class AnalysisPoint(_View):
    """One live analysis: when, at which step, its verdict and every metric."""

    at: datetime
    step: int | None = None
    verdict: str
    reason: str = ""
    metrics: list[AnalysisMetric] = Field(default_factory=list)


class CanaryTimeline(_View):
    """The canary from its first weight to its end: weights, per-step windows, a time series, analyses."""

    started_at: datetime
    ended_at: datetime
    outcome: str
    verdict: str | None = None
    reason: str = ""
    weights: list[WeightChange] = Field(default_factory=list)
    steps: list[TimelineWindow] = Field(default_factory=list)
    series: list[TimelineWindow] = Field(default_factory=list)
    analyses: list[AnalysisPoint] = Field(default_factory=list)


def side_stats(window: DigestWindow | None) -> SideStats:
    """The report's numbers for one side of a window (all None when it served nothing)."""
    if window is None or window.requests == 0:
        return SideStats()
    p50 = p95 = None
    if window.latencies_ms:
        values = np.asarray(window.latencies_ms, dtype=float)
        p50, p95 = float(np.quantile(values, 0.5)), float(np.quantile(values, 0.95))
    return SideStats(
        requests=window.requests,
        errors=window.errors,
        error_rate=window.error_rate,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )


def _weights(events: Sequence[AuditEvent], candidate: str, baseline: str) -> list[WeightChange]:
    changes = []
    for e in events:
        weights = e.data.get("weights")
        if e.reason != Reason.ROUTER_UPDATED or not isinstance(weights, dict):
            continue
        changes.append(
            WeightChange(
                at=e.occurred_at,
                candidate_weight=int(weights.get(candidate, 0)),
                baseline_weight=int(weights.get(baseline, 0)),
                revision=e.data.get("revision"),
                why=str(e.data.get("why") or ""),
                actor=e.actor,
            )
        )
    first = next((i for i, c in enumerate(changes) if c.candidate_weight > 0), None)
    if first is None:
        return []
    # lease renewals and the promotion rewrite the same split: keep only real changes of the weight
    kept = [changes[first]]
    for change in changes[first + 1 :]:
        if change.candidate_weight != kept[-1].candidate_weight:
            kept.append(change)
    return kept


def _analysis(event: AuditEvent) -> AnalysisPoint:
    known = set(AnalysisMetric.model_fields)
    metrics = [
        AnalysisMetric.model_validate({k: v for k, v in m.items() if k in known})
        for m in event.data.get("metrics") or []
        if isinstance(m, dict)
    ]
    step = event.data.get("step")
    return AnalysisPoint(
        at=event.occurred_at,
        step=step if isinstance(step, int) else None,
        verdict=str(event.data.get("verdict")),
        reason=str(event.data.get("reason") or ""),
        metrics=metrics,
    )


class _Request(NamedTuple):
    started_at: datetime
    digest: str
    status: int
    error_class: str | None
    latency_ms: float


def _requests(
    store: Store, app: str, digests: Sequence[str], since: datetime, until: datetime
) -> list[_Request]:
    """The bundles' request records in ``[since, until)``, oldest first: one query for the whole canary."""
    query = (
        select(
            RequestMetricRow.started_at,
            RequestMetricRow.bundle_digest,
            RequestMetricRow.status,
            RequestMetricRow.error_class,
            RequestMetricRow.latency_ms,
        )
        .where(
            RequestMetricRow.app == app,
            RequestMetricRow.bundle_digest.in_(list(digests)),
            RequestMetricRow.started_at >= since,
            RequestMetricRow.started_at < until,
        )
        .order_by(RequestMetricRow.started_at, RequestMetricRow.request_id)
    )
    rows = run_read(store.engine, lambda s: list(s.execute(query)), url=store.engine.url)
    return [_Request(ensure_utc(r[0]), str(r[1]), int(r[2]), r[3], float(r[4])) for r in rows]


def _fold(requests: Sequence[_Request], digest: str) -> DigestWindow:
    """One digest's window, counted as :func:`modelshift.gateway.metrics.observe` counts: an error is a status
    >= 400 or an error class; latency only of successful requests (a fast failure is not a fast answer)."""
    window = DigestWindow(digest)
    for r in requests:
        if r.digest != digest:
            continue
        window.requests += 1
        if r.status >= 400 or r.error_class:
            window.errors += 1
        else:
            window.latencies_ms.append(r.latency_ms)
    return window


class _Requests:
    """The canary's request records, sliced by time."""

    def __init__(self, requests: list[_Request], candidate: str, baseline: str) -> None:
        self.requests = requests
        self.times = [r.started_at for r in requests]
        self.candidate = candidate
        self.baseline = baseline

    def window(self, start: datetime, end: datetime, weight: int) -> TimelineWindow:
        """What each side served in ``[start, end)``."""
        part = self.requests[bisect_left(self.times, start) : bisect_left(self.times, end)]
        return TimelineWindow(
            start=start,
            end=end,
            candidate_weight=weight,
            canary=side_stats(_fold(part, self.candidate)),
            baseline=side_stats(_fold(part, self.baseline)),
        )


def _weight_at(weights: Sequence[WeightChange], at: datetime) -> int:
    current = 0
    for change in weights:
        if change.at <= at:
            current = change.candidate_weight
    return current


def build_timeline(
    store: Store,
    app: str,
    events: Sequence[AuditEvent],
    candidate: str,
    baseline: str,
    *,
    now: datetime,
    buckets: int = DEFAULT_BUCKETS,
) -> CanaryTimeline | None:
    """The canary timeline from a migration's audit ``events``; None when the candidate never got traffic.

    A canary still running ends at ``now``. The series has up to ``buckets`` equal time buckets, fewer when
    the canary served under ``MIN_PER_BUCKET`` requests per bucket. Request records the gateway pruned leave
    their windows empty.
    """
    weights = _weights(events, candidate, baseline)
    if not weights:
        return None
    started = weights[0].at
    end_event = next(
        (e for e in reversed(events) if e.reason in (Reason.CANARY_PROMOTED, Reason.CANARY_ROLLED_BACK)),
        None,
    )
    data: dict[str, Any] = {} if end_event is None else end_event.data
    if end_event is None:
        ended, outcome, verdict = max(now, started), "running", None
    elif end_event.reason == Reason.CANARY_PROMOTED:
        ended, outcome, verdict = end_event.occurred_at, "promoted", "successful"
    else:
        ended, outcome = end_event.occurred_at, "rolled back"
        verdict = None if data.get("verdict") is None else str(data["verdict"])
    served = _Requests(_requests(store, app, (candidate, baseline), started, ended), candidate, baseline)
    steps = []
    for i, change in enumerate(weights):
        start = change.at
        end = weights[i + 1].at if i + 1 < len(weights) else ended
        end = min(end, ended)
        if end > start:
            steps.append(served.window(start, end, change.candidate_weight))
    series = []
    span = ended - started
    count = max(1, min(buckets, sum(w.canary.requests for w in steps) // MIN_PER_BUCKET))
    if span.total_seconds() > 0 and buckets > 0:
        width = span / count
        for b in range(count):
            start = started + width * b
            end = ended if b == count - 1 else started + width * (b + 1)
            window = served.window(start, end, _weight_at(weights, start))
            if window.canary.requests or window.baseline.requests:
                series.append(window)
    return CanaryTimeline(
        started_at=started,
        ended_at=ended,
        outcome=outcome,
        verdict=verdict,
        reason=str(data.get("reason") or ""),
        weights=weights,
        steps=steps,
        series=series,
        analyses=[_analysis(e) for e in events if e.reason == Reason.CANARY_ANALYSIS],
    )
