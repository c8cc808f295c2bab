"""Schema of the forecast store and API keys, as Alembic migrations shipped inside the package.

:func:`migrate` is called by every store on open. It is idempotent and safe when several
processes open a fresh database at once: the upgrade runs under a database-wide lock
(``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and re-reads the version
after taking it. When the database is already at :data:`HEAD_REVISION`, a single SELECT decides
that and Alembic is not even imported, which keeps the API's cold start short.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordernimbus.atomic import file_lock

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Our own version table, so another Alembic history in the same database cannot collide with ours.
VERSION_TABLE = "ordernimbus_store_version"
# Kept in step with versions/ by a test (the newest revision id there).
HEAD_REVISION = "0004_operations"
# Any constant works as long as nothing else in the database uses it: "ONmigrat" as bytes.
_PG_LOCK_KEY = 0x4F4E6D6967726174
log = logging.getLogger(__name__)


def migrate(target: str | Engine) -> None:
    """Bring the database at ``target`` (a URL or an engine) to the newest schema revision."""
    if isinstance(target, Engine):
        _migrate(target)
        return
    from inference.store.engine import create_engine_for

    engine = create_engine_for(target)
    try:
        _migrate(engine)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return versions[0] if len(versions) == 1 else None


def _migrate(engine: Engine) -> None:
    with _sqlite_file_lock(engine):
        _migrate_locked(engine)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise the first open of a SQLite file across processes.

    The first connection to a fresh file switches it to WAL, which needs an exclusive lock that
    SQLite may refuse at once (no busy wait) while another process is doing the same; an OS file
    lock beside the database makes the second opener wait for the first to finish migrating.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with file_lock(Path(database).expanduser().with_name(Path(database).name + ".migrate-lock")):
        yield


def _migrate_locked(engine: Engine) -> None:
    found = current_revision(engine)
    if found == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if found is not None and found not in known:
        # A newer release already migrated this database (rolling deploy): schema changes are
        # additive, so this code keeps working; it must not try to "upgrade" to an older head.
        log.warning(
            "database schema %s is newer than this release (%s); leaving it as is", found, HEAD_REVISION
        )
        return
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
