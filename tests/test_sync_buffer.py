"""The buffer's side of sync: pending responses oldest first, marking sent, quarantine, backlog."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from kiosk.buffer import Backlog, Buffer
from kiosk.clock import FakeTimeSource
from sync.protocol import ResponseRecord
from tests.sync_test_server import fill_buffer


@pytest.fixture
def clock():
    return FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")


@pytest.fixture
def buf(tmp_path, clock):
    b = Buffer.open(tmp_path / "buffer.sqlite3", time_source=clock)
    yield b
    b.close()


def states(buf) -> dict[str, tuple]:
    con = sqlite3.connect(buf.path)
    try:
        return {r[0]: r[1:] for r in con.execute("SELECT id, state, state_reason FROM responses")}
    finally:
        con.close()


def test_pending_returns_closed_unsent_responses_oldest_first_as_protocol_records(buf, clock):
    ids = fill_buffer(buf, 3, answers=2)
    records = buf.pending(10)
    assert [r.id for r in records] == ids
    assert [r.seq for r in records] == [1, 2, 3]
    assert all(isinstance(r, ResponseRecord) for r in records)
    first = records[0]
    assert first.questionnaire.id == "balie-standaard" and first.questionnaire.version == 1
    assert first.location_id == "stadhuis" and first.language == "nl"
    assert first.end_reason == "completed"
    assert [(a.ordinal, a.question_id, a.value) for a in first.answers] == [(1, "q1", 8), (2, "q2", 8)]
    assert first.answers[0].at.boot_id == "boot-a" and first.answers[0].at.wall == clock.wall


def test_pending_respects_the_limit_and_keeps_the_oldest(buf):
    ids = fill_buffer(buf, 5)
    assert [r.id for r in buf.pending(2)] == ids[:2]
    assert buf.pending(0) == []


def test_open_responses_are_not_pending(buf):
    fill_buffer(buf, 1, close=False)
    closed = fill_buffer(buf, 1)
    assert [r.id for r in buf.pending(10)] == closed


def test_text_answers_are_sent_as_strings(buf):
    fill_buffer(buf, 1, answers=2, text="prima geholpen")
    assert [a.value for a in buf.pending(1)[0].answers] == [8, "prima geholpen"]


def test_pending_reads_responses_and_answers_in_two_queries_whatever_the_backlog(buf):
    fill_buffer(buf, 50, answers=3)
    statements: list[str] = []
    buf._engine.dispose()
    from sqlalchemy import event

    @event.listens_for(buf._engine, "connect")
    def _trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(statements.append)

    records = buf.pending(50)
    assert len(records) == 50 and sum(len(r.answers) for r in records) == 150
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
    assert [s.split()[0].upper() for s in statements if not s.startswith("PRAGMA")] == [
        "BEGIN", "SELECT", "SELECT", "COMMIT"]


def test_mark_sent_changes_only_unsent_responses_in_one_commit(buf):
    a, b, c = fill_buffer(buf, 3)
    assert buf.quarantine({c: "conflict"}) == 1
    assert buf.mark_sent([a, c, "no-such-id"]) == 1  # c stays quarantined
    assert states(buf) == {a: ("sent", None), b: ("unsent", None), c: ("quarantined", "conflict")}
    assert buf.mark_sent([a]) == 0
    assert [r.id for r in buf.pending(10)] == [b]


def test_quarantine_keeps_the_reason_records_an_event_and_never_touches_sent_rows(buf):
    a, b = fill_buffer(buf, 2)
    buf.mark_sent([a])
    assert buf.quarantine({a: "late", b: "conflict: same id, other content"}) == 1
    assert states(buf)[a] == ("sent", None)
    assert states(buf)[b] == ("quarantined", "conflict: same id, other content")
    kinds = [e.kind for e in buf.events()]
    assert kinds.count("responses_quarantined") == 1
    assert buf.quarantine({}) == 0 and buf.mark_sent([]) == 0


def test_backlog_counts_pending_responses_their_answers_quarantine_and_open(buf):
    fill_buffer(buf, 1, close=False)
    a, b, c = fill_buffer(buf, 3, answers=2)
    buf.mark_sent([a])
    buf.quarantine({b: "conflict"})
    assert buf.backlog() == Backlog(responses=1, answers=2, quarantined=1, open=1)


def test_a_stored_response_that_does_not_fit_the_protocol_is_reported_not_returned(buf, tmp_path):
    good, bad = fill_buffer(buf, 2)
    con = sqlite3.connect(buf.path)
    con.execute("UPDATE responses SET location_id = 'Stad Huis!' WHERE id = ?", (bad,))
    con.commit()
    con.close()
    invalid: dict[str, str] = {}
    assert [r.id for r in buf.pending(10, invalid=invalid)] == [good]
    assert list(invalid) == [bad] and "location_id" in invalid[bad]


def test_a_tap_commits_while_the_sync_thread_reads_a_large_backlog(buf):
    """Two threads, two pooled connections; WAL lets the tap commit during the read."""
    fill_buffer(buf, 100, answers=5)
    done = threading.Event()
    errors = []

    def sync_reads():
        try:
            for _ in range(5):
                buf.pending(100)
        except Exception as err:  # pragma: no cover - the assertion below shows it
            errors.append(err)
        finally:
            done.set()

    t = threading.Thread(target=sync_reads)
    t.start()
    taps = 0
    while not done.is_set() or taps < 5:
        fill_buffer(buf, 1, answers=1)
        taps += 1
    t.join()
    assert errors == []
    assert buf.backlog().responses == 100 + taps
