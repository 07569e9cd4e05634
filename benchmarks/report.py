"""Migration-report benchmark: gather and render the report of a promoted migration of a given size.

Run: ``python benchmarks/report.py [--items 2000] [--requests-per-window 20000]``

Builds the report tests' promoted migration (``tests/report/report_helpers.py``: real store, real gate, the
real canary controller over inserted gateway request records) with ``--items`` golden items per side and
``--requests-per-window`` requests per canary window (two windows), in a temporary SQLite store, then times
``load_migration_view`` and ``render_html`` (best of three) and prints the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from modelshift.report import load_migration_view, render_html
from modelshift.store import Store
from tests.gateway.gateway_helpers import MovableClock
from tests.report import report_helpers


def main() -> None:
    """Build, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--requests-per-window", type=int, default=20000)
    args = parser.parse_args()
    report_helpers.ITEMS = args.items
    report_helpers.PER_WINDOW = args.requests_per_window
    with tempfile.TemporaryDirectory() as tmp:
        root, clock = Path(tmp), MovableClock()
        with Store.open(f"sqlite:///{root / 'state.db'}", clock=clock) as store:
            built = report_helpers.build(store, clock, root, "promoted")
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                view = load_migration_view(store, built.migration_id, clock=clock)
                loaded = time.perf_counter()
                page = render_html(view)
                timings.append((loaded - start, time.perf_counter() - loaded))
    load, render = min(timings)
    print(
        f"items per side {args.items}, canary requests {sum(built.requests.values())}, "
        f"audit events {len(view.audit)}: load_migration_view {load * 1000:.0f} ms, "
        f"render_html {render * 1000:.0f} ms, HTML {len(page) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
