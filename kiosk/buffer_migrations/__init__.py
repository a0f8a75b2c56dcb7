"""Alembic migrations of the buffer, run from code (no alembic.ini).

Opening a buffer that is already at :data:`HEAD_REVISION` costs one SELECT and
never imports Alembic; only a new or older database goes through
:func:`upgrade`. When adding a migration, set :data:`HEAD_REVISION` to its
revision (a test checks the two agree).
"""

from __future__ import annotations

from pathlib import Path

#: The newest revision in ``versions/``. Compared with ``alembic_version`` at
#: start-up so the fast path needs no Alembic import.
HEAD_REVISION = "0001"

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection=None):
    """An Alembic ``Config`` for the buffer, built in code.

    ``connection``: a SQLAlchemy ``Connection`` the migrations run on (inside
    the caller's transaction, which the caller commits).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def known_revisions() -> set[str]:
    """Every revision the migration scripts know (imports Alembic)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def script_head() -> str:
    """The head revision according to the scripts (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``.

    Runs in the connection's current transaction: the caller commits, so a
    failure (or a power cut) leaves the database at its old revision.
    """
    from alembic import command

    command.upgrade(alembic_config(connection), revision)
