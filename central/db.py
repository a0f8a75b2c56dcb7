"""Engines for SQLite and PostgreSQL through the same code, and the schema-revision check.

Use::

    engine = make_engine(settings.database_url)     # sqlite:///… or postgresql+psycopg://…
    check_migrated(engine)                           # DatabaseNotMigrated → "run balie-central db upgrade"
    with engine.begin() as conn:                     # one unit of work, committed on exit
        ...

SQLite gets WAL, ``synchronous=FULL`` (an acknowledged answer survives a power
cut), foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for every
transaction so concurrent writers queue instead of failing half-way.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from central import migrations
from central.errors import DatabaseNotMigrated, DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_S = 30


def is_sqlite(engine_or_url) -> bool:
    """True for a SQLite engine or URL."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url`` (already normalised by :mod:`central.settings`).

    SQLite: the file's folder is created. ``kwargs`` go to ``create_engine``.
    """
    if is_sqlite(url):
        database = make_url(url).database
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatabaseUnavailable(f"cannot create the folder of {database}: "
                                      f"{err.strerror or err}") from None
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'IMMEDIATE')}")


def describe_url(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def current_revision(engine: Engine) -> str | None:
    """The stored Alembic revision, or ``None`` for an empty database.

    Raises :class:`DatabaseUnavailable` when the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (DBAPIError, SQLAlchemyError) as err:
        raise DatabaseUnavailable(f"cannot reach the database {describe_url(engine)}: "
                                  f"{_first_line(err)}") from None


def check_migrated(engine: Engine) -> None:
    """Raise :class:`DatabaseNotMigrated` unless the schema is at :data:`HEAD_REVISION`."""
    revision = current_revision(engine)
    if revision == migrations.HEAD_REVISION:
        return
    where = describe_url(engine)
    if revision is None:
        raise DatabaseNotMigrated(f"the database {where} has no Balie schema yet: "
                                  "run balie-central db upgrade")
    if revision not in migrations.known_revisions():
        raise DatabaseNotMigrated(f"the database {where} is at schema revision {revision!r}, "
                                  "unknown to this release (written by a newer one?); "
                                  "it is left untouched")
    raise DatabaseNotMigrated(f"the database {where} is at schema revision {revision!r}, this "
                              f"release needs {migrations.HEAD_REVISION!r}: run balie-central db upgrade")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest schema in one transaction; returns (old, new) revision."""
    before = current_revision(engine)
    if before is not None and before not in migrations.known_revisions():
        check_migrated(engine)  # raises with the "newer release" message
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn)
    except (DBAPIError, SQLAlchemyError) as err:
        raise DatabaseUnavailable(f"migrating {describe_url(engine)} failed: "
                                  f"{_first_line(err)}") from None
    return before, migrations.HEAD_REVISION


def _first_line(err: Exception) -> str:
    orig = getattr(err, "orig", None) or err
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
