"""The buffer's tables (SQLAlchemy Core) and the values its columns may hold.

The tables are created and changed only by the Alembic migrations in
``kiosk/buffer_migrations``; this module describes the schema at head so the
buffer can build its statements. Keep the two in step: a schema change is a
new migration *and* an edit here (the tests compare them).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Sync state of a response. ``quarantined`` responses were rejected by
#: central; they are kept (with ``state_reason``) and never retried.
STATES = ("unsent", "sent", "quarantined")

metadata = MetaData()

#: Key/value facts about this buffer: ``device_id`` (random, made with the
#: database) and ``last_seq`` (the last sequence number handed out; kept here
#: rather than derived from ``max(seq)`` so pruning sent rows never lets a
#: number be reused).
meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

responses = Table(
    "responses",
    metadata,
    Column("id", String(36), primary_key=True),  # client UUID (uuid4)
    Column("seq", Integer, nullable=False),  # per-device sequence number
    Column("questionnaire_id", Text, nullable=False),
    Column("questionnaire_version", Integer, nullable=False),
    Column("location_id", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("started_wall", Float, nullable=False),
    Column("started_boot_id", Text, nullable=False),
    Column("started_mono", Float, nullable=False),
    Column("closed_at", Float, nullable=True),  # wall clock; NULL while open
    Column("end_reason", Text, nullable=True),
    Column("suspect", Boolean(create_constraint=False), nullable=False, default=False),
    Column("suspect_reason", Text, nullable=True),
    Column("state", Text, nullable=False, server_default="unsent"),
    Column("state_reason", Text, nullable=True),
    Column("state_changed_at", Float, nullable=True),
    UniqueConstraint("seq", name="uq_responses_seq"),
    CheckConstraint("state IN ('unsent', 'sent', 'quarantined')", name="ck_responses_state"),
    CheckConstraint(
        "end_reason IS NULL OR end_reason IN ('completed', 'idle', 'abandoned', 'interrupted')",
        name="ck_responses_end_reason",
    ),
    CheckConstraint("(closed_at IS NULL) = (end_reason IS NULL)", name="ck_responses_closed"),
)
# The uploader's query: eligible (unsent, closed) responses oldest first.
Index("ix_responses_state_seq", responses.c.state, responses.c.seq)
# Responses still open: found at start-up to close as "interrupted".
Index("ix_responses_open", responses.c.seq, sqlite_where=responses.c.closed_at.is_(None))

answers = Table(
    "answers",
    metadata,
    Column("id", String(36), primary_key=True),  # client UUID (uuid4)
    Column(
        "response_id",
        String(36),
        ForeignKey("responses.id", ondelete="CASCADE", name="fk_answers_response"),
        nullable=False,
    ),
    Column("ordinal", Integer, nullable=False),  # 1, 2, … within the response
    Column("question_id", Text, nullable=False),
    Column("aspect", Text, nullable=True),
    Column("value_num", Integer, nullable=True),
    Column("value_text", Text, nullable=True),
    Column("wall", Float, nullable=False),
    Column("boot_id", Text, nullable=False),
    Column("mono", Float, nullable=False),
    UniqueConstraint("response_id", "ordinal", name="uq_answers_response_ordinal"),
    CheckConstraint(
        "(value_num IS NULL) <> (value_text IS NULL)", name="ck_answers_one_value"
    ),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("wall", Float, nullable=False),
    Column("boot_id", Text, nullable=False),
    Column("mono", Float, nullable=False),
)
