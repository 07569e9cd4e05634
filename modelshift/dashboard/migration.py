"""One migration's page and ``GET /api/migrations/{id}``: the report's view, drawn with the report's plots.

The data is :class:`modelshift.report.MigrationView` (stages with timings, the gate table, the canary
timeline, the decision, the audit trail) and the plots are :mod:`modelshift.report.svg`'s, so the dashboard
and the HTML report can never tell two stories about the same migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from modelshift.clock import Clock
from modelshift.migration import ACTIVE, MigrationPhase
from modelshift.report import MigrationView, load_migration_view, svg
from modelshift.report.html import report_path
from modelshift.store import Store


@dataclass(frozen=True)
class MigrationPage:
    """The view and its plots as inline SVG (marked safe: the report's SVG escapes every text it draws)."""

    view: MigrationView
    timeline: Markup | None
    histograms: list[tuple[str, Markup]]
    report_file: Path

    @property
    def active(self) -> bool:
        """True while the migration is in flight (the page then refreshes itself)."""
        return MigrationPhase(self.view.phase) in ACTIVE

    @property
    def report_available(self) -> bool:
        """True once ``modelshift report`` has written this migration's HTML report."""
        return self.report_file.is_file()


def load_page(store: Store, migration_id: str, *, home: Path, clock: Clock) -> MigrationPage:
    """The page of ``migration_id`` (NotFoundError naming it when the store has no such migration)."""
    view = load_migration_view(store, migration_id, clock=clock)
    histograms = []
    if view.evaluation is not None:
        histograms = [
            (m.name, Markup(svg.score_histogram(m.name, m.baseline_scores, m.candidate_scores, unit=m.unit)))
            for m in view.evaluation.metrics
        ]
    timeline = None if view.canary is None else Markup(svg.canary_timeline(view.canary))
    return MigrationPage(
        view=view, timeline=timeline, histograms=histograms, report_file=report_path(home, migration_id)
    )
