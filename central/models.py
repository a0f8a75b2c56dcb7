"""The analysis database's tables as SQLAlchemy 2 models: devices, responses, answers, questionnaires, messages, study results.

Use::

    from central.models import Base, Device, Response, Answer, Questionnaire
    conn.execute(insert(Answer.__table__), rows)        # Core for bulk work (central.ingest)
    session.get(Device, "dev-1a2b3c4d")                  # ORM for the CLI

Times are Unix seconds (UTC) as floats, like on the wire: ``*_wall``/``*_mono``/
``*_boot`` are the device's raw clock readings, kept as sent; ``*_at`` are the
server's (``received_at``) or corrected (``started_at``/``answered_at``) times.
The schema itself is created by the Alembic migrations in ``central/migrations``;
edit both together (a test compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UUID_LEN = 36
#: The aspects whose answers are the response's service and overall grade (``Answer.service``,
#: ``Answer.overall``): written by central.ingest and migration 0006, read by the report.
SERVICE_ASPECT, OVERALL_ASPECT = "dienst", "totaal"


class Base(DeclarativeBase):
    """Declarative base of central's tables."""


class Device(Base):
    """An enrolled terminal, its token's hash, and what its last heartbeat said."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_devices_token_hash"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "dev-<8 hex>"
    name: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text)
    # sha256 hex of the token. The token is 32 random bytes (secrets.token_urlsafe):
    # guessing it is hopeless, so a fast hash is enough (slow hashes are for
    # low-entropy passwords) and lets every request look the device up by index.
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float)
    app_version: Mapped[str | None] = mapped_column(String(32))
    # From the last heartbeat (None until the first one).
    heartbeat_at: Mapped[float | None] = mapped_column(Float)
    backlog: Mapped[int | None] = mapped_column(BigInteger)
    quarantined: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    disk_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    clock_wall: Mapped[float | None] = mapped_column(Float)
    clock_boot: Mapped[str | None] = mapped_column(String(64))
    clock_mono: Mapped[float | None] = mapped_column(Float)
    clock_synced: Mapped[bool | None] = mapped_column(Boolean)
    # The questionnaire the terminal asks (id + version), why its last download failed,
    # whether it is open now and seconds of opening time since its last recorded response.
    questionnaire_id: Mapped[str | None] = mapped_column(String(64))
    questionnaire_version: Mapped[int | None] = mapped_column(BigInteger)
    questionnaire_error: Mapped[str | None] = mapped_column(Text)
    open_now: Mapped[bool | None] = mapped_column(Boolean)
    quiet_open_s: Mapped[float | None] = mapped_column(Float)
    # Fleet health as central last noticed it (central.fleet): when the checker saw the
    # device enter the state, None while it is not in it. Only used to log each change once.
    silent_since: Mapped[float | None] = mapped_column(Float)
    no_ratings_since: Mapped[float | None] = mapped_column(Float)
    # Why the terminal shows its out-of-order screen (its buffer cannot take answers), by its
    # last heartbeat (None: it takes answers), and when central noticed (central.fleet).
    out_of_order: Mapped[str | None] = mapped_column(Text)
    out_of_order_since: Mapped[float | None] = mapped_column(Float)
    # Sequence bookkeeping: seq numbers are unique per device and start at 1,
    # so the number of missing ones is highest_seq - seq_count.
    highest_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    seq_count: Mapped[int] = mapped_column(BigInteger, default=0)


class Response(Base):
    """One visitor's response as received, with raw and corrected times."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_responses_device_seq"),)

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)  # the client's UUID
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", name="fk_responses_device"))
    seq: Mapped[int] = mapped_column(BigInteger)
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    questionnaire_version: Mapped[int] = mapped_column(BigInteger)
    location_id: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    started_wall: Mapped[float] = mapped_column(Float)
    started_boot: Mapped[str] = mapped_column(String(64))
    started_mono: Mapped[float] = mapped_column(Float)
    closed_wall: Mapped[float] = mapped_column(Float)
    end_reason: Mapped[str] = mapped_column(String(16))
    suspect: Mapped[bool] = mapped_column(Boolean)
    suspect_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[float] = mapped_column(Float)
    # The clock reading of the batch that delivered this response.
    sent_wall: Mapped[float] = mapped_column(Float)
    sent_boot: Mapped[str] = mapped_column(String(64))
    sent_mono: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float] = mapped_column(Float)  # corrected (central.timecorrect)
    time_verified: Mapped[bool] = mapped_column(Boolean)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical record


class Answer(Base):
    """One answer of a response: the raw value, raw clocks, the corrected time, and the
    response's fields the report counts by."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(UUID_LEN), primary_key=True)  # the client's UUID
    # Refers to responses.id: checked by triggers (migration 0007), once per statement on
    # PostgreSQL, not by a foreign key, whose per-row check was a third of ingest's cost there.
    response_id: Mapped[str] = mapped_column(String(UUID_LEN), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(64))
    aspect: Mapped[str | None] = mapped_column(String(64))
    value_num: Mapped[int | None] = mapped_column(BigInteger)
    value_text: Mapped[str | None] = mapped_column(Text)
    at_wall: Mapped[float] = mapped_column(Float)
    at_boot: Mapped[str] = mapped_column(String(64))
    at_mono: Mapped[float] = mapped_column(Float)
    answered_at: Mapped[float] = mapped_column(Float)  # corrected (central.timecorrect)
    time_verified: Mapped[bool] = mapped_column(Boolean)
    # Copies of what the report splits on from the answer's response, written by ingest with
    # the answer (a stored response never changes): the report then counts answers in one
    # scan of this table, without joining millions of them to their responses
    # (docs/benchmarks.md, "bench/report"). ``service``: the value of the response's first
    # answer (by ordinal) with aspect ``dienst`` and a text value; ``overall``: of its first
    # answer with aspect ``totaal`` and a whole number 1-10 (None: the response has none).
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    questionnaire_version: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[float] = mapped_column(Float)
    suspect: Mapped[bool] = mapped_column(Boolean)
    service: Mapped[str | None] = mapped_column(Text)
    overall: Mapped[int | None] = mapped_column(BigInteger)


class Questionnaire(Base):
    """A published questionnaire version: the TOML text as published, immutable once stored.

    ``location`` None: for every location without one of its own. The same
    (id, version, location) is stored once; ``retired_at`` set: no longer served.
    """

    __tablename__ = "questionnaires"
    __table_args__ = (
        UniqueConstraint("questionnaire_id", "version", "location",
                         name="uq_questionnaires_id_version_location"),
        # NULLs are distinct in a unique constraint: this keeps one all-locations row per version.
        Index("uq_questionnaires_id_version_all", "questionnaire_id", "version", unique=True,
              sqlite_where=text("location IS NULL"), postgresql_where=text("location IS NULL")),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(BigInteger)
    location: Mapped[str | None] = mapped_column(String(64))
    toml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # hex, of the UTF-8 TOML text: the ETag
    published_at: Mapped[float] = mapped_column(Float)
    retired_at: Mapped[float | None] = mapped_column(Float)


class Message(Base):
    """The message shown to visitors at one location (``location`` ``''``: every location
    without one of its own): the text per language, which screen, and whether the current
    overall grade goes with it. One row per location; clearing deletes it."""

    __tablename__ = "messages"

    # '' rather than NULL for every location: a primary key is unique without partial indexes.
    location: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_nl: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str | None] = mapped_column(Text)
    placement: Mapped[str] = mapped_column(String(16))  # "welcome" or "thanks"
    show_grade: Mapped[bool] = mapped_column(Boolean)
    set_at: Mapped[float] = mapped_column(Float)


class StudyResult(Base):
    """One imported figure of the bureau's own study or an earlier one: mean, sd and n of one
    aspect, per study, period and channel (phone, web, e-mail, counter, ...). Re-importing a
    study replaces all its rows."""

    __tablename__ = "study_results"
    __table_args__ = (UniqueConstraint("study", "period", "channel", "aspect",
                                       name="uq_study_results_key"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(64))
    aspect: Mapped[str] = mapped_column(String(64))
    mean: Mapped[float] = mapped_column(Float)
    sd: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(BigInteger)
    low_share: Mapped[float | None] = mapped_column(Float)
    high_share: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)  # the file name it came from
    imported_at: Mapped[float] = mapped_column(Float)
