"""From recorded requests to decisions: gateway windows -> ObservationPair -> decide, on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rollout_helpers import BASELINE, CANDIDATE, T0, at

from modelshift.bundle.manifest import Canary
from modelshift.gateway.metrics import DigestWindow, RequestRecord, insert_records, observe, set_feedback
from modelshift.rollout import (
    ApprovalInput,
    Observation,
    RollBack,
    RolloutSpec,
    RolloutStatus,
    SetWeights,
    Verdict,
    decide,
)
from modelshift.rollout.window import observation_from_window, pair_from_windows
from modelshift.store import Store

SPEC = RolloutSpec.from_canary(
    app="support-chat",
    baseline_digest=BASELINE,
    candidate_digest=CANDIDATE,
    canary=Canary(min_requests_per_step=40, step_duration_seconds=60),
)


def test_window_becomes_an_observation() -> None:
    window = DigestWindow(
        CANDIDATE,
        requests=5,
        errors=1,
        latencies_ms=[10.0, 12.0, 11.0, 13.0],
        prompt_tokens=[100, 100, 90, 80],
        completion_tokens=[20, 30, 10, 0],
        feedback=[1.0, 0.0, 0.49, 0.5],
    )
    obs = observation_from_window(window, quality_scores=[0.9, 0.7])
    assert obs == Observation(
        digest=CANDIDATE,
        requests=5,
        errors=1,
        latencies_ms=[10.0, 12.0, 11.0, 13.0],
        tokens_per_request=[120.0, 130.0, 100.0, 80.0],
        feedback_up=2,  # 1.0 and 0.5
        feedback_down=2,  # 0.0 and 0.49: below one half counts as a thumbs-down
        quality_scores=[0.9, 0.7],
    )


def test_pair_takes_the_spec_digests_and_fills_a_silent_side() -> None:
    other = "sha256:" + "f" * 64
    windows = {CANDIDATE: DigestWindow(CANDIDATE, requests=3), other: DigestWindow(other, requests=99)}
    yes = ApprovalInput(decision="approve", approver="ana")
    result = pair_from_windows(SPEC, windows, quality_scores={BASELINE: [0.8]}, approval=yes)
    assert result.canary is not None and result.canary.requests == 3
    assert result.baseline == Observation(digest=BASELINE, quality_scores=[0.8])  # served nothing
    assert result.approval == yes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def _record(i: int, digest: str, *, failed: bool, latency: float) -> RequestRecord:
    return RequestRecord(
        request_id=f"{digest[7:9]}-{i:05d}",
        app="support-chat",
        bundle_digest=digest,
        started_at=at(1 + i * 0.1),
        latency_ms=latency + (i % 17),
        status=502 if failed else 200,
        error_class="TransientPlatformError" if failed else None,
        prompt_tokens=0 if failed else 300 + i % 11,
        completion_tokens=0 if failed else 40,
    )


@pytest.mark.parametrize(
    ("canary_error_every", "canary_latency", "expected"),
    [
        pytest.param(None, 100.0, None, id="good-candidate-advances"),
        pytest.param(5, 100.0, "error_rate", id="errors-rolled-back"),
        pytest.param(None, 200.0, "latency", id="slow-rolled-back"),
    ],
)
def test_recorded_requests_drive_the_decision(
    store: Store, canary_error_every: int | None, canary_latency: float, expected: str | None
) -> None:
    first = decide(SPEC, RolloutStatus(), None, T0)
    status = first.status
    assert status.window_start == T0
    records = [_record(i, BASELINE, failed=False, latency=100.0) for i in range(120)]
    records += [
        _record(
            i,
            CANDIDATE,
            failed=canary_error_every is not None and i % canary_error_every == 0,
            latency=canary_latency,
        )
        for i in range(60)
    ]
    insert_records(store, records)
    assert set_feedback(store, "support-chat", records[0].request_id, 1.0, at(30))
    now = at(30)
    windows = observe(store, "support-chat", status.window_start or T0, now)
    decision = decide(SPEC, status, pair_from_windows(SPEC, windows), now)
    if expected is None:
        assert decision.status.history[-2].verdict is Verdict.SUCCESSFUL
        assert (
            SetWeights(weights={CANDIDATE: 25, BASELINE: 75}, lease_until=now + timedelta(seconds=300))
            in decision.actions
        )
    else:
        rollback = next(a for a in decision.actions if isinstance(a, RollBack))
        assert rollback.verdict is Verdict.FAILED and rollback.reason.startswith(f"failed: {expected}")
