"""The lifecycle half of the fleet table: a live ARM scan of the production bundles, cached for a while.

ARM is read at most once per ``ttl_s`` (the page refreshes itself; ARM throttles). When ARM cannot be read
the table still renders, with the reason in place of the lifecycle columns - a dashboard that fails because
one platform call did is no use in the incident it is opened for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from modelshift.clock import Clock
from modelshift.errors import ModelshiftError
from modelshift.lifecycle import AsyncArmReader, BundleRef, FleetSnapshot, ScanReport, fetch_live, scan_fleet
from modelshift.settings import Settings

#: reads the fleet for these bundles (live ARM by default; tests and recordings pass their own)
SnapshotReader = Callable[[Sequence[BundleRef]], Awaitable[FleetSnapshot]]


@dataclass(frozen=True)
class ScanResult:
    """A scan, or why there is none."""

    report: ScanReport | None
    error: str | None


def live_reader(settings: Settings, *, clock: Clock) -> SnapshotReader:
    """Read the fleet from the ARM endpoint the settings name (Azure, or the local emulator)."""

    async def read(bundles: Sequence[BundleRef]) -> FleetSnapshot:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as client:
            reader = AsyncArmReader.from_settings(client, settings, clock=clock)
            return await fetch_live(reader, bundles)

    return read


class LifecycleCache:
    """Scans the fleet through ``reader`` at most once per ``ttl_s`` for the same set of bundles."""

    def __init__(self, reader: SnapshotReader, *, clock: Clock, ttl_s: float = 60.0) -> None:
        self._reader = reader
        self._clock = clock
        self._ttl_s = ttl_s
        self._key: tuple[str, ...] | None = None
        self._at = 0.0
        self._result: ScanResult | None = None
        self._lock = asyncio.Lock()

    async def scan(self, bundles: Sequence[BundleRef]) -> ScanResult:
        """The scan of ``bundles``; from the cache while it is fresh and the bundles are the same."""
        key = tuple(sorted(b.digest for b in bundles))
        async with self._lock:
            fresh = time.monotonic() - self._at < self._ttl_s
            if self._result is not None and fresh and key == self._key:
                return self._result
            result = await self._scan(bundles)
            self._key, self._at, self._result = key, time.monotonic(), result
            return result

    async def _scan(self, bundles: Sequence[BundleRef]) -> ScanResult:
        if not bundles:
            return ScanResult(report=None, error="no production bundles registered")
        try:
            snapshot = await self._reader(bundles)
        except ModelshiftError as exc:
            return ScanResult(report=None, error=f"lifecycle unavailable ({type(exc).__name__}): {exc}")
        except httpx.HTTPError as exc:
            return ScanResult(report=None, error=f"lifecycle unavailable: cannot reach ARM ({exc})")
        return ScanResult(report=scan_fleet(bundles, snapshot, as_of=self._clock()), error=None)
