"""Alembic environment of the state store.

Used two ways: programmatically by :func:`modelshift.store.migrate.upgrade_to_head`, which hands over an open
connection in ``config.attributes["connection"]``; and by operators through ``alembic -c
modelshift/store/alembic.ini ...``, where the URL comes from ``-x url=...``, ``sqlalchemy.url`` or the
modelshift settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from modelshift.settings import Settings
from modelshift.store.engine import make_engine, take_write_lock_connection, write_engine
from modelshift.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on the handed-over connection, or on a new one to the configured store."""
    handed: Connection | None = config.attributes.get("connection")
    if handed is not None:
        _configure_and_run(handed)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url or Settings().resolved_database_url)
    try:
        # begin(): commit at the end; the write engine takes SQLite's write lock at BEGIN.
        with write_engine(engine).begin() as connection:
            take_write_lock_connection(connection)
            _configure_and_run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("modelshift's store migrations run online only; drop --sql")
run_migrations_online()
