"""Alembic environment for central: runs on the connection handed in by code."""

from __future__ import annotations

from alembic import context

from central.models import Base

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # By hand (e.g. `alembic revision --autogenerate` in development) with -x url=...
    from central.db import make_engine
    from central.settings import normalise_url

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given: pass -x url=sqlite:///path")
    engine = make_engine(normalise_url(url))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("central's migrations run online only")
run_migrations_online()
