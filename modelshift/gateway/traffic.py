"""A live-traffic generator for the gateway: what drives a canary in the demo and in end-to-end tests.

A few threads post chat requests to ``/apps/{app}/chat``, each with a session id drawn from a pool of
simulated users (so sticky routing has something to stick to), until stopped or ``limit`` requests were
sent. It counts answers per bundle digest (the ``x-modelshift-digest`` header) and per HTTP status, which
is what a test or the demo shows about the split. Optionally every n-th answer gets user feedback.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

import httpx


class Traffic:
    """A bounded, thread-based traffic generator against one app of a running gateway."""

    def __init__(
        self,
        url: str,
        app: str,
        questions: Sequence[str],
        *,
        limit: int | None = 600,
        threads: int = 4,
        users: int = 10_000,
        pause_s: float = 0.005,
        feedback_every: int = 0,
        seed: int = 0,
    ) -> None:
        if not questions:
            raise ValueError("traffic needs at least one question")
        if threads < 1:
            raise ValueError("traffic needs at least one thread")
        self.url = url
        self.app = app
        self.questions = list(questions)
        self.limit = limit
        self.users = users
        self.pause_s = pause_s
        self.feedback_every = feedback_every
        self.sent = 0
        self.by_digest: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.transport_errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run, args=(seed * 1000 + i,), name=f"traffic-{app}-{i}", daemon=True
            )
            for i in range(threads)
        ]

    def _claim(self) -> int | None:
        with self._lock:
            if self.limit is not None and self.sent >= self.limit:
                return None
            self.sent += 1
            return self.sent

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                number = self._claim()
                if number is None:
                    return
                session = f"user-{rng.randrange(self.users)}"
                question = rng.choice(self.questions)
                try:
                    response = client.post(
                        f"/apps/{self.app}/chat", json={"question": question, "session_id": session}
                    )
                except httpx.TransportError:
                    with self._lock:
                        self.transport_errors += 1
                    self._stop.wait(0.2)
                    continue
                digest = response.headers.get("x-modelshift-digest", "none")
                with self._lock:
                    self.by_digest[digest] += 1
                    self.by_status[response.status_code] += 1
                if self.feedback_every and number % self.feedback_every == 0 and response.is_success:
                    request_id = response.json().get("request_id")
                    if request_id:
                        client.post(
                            f"/apps/{self.app}/feedback",
                            json={"request_id": request_id, "score": 1 if rng.random() < 0.8 else 0},
                        )
                self._stop.wait(self.pause_s)

    def start(self) -> Traffic:
        """Start the threads (also what ``with Traffic(...)`` does)."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the threads (requests in flight finish)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
