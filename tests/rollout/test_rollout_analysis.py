"""Live analysis: each metric's pass / fail / inconclusive / error rows with boundary counts."""

from __future__ import annotations

import json
import math

import pytest
from rollout_helpers import BASELINE, CANDIDATE, observation, spread

from modelshift.rollout import AnalysisPolicy, MetricVerdict, Observation, Verdict, analyse

POLICY = AnalysisPolicy(min_requests=50, min_samples=20)


def _metric(metrics: list[MetricVerdict], name: str) -> MetricVerdict:
    return next(m for m in metrics if m.name == name)


@pytest.mark.parametrize(
    ("canary", "baseline", "expected"),
    [
        pytest.param((1, 200), (1, 200), Verdict.SUCCESSFUL, id="equal-rates"),
        pytest.param((0, 200), (0, 200), Verdict.SUCCESSFUL, id="zero-errors-both-fisher"),
        pytest.param((20, 200), (2, 200), Verdict.FAILED, id="10pct-vs-1pct"),
        pytest.param((3, 200), (0, 200), Verdict.SUCCESSFUL, id="few-errors-not-significant"),
        pytest.param((12, 200), (0, 200), Verdict.FAILED, id="rare-events-fisher-significant"),
        # significant but within the 1-point tolerance: the effect size rule keeps it passing
        pytest.param((1100, 100_000), (1000, 100_000), Verdict.SUCCESSFUL, id="significant-within-tolerance"),
        pytest.param((2, 50), (1, 50), Verdict.SUCCESSFUL, id="beyond-tolerance-not-significant"),
        pytest.param((0, 200), (20, 200), Verdict.SUCCESSFUL, id="canary-better"),
        pytest.param((0, 49), (0, 200), Verdict.INCONCLUSIVE, id="canary-49-below-min"),
        pytest.param((0, 50), (0, 200), Verdict.SUCCESSFUL, id="canary-50-at-min"),
        pytest.param((0, 200), (0, 49), Verdict.INCONCLUSIVE, id="baseline-49-below-min"),
        pytest.param((0, 0), (0, 0), Verdict.INCONCLUSIVE, id="no-data-at-all"),
        pytest.param((0, 50), (0, 0), Verdict.ERROR, id="no-baseline-traffic"),
        pytest.param((0, 0), (0, 50), Verdict.ERROR, id="no-canary-traffic"),
        pytest.param((0, 49), (0, 0), Verdict.INCONCLUSIVE, id="one-side-empty-other-below-min"),
        pytest.param((5, 4), (0, 200), Verdict.ERROR, id="more-errors-than-requests"),
        pytest.param((-1, 200), (0, 200), Verdict.ERROR, id="negative-count"),
    ],
)
def test_error_rate(canary: tuple[int, int], baseline: tuple[int, int], expected: Verdict) -> None:
    c = Observation(digest=CANDIDATE, errors=canary[0], requests=canary[1])
    b = Observation(digest=BASELINE, errors=baseline[0], requests=baseline[1])
    metric = _metric(analyse(c, b, POLICY).metrics, "error_rate")
    assert metric.verdict is expected, metric.reason
    assert metric.n_canary == canary[1] and metric.n_baseline == baseline[1]
    if expected in (Verdict.SUCCESSFUL, Verdict.FAILED):
        assert metric.p_value is not None and 0 <= metric.p_value <= 1
        assert metric.difference == pytest.approx(canary[0] / canary[1] - baseline[0] / baseline[1])


NAN = float("nan")


@pytest.mark.parametrize(
    ("name", "canary", "baseline", "expected"),
    [
        pytest.param("latency", spread(100, 20, 40), spread(100, 20, 40), Verdict.SUCCESSFUL, id="lat-same"),
        pytest.param(
            "latency", spread(150, 20, 40), spread(100, 20, 40), Verdict.FAILED, id="lat-50pct-slower"
        ),
        # 5 % slower and (with tight, many samples) significant, but within the 10 % tolerance
        pytest.param(
            "latency", spread(105, 1, 200), spread(100, 1, 200), Verdict.SUCCESSFUL, id="lat-within-tol"
        ),
        # 30 % slower median but too spread out to be significant
        pytest.param(
            "latency",
            [*spread(1, 1, 10), *spread(500, 1, 10)],
            [*spread(1, 1, 11), *spread(500, 1, 9)],
            Verdict.SUCCESSFUL,
            id="lat-slower-not-significant",
        ),
        pytest.param("latency", spread(50, 10, 40), spread(100, 20, 40), Verdict.SUCCESSFUL, id="lat-faster"),
        pytest.param("latency", spread(150, 20, 19), spread(100, 20, 40), Verdict.INCONCLUSIVE, id="lat-19"),
        pytest.param("latency", spread(150, 20, 20), spread(100, 20, 20), Verdict.FAILED, id="lat-20-at-min"),
        pytest.param(
            "latency", [*spread(100, 20, 39), NAN], spread(100, 20, 40), Verdict.ERROR, id="lat-nan"
        ),
        pytest.param(
            "latency", [-1.0, *spread(100, 20, 39)], spread(100, 20, 40), Verdict.ERROR, id="lat-neg"
        ),
        pytest.param("latency", spread(100, 20, 20), [], Verdict.ERROR, id="lat-no-baseline-samples"),
        pytest.param("latency", [], [], Verdict.INCONCLUSIVE, id="lat-no-samples"),
        pytest.param("latency", [100.0] * 30, [100.0] * 30, Verdict.SUCCESSFUL, id="lat-all-ties"),
        pytest.param(
            "tokens_per_request", spread(300, 60, 40), spread(300, 60, 40), Verdict.SUCCESSFUL, id="tok-same"
        ),
        pytest.param(
            "tokens_per_request", spread(600, 60, 40), spread(300, 60, 40), Verdict.FAILED, id="tok-double"
        ),
        pytest.param(
            "tokens_per_request", spread(300, 60, 5), spread(300, 60, 40), Verdict.INCONCLUSIVE, id="tok-5"
        ),
        pytest.param("tokens_per_request", [math.inf] * 20, spread(300, 60, 40), Verdict.ERROR, id="tok-inf"),
    ],
)
def test_sample_metrics(name: str, canary: list[float], baseline: list[float], expected: Verdict) -> None:
    field = "latencies_ms" if name == "latency" else "tokens_per_request"
    c = Observation(digest=CANDIDATE, requests=200, **{field: canary})
    b = Observation(digest=BASELINE, requests=200, **{field: baseline})
    metric = _metric(analyse(c, b, POLICY).metrics, name)
    assert metric.verdict is expected, metric.reason
    assert metric.counted


@pytest.mark.parametrize(
    ("canary", "baseline", "required", "expected", "counted"),
    [
        pytest.param((40, 10), (45, 5), False, Verdict.SUCCESSFUL, True, id="similar"),
        pytest.param((20, 30), (45, 5), False, Verdict.FAILED, True, id="many-more-downvotes"),
        pytest.param((10, 9), (45, 5), False, Verdict.INCONCLUSIVE, False, id="19-votes-not-required"),
        pytest.param((10, 9), (45, 5), True, Verdict.INCONCLUSIVE, True, id="19-votes-required"),
        pytest.param((16, 4), (45, 5), False, Verdict.SUCCESSFUL, True, id="20-votes-at-min"),
        pytest.param((0, 0), (0, 0), False, Verdict.INCONCLUSIVE, False, id="no-feedback"),
        pytest.param((0, 0), (45, 5), True, Verdict.ERROR, True, id="required-no-canary-votes"),
        pytest.param((-1, 30), (45, 5), False, Verdict.ERROR, True, id="negative-votes"),
    ],
)
def test_negative_feedback(
    canary: tuple[int, int], baseline: tuple[int, int], required: bool, expected: Verdict, counted: bool
) -> None:
    policy = POLICY.model_copy(update={"require_feedback": required})
    c = Observation(digest=CANDIDATE, feedback_up=canary[0], feedback_down=canary[1])
    b = Observation(digest=BASELINE, feedback_up=baseline[0], feedback_down=baseline[1])
    metric = _metric(analyse(c, b, policy).metrics, "negative_feedback")
    assert (metric.verdict, metric.counted) == (expected, counted), metric.reason


@pytest.mark.parametrize(
    ("canary", "baseline", "expected", "counted"),
    [
        pytest.param(spread(0.8, 0.1, 30), spread(0.8, 0.1, 30), Verdict.SUCCESSFUL, True, id="same"),
        pytest.param(
            spread(0.5, 0.1, 30), spread(0.8, 0.1, 30), Verdict.FAILED, True, id="lower-beyond-margin"
        ),
        # lower by 0.03 (significant with tight scores) but within the 0.05 margin
        pytest.param(
            spread(0.77, 0.01, 100), spread(0.8, 0.01, 100), Verdict.SUCCESSFUL, True, id="within-margin"
        ),
        pytest.param(spread(0.9, 0.1, 30), spread(0.5, 0.1, 30), Verdict.SUCCESSFUL, True, id="higher"),
        pytest.param(spread(0.5, 0.1, 9), spread(0.8, 0.1, 30), Verdict.INCONCLUSIVE, False, id="9-samples"),
        pytest.param(spread(0.5, 0.1, 10), spread(0.8, 0.1, 10), Verdict.FAILED, True, id="10-at-min"),
        pytest.param([NAN] * 10, spread(0.8, 0.1, 30), Verdict.ERROR, True, id="nan-scores"),
    ],
)
def test_online_quality(canary: list[float], baseline: list[float], expected: Verdict, counted: bool) -> None:
    c = Observation(digest=CANDIDATE, quality_scores=canary)
    b = Observation(digest=BASELINE, quality_scores=baseline)
    metric = _metric(analyse(c, b, POLICY).metrics, "online_quality")
    assert (metric.verdict, metric.counted) == (expected, counted), metric.reason


@pytest.mark.parametrize(
    ("canary", "baseline", "expected", "in_reason"),
    [
        pytest.param({}, {}, Verdict.SUCCESSFUL, "all 3 counted metrics pass", id="good"),
        pytest.param({"errors": 30}, {}, Verdict.FAILED, "error_rate", id="errors"),
        pytest.param({"latency": 200.0}, {}, Verdict.FAILED, "latency", id="slow"),
        pytest.param({"requests": 10}, {}, Verdict.INCONCLUSIVE, "need 50", id="few-requests"),
        pytest.param({}, {"samples": 0}, Verdict.ERROR, "no baseline samples", id="no-baseline-samples"),
        pytest.param(
            {"down": 30, "up": 20}, {"down": 5, "up": 45}, Verdict.FAILED, "negative_feedback", id="feedback"
        ),
    ],
)
def test_analyse_reduces_worst_wins(
    canary: dict[str, object], baseline: dict[str, object], expected: Verdict, in_reason: str
) -> None:
    result = analyse(observation(CANDIDATE, **canary), observation(BASELINE, **baseline), POLICY)  # type: ignore[arg-type]
    assert result.verdict is expected, result.reason
    assert in_reason in result.reason
    assert result.reason.startswith(f"{expected}:")
    assert [m.name for m in result.metrics] == [
        "error_rate",
        "latency",
        "tokens_per_request",
        "negative_feedback",
        "online_quality",
    ]


def test_failed_beats_error_on_latency_when_baseline_has_no_samples() -> None:
    # the failed-beats-error row above: latency cannot be compared (error) but errors were measured worse
    c = observation(CANDIDATE, errors=40)
    b = observation(BASELINE, samples=0)
    result = analyse(c, b, POLICY)
    verdicts = {m.name: m.verdict for m in result.metrics}
    assert verdicts["error_rate"] is Verdict.FAILED
    assert verdicts["latency"] is Verdict.ERROR
    assert result.verdict is Verdict.FAILED


def test_result_is_plain_json_even_with_nan_samples() -> None:
    c = Observation(digest=CANDIDATE, requests=100, latencies_ms=[NAN] * 30, quality_scores=[NAN] * 12)
    result = analyse(c, observation(BASELINE), POLICY)
    json.dumps(result.model_dump(mode="json"), allow_nan=False)
    assert result.verdict is Verdict.ERROR


def test_higher_confidence_needs_stronger_evidence() -> None:
    # 9 vs 1 errors in 200: significant at 95 % (one-sided) but not at 99.9 %
    c = observation(CANDIDATE, errors=9)
    b = observation(BASELINE, errors=1)
    assert analyse(c, b, POLICY).verdict is Verdict.FAILED
    strict = POLICY.model_copy(update={"confidence": 0.999})
    assert analyse(c, b, strict).verdict is Verdict.SUCCESSFUL
