"""Storing a batch idempotently and answering per record: accepted / duplicate / rejected.

Use::

    results = ingest_batch(engine, device_id, batch, received_at=time.time())
    BatchResult(received_at=received_at, results=results)

Per record, in the order sent (the first matching rule wins):

* its ``id`` is stored (or came earlier in this batch) with the same content
  hash → ``duplicate`` (success for the device; nothing changes);
* its ``id`` is stored with other content, or by another device →
  ``rejected``, reason ``conflict: …``; the stored data stays untouched;
* a value the database cannot hold (a NUL character, an integer beyond 64 bits)
  → ``rejected`` with the reason;
* its ``seq`` is already used by another id of this device → ``rejected``,
  "sequence number already used";
* one of its answer ids is already used → ``rejected``;
* otherwise → inserted → ``accepted``.

Unknown locations and questionnaires are accepted (no registry yet). One
transaction per batch: one ``SELECT`` per kind of key for the whole batch
(response ids, this device's seqs, answer ids), then the new rows in one go
per table, so the cost does not grow with round trips. How the rows travel is
the one place that differs per database (:func:`_store_for`): PostgreSQL gets
``= ANY(array)`` look-ups and ``COPY … FROM STDIN`` (psycopg 3, on the
connection of the same SQLAlchemy transaction); SQLite gets chunked
``IN (…)`` look-ups and an ``executemany`` of plain tuples.

Batches of one device are serialised by a lock on its device row, so two
central processes storing the same batch at once see each other's commits
(the later one answers ``duplicate``). Should an insert still hit a key stored
concurrently (e.g. by another device), the transaction is rolled back and the
batch re-evaluated once.
"""

from __future__ import annotations

import hashlib
import logging
from json.encoder import encode_basestring as _json_str  # the encoder json.dumps(ensure_ascii=False) uses
from typing import Iterable, Sequence

from sqlalchemy import Connection, Engine, case, select, update
from sqlalchemy.exc import IntegrityError

from central import wire
from central.errors import RequestRefused
from central.models import OVERALL_ASPECT, SERVICE_ASPECT, Answer, Device, Response
from sync.protocol import AnswerRecord, Batch, ClockReading, QuestionnaireRef, RecordResult, ResponseRecord

log = logging.getLogger("balie.central.ingest")
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_responses = Response.__table__
_answers = Answer.__table__
_devices = Device.__table__

#: Column order of the row tuples built below (the tables' own order; checked at import).
RESPONSE_COLUMNS = (
    "id", "device_id", "seq", "questionnaire_id", "questionnaire_version", "location_id",
    "language", "started_wall", "started_boot", "started_mono", "closed_wall", "end_reason",
    "suspect", "suspect_reason", "received_at", "sent_wall", "sent_boot", "sent_mono",
    "started_at", "time_verified", "content_hash")
ANSWER_COLUMNS = (
    "id", "response_id", "ordinal", "question_id", "aspect", "value_num", "value_text",
    "at_wall", "at_boot", "at_mono", "answered_at", "time_verified",
    "questionnaire_id", "questionnaire_version", "started_at", "suspect", "service", "overall")
assert RESPONSE_COLUMNS == tuple(c.name for c in _responses.columns), "central.models changed"
assert ANSWER_COLUMNS == tuple(c.name for c in _answers.columns), "central.models changed"


# ------------------------------------------------------------------ content hash

def canonical_json(record: ResponseRecord) -> str:
    """The record's canonical JSON: what :func:`content_hash` hashes.

    Defined as ``json.dumps(record.model_dump(mode="json"), sort_keys=True,
    separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` (standard
    ``json`` module, not pydantic's serialiser, so it stays stable across
    library upgrades), and written out by hand here because that is 5× faster:
    the same key order (sorted), the same string escaping (``json``'s own
    ``encode_basestring``), ``float.__repr__`` / ``int.__repr__`` for numbers
    as ``json`` uses. ``tests/test_central_ingest.py`` compares both over
    varied records; a field added to the protocol fails the import-time check
    below until it is added here.
    """
    q = record.questionnaire
    answers = ",".join([
        f'{{"aspect":{"null" if a.aspect is None else _json_str(a.aspect)},'
        f'"at":{_clock_json(a.at)},"id":{_json_str(a.id)},"ordinal":{int.__repr__(a.ordinal)},'
        f'"question_id":{_json_str(a.question_id)},"value":'
        f'{int.__repr__(a.value) if type(a.value) is int else _json_str(a.value)}}}'
        for a in record.answers])
    return (
        f'{{"answers":[{answers}],"closed_wall":{float.__repr__(record.closed_wall)},'
        f'"end_reason":{_json_str(record.end_reason)},"id":{_json_str(record.id)},'
        f'"language":{_json_str(record.language)},"location_id":{_json_str(record.location_id)},'
        f'"questionnaire":{{"id":{_json_str(q.id)},"version":{int.__repr__(q.version)}}},'
        f'"seq":{int.__repr__(record.seq)},"started":{_clock_json(record.started)},'
        f'"suspect":{"true" if record.suspect else "false"},"suspect_reason":'
        f'{"null" if record.suspect_reason is None else _json_str(record.suspect_reason)}}}')


def _clock_json(c: ClockReading) -> str:
    return (f'{{"boot_id":{_json_str(c.boot_id)},"mono":{float.__repr__(c.mono)},'
            f'"wall":{float.__repr__(c.wall)}}}')


# canonical_json names every field; a new protocol field must be added there (and here).
assert set(ResponseRecord.model_fields) == {
    "id", "seq", "questionnaire", "location_id", "language", "started", "closed_wall",
    "end_reason", "suspect", "suspect_reason", "answers"}, "sync.protocol.ResponseRecord changed"
assert set(AnswerRecord.model_fields) == {"id", "ordinal", "question_id", "aspect", "value", "at"}, \
    "sync.protocol.AnswerRecord changed"
assert set(ClockReading.model_fields) == {"wall", "boot_id", "mono"}, "sync.protocol.ClockReading changed"
assert set(QuestionnaireRef.model_fields) == {"id", "version"}, "sync.protocol.QuestionnaireRef changed"


def content_hash(record: ResponseRecord | wire.ResponseRecord) -> str:
    """sha256 hex of the record's canonical JSON (:func:`canonical_json`: sorted keys, defaults filled in).

    Everything in the record counts, nothing is left out: a retry of the same
    record hashes the same; any changed field is a conflict. The batch's
    ``sent`` clock is not part of the record, so it may differ between retries.
    A record as central decodes it (:mod:`central.wire`) has its canonical JSON
    written by msgspec, in C, where that gives the same bytes.
    """
    if isinstance(record, wire.ResponseRecord):
        fast = wire.canonical_bytes(record)
        if fast is not None:
            return hashlib.sha256(fast).hexdigest()
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()


def storage_problem(record: ResponseRecord) -> str | None:
    """Why the database cannot hold ``record`` as sent (``None``: it can)."""
    if record.seq > INT64_MAX:
        return "seq is out of range (at most 2**63-1)"
    if record.questionnaire.version > INT64_MAX:
        return "questionnaire version is out of range (at most 2**63-1)"
    if "\x00" in record.started.boot_id or "\x00" in (record.suspect_reason or ""):
        return "text contains a NUL character"
    for answer in record.answers:
        value = answer.value
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                return f"answer {answer.ordinal}: value is out of range (64-bit integer)"
        elif "\x00" in value:
            return f"answer {answer.ordinal}: text contains a NUL character"
        if "\x00" in answer.at.boot_id:
            return f"answer {answer.ordinal}: boot id contains a NUL character"
    return None


# ------------------------------------------------------------------ ingest

def ingest_batch(engine: Engine, device_id: str, batch: wire.Batch | Batch, *,
                 received_at: float) -> list[RecordResult]:
    """Store ``batch`` from the authenticated ``device_id``; one result per record, in order.

    ``batch``: as central decodes it (:func:`central.wire.decode_batch`), or the
    protocol's pydantic model (converted first). ``received_at``: the server's
    wall clock when the batch arrived (the base of the corrected times). Raises
    :class:`RequestRefused` (503) when a concurrent writer still collides after
    one re-evaluation; safe to retry.
    """
    if isinstance(batch, Batch):
        batch = wire.from_model(batch)
    hashes = [content_hash(record) for record in batch.responses]
    # A unique violation raised by the driver itself (PostgreSQL's COPY runs on
    # the DBAPI connection, outside SQLAlchemy's exception wrapping).
    collided = (IntegrityError, engine.dialect.loaded_dbapi.IntegrityError)
    # First try: where the store allows it, answer ids are not looked up but
    # left to the unique key on answers.id. An answer id that is stored already
    # (never by a sane device: they are random UUIDs) makes that try fail;
    # then the batch is evaluated with every look-up, and that evaluation is
    # retried once if a concurrent writer gets in the way.
    optimistic = _optimistic_answer_ids(engine)
    attempt = 0
    while True:
        try:
            with engine.begin() as conn:
                return _ingest(conn, device_id, batch, hashes, received_at,
                               check_answer_ids=not optimistic)
        except collided:
            if optimistic:
                log.debug("batch of %s hit a stored key without the answer-id look-up; "
                          "evaluating it in full", device_id)
                optimistic = False
                continue
            attempt += 1
            log.info("batch of %s collided with a concurrent writer (attempt %d)", device_id, attempt)
            if attempt == 2:
                raise RequestRefused(503, "busy", "a concurrent batch stored the same records; "
                                     "send again") from None


def _ingest(conn: Connection, device_id: str, batch: wire.Batch, hashes: list[str],
            received_at: float, *, check_answer_ids: bool = True) -> list[RecordResult]:
    records = batch.responses
    store = _store_for(conn)
    # Lock the device's row first: batches of one device then run one after the
    # other, and every SELECT below (each its own snapshot under PostgreSQL's
    # READ COMMITTED) sees all that an earlier batch of this device committed.
    # (SQLite: BEGIN IMMEDIATE already serialises writers; FOR UPDATE is not rendered.)
    conn.execute(select(_devices.c.id).where(_devices.c.id == device_id).with_for_update())
    stored = store.stored_responses(list({r.id for r in records}))
    candidates = [r for r in records if r.id not in stored]
    used_seqs = store.used_seqs(device_id, list({r.seq for r in candidates if r.seq <= INT64_MAX}))
    # Without the look-up, answer ids repeated within this batch are still caught
    # here; one stored before makes the insert fail (see ingest_batch).
    used_answers = (store.used_answer_ids(list({a.id for r in candidates for a in r.answers}))
                    if check_answer_ids else set())

    results: list[RecordResult] = []
    response_rows: list[tuple] = []
    answer_rows: list[tuple] = []
    sent = batch.sent
    sent_wall, sent_boot, sent_mono = sent.wall, sent.boot_id, sent.mono
    top = 0
    for record, digest in zip(records, hashes):
        rid = record.id
        if rid in stored:
            owner, stored_hash = stored[rid]
            if owner != device_id:
                results.append(_rejected(rid, "conflict: this id was stored from another device"))
            elif stored_hash == digest:
                results.append(RecordResult(id=rid, status="duplicate"))
            else:
                results.append(_rejected(rid, "conflict: this id is stored with other content; "
                                              "the stored data is kept"))
            continue
        problem = storage_problem(record)
        if problem is not None:
            results.append(_rejected(rid, problem))
            continue
        seq = record.seq
        if seq in used_seqs:
            results.append(_rejected(rid, f"sequence number already used: seq {seq} is "
                                          "stored for this device with another id"))
            continue
        answers = record.answers
        answer_ids = [a.id for a in answers]
        if not used_answers.isdisjoint(answer_ids):
            results.append(_rejected(rid, "answer id already used by another response"))
            continue
        stored[rid] = (device_id, digest)
        used_seqs.add(seq)
        used_answers.update(answer_ids)
        if seq > top:
            top = seq
        # Corrected times as central.timecorrect.corrected_time computes them
        # (inlined: it runs for every answer; a test holds the two together).
        started = record.started
        if started.boot_id == sent_boot and started.mono <= sent_mono:
            started_at, started_ok = received_at - (sent_mono - started.mono), True
        else:
            started_at, started_ok = started.wall, False
        response_rows.append((
            rid, device_id, seq, record.questionnaire.id, record.questionnaire.version,
            record.location_id, record.language, started.wall, started.boot_id, started.mono,
            record.closed_wall, record.end_reason, record.suspect, record.suspect_reason,
            received_at, sent_wall, sent_boot, sent_mono, started_at, started_ok, digest))
        qid, version, suspect = record.questionnaire.id, record.questionnaire.version, record.suspect
        service, overall = report_keys(answers)
        for a in answers:
            at = a.at
            value = a.value
            numeric = type(value) is int
            if at.boot_id == sent_boot and at.mono <= sent_mono:
                answered_at, ok = received_at - (sent_mono - at.mono), True
            else:
                answered_at, ok = at.wall, False
            answer_rows.append((
                a.id, rid, a.ordinal, a.question_id, a.aspect, value if numeric else None,
                None if numeric else value, at.wall, at.boot_id, at.mono, answered_at, ok,
                qid, version, started_at, suspect, service, overall))
        results.append(RecordResult(id=rid, status="accepted"))

    if response_rows:
        store.insert(response_rows, answer_rows)
    conn.execute(
        update(_devices).where(_devices.c.id == device_id).values(
            last_seen_at=received_at,
            app_version=batch.app_version,
            seq_count=_devices.c.seq_count + len(response_rows),
            highest_seq=case((_devices.c.highest_seq < top, top), else_=_devices.c.highest_seq),
        )
    )
    return results


def report_keys(answers: Sequence[wire.AnswerRecord | AnswerRecord]) -> tuple[str | None, int | None]:
    """The response's service and overall grade, stored on each of its answers (central.models.Answer).

    Service: the value of the first answer (by ordinal) with aspect ``dienst`` and
    a text value; overall: of the first with aspect ``totaal`` and a whole number
    1-10. ``None`` where there is none. (Migration 0006 fills older answers the same way.)
    """
    service = overall = None
    service_at = overall_at = None
    for a in answers:
        aspect = a.aspect
        if aspect == SERVICE_ASPECT:
            if type(a.value) is str and (service_at is None or a.ordinal < service_at):
                service, service_at = a.value, a.ordinal
        elif aspect == OVERALL_ASPECT:
            value = a.value
            if (type(value) is int and 1 <= value <= 10
                    and (overall_at is None or a.ordinal < overall_at)):
                overall, overall_at = value, a.ordinal
    return service, overall


def _rejected(rid: str, reason: str) -> RecordResult:
    return RecordResult(id=rid, status="rejected", reason=reason)


# ------------------------------------------------------------------ per database

def _uses_copy(dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _store_for(conn: Connection) -> "_PostgresStore | _GenericStore":
    """How look-ups and inserts travel: the one place that differs per database."""
    return _PostgresStore(conn) if _uses_copy(conn.dialect) else _GenericStore(conn)


def _optimistic_answer_ids(engine: Engine) -> bool:
    """Skip the answer-id look-up on the first try? Only where a failed insert is cheap to
    undo and to redo: PostgreSQL's COPY (3 750 index probes saved per full batch). SQLite
    keeps the look-up (its writers queue on one lock; a redo would hold it twice as long)."""
    return _uses_copy(engine.dialect)


class _PostgresStore:
    """PostgreSQL through psycopg 3: look-ups by a join with the keys, ``COPY FROM STDIN`` inserts.

    Runs on the DBAPI connection under ``conn``, i.e. inside the same
    transaction (SQLAlchemy has begun it; the device-row lock is taken first).
    The keys travel as one comma-separated string, unnested on the server and
    joined: the planner then picks a hash or an index-nested-loop join by the
    table's size. (``col = ANY($1)`` with a non-constant array was planned, in
    psycopg's prepared generic plan, as a linear search of the array for every
    row of the device: 170 ms per 500 keys on a table of 5 000 rows, growing
    with the table.)
    """

    # Binary COPY: floats and integers travel as 8 bytes instead of being printed by
    # Python and parsed by the server (a third of the client's COPY time, some of
    # the server's). The value checks of storage_problem() keep every value in range.
    _COPY_RESPONSES = f"COPY responses ({', '.join(RESPONSE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    _COPY_ANSWERS = f"COPY answers ({', '.join(ANSWER_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

    def __init__(self, conn: Connection):
        self.raw = conn.connection.driver_connection

    def stored_responses(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        if not ids:
            return {}
        with self.raw.cursor() as cur:
            cur.execute("SELECT r.id, r.device_id, r.content_hash "
                        "FROM unnest(string_to_array(%s, ',')) AS k(id) JOIN responses r ON r.id = k.id",
                        (_joined(ids),))
            return {rid: (owner, digest) for rid, owner, digest in cur}

    def used_seqs(self, device_id: str, seqs: list[int]) -> set[int]:
        if not seqs:
            return set()
        with self.raw.cursor() as cur:
            cur.execute("SELECT r.seq FROM unnest(string_to_array(%s, ',')::bigint[]) AS k(seq) "
                        "JOIN responses r ON r.device_id = %s AND r.seq = k.seq",
                        (",".join(map(str, seqs)), device_id))
            return {seq for seq, in cur}

    def used_answer_ids(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        with self.raw.cursor() as cur:
            cur.execute("SELECT a.id FROM unnest(string_to_array(%s, ',')) AS k(id) "
                        "JOIN answers a ON a.id = k.id", (_joined(ids),))
            return {aid for aid, in cur}

    def insert(self, response_rows: list[tuple], answer_rows: list[tuple]) -> None:
        with self.raw.cursor() as cur:
            with cur.copy(self._COPY_RESPONSES) as copy:
                copy.set_types(_RESPONSE_TYPES)
                for row in response_rows:
                    copy.write_row(row)
            with cur.copy(self._COPY_ANSWERS) as copy:
                copy.set_types(_ANSWER_TYPES)
                for row in answer_rows:
                    copy.write_row(row)


def _pg_type(column) -> str:
    """The PostgreSQL type name psycopg needs for a column in a binary COPY."""
    kind = type(column.type).__name__
    names = {"String": "varchar", "Text": "text", "BigInteger": "int8", "Integer": "int4",
             "Float": "float8", "Boolean": "bool"}
    if kind not in names:
        raise TypeError(f"{column.table.name}.{column.name}: no binary COPY type for {kind}")
    return names[kind]


_RESPONSE_TYPES = [_pg_type(c) for c in _responses.columns]
_ANSWER_TYPES = [_pg_type(c) for c in _answers.columns]


def _joined(ids: list[str]) -> str:
    """Ids as one comma-separated parameter (one string to send instead of an array of
    thousands, which psycopg builds element by element). The protocol's ids are UUIDs:
    no commas; checked anyway, since a wrong split would miss a stored key."""
    text = ",".join(ids)
    if text.count(",") != len(ids) - 1:
        raise ValueError("an id contains a comma")
    return text


class _GenericStore:
    """Any other database (SQLite): chunked ``IN (…)`` look-ups, ``executemany`` of tuples."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.chunk = 900 if conn.dialect.name == "sqlite" else 10_000  # bound parameters per statement

    def stored_responses(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        return {
            row.id: (row.device_id, row.content_hash)
            for part in _chunks(ids, self.chunk)
            for row in self.conn.execute(
                select(_responses.c.id, _responses.c.device_id, _responses.c.content_hash)
                .where(_responses.c.id.in_(part)))
        }

    def used_seqs(self, device_id: str, seqs: list[int]) -> set[int]:
        return {
            seq
            for part in _chunks(seqs, self.chunk)
            for seq in self.conn.execute(select(_responses.c.seq).where(
                _responses.c.device_id == device_id, _responses.c.seq.in_(part))).scalars()
        }

    def used_answer_ids(self, ids: list[str]) -> set[str]:
        return {
            answer_id
            for part in _chunks(ids, self.chunk)
            for answer_id in self.conn.execute(
                select(_answers.c.id).where(_answers.c.id.in_(part))).scalars()
        }

    def insert(self, response_rows: list[tuple], answer_rows: list[tuple]) -> None:
        for table, columns, rows in ((_responses, RESPONSE_COLUMNS, response_rows),
                                     (_answers, ANSWER_COLUMNS, answer_rows)):
            mark = "%s" if self.conn.dialect.paramstyle in ("format", "pyformat") else "?"
            self.conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                                      f"VALUES ({', '.join([mark] * len(columns))})", rows)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
