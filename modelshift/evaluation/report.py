"""The evaluation gate's report: one row per metric, the overall verdict, and renderings.

:class:`GateReport` is plain pydantic (``model_dump_json`` is the stored/CLI ``--json`` form);
``render_markdown`` makes the Prefect artifact table and ``render_text`` the CLI's plain-text view.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

_TABLE_FIELDS = {
    "name", "candidate", "baseline", "diff", "ci_low", "ci_high", "p_value", "margin", "n", "critical",
    "greater_is_better",
}  # fmt: skip

#: How many item ids a rendering lists before it says "and N more".
_ID_PREVIEW = 10


class Verdict(StrEnum):
    """A metric's or the gate's outcome; a gate passes only on ``pass``."""

    PASS = "pass"
    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"


class MetricRow(BaseModel):
    """One metric of the gate: both values over the paired items, the difference, its CI and the verdict.

    ``diff`` is ``candidate - baseline``; ``margin`` is the allowed worsening (>= 0, in the metric's units)
    on the bad side given by ``greater_is_better``; ``n`` is the number of pairs the metric was defined on.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    candidate: float | None
    baseline: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    margin: float | None
    greater_is_better: bool
    critical: bool
    n: int
    verdict: Verdict
    reason: str


class GateCounts(BaseModel):
    """Items behind the comparison: paired, present on one side only, failed on a side."""

    model_config = ConfigDict(frozen=True)

    paired: int
    candidate_only: list[str] = Field(default_factory=list)
    baseline_only: list[str] = Field(default_factory=list)
    failed_candidate: list[str] = Field(default_factory=list)
    failed_baseline: list[str] = Field(default_factory=list)

    @property
    def missing(self) -> int:
        """Items present on one side only (they cannot be paired)."""
        return len(self.candidate_only) + len(self.baseline_only)

    @property
    def failed(self) -> int:
        """Distinct items that failed on at least one side (excluded from pairing)."""
        return len(set(self.failed_candidate) | set(self.failed_baseline))


class GateReport(BaseModel):
    """The gate's verdict with every metric row, the item counts and the settings that reproduce it."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    rows: list[MetricRow]
    counts: GateCounts
    confidence: float
    min_items: int
    seed: int
    n_resamples: int

    @property
    def passed(self) -> bool:
        """True only when the overall verdict is pass."""
        return self.verdict is Verdict.PASS

    def failing(self) -> list[MetricRow]:
        """Every row whose verdict is fail, critical ones first (otherwise in policy order)."""
        rows = [r for r in self.rows if r.verdict is Verdict.FAIL]
        return sorted(rows, key=lambda r: not r.critical)

    def vetoes(self) -> list[MetricRow]:
        """The failing critical metrics: each alone rejects the candidate."""
        return [r for r in self.rows if r.verdict is Verdict.FAIL and r.critical]

    def inconclusive(self) -> list[MetricRow]:
        """Every row whose verdict is inconclusive."""
        return [r for r in self.rows if r.verdict is Verdict.INCONCLUSIVE]

    def summary(self) -> str:
        """One line: the verdict, the failing/inconclusive metric names and the paired item count."""
        parts = [f"gate {self.verdict.value.upper()}"]
        if failing := self.failing():
            parts.append(
                "failing: " + ", ".join(r.name + (" (critical)" if r.critical else "") for r in failing)
            )
        if unsure := self.inconclusive():
            parts.append("inconclusive: " + ", ".join(r.name for r in unsure))
        parts.append(f"{self.counts.paired} paired items at {self.confidence:.0%} confidence")
        return "; ".join(parts)

    def _count_lines(self) -> list[str]:
        c = self.counts
        lines = [f"paired items: {c.paired}"]
        for label, ids in (
            ("only in candidate", c.candidate_only),
            ("only in baseline", c.baseline_only),
            ("failed on candidate", c.failed_candidate),
            ("failed on baseline", c.failed_baseline),
        ):
            if ids:
                lines.append(f"{label}: {len(ids)} ({_preview(ids)})")
        return lines

    def table(self) -> list[dict[str, str | float | int | bool | None]]:
        """One plain dict per metric row, for a Prefect table artifact (``create_table_artifact``)."""
        return [
            {**r.model_dump(include=_TABLE_FIELDS), "verdict": r.verdict.value, "reason": r.reason}
            for r in self.rows
        ]

    def render_markdown(self) -> str:
        """A markdown report: verdict headline, one table row per metric, item counts (Prefect artifact)."""
        lines = [
            f"## Evaluation gate: **{self.verdict.value.upper()}**",
            "",
            f"{self.summary()}. Seed {self.seed}, {self.n_resamples} bootstrap resamples, "
            f"min_items {self.min_items}.",
            "",
            "| metric | candidate | baseline | diff | CI | p | margin | n | verdict | reason |",
            "|---|---:|---:|---:|---|---:|---:|---:|---|---|",
        ]
        for r in self.rows:
            name = f"{r.name} ({'higher' if r.greater_is_better else 'lower'} is better)"
            if r.critical:
                name += " **critical**"
            verdict = f"**{r.verdict.value}**" if r.verdict is not Verdict.PASS else r.verdict.value
            cells = [
                name,
                _num(r.candidate),
                _num(r.baseline),
                _num(r.diff, signed=True),
                _ci(r),
                _num(r.p_value),
                _num(r.margin),
                str(r.n),
                verdict,
                r.reason.replace("|", "\\|"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += [f"- {line}" for line in self._count_lines()]
        return "\n".join(lines) + "\n"

    def render_text(self) -> str:
        """A plain-text report for terminals (no colour or markup): a fixed-width table and the counts."""
        header = ("metric", "candidate", "baseline", "diff", "CI", "p", "margin", "n", "verdict")
        table = [header]
        for r in self.rows:
            table.append(
                (
                    r.name + (" *" if r.critical else ""),
                    _num(r.candidate),
                    _num(r.baseline),
                    _num(r.diff, signed=True),
                    _ci(r),
                    _num(r.p_value),
                    _num(r.margin),
                    str(r.n),
                    r.verdict.value.upper(),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [self.summary(), ""]
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table
        ]
        lines.append("(* critical: a failure vetoes the candidate)")
        lines.append("")
        lines += [
            f"{r.name}: {r.verdict.value} — {r.reason}" for r in self.rows if r.verdict is not Verdict.PASS
        ]
        lines += self._count_lines()
        return "\n".join(lines) + "\n"


def _preview(ids: list[str]) -> str:
    shown = ", ".join(ids[:_ID_PREVIEW])
    return shown + (f", and {len(ids) - _ID_PREVIEW} more" if len(ids) > _ID_PREVIEW else "")


def _num(value: float | None, *, signed: bool = False) -> str:
    """A compact number: 4 significant digits, '-' for None."""
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text


def _ci(row: MetricRow) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"[{_num(row.ci_low, signed=True)}, {_num(row.ci_high, signed=True)}]"
