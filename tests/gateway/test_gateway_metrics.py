"""The request_metrics table, the batched writer, feedback values and the per-digest window query."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from modelshift.errors import ConfigError, StoreUnavailableError
from modelshift.gateway.metrics import (
    RequestRecord,
    feedback_value,
    get_record,
    insert_records,
    observe,
    prune,
    set_feedback,
)
from modelshift.gateway.writer import MetricsWriter
from modelshift.store import Store
from tests.gateway.gateway_helpers import START


def _rec(i: int, digest: str | None = "d1", status: int = 200, **kw: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": f"r{i:05d}",
        "app": "shop",
        "bundle_digest": digest,
        "started_at": START + timedelta(seconds=i),
        "latency_ms": 10.0 + i,
        "status": status,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "user_key_hash": "abc",
    }
    values.update(kw)
    return RequestRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("score", "thumbs", "expected"),
    [
        (None, "up", 1.0),
        (None, "down", 0.0),
        (None, True, 1.0),
        (None, False, 0.0),
        (0.0, None, 0.0),
        (1.0, None, 1.0),
        (0.5, None, 0.5),
    ],
)
def test_feedback_value_accepts(score: float | None, thumbs: str | bool | None, expected: float) -> None:
    assert feedback_value(score, thumbs) == expected


@pytest.mark.parametrize(
    ("score", "thumbs", "message"),
    [
        (None, None, "exactly one"),
        (0.5, "up", "exactly one"),
        (None, "sideways", "'up' or 'down'"),
        (-0.01, None, "between 0 and 1"),
        (1.01, None, "between 0 and 1"),
        (float("nan"), None, "between"),
    ],
)
def test_feedback_value_refuses(score: float | None, thumbs: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        feedback_value(score, thumbs)


def test_observe_folds_per_digest_and_window(store: Store) -> None:
    records = [
        _rec(0),
        _rec(1),
        _rec(2, status=502, error_class="ModelRetiredError", prompt_tokens=0, completion_tokens=0),
        _rec(3, digest="d2"),
        _rec(4, digest=None, status=404, error_class="NotFoundError"),  # never routed: not observed
        _rec(10),  # outside [0, 10)
    ]
    insert_records(store, records)
    assert set_feedback(store, "shop", "r00001", 1.0, START)
    assert not set_feedback(store, "shop", "missing", 1.0, START)
    assert not set_feedback(store, "other-app", "r00001", 1.0, START)  # feedback only for its own app
    windows = observe(store, "shop", START, START + timedelta(seconds=10))
    assert set(windows) == {"d1", "d2"}
    d1 = windows["d1"]
    assert (d1.requests, d1.errors, d1.error_classes) == (3, 1, {"ModelRetiredError": 1})
    assert d1.latencies_ms == [10.0, 11.0]  # failures carry no latency sample
    assert d1.tokens_per_request == [120, 120]
    assert d1.feedback == [1.0]
    assert d1.error_rate == pytest.approx(1 / 3)
    assert windows["d2"].requests == 1 and windows["d2"].error_rate == 0.0
    assert observe(store, "shop", START + timedelta(hours=1), START + timedelta(hours=2)) == {}
    row = get_record(store, "r00004")
    assert row is not None and row.bundle_digest is None and row.status == 404


@pytest.mark.parametrize(
    ("app", "seconds", "left"),
    [(None, 0, 4), (None, 2, 2), ("shop", 4, 1), ("hr", 4, 4)],  # cutoff itself is kept (started_at < cutoff)
)
def test_prune_drops_records_older_than_the_cutoff(
    store: Store, app: str | None, seconds: int, left: int
) -> None:
    insert_records(store, [_rec(0), _rec(1), _rec(2), _rec(4)])
    assert prune(store, START + timedelta(seconds=seconds), app=app) == 4 - left
    assert observe(store, "shop", START, START + timedelta(hours=1))["d1"].requests == left


def test_observe_refuses_a_backwards_window(store: Store) -> None:
    with pytest.raises(ConfigError, match="ends"):
        observe(store, "shop", START, START - timedelta(seconds=1))


class ListSink:
    """Collects batches; can be told to fail or to block."""

    def __init__(self) -> None:
        self.batches: list[list[RequestRecord]] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: Sequence[RequestRecord]) -> None:
        self.gate.wait(10)
        if self.fail:
            raise StoreUnavailableError("store down")
        self.batches.append(list(batch))


def test_writer_flushes_by_row_count() -> None:
    sink = ListSink()
    writer = MetricsWriter(sink, flush_ms=60_000, max_rows=10).start()
    for i in range(25):
        writer.record(_rec(i))
    deadline = time.monotonic() + 5
    while len(sink.batches) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(b) for b in sink.batches] == [10, 10]  # the 5 left wait for the timer (a minute)
    assert writer.flush()
    assert [len(b) for b in sink.batches] == [10, 10, 5]
    writer.close()
    assert (writer.batches, writer.written, writer.dropped) == (3, 25, 0)


def test_writer_flushes_by_time() -> None:
    sink = ListSink()
    writer = MetricsWriter(sink, flush_ms=30, max_rows=1000).start()
    writer.record(_rec(0))
    writer.record(_rec(1))
    deadline = time.monotonic() + 5
    while not sink.batches and time.monotonic() < deadline:
        time.sleep(0.005)
    assert [len(b) for b in sink.batches] == [2]
    writer.close()


def test_recording_never_blocks_and_a_failed_batch_is_dropped_not_raised() -> None:
    sink = ListSink()
    sink.gate.clear()  # the sink hangs, as a stuck database would
    writer = MetricsWriter(sink, flush_ms=1, max_rows=1, max_queued=5).start()
    started = time.perf_counter()
    for i in range(50):
        writer.record(_rec(i))
    assert time.perf_counter() - started < 0.5
    assert writer.dropped >= 40  # queue full: dropped and counted
    sink.fail = True
    sink.gate.set()
    writer.close()
    assert writer.written == 0 and writer.dropped == 50


def test_writer_refuses_nonsense_settings_and_records_after_close() -> None:
    with pytest.raises(ConfigError, match="flush_ms"):
        MetricsWriter(ListSink(), flush_ms=0)
    with pytest.raises(ConfigError, match="max_rows"):
        MetricsWriter(ListSink(), max_rows=0)
    writer = MetricsWriter(ListSink())
    assert writer.flush()  # never started: nothing to wait for
    writer.close()
    writer.record(_rec(0))
    assert writer.dropped == 1


def test_writer_into_the_store(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as opened:
        writer = MetricsWriter(lambda b: insert_records(opened, b), flush_ms=20, max_rows=50).start()
        for i in range(120):
            writer.record(_rec(i))
        assert writer.flush()
        writer.close()
        windows = observe(opened, "shop", START, START + timedelta(hours=1))
        assert windows["d1"].requests == 120
        assert writer.batches >= 3  # batched, not one insert per request


def test_windows_feed_the_rollout_analysis(store: Store) -> None:
    from modelshift.rollout.window import observation_from_window

    insert_records(store, [_rec(0), _rec(1, status=429, error_class="ThrottledError"), _rec(2)])
    set_feedback(store, "shop", "r00000", 0.0, START)
    window = observe(store, "shop", START, START + timedelta(seconds=10))["d1"]
    observation = observation_from_window(window)
    assert (observation.requests, observation.errors) == (3, 1)
    assert observation.latencies_ms == [10.0, 12.0]
    assert observation.tokens_per_request == [120.0, 120.0]
    assert (observation.feedback_up, observation.feedback_down) == (0, 1)


@pytest.mark.postgres
def test_insert_feedback_and_observe_on_postgresql(postgres_url: str) -> None:
    with Store.open(postgres_url) as pg:
        writer = MetricsWriter(lambda b: insert_records(pg, b), flush_ms=20, max_rows=25).start()
        for i in range(60):
            writer.record(_rec(i, digest="d1" if i % 3 else "d2"))
        assert writer.flush()
        writer.close()
        assert set_feedback(pg, "shop", "r00001", 1.0, START)
        windows = observe(pg, "shop", START, START + timedelta(seconds=30))
        assert {d: w.requests for d, w in windows.items()} == {"d1": 20, "d2": 10}
        assert windows["d1"].feedback == [1.0]
        row = get_record(pg, "r00001")
        assert row is not None and row.started_at == START + timedelta(seconds=1)
