"""Engines, transactions, locking, retries and error translation: the one place SQLAlchemy errors are seen.

SQLite: WAL, ``busy_timeout`` and foreign keys on every connection; write transactions start with
``BEGIN IMMEDIATE`` so two writers can never both read the audit head and append after it.
PostgreSQL: every write transaction first takes ``pg_advisory_xact_lock(WRITE_LOCK_KEY)``, which serialises
audited writers across processes and machines and is released at commit or rollback.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session

from modelshift.errors import ConfigError, ModelshiftError, StateError, StoreUnavailableError

T = TypeVar("T")

#: pg_advisory_xact_lock key of audited writes ("msft" "audt" as two ascii words, any constant would do)
WRITE_LOCK_KEY = 0x6D736674_61756474
#: SQLite waits this long for another writer before "database is locked"
BUSY_TIMEOUT_MS = 30_000
#: attempts of one write transaction when it loses a race (locked / serialisation failure / unique clash)
WRITE_ATTEMPTS = 6
_WRITE_OPTION = "modelshift_write"


def redact(url: str | URL) -> str:
    """The URL with its password hidden, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def parse_url(url: str) -> URL:
    """Parse a database URL or raise ConfigError naming MODELSHIFT_DATABASE_URL."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"MODELSHIFT_DATABASE_URL {url!r} is not a database URL ({exc}); use "
            "sqlite:///path/to/state.db or postgresql+psycopg://user:pass@host:5432/db"
        ) from None


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so our "begin" hook decides DEFERRED vs IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL may itself wait for another process.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the store's per-backend settings (creating a SQLite file's directory)."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ConfigError(
                f"state store URL {redact(parsed)} is not a SQLite file; the store must outlive the process, "
                "so give a path: sqlite:///.modelshift/state.db"
            )
        try:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the directory of the state store {redact(parsed)}: {exc}; "
                "fix the permissions or set MODELSHIFT_HOME / MODELSHIFT_DATABASE_URL elsewhere"
            ) from None
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"cannot use state store URL {redact(parsed)}: {exc}; supported are sqlite:///PATH and "
            "postgresql+psycopg://user:pass@host:5432/db"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) marked so its transactions take the write lock."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def take_write_lock(session: Session) -> None:
    """Serialise audited writers: SQLite already holds it (BEGIN IMMEDIATE); PostgreSQL takes an xact lock."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})


def take_write_lock_connection(connection: Connection) -> None:
    """Like :func:`take_write_lock`, on a Core connection (used by the migrations)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})


def _lost_race(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    if isinstance(exc, OperationalError) and ("locked" in message or "busy" in message):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # 40001 serialization_failure, 40P01 deadlock_detected
    if sqlstate in ("40001", "40P01"):
        return True
    # Unique clash on the chain head: another writer appended first (only possible without the lock).
    return isinstance(exc, IntegrityError) and "audit_events" in message


def translate(exc: SQLAlchemyError, url: str | URL) -> ModelshiftError:
    """Turn a SQLAlchemy/driver error into the project's exception tree, naming the store and next step."""
    where = redact(url)
    first_line = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc).splitlines()
    detail = first_line[0] if first_line else type(exc).__name__
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return StoreUnavailableError(
            f"state store {where} is unavailable: {detail}; check that the database server is running and "
            "reachable and that MODELSHIFT_DATABASE_URL is right, then retry",
            url=where,
        )
    return StateError(f"state store {where} refused the operation: {detail}", url=where)


@contextmanager
def translated(url: str | URL) -> Iterator[None]:
    """Re-raise any SQLAlchemy error inside the block as a modelshift error."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise translate(exc, url) from exc


_LOCAL_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_WRITE_LOCKS_GUARD = threading.Lock()


def _local_write_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite only: threads of this process queue on a mutex instead of polling SQLite's busy handler.

    SQLite's busy handler sleeps in growing steps (up to 100 ms), so many threads contending for
    BEGIN IMMEDIATE waste most of their time asleep; other processes still wait on the file lock.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url)
    with _LOCAL_WRITE_LOCKS_GUARD:
        return _LOCAL_WRITE_LOCKS.setdefault(key, threading.Lock())


def run_write(engine: Engine, fn: Callable[[Session], T], *, url: str | URL) -> T:
    """Run ``fn`` in one write transaction holding the write lock; retry lost races with small backoff."""
    writer = write_engine(engine)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with (
                _local_write_lock(engine),
                Session(writer, expire_on_commit=False) as session,
                session.begin(),
            ):
                take_write_lock(session)
                return fn(session)
        except DBAPIError as exc:
            if attempt < WRITE_ATTEMPTS and _lost_race(exc):
                time.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
                continue
            raise translate(exc, url) from exc
        except SQLAlchemyError as exc:
            raise translate(exc, url) from exc
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def run_read(engine: Engine, fn: Callable[[Session], T], *, url: str | URL) -> T:
    """Run ``fn`` in one read transaction (no write lock)."""
    with translated(url), Session(engine, expire_on_commit=False) as session, session.begin():
        return fn(session)
