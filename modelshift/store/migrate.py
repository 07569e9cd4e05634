"""Bring a store's schema to the newest Alembic revision, so nobody runs alembic by hand."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from modelshift.store.engine import take_write_lock_connection, translated, write_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def alembic_config() -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this modelshift."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no Alembic revisions under {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with translated(engine.url), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Upgrade the database to head; a no-op when it is there. Safe when several processes open at once."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    config = alembic_config()
    with translated(engine.url), write_engine(engine).begin() as connection:
        # Under the write lock, a second process waits here and then finds nothing left to do.
        take_write_lock_connection(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
