"""The ``modelshift`` command line (DESIGN §7): typer + rich, ``--json`` where it prints results.

Exit codes: 0 success, 1 a failed gate or verdict (or a failed check such as ``audit verify``), 2 bad input.
"""

from __future__ import annotations

import typer

from modelshift.cli import audit as audit_cmds
from modelshift.cli import bundle as bundle_cmds
from modelshift.cli import chunk as chunk_cmds
from modelshift.cli import dashboard as dashboard_cmds
from modelshift.cli import demo as demo_cmds
from modelshift.cli import emulator as emulator_cmds
from modelshift.cli import eval as eval_cmds
from modelshift.cli import gateway as gateway_cmds
from modelshift.cli import migrate as migrate_cmds
from modelshift.cli import notices as notices_cmds
from modelshift.cli import report as report_cmds
from modelshift.cli import rollout as rollout_cmds
from modelshift.cli import scan as scan_cmds

app = typer.Typer(
    name="modelshift",
    help="Upgrade automation for foundation models: retire, re-tune, re-chunk, evaluate, canary, promote.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(bundle_cmds.app, name="bundle")
app.add_typer(audit_cmds.app, name="audit")
app.add_typer(notices_cmds.app, name="notices")
demo_cmds.register(app)
emulator_cmds.register(app)
scan_cmds.register(app)
migrate_cmds.register(app)
chunk_cmds.register(app)
eval_cmds.register(app)
gateway_cmds.register(app)
rollout_cmds.register(app)
report_cmds.register(app)
dashboard_cmds.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
