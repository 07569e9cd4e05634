"""Inline SVG plots for the migration report: pure functions of the data, deterministic text out.

No JavaScript, no external fonts or styles: each function returns one ``<svg>`` element with a ``<title>``
(and ``role="img"``) for screen readers, axes with labels, and a legend. Every text that comes from data is
XML-escaped here, so the result can be inlined into an autoescaped template as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from modelshift.report.timeline import CanaryTimeline, SideStats, TimelineWindow

BASELINE_COLOUR = "#6b7280"
CANDIDATE_COLOUR = "#2563eb"
CANARY_COLOUR = "#ea580c"
WEIGHT_COLOUR = "#2563eb"
_FONT = 'font-family="system-ui, sans-serif"'


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _c(value: float) -> str:
    """A coordinate: one decimal, so the same input always gives the same bytes."""
    return f"{value:.1f}"


def _n(value: float) -> str:
    """A number label: three significant digits."""
    return f"{value:.3g}"


def _open(width: int, height: int, title: str, key: str) -> list[str]:
    ident = f"svg-{_slug(key)}"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-title" class="plot">',
        f'<title id="{ident}-title">{_e(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-") or "plot"


def _text(x: float, y: float, text: object, *, size: int = 10, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{_c(x)}" y="{_c(y)}" font-size="{size}" text-anchor="{anchor}" {_FONT}{klass}>'
        f"{_e(text)}</text>"
    )


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> list[str]:
    out = ['<g class="legend">']
    for label, colour in entries:
        out.append(f'<rect x="{_c(x)}" y="{_c(y - 8)}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, y + 1, label))
        x += 14 + 6.2 * len(label) + 16
    out.append("</g>")
    return out


# --------------------------------------------------------------------------------------------- histograms


@dataclass(frozen=True)
class Bins:
    """How per-item scores are binned: labels per bin and the counts of each side."""

    labels: list[str]
    baseline: list[int]
    candidate: list[int]
    #: the bin edges of equal-width bins (None when each bin is one distinct value)
    edges: list[float] | None = None


def bin_scores(baseline: Sequence[float], candidate: Sequence[float], *, bins: int = 10) -> Bins:
    """Shared bins for both sides: one per distinct value when there are at most ``bins`` of them (0/1
    metrics, small integers), else ``bins`` equal-width bins from the smallest to the largest score."""
    values = [*baseline, *candidate]
    if not values:
        return Bins([], [], [])
    distinct = sorted(set(values))
    if len(distinct) <= bins:
        index = {v: i for i, v in enumerate(distinct)}
        base = [0] * len(distinct)
        cand = [0] * len(distinct)
        for v in baseline:
            base[index[v]] += 1
        for v in candidate:
            cand[index[v]] += 1
        return Bins([_n(v) for v in distinct], base, cand)
    lo, hi = distinct[0], distinct[-1]
    step = (hi - lo) / bins

    def where(v: float) -> int:
        return min(int((v - lo) / step), bins - 1)

    base = [0] * bins
    cand = [0] * bins
    for v in baseline:
        base[where(v)] += 1
    for v in candidate:
        cand[where(v)] += 1
    edges = [lo + step * i for i in range(bins + 1)]
    labels = [f"{_n(edges[i])} to {_n(edges[i + 1])}" for i in range(bins)]
    return Bins(labels, base, cand, edges)


def score_histogram(
    metric: str,
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    unit: str = "",
    bins: int = 10,
    width: int = 440,
    height: int = 250,
) -> str:
    """Side-by-side histograms of one metric's per-item scores, baseline vs candidate, as one ``<svg>``.

    Two bars per bin (``rect.bar.baseline`` and ``rect.bar.candidate``, each with its count in
    ``data-count`` and a tooltip); the legend gives each side's item count and mean.
    """
    left, right, top, bottom = 44.0, 12.0, 30.0, 52.0
    pw, ph = width - left - right, height - top - bottom
    x0, y0 = left, top + ph
    label = f"{metric} ({unit})" if unit else metric
    title = f"Per-item {label}: baseline vs candidate"
    out = _open(width, height, title, f"hist-{metric}")
    out += _legend(left, 14, [(_side_label("baseline", baseline), BASELINE_COLOUR)])
    out += _legend(left + pw / 2, 14, [(_side_label("candidate", candidate), CANDIDATE_COLOUR)])
    out.append(f'<line x1="{_c(x0)}" y1="{_c(y0)}" x2="{_c(x0 + pw)}" y2="{_c(y0)}" stroke="#111827"/>')
    out.append(f'<line x1="{_c(x0)}" y1="{_c(top)}" x2="{_c(x0)}" y2="{_c(y0)}" stroke="#111827"/>')
    binned = bin_scores(baseline, candidate, bins=bins)
    if not binned.labels:
        out.append(_text(x0 + pw / 2, top + ph / 2, "no per-item scores recorded", anchor="middle"))
        out.append("</svg>")
        return "\n".join(out)
    ymax = max(max(binned.baseline), max(binned.candidate), 1)
    out.append(_text(x0 - 4, top + 4, ymax, anchor="end"))
    out.append(_text(x0 - 4, y0, 0, anchor="end"))
    out.append(_text(12, top + ph / 2, "items", anchor="middle", size=10, cls="axis-label"))
    group = pw / len(binned.labels)
    bar = group * 0.4
    for i, text in enumerate(binned.labels):
        gx = x0 + group * i + group * 0.1
        for side, counts, colour, dx in (
            ("baseline", binned.baseline, BASELINE_COLOUR, 0.0),
            ("candidate", binned.candidate, CANDIDATE_COLOUR, bar),
        ):
            h = counts[i] / ymax * ph
            out.append(
                f'<rect class="bar {side}" data-bin="{i}" data-count="{counts[i]}" x="{_c(gx + dx)}" '
                f'y="{_c(y0 - h)}" width="{_c(bar)}" height="{_c(h)}" fill="{colour}">'
                f"<title>{_e(side)}: {counts[i]} item(s) at {_e(text)}</title></rect>"
            )
        if binned.edges is None:
            out.append(_text(gx + bar, y0 + 12, text, size=9, anchor="middle"))
    if binned.edges is not None:
        # equal-width bins: label the edges (every other one when crowded); tooltips give each range
        every = 1 if len(binned.edges) <= 6 else 2
        for i, edge in enumerate(binned.edges):
            if i % every == 0 or i == len(binned.edges) - 1:
                out.append(_text(x0 + group * i, y0 + 12, _n(edge), size=9, anchor="middle"))
    out.append(_text(x0 + pw / 2, height - 8, label, anchor="middle", cls="axis-label"))
    out.append("</svg>")
    return "\n".join(out)


def _side_label(side: str, values: Sequence[float]) -> str:
    if not values:
        return f"{side} (no items)"
    return f"{side} (n={len(values)}, mean {_n(sum(values) / len(values))})"


# ------------------------------------------------------------------------------------------------ timeline


def _hms(value: datetime) -> str:
    return value.strftime("%H:%M:%S")


def _mid(window: TimelineWindow) -> datetime:
    return window.start + (window.end - window.start) / 2


def canary_timeline(timeline: CanaryTimeline, *, width: int = 760) -> str:
    """The canary as one ``<svg>`` of three panels over a shared time axis (UTC): the candidate's weight as
    a step line (``path.weight-line``, a ``circle.weight-point`` per change), then the error rate and the
    median latency of canary and baseline per time bucket (``circle.point.canary-error`` and so on), with
    a marker per live analysis (``path.analysis-marker``)."""
    left, right, top = 64.0, 40.0, 48.0
    panel, gap, bottom = 92.0, 34.0, 40.0
    height = int(top + 3 * panel + 2 * gap + bottom)
    pw = width - left - right
    start, end = timeline.started_at, timeline.ended_at
    span = max((end - start).total_seconds(), 1e-9)

    def x(at: datetime) -> float:
        return left + min(max((at - start).total_seconds() / span, 0.0), 1.0) * pw

    title = f"Canary timeline ({timeline.outcome}): candidate weight, error rate and median latency"
    out = _open(width, height, title, "canary-timeline")
    out += _legend(
        left,
        14,
        [("candidate weight %", WEIGHT_COLOUR), ("canary", CANARY_COLOUR), ("baseline", BASELINE_COLOUR)],
    )
    tops = [top + i * (panel + gap) for i in range(3)]
    out += _weight_panel(timeline, x, tops[0], panel, left, pw)
    out += _series_panel(timeline.series, x, tops[1], panel, left, pw, "error rate", "error", _error_rate)
    out += _series_panel(timeline.series, x, tops[2], panel, left, pw, "p50 latency (ms)", "latency", _p50)
    for a in timeline.analyses:
        ax = x(a.at)
        out.append(
            f'<path class="analysis-marker" d="M{_c(ax)},{_c(tops[0] - 2)} l-4,-7 h8 z" fill="#111827">'
            f"<title>analysis at {_hms(a.at)}: {_e(a.verdict)}</title></path>"
        )
    axis_y = tops[2] + panel
    for i in range(5):
        at = start + (end - start) * (i / 4)
        out.append(_text(x(at), axis_y + 14, _hms(at), size=9, anchor="middle"))
    out.append(_text(left + pw / 2, axis_y + 32, "time (UTC)", anchor="middle", cls="axis-label"))
    out.append("</svg>")
    return "\n".join(out)


def _frame(top: float, h: float, left: float, pw: float, label: str, ymax: float, fmt: str) -> list[str]:
    y0 = top + h
    return [
        f'<line x1="{_c(left)}" y1="{_c(y0)}" x2="{_c(left + pw)}" y2="{_c(y0)}" stroke="#111827"/>',
        f'<line x1="{_c(left)}" y1="{_c(top)}" x2="{_c(left)}" y2="{_c(y0)}" stroke="#111827"/>',
        _text(left - 4, top + 4, fmt.format(ymax), size=9, anchor="end"),
        _text(left - 4, y0, fmt.format(0), size=9, anchor="end"),
        _text(left, top - 6, label, size=10, cls="axis-label"),
    ]


def _weight_panel(
    timeline: CanaryTimeline, x: Callable[[datetime], float], top: float, h: float, left: float, pw: float
) -> list[str]:
    out = _frame(top, h, left, pw, "candidate weight (%)", 100, "{:.0f}")

    def y(weight: int) -> float:
        return top + h - weight / 100 * h

    changes = timeline.weights
    d = [f"M{_c(x(changes[0].at))},{_c(y(changes[0].candidate_weight))}"]
    for change in changes[1:]:
        d.append(f"H{_c(x(change.at))}")
        d.append(f"V{_c(y(change.candidate_weight))}")
    d.append(f"H{_c(x(timeline.ended_at))}")
    out.append(
        f'<path class="weight-line" d="{" ".join(d)}" fill="none" stroke="{WEIGHT_COLOUR}" stroke-width="2"/>'
    )
    for change in changes:
        out.append(
            f'<circle class="weight-point" cx="{_c(x(change.at))}" cy="{_c(y(change.candidate_weight))}" '
            f'r="3" fill="{WEIGHT_COLOUR}"><title>{_hms(change.at)}: {change.candidate_weight} %</title>'
            "</circle>"
        )
    return out


def _error_rate(stats: SideStats) -> float | None:
    return stats.error_rate


def _p50(stats: SideStats) -> float | None:
    return stats.latency_p50_ms


def _series_panel(
    series: Sequence[TimelineWindow],
    x: Callable[[datetime], float],
    top: float,
    h: float,
    left: float,
    pw: float,
    label: str,
    key: str,
    value: Callable[[SideStats], float | None],
) -> list[str]:
    values = [v for w in series for v in (value(w.canary), value(w.baseline)) if v is not None]
    ymax = max(values, default=0.0)
    ymax = ymax * 1.1 if ymax > 0 else (0.01 if key == "error" else 1.0)
    if key == "error":
        ymax = min(ymax, 1.0)  # a rate: the axis never runs past 100 %
    out = _frame(top, h, left, pw, label, ymax, "{:.3g}")
    if not values:
        out.append(_text(left + pw / 2, top + h / 2, "no request records in this window", anchor="middle"))
        return out
    for side, colour in (("canary", CANARY_COLOUR), ("baseline", BASELINE_COLOUR)):
        points = []
        for w in series:
            v = value(getattr(w, side))
            if v is not None:
                points.append((x(_mid(w)), top + h - v / ymax * h, v, w))
        if not points:
            continue
        coords = " ".join(f"{_c(px)},{_c(py)}" for px, py, _, _ in points)
        out.append(
            f'<polyline class="series {side}-{key}" points="{coords}" fill="none" stroke="{colour}" '
            'stroke-width="1.5"/>'
        )
        for px, py, v, w in points:
            out.append(
                f'<circle class="point {side}-{key}" cx="{_c(px)}" cy="{_c(py)}" r="2.5" fill="{colour}">'
                f"<title>{side} {_hms(w.start)} to {_hms(w.end)}: {_n(v)} "
                f"({getattr(w, side).requests} requests)</title></circle>"
            )
    return out
