"""Concurrent writers (threads and spawned processes) never fork the chain or duplicate a seq."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from store_helpers import append_worker

from modelshift import audit
from modelshift.store import Store

THREADS, PROCESSES, EACH = 8, 4, 25


@pytest.mark.slow
def test_threads_and_processes_append_one_unbroken_chain(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children import store_helpers by name; make sure its directory is on their sys.path.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        # The processes open the still-empty database, so they also race to run the migrations.
        pending = pool.map_async(append_worker, [(store_url, n, EACH) for n in range(PROCESSES)])
        with Store.open(store_url) as store:
            errors: list[BaseException] = []
            barrier = threading.Barrier(THREADS)

            def writer(n: int) -> None:
                try:
                    barrier.wait()
                    for i in range(EACH):
                        store.append_audit(
                            audit.Reason.CANARY_STEP, f"thread {n}", {"i": i}, actor=f"thread-{n}"
                        )
                except BaseException as exc:  # surfaced below with the thread's number
                    errors.append(exc)

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            assert pending.get(timeout=120) == [EACH] * PROCESSES

            events = store.audit_events()
            assert len(events) == THREADS * EACH + PROCESSES * EACH == 300
            assert [e.seq for e in events] == list(range(1, 301))
            assert len({e.prev_hash for e in events}) == 300
            result = audit.verify(store)
            assert (result.ok, result.count) == (True, 300), result
            for actor in [f"thread-{n}" for n in range(THREADS)] + [f"process-{n}" for n in range(PROCESSES)]:
                mine = [e.data["i"] for e in events if e.actor == actor]
                assert mine == list(range(EACH)), actor  # each writer's own events stay in its order
