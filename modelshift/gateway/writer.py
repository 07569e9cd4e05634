"""A background writer that batches request records, so recording never slows serving.

:meth:`MetricsWriter.record` only puts the record on an in-memory queue (no I/O, never blocks). A daemon
thread drains the queue and inserts a batch when it holds ``max_rows`` records or its oldest record has
waited ``flush_ms`` milliseconds, whichever comes first. A failed insert is logged and counted, never
raised into a request. :meth:`MetricsWriter.flush` waits until everything recorded before it is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from modelshift.errors import ConfigError, ModelshiftError
from modelshift.gateway.metrics import RequestRecord

log = logging.getLogger(__name__)

#: records held in memory before new ones are dropped (the store is down or far too slow)
MAX_QUEUED = 100_000

Sink = Callable[[Sequence[RequestRecord]], None]


class MetricsWriter:
    """Queue + flush every ``flush_ms`` or ``max_rows``; ``sink`` writes one batch (e.g. insert_records)."""

    def __init__(
        self, sink: Sink, *, flush_ms: float = 200.0, max_rows: int = 500, max_queued: int = MAX_QUEUED
    ) -> None:
        if flush_ms <= 0 or max_rows < 1:
            raise ConfigError(
                f"gateway metrics writer: flush_ms must be > 0 and max_rows >= 1, got {flush_ms}, {max_rows}"
            )
        self._sink = sink
        self._flush_s = flush_ms / 1000.0
        self._max_rows = max_rows
        self._queue: queue.Queue[RequestRecord | threading.Event | None] = queue.Queue(max_queued)
        #: batches written, records written, records dropped (queue full or insert failed)
        self.batches = 0
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="gateway-metrics-writer", daemon=True)
        self._started = False
        self._closed = False

    def start(self) -> MetricsWriter:
        """Start the writer thread (idempotent)."""
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def record(self, record: RequestRecord) -> None:
        """Queue one record; returns at once. Dropped (and counted) when the queue is full or closed."""
        if self._closed:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything recorded so far; False when the writer did not finish within ``timeout``."""
        if not self._started or self._closed:
            return not self._started
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout)

    def _write(self, batch: list[RequestRecord]) -> None:
        if not batch:
            return
        try:
            self._sink(batch)
        except ModelshiftError as exc:
            # serving must go on when the store hiccups; the analysis sees fewer samples, not errors
            self.dropped += len(batch)
            log.warning("request metrics: dropped a batch of %d records: %s", len(batch), exc)
        else:
            self.batches += 1
            self.written += len(batch)
        batch.clear()

    def _run(self) -> None:
        batch: list[RequestRecord] = []
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._write(batch)
                deadline = None
                continue
            if item is None:
                self._write(batch)
                return
            if isinstance(item, threading.Event):
                self._write(batch)
                deadline = None
                item.set()
                continue
            batch.append(item)
            if deadline is None:
                deadline = time.monotonic() + self._flush_s
            if len(batch) >= self._max_rows:
                self._write(batch)
                deadline = None
