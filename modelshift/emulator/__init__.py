"""The modelshift local Azure emulator (an EMULATOR, never Azure): ARM + Azure OpenAI data-plane subset.

``serve(host, port, scenario_path)`` runs it; ``shell_exports(...)`` prints the exports that point
modelshift at it; ``modelshift.emulator.testing.running_emulator`` runs it inside tests.
"""

from __future__ import annotations

from modelshift.emulator.server import serve, shell_exports

__all__ = ["serve", "shell_exports"]
