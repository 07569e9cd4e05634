"""The dashboard and the migration report in headless Chromium (Debian's ``chromium``, installed by
``scripts/chromium.sh``): the fleet page, a finished and a running migration page, and the HTML report each
load, show what they should after their JavaScript ran, and render their SVG plots; screenshots are saved
under ``test-artifacts/dashboard/`` (and checked not to be blank).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelshift.dashboard import open_dashboard, running_dashboard
from modelshift.report import load_migration_view, write_report
from modelshift.report.html import report_path
from modelshift.settings import Settings
from modelshift.store import Store
from tests.dashboard.conftest import Fleet

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; installed from Debian's packages when missing, else this module is skipped."""
    try:
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "chromium.sh")], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"chromium could not be installed: {exc}")
    if done.returncode != 0:
        pytest.skip(f"chromium could not be installed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


class Browser:
    """Headless Chromium runs with a throw-away profile."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *_FLAGS, f"--user-data-dir={self.profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)

    def dom(self, url: str, budget_ms: int = 4000) -> str:
        """The DOM after the page's scripts ran for ``budget_ms`` of virtual time."""
        return self._run(f"--virtual-time-budget={budget_ms}", "--dump-dom", url).stdout

    def screenshot(self, url: str, name: str) -> Path:
        """A 1400x1100 PNG of ``url``, saved as ``test-artifacts/dashboard/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / f"{name}.png"
        target.unlink(missing_ok=True)
        self._run("--window-size=1400,1100", "--virtual-time-budget=2000", f"--screenshot={target}", url)
        assert target.is_file(), f"no screenshot of {url}"
        return target


def _colours(png: Path) -> int:
    """How many distinct colours a PNG (8-bit RGB or RGBA, as Chromium writes them) has."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    seen: set[bytes] = set()
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        if row % 4 == 0:  # every fourth row is plenty to tell a page from a blank one
            seen.update(bytes(line[i : i + 3]) for i in range(0, stride, channels * 2))
        previous = line
    return len(seen)


@pytest.fixture
def site(settings: Settings, fleet: Fleet, tmp_path: Path) -> Iterator[str]:
    """The dashboard over the test fleet (refreshing every 0.5 s), with one migration's report written."""
    with Store.open(settings.resolved_database_url) as store:
        migration_id = fleet.migrations["search"]
        write_report(load_migration_view(store, migration_id), report_path(settings.home, migration_id))
    with (
        open_dashboard(settings, mode="in_process", refresh_seconds=0.5) as dash,
        running_dashboard(dash) as url,
    ):
        yield url


def test_fleet_migration_pages_and_report_render_in_chromium(
    chromium: str, site: str, fleet: Fleet, tmp_path: Path
) -> None:
    browser = Browser(chromium, tmp_path / "profile")
    finished, running = fleet.migrations["search"], fleet.migrations["faq"]

    dom = browser.dom(site + "/")
    for app in fleet.production:
        assert f'data-app="{app}"' in dom
    assert 'data-app="claims" data-action="needs_approval"' in dom
    assert "quota exceeded for gpt-4o GlobalStandard in eastus" in dom
    shot = browser.screenshot(site + "/", "fleet")
    assert _colours(shot) > 8, "the fleet screenshot is blank"

    dom = browser.dom(f"{site}/migrations/{finished}")
    assert 'id="phase">rolled_back' in dom
    assert 'id="canary-timeline"' in dom
    assert dom.count("<svg") >= 2  # the gate histogram and the canary timeline
    assert 'class="weight-line' in dom or "weight-line" in dom
    assert f'href="/migrations/{finished}/report"' in dom
    shot = browser.screenshot(f"{site}/migrations/{finished}", "migration-rolled-back")
    assert _colours(shot) > 8, "the migration screenshot is blank"

    # a running migration: the page's script re-fetched it and swapped the content in (data-updated)
    dom = browser.dom(f"{site}/migrations/{running}", budget_ms=3000)
    assert 'id="phase">evaluating' in dom
    assert "data-updated=" in dom, "the auto-refresh script did not run"
    shot = browser.screenshot(f"{site}/migrations/{running}", "migration-running")
    assert _colours(shot) > 8

    # the self-contained HTML report, opened through the dashboard's link: its SVG plots render
    dom = browser.dom(f"{site}/migrations/{finished}/report")
    assert dom.count("<svg") >= 2
    assert "weight-line" in dom
    assert "weight-point" in dom and "analysis-marker" in dom
    shot = browser.screenshot(f"{site}/migrations/{finished}/report", "report-rolled-back")
    assert _colours(shot) > 8, "the report screenshot is blank"
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
