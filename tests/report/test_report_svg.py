"""The inline SVG plots: binning, bars and points that match the data, well-formed, escaped, deterministic."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from modelshift.report import load_migration_view
from modelshift.report.svg import bin_scores, canary_timeline, score_histogram
from modelshift.report.timeline import CanaryTimeline, SideStats, TimelineWindow, WeightChange
from tests.report.conftest import Scenario

NS = {"svg": "http://www.w3.org/2000/svg"}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def _with_class(root: ET.Element, tag: str, *classes: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['svg']}}}{tag}") if set(classes) <= set(e.get("class", "").split())]


@pytest.mark.parametrize(
    ("baseline", "candidate", "labels", "base_counts", "cand_counts"),
    [
        ([], [], [], [], []),
        ([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], ["0", "1"], [1, 2], [0, 3]),  # a 0/1 metric: one bin per value
        ([5.0], [5.0], ["5"], [1], [1]),  # every score equal
        # 11 distinct values > 10 bins: equal width from 0 to 10, the maximum falls in the last bin
        ([float(i) for i in range(11)], [10.0], None, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2], [0] * 9 + [1]),
    ],
)
def test_bin_scores(
    baseline: list[float],
    candidate: list[float],
    labels: list[str] | None,
    base_counts: list[int],
    cand_counts: list[int],
) -> None:
    bins = bin_scores(baseline, candidate, bins=10)
    if labels is not None:
        assert bins.labels == labels and bins.edges is None
    else:
        assert bins.edges is not None and bins.edges[0] == 0.0 and bins.edges[-1] == 10.0
    assert (bins.baseline, bins.candidate) == (base_counts, cand_counts)
    assert sum(bins.baseline) == len(baseline) and sum(bins.candidate) == len(candidate)


def test_histogram_has_two_bars_per_bin_whose_counts_are_the_items() -> None:
    baseline = [0.1 * i for i in range(30)]
    candidate = [0.1 * i + 0.05 for i in range(30)]
    text = score_histogram("answer_f1", baseline, candidate, bins=8)
    root = _parse(text)
    base_bars = _with_class(root, "rect", "bar", "baseline")
    cand_bars = _with_class(root, "rect", "bar", "candidate")
    assert len(base_bars) == len(cand_bars) == 8
    assert sum(int(b.get("data-count", "")) for b in base_bars) == 30
    assert sum(int(b.get("data-count", "")) for b in cand_bars) == 30
    # the tallest bar fills the plot height; bar heights are proportional to counts
    heights = {int(b.get("data-count", "")): float(b.get("height", "")) for b in base_bars + cand_bars}
    top = max(heights)
    for count, height in heights.items():
        assert height == pytest.approx(heights[top] * count / top, abs=0.1)
    title = root.find("svg:title", NS)
    assert title is not None and title.text == "Per-item answer_f1: baseline vs candidate"
    assert root.get("role") == "img"
    assert "n=30, mean 1.45" in text and "n=30, mean 1.5" in text
    assert score_histogram("answer_f1", baseline, candidate, bins=8) == text  # deterministic


def test_histogram_without_scores_says_so_and_draws_no_bars() -> None:
    root = _parse(score_histogram("cost", [], []))
    assert _with_class(root, "rect", "bar") == []
    assert "no per-item scores recorded" in ET.tostring(root, encoding="unicode")


def test_histogram_escapes_the_metric_name() -> None:
    text = score_histogram('<script>"m"</script>', [1.0], [2.0], unit="&ms")
    assert "<script>" not in text
    root = _parse(text)  # still well-formed XML
    title = root.find("svg:title", NS)
    assert title is not None and title.text == 'Per-item <script>"m"</script> (&ms): baseline vs candidate'


def _window(minute: int, weight: int, canary: SideStats, baseline: SideStats) -> TimelineWindow:
    start = T0 + timedelta(minutes=minute)
    end = start + timedelta(minutes=1)
    return TimelineWindow(start=start, end=end, candidate_weight=weight, canary=canary, baseline=baseline)


def test_timeline_draws_a_point_per_window_and_side_that_served_requests() -> None:
    served = SideStats(requests=10, errors=1, error_rate=0.1, latency_p50_ms=120.0, latency_p95_ms=200.0)
    idle = SideStats()
    timeline = CanaryTimeline(
        started_at=T0,
        ended_at=T0 + timedelta(minutes=4),
        outcome="promoted",
        verdict="successful",
        weights=[
            WeightChange(at=T0, candidate_weight=10, baseline_weight=90),
            WeightChange(at=T0 + timedelta(minutes=2), candidate_weight=50, baseline_weight=50),
            WeightChange(at=T0 + timedelta(minutes=4), candidate_weight=100, baseline_weight=0),
        ],
        series=[
            _window(0, 10, served, served),
            _window(1, 10, idle, served),  # the canary served nothing in this bucket
            _window(2, 50, served, served),
        ],
    )
    text = canary_timeline(timeline)
    root = _parse(text)
    assert len(_with_class(root, "circle", "weight-point")) == 3
    assert len(_with_class(root, "circle", "point", "canary-error")) == 2
    assert len(_with_class(root, "circle", "point", "baseline-error")) == 3
    assert len(_with_class(root, "circle", "point", "canary-latency")) == 2
    assert len(_with_class(root, "circle", "point", "baseline-latency")) == 3
    [line] = _with_class(root, "path", "weight-line")
    # a step line: two vertical moves (10 -> 50 -> 100) and a horizontal run to the end
    assert line.get("d", "").count("V") == 2
    assert "12:00:00" in text and "12:04:00" in text
    assert canary_timeline(timeline) == text


def test_timeline_of_a_real_canary_matches_its_view(scenario: Callable[..., Scenario]) -> None:
    s = scenario("promoted")
    with s.store() as store:
        view = load_migration_view(store, s.built.migration_id, clock=s.clock)
    assert view.canary is not None
    root = _parse(canary_timeline(view.canary))
    assert len(_with_class(root, "circle", "weight-point")) == len(view.canary.weights) == 3
    with_canary = [w for w in view.canary.series if w.canary.error_rate is not None]
    assert len(_with_class(root, "circle", "point", "canary-error")) == len(with_canary) > 0
    assert len(_with_class(root, "path", "analysis-marker")) == len(view.canary.analyses) == 2


def test_error_rate_axis_stops_at_one_and_points_name_their_request_counts() -> None:
    failing = SideStats(requests=3, errors=3, error_rate=1.0, latency_p50_ms=None)
    fine = SideStats(requests=30, errors=0, error_rate=0.0, latency_p50_ms=90.0)
    timeline = CanaryTimeline(
        started_at=T0,
        ended_at=T0 + timedelta(minutes=1),
        outcome="rolled back",
        verdict="failed",
        weights=[WeightChange(at=T0, candidate_weight=10, baseline_weight=90)],
        series=[_window(0, 10, failing, fine)],
    )
    root = _parse(canary_timeline(timeline))
    labels = [t.text for t in root.iter(f"{{{NS['svg']}}}text")]
    assert "1" in labels and "1.1" not in labels
    [point] = _with_class(root, "circle", "point", "canary-error")
    tip = point.find("svg:title", NS)
    assert tip is not None and tip.text == "canary 12:00:00 to 12:01:00: 1 (3 requests)"
    # a failed request has no latency: the canary has no latency point in that bucket
    assert _with_class(root, "circle", "point", "canary-latency") == []
