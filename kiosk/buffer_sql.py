"""The buffer's SQLAlchemy side: the engine and the statements built once from the schema.

Imported by :mod:`kiosk.buffer` on first use, not at start-up: importing
SQLAlchemy takes ~200 ms on the 2-core test VM (more on a Raspberry Pi), and
a terminal that reboots opens an up-to-date buffer with plain ``sqlite3``
(``Buffer.open``'s fast path), shows its first frame, and only then loads this
module (``Buffer.warm_up``, called by the app one frame later). A tap that
comes earlier loads it right then.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import bindparam, create_engine, event, func, insert, select, update
from sqlalchemy import exc as sa_exc  # noqa: F401  (kiosk.buffer catches its errors)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, Engine

from kiosk.buffer import configure_connection, read_only_connection
from kiosk.buffer_schema import answers, events, meta, responses


def make_engine(path: Path, *, read_only: bool = False) -> Engine:
    """An engine on the buffer file; every connection runs :func:`configure_connection`.

    ``read_only``: for a buffer opened for reading only, a fresh
    :func:`~kiosk.buffer.read_only_connection` per unit of work (no pool: the
    file may turn writable and the engine be replaced).
    """
    if read_only:
        from sqlalchemy.pool import NullPool

        engine = create_engine("sqlite://", creator=lambda: read_only_connection(path),
                               poolclass=NullPool)
    else:
        engine = create_engine(URL.create("sqlite", database=str(path)))

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            configure_connection(dbapi_connection, path)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE takes the write lock up front, so reading the next sequence
        # number and writing it happen under one lock. Reads ask for DEFERRED.
        # Sent on the DBAPI connection directly: the same statement, without
        # the statement layer's per-call cost (it runs once per tap).
        conn.connection.driver_connection.execute(
            "BEGIN " + conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        )

    return engine


# Statements built once; SQLAlchemy caches their compiled form.
INSERT_EVENT = insert(events)
CLOSE = (
    update(responses)
    .where(responses.c.id == bindparam("rid"), responses.c.closed_at.is_(None))
    .values(closed_at=bindparam("closed_at"), end_reason=bindparam("reason"))
)
SET_LANGUAGE = (
    update(responses).where(responses.c.id == bindparam("rid")).values(language=bindparam("lang"))
)
SELECT_META = select(meta.c.key, meta.c.value)
INSERT_META = insert(meta)
SELECT_EVENTS = select(events.c.kind, events.c.detail, events.c.wall).order_by(events.c.id)


def _positional(table) -> tuple[str, tuple[str, ...]]:
    """Compile an INSERT of every column of ``table`` to SQLite text + parameter order.

    The per-tap statements run on the DBAPI cursor of the connection that
    ``engine.begin()`` checked out: SQLAlchemy still owns the unit of work
    (BEGIN IMMEDIATE, COMMIT, rollback on error, pooling), but skipping its
    statement layer saves ~50 µs per statement, which on fast storage is a
    third of the whole tap (see bench/tap_latency.py).
    """
    compiled = insert(table).compile(dialect=sqlite.dialect(), column_keys=[c.name for c in table.c])
    return str(compiled), tuple(compiled.positiontup)


ANSWER_SQL, ANSWER_COLUMNS = _positional(answers)
RESPONSE_SQL, RESPONSE_COLUMNS = _positional(responses)
if ANSWER_COLUMNS != ("id", "response_id", "ordinal", "question_id", "aspect", "value_num",
                      "value_text", "wall", "boot_id", "mono"):  # record_answer's tuple order
    raise RuntimeError(f"answers columns changed: update Buffer.record_answer ({ANSWER_COLUMNS})")

CLOSE_INTERRUPTED = (
    update(responses)
    .where(responses.c.closed_at.is_(None))
    .values(
        closed_at=func.coalesce(
            select(func.max(answers.c.wall))
            .where(answers.c.response_id == responses.c.id)
            .scalar_subquery(),
            responses.c.started_wall,
        ),
        end_reason="interrupted",
    )
)
