"""Alembic migrations of the analysis database, run from code (no alembic.ini).

Use::

    with engine.begin() as conn:
        upgrade(conn)            # what `balie-central db upgrade` does

When adding a migration, set :data:`HEAD_REVISION` to its revision (a test
checks the two agree).
"""

from __future__ import annotations

from pathlib import Path

#: The newest revision in ``versions/``; :func:`central.db.check_migrated` compares with it.
HEAD_REVISION = "0007"

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection=None):
    """An Alembic ``Config`` built in code; ``connection``: where the migrations run."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def known_revisions() -> set[str]:
    """Every revision the migration scripts know."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def script_head() -> str:
    """The head revision according to the scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision`` in its current transaction."""
    from alembic import command

    command.upgrade(alembic_config(connection), revision)
