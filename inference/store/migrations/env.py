"""Alembic environment for the forecast store and API keys.

Run only through :func:`inference.store.migrations.migrate`, which hands over an open connection
(already holding the migration lock) in ``config.attributes["connection"]``. Offline mode
(``--sql``) is kept so an operator can review the DDL before applying it to Aurora by hand.
"""

from __future__ import annotations

from alembic import context

from inference.store.migrations import VERSION_TABLE

config = context.config


def _run_online() -> None:
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=None,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
