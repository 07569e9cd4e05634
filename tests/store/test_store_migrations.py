"""Migrations run on open (empty DB, idempotent re-open, operator CLI) and errors at the store boundary."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from modelshift.errors import ConfigError, StoreUnavailableError
from modelshift.store import Store
from modelshift.store.migrate import ALEMBIC_INI, current_revision, head_revision
from modelshift.store.models import Base

TABLES = {
    "alembic_version",
    "blobs",
    "bundles",
    "router_state",
    "router_weights",
    "evaluation_records",
    "audit_events",
}


def _store_tables_only(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in TABLES


def test_open_migrates_an_empty_database_to_head(store_url: str) -> None:
    with Store.open(store_url) as store:
        assert current_revision(store.engine) == head_revision()
        # other packages add their own tables through later revisions; these are the store's
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": _store_tables_only})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], "models and migrations disagree; add a migration"


def test_reopening_is_idempotent_and_keeps_data(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.append_audit("migration.started", "migration:m-1", {"app": "a"}, actor="cli")
    for _ in range(2):
        with Store.open(store_url) as store:
            assert current_revision(store.engine) == head_revision()
            assert [e.reason for e in store.audit_events()] == ["migration.started"]
            assert store.verify_audit().ok


def test_operators_can_run_alembic_by_hand(store_url: str) -> None:
    def alembic(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "-x", f"url={store_url}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    assert head_revision() in alembic("current")
    with Store.open(store_url) as store:  # finds the schema at head and leaves it be
        assert store.audit_events() == []


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'state.db'}"
    with Store.open(url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(tmp_path / "nested" / "dir" / "state.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_default_url_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelshift.settings import get_settings

    monkeypatch.setenv("MODELSHIFT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELSHIFT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        with Store.open() as store:
            assert store.url.endswith("home/state.db")
        assert (tmp_path / "home" / "state.db").exists()
    finally:
        get_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_postgres_is_store_unavailable_without_the_password() -> None:
    url = f"postgresql+psycopg://modelshift:s3cret-pw@127.0.0.1:{_closed_port()}/state"
    with pytest.raises(StoreUnavailableError) as caught:
        Store.open(url)
    message = str(caught.value)
    assert "s3cret-pw" not in message and "modelshift:***@127.0.0.1" in message
    assert "check that the database server is running" in message
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("url", "error", "expected"),
    [
        pytest.param("not a url", ConfigError, "is not a database URL", id="garbage"),
        pytest.param("sqlite://", ConfigError, "is not a SQLite file", id="sqlite-memory"),
        pytest.param("sqlite:///:memory:", ConfigError, "is not a SQLite file", id="sqlite-memory-explicit"),
        pytest.param("nosuchdb://u@h/db", ConfigError, "cannot use state store URL", id="unknown-dialect"),
    ],
)
def test_bad_urls_are_config_errors(url: str, error: type[Exception], expected: str) -> None:
    with pytest.raises(error, match=expected):
        Store.open(url)


def test_sqlite_under_a_file_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnavailableError, match="cannot create the directory of the state store"):
        Store.open(f"sqlite:///{tmp_path / 'file' / 'state.db'}")
