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
transaction per batch: a few ``SELECT … WHERE id IN (…)`` for the whole batch,
then one multi-row insert per table, so the cost does not grow with round trips.
Batches of one device are serialised by a lock on its device row, so two
central processes storing the same batch at once see each other's commits
(the later one answers ``duplicate``). Should an insert still hit a key stored
concurrently (e.g. by another device), the transaction is rolled back and the
batch re-evaluated once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from central.errors import RequestRefused
from central.models import Answer, Device, Response
from central.timecorrect import corrected_time
from sync.protocol import Batch, RecordResult, ResponseRecord

log = logging.getLogger("balie.central.ingest")
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_responses = Response.__table__
_answers = Answer.__table__
_devices = Device.__table__


def content_hash(record: ResponseRecord) -> str:
    """sha256 hex of the record's canonical JSON (sorted keys, defaults filled in).

    Everything in the record counts, nothing is left out: a retry of the same
    record hashes the same; any changed field is a conflict. The batch's
    ``sent`` clock is not part of the record, so it may differ between retries.
    Built with the standard ``json`` module (not pydantic's serialiser) so the
    hash stays stable across library upgrades.
    """
    canonical = json.dumps(record.model_dump(mode="json"), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def ingest_batch(engine: Engine, device_id: str, batch: Batch, *, received_at: float) -> list[RecordResult]:
    """Store ``batch`` from the authenticated ``device_id``; one result per record, in order.

    ``received_at``: the server's wall clock when the batch arrived (the base of
    the corrected times). Raises :class:`RequestRefused` (503) when a concurrent
    writer still collides after one re-evaluation; safe to retry.
    """
    hashes = [content_hash(record) for record in batch.responses]
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                return _ingest(conn, device_id, batch, hashes, received_at)
        except IntegrityError:
            log.info("batch of %s collided with a concurrent writer (attempt %d)", device_id, attempt)
            if attempt == 2:
                raise RequestRefused(503, "busy", "a concurrent batch stored the same records; "
                                     "send again") from None
    raise AssertionError("unreachable")


def _ingest(conn: Connection, device_id: str, batch: Batch, hashes: list[str],
            received_at: float) -> list[RecordResult]:
    records = batch.responses
    # Lock the device's row first: batches of one device then run one after the
    # other, and every SELECT below (each its own snapshot under PostgreSQL's
    # READ COMMITTED) sees all that an earlier batch of this device committed.
    # (SQLite: BEGIN IMMEDIATE already serialises writers; FOR UPDATE is not rendered.)
    conn.execute(select(_devices.c.id).where(_devices.c.id == device_id).with_for_update())
    chunk = 900 if conn.dialect.name == "sqlite" else 10_000  # bound parameters per statement
    stored = {
        row.id: (row.device_id, row.content_hash)
        for part in _chunks(list({r.id for r in records}), chunk)
        for row in conn.execute(select(_responses.c.id, _responses.c.device_id, _responses.c.content_hash)
                                .where(_responses.c.id.in_(part)))
    }
    candidates = [r for r in records if r.id not in stored]
    used_seqs = {
        seq
        for part in _chunks(list({r.seq for r in candidates if r.seq <= INT64_MAX}), chunk)
        for seq in conn.execute(select(_responses.c.seq).where(
            _responses.c.device_id == device_id, _responses.c.seq.in_(part))).scalars()
    }
    used_answers = {
        answer_id
        for part in _chunks(list({a.id for r in candidates for a in r.answers}), chunk)
        for answer_id in conn.execute(select(_answers.c.id).where(_answers.c.id.in_(part))).scalars()
    }

    results: list[RecordResult] = []
    response_rows: list[dict] = []
    answer_rows: list[dict] = []
    sent = batch.sent
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
        if record.seq in used_seqs:
            results.append(_rejected(rid, f"sequence number already used: seq {record.seq} is "
                                          "stored for this device with another id"))
            continue
        if any(a.id in used_answers for a in record.answers):
            results.append(_rejected(rid, "answer id already used by another response"))
            continue
        stored[rid] = (device_id, digest)
        used_seqs.add(record.seq)
        used_answers.update(a.id for a in record.answers)
        response_rows.append(_response_row(record, device_id, digest, sent, received_at))
        answer_rows.extend(_answer_rows(record, sent, received_at))
        results.append(RecordResult(id=rid, status="accepted"))

    if response_rows:
        conn.execute(insert(_responses), response_rows)
        conn.execute(insert(_answers), answer_rows)
    top = max((row["seq"] for row in response_rows), default=0)
    conn.execute(
        update(_devices).where(_devices.c.id == device_id).values(
            last_seen_at=received_at,
            app_version=batch.app_version,
            seq_count=_devices.c.seq_count + len(response_rows),
            highest_seq=case((_devices.c.highest_seq < top, top), else_=_devices.c.highest_seq),
        )
    )
    return results


def _rejected(rid: str, reason: str) -> RecordResult:
    return RecordResult(id=rid, status="rejected", reason=reason)


def _response_row(record: ResponseRecord, device_id: str, digest: str, sent, received_at: float) -> dict:
    started_at, verified = corrected_time(record.started, sent=sent, received_at=received_at)
    return {
        "id": record.id,
        "device_id": device_id,
        "seq": record.seq,
        "questionnaire_id": record.questionnaire.id,
        "questionnaire_version": record.questionnaire.version,
        "location_id": record.location_id,
        "language": record.language,
        "started_wall": record.started.wall,
        "started_boot": record.started.boot_id,
        "started_mono": record.started.mono,
        "closed_wall": record.closed_wall,
        "end_reason": record.end_reason,
        "suspect": record.suspect,
        "suspect_reason": record.suspect_reason,
        "received_at": received_at,
        "sent_wall": sent.wall,
        "sent_boot": sent.boot_id,
        "sent_mono": sent.mono,
        "started_at": started_at,
        "time_verified": verified,
        "content_hash": digest,
    }


def _answer_rows(record: ResponseRecord, sent, received_at: float) -> Iterator[dict]:
    for answer in record.answers:
        at, verified = corrected_time(answer.at, sent=sent, received_at=received_at)
        numeric = isinstance(answer.value, int)
        yield {
            "id": answer.id,
            "response_id": record.id,
            "ordinal": answer.ordinal,
            "question_id": answer.question_id,
            "aspect": answer.aspect,
            "value_num": answer.value if numeric else None,
            "value_text": None if numeric else answer.value,
            "at_wall": answer.at.wall,
            "at_boot": answer.at.boot_id,
            "at_mono": answer.at.mono,
            "answered_at": at,
            "time_verified": verified,
        }


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
