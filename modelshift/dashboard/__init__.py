"""The fleet dashboard: one page with every app's model lifecycle, migrations and live canaries, and its API.

``modelshift dashboard`` serves it (:mod:`.server`); :mod:`.app` is the ASGI app, :mod:`.fleet` the table,
:mod:`.migration` one migration's page, :mod:`.actions` what an operator does, :mod:`.auth` who may.
"""

from __future__ import annotations

from modelshift.dashboard.app import Dashboard, create_app
from modelshift.dashboard.server import open_dashboard, running_dashboard

__all__ = ["Dashboard", "create_app", "open_dashboard", "running_dashboard"]
