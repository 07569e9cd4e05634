"""Notice fixtures: a store (SQLite; PostgreSQL for marked rows), a settable clock, a real webhook server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from modelshift.notices import DispatchError, Notice
from modelshift.notices.store import StoreNoticeLog
from modelshift.notices.webhook import create_app
from modelshift.settings import Settings
from modelshift.store import Store

SECRET = "s3cret-token-for-tests"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class SetClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move time forward."""
        self.now += delta


@dataclass
class RecordingDispatcher:
    """A real Dispatcher that keeps what it was given; fails the first ``fail_times`` calls; can be slow."""

    fail_times: int = 0
    delay: float = 0.0
    calls: list[Notice] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dispatch(self, notice: Notice) -> None:
        """Record the notice, or fail as configured."""
        with self.lock:
            self.attempts += 1
            failing = self.attempts <= self.fail_times
        time.sleep(self.delay)
        if failing:
            raise DispatchError("events API answered 503 (test)")
        with self.lock:
            self.calls.append(notice)


@pytest.fixture
def clock() -> SetClock:
    """The injected clock."""
    return SetClock()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: SetClock) -> Iterator[Store]:
    """An empty, migrated store on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url_factory")()
    opened = Store.open(url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: SetClock) -> Iterator[Store]:
    """An empty, migrated SQLite store (for server tests, which are about HTTP, not backends)."""
    opened = Store.open(f"sqlite:///{tmp_path / 'state' / 'state.db'}", clock=clock)
    yield opened
    opened.close()


def settings_with(secret: str | None) -> Settings:
    """Settings that differ from the environment only in the webhook secret."""
    return Settings(webhook_secret=SecretStr(secret) if secret is not None else None)


@dataclass
class RunningServer:
    """A webhook served by uvicorn on a loopback port."""

    url: str
    dispatcher: RecordingDispatcher
    log: StoreNoticeLog

    def notices_url(self, token: str | None = SECRET) -> str:
        """The webhook URL, with the given token (None: no token)."""
        return f"{self.url}/notices/azure" + (f"?token={token}" if token is not None else "")


@pytest.fixture
def serve(sqlite_store: Store, clock: SetClock) -> Iterator[Callable[[RecordingDispatcher], RunningServer]]:
    """Start the webhook app in a real uvicorn server on a free 127.0.0.1 port (stopped after the test)."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(dispatcher: RecordingDispatcher) -> RunningServer:
        log = StoreNoticeLog(sqlite_store, clock=clock)
        app = create_app(settings_with(SECRET), log, dispatcher, clock)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        started.append((server, thread))
        return RunningServer(f"http://127.0.0.1:{port}", dispatcher, log)

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)
