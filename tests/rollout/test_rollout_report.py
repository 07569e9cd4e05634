"""Markdown renderings: every metric with its values and rule, every finished step of a rollout."""

from __future__ import annotations

from rollout_helpers import BASELINE, CANDIDATE, T0, at, observation, pair

from modelshift.bundle.manifest import Canary
from modelshift.rollout import AnalysisPolicy, Observation, RolloutSpec, RolloutStatus, analyse, decide
from modelshift.rollout.report import analysis_markdown, rollout_markdown


def test_analysis_markdown_shows_values_rules_and_uncounted_metrics() -> None:
    result = analyse(observation(CANDIDATE, errors=30), observation(BASELINE), AnalysisPolicy())
    text = analysis_markdown(result)
    assert text.startswith("**Verdict: failed** - failed: error_rate")
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| error_rate",
        "| latency",
        "| tokens_per_request",
        "| negative_feedback",
        "| online_quality",
    ]
    assert "| failed | 0.15 | 0 | 0.15 |" in rows[0]
    assert "200 / 200" in rows[0] and "fails when canary - baseline > 0.01" in rows[0]
    assert "inconclusive (not counted)" in rows[3] and "| - | - | - | - |" in rows[3]


def test_analysis_markdown_escapes_pipes_and_has_no_nan() -> None:
    nan = float("nan")
    result = analyse(
        Observation(digest=CANDIDATE, requests=100, latencies_ms=[nan] * 30),
        observation(BASELINE),
        AnalysisPolicy(),
    )
    text = analysis_markdown(result)
    for line in [text.splitlines()[2], *text.splitlines()[4:]]:
        cells = line.strip("| ").split(" | ")
        assert len(cells) == 8, line  # no stray pipe split a cell
        assert "nan" not in [c.lower() for c in cells[2:6]]  # values that could not be computed show "-"
    assert "| latency | error | - | - | - | - | 30 / 200 |" in text


def test_rollout_markdown_lists_the_steps_and_the_outcome() -> None:
    spec = RolloutSpec.from_canary(
        app="support-chat",
        baseline_digest=BASELINE,
        candidate_digest=CANDIDATE,
        canary=Canary(steps=[5, 100]),
    )
    fresh = rollout_markdown(spec, RolloutStatus())
    assert "phase **pending**, step 1 of 3" in fresh and "weights: not set yet" in fresh
    status = decide(spec, RolloutStatus(), None, T0).status
    done = decide(spec, status, pair(canary={"latency": 300.0}), at(30)).status
    text = rollout_markdown(spec, done)
    assert "phase **rolling_back**, step 2 of 3" in text
    assert f"{BASELINE}: 100 %" in text and f"{CANDIDATE}: 0 %" in text
    assert "- outcome: failed: failed: latency" in text
    assert "| 1 | set_weight | - | - | 2026-03-01T12:00:00+00:00 | - |" in text
    promoted = decide(spec, status, pair(), at(30)).status
    assert "phase **promoting**, step 3 of 3" in rollout_markdown(spec, promoted)
    assert "| 2 | analysis | successful |" in rollout_markdown(spec, promoted)


def test_rollout_markdown_escapes_pipes_in_a_person_reason() -> None:
    from modelshift.rollout import ApprovalInput, ObservationPair

    spec = RolloutSpec.from_canary(
        app="support-chat",
        baseline_digest=BASELINE,
        candidate_digest=CANDIDATE,
        canary=Canary(steps=[100], approval_required=True),
    )
    asked = decide(spec, RolloutStatus(), None, T0).status
    yes = ObservationPair(approval=ApprovalInput(decision="approve", approver="ana", reason="ok | ship"))
    text = rollout_markdown(spec, decide(spec, asked, yes, at(5)).status)
    assert "| 1 | approval | - | ana | 2026-03-01T12:00:05+00:00 | ok \\| ship |" in text
