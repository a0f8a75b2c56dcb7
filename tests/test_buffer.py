"""The durable local buffer: taps, responses, start-up checks, migrations, storage faults."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event

from kiosk import buffer_migrations
from kiosk.buffer import Buffer, BufferStats, ResponseDraft
from kiosk.clock import FakeTimeSource, Stamp, SystemTimeSource
from kiosk.errors import BufferUnavailable

ROOT = Path(__file__).resolve().parent.parent

DRAFT_FIELDS = dict(questionnaire_id="balie-standaard", questionnaire_version=1,
                    location_id="stadhuis", language="nl")


@pytest.fixture
def clock():
    return FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "buffer.sqlite3"


@pytest.fixture
def buf(db_path, clock):
    b = Buffer.open(db_path, time_source=clock)
    yield b
    b.close()


def raw(path: Path) -> sqlite3.Connection:
    """A second, independent connection (as another process would see the file)."""
    return sqlite3.connect(str(path))


def trace_statements(b: Buffer) -> list[str]:
    """Record every SQL statement SQLite runs on the buffer's connections from now on."""
    statements: list[str] = []
    b._engine.dispose()

    @event.listens_for(b._engine, "connect")
    def _trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(statements.append)

    return statements


# --------------------------------------------------------------------------- taps


def test_an_answer_is_visible_to_another_connection_as_soon_as_record_answer_returns(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    receipt = buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
    con = raw(db_path)
    row = con.execute(
        "SELECT response_id, ordinal, question_id, aspect, value_num, value_text "
        "FROM answers WHERE id = ?", (receipt.answer_id,)).fetchone()
    assert row == (draft.id, 1, "totaal", "totaal", 8, None)
    assert con.execute("SELECT seq, state FROM responses WHERE id = ?",
                       (draft.id,)).fetchone() == (1, "unsent")
    con.close()


def test_each_tap_is_exactly_one_begin_immediate_commit(buf):
    statements = trace_statements(buf)
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
    first = [s.split(" (")[0] for s in statements]
    statements.clear()
    buf.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=6)
    second = [s.split(" (")[0] for s in statements]
    assert first == ["BEGIN IMMEDIATE",
                     "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'last_seq' "
                     "RETURNING value",
                     "INSERT INTO responses", "INSERT INTO answers", "COMMIT"]
    assert second == ["BEGIN IMMEDIATE", "INSERT INTO answers", "COMMIT"]


def test_the_response_row_is_created_with_its_first_answer_and_not_before(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    assert not draft.persisted
    con = raw(db_path)
    assert con.execute("SELECT count(*) FROM responses").fetchone() == (0,)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=7)
    assert draft.persisted and draft.seq == 1
    assert con.execute("SELECT count(*) FROM responses").fetchone() == (1,)
    con.close()


def test_a_failed_first_answer_leaves_no_response_row_and_the_draft_unpersisted(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    fill_disk(buf, db_path)
    with pytest.raises(BufferUnavailable):
        buf.record_answer(draft, question_id="opmerking", aspect=None, value="x" * 200_000)
    assert not draft.persisted and draft.answers == 0
    con = raw(db_path)
    assert con.execute("SELECT count(*) FROM responses").fetchone() == (0,)
    assert con.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone() == ("0",)
    con.close()


def test_answers_get_ordinals_and_the_stamps_of_the_time_source(buf, db_path, clock):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=9)
    clock.advance(3.0)
    clock.wall = 0.0  # the wall clock jumps back (no RTC); mono keeps counting
    r2 = buf.record_answer(draft, question_id="dienst", aspect="dienst", value="paspoort")
    assert r2.ordinal == 2 and r2.stamp == Stamp(wall=0.0, boot_id="boot-a", mono=103.0)
    con = raw(db_path)
    rows = con.execute("SELECT ordinal, value_num, value_text, wall, boot_id, mono FROM answers "
                       "ORDER BY ordinal").fetchall()
    assert rows == [(1, 9, None, 1_700_000_000.0, "boot-a", 100.0),
                    (2, None, "paspoort", 0.0, "boot-a", 103.0)]
    assert con.execute("SELECT started_wall, started_boot_id, started_mono FROM responses"
                       ).fetchone() == (1_700_000_000.0, "boot-a", 100.0)
    con.close()


@pytest.mark.parametrize("value", [True, 7.5, None, b"8"])
def test_an_answer_value_must_be_an_int_or_a_str(buf, value):
    draft = buf.new_draft(**DRAFT_FIELDS)
    with pytest.raises(TypeError):
        buf.record_answer(draft, question_id="totaal", aspect="totaal", value=value)
    assert not draft.persisted


def test_sequence_numbers_increase_strictly_across_responses_and_reopens(db_path, clock):
    seen = []
    for _ in range(3):
        with Buffer.open(db_path, time_source=clock) as b:
            for _ in range(4):
                draft = b.new_draft(**DRAFT_FIELDS)
                r1 = b.record_answer(draft, question_id="totaal", aspect="totaal", value=5)
                r2 = b.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=6)
                assert r1.seq == r2.seq == draft.seq
                b.close_response(draft)
                seen.append(draft.seq)
            b.close_response(b.new_draft(**DRAFT_FIELDS))  # never persisted: takes no number
    assert seen == list(range(1, 13))


def test_sequence_numbers_are_not_reused_after_rows_are_deleted(buf, db_path):
    for _ in range(3):
        d = buf.new_draft(**DRAFT_FIELDS)
        buf.record_answer(d, question_id="totaal", aspect="totaal", value=5)
        buf.close_response(d)
    con = raw(db_path)
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("DELETE FROM responses")  # as a later pruning of sent rows would
    con.commit()
    con.close()
    d = buf.new_draft(**DRAFT_FIELDS)
    assert buf.record_answer(d, question_id="totaal", aspect="totaal", value=5).seq == 4


def test_response_drafts_have_fresh_uuids_and_a_start_stamp():
    a = ResponseDraft.new(**DRAFT_FIELDS, time_source=FakeTimeSource(wall=5.0))
    b = ResponseDraft.new(**DRAFT_FIELDS, started=Stamp(1.0, "x", 2.0))
    c = ResponseDraft.new(**DRAFT_FIELDS)  # system clock
    assert len({a.id, b.id, c.id}) == 3 and all(uuid.UUID(x.id).version == 4 for x in (a, b, c))
    assert a.started.wall == 5.0 and b.started == Stamp(1.0, "x", 2.0)
    assert c.started.boot_id == SystemTimeSource().boot_id


# --------------------------------------------------------------------------- closing, language


def test_close_response_stores_closed_at_and_end_reason(buf, db_path, clock):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
    clock.advance(12.0)
    assert buf.close_response(draft, end_reason="idle") is True
    assert draft.closed and draft.end_reason == "idle"
    con = raw(db_path)
    assert con.execute("SELECT closed_at, end_reason FROM responses").fetchone() == (
        1_700_000_012.0, "idle")
    con.close()
    assert buf.close_response(draft, end_reason="completed") is False  # first reason kept
    with pytest.raises(ValueError):
        buf.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=3)


def test_closing_a_draft_without_answers_stores_nothing(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    assert buf.close_response(draft, end_reason="abandoned") is False
    con = raw(db_path)
    assert con.execute("SELECT count(*) FROM responses").fetchone() == (0,)
    con.close()


def test_close_response_rejects_an_unknown_end_reason(buf):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
    with pytest.raises(ValueError):
        buf.close_response(draft, end_reason="bored")


def test_set_language_updates_a_stored_response_and_a_draft_not_yet_stored(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.set_language(draft, "en")  # before the first answer: in memory only
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
    con = raw(db_path)
    assert con.execute("SELECT language FROM responses").fetchone() == ("en",)
    buf.set_language(draft, "de")
    assert con.execute("SELECT language FROM responses").fetchone() == ("de",)
    con.close()


def test_responses_left_open_by_a_crash_are_closed_as_interrupted_on_open(db_path, clock):
    b = Buffer.open(db_path, time_source=clock)
    draft = b.new_draft(**DRAFT_FIELDS)
    b.record_answer(draft, question_id="totaal", aspect="totaal", value=4)
    clock.advance(5)
    b.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=2)
    done = b.new_draft(**DRAFT_FIELDS)
    b.record_answer(done, question_id="totaal", aspect="totaal", value=9)
    b.close_response(done, "completed")
    b.close()  # the visitor's response is still open: as after a power cut
    clock.advance(3600)
    with Buffer.open(db_path, time_source=clock) as b2:
        assert b2.stats().responses_open == 0
        events = b2.events()
    con = raw(db_path)
    rows = dict(con.execute("SELECT id, end_reason FROM responses").fetchall())
    closed_at = con.execute("SELECT closed_at FROM responses WHERE id = ?",
                            (draft.id,)).fetchone()[0]
    con.close()
    assert rows == {draft.id: "interrupted", done.id: "completed"}
    assert closed_at == 1_700_000_005.0  # the last answer's time, not the reopening's
    assert [e.kind for e in events] == ["responses_interrupted"]


def test_a_second_opener_does_not_close_the_owners_open_responses(buf, db_path, clock):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=4)
    with Buffer.open(db_path, time_source=clock) as status_reader:
        assert not status_reader.is_owner
        assert status_reader.stats().responses_open == 1
    assert buf.is_owner
    buf.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=5)
    assert buf.close_response(draft, "completed") is True


def test_inspect_reads_the_stats_beside_a_running_owner_without_touching_anything(buf, db_path):
    draft = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=4)
    stats = Buffer.inspect(db_path)
    assert stats == buf.stats()
    assert stats.responses_open == 1 and stats.answers_total == 1
    buf.record_answer(draft, question_id="wachttijd", aspect="wachttijd", value=5)
    assert buf.close_response(draft, "completed") is True


def test_inspect_of_a_missing_buffer_says_so(tmp_path):
    with pytest.raises(BufferUnavailable, match="no such file"):
        Buffer.inspect(tmp_path / "nothing.sqlite3")


# --------------------------------------------------------------------------- stats, events, meta


def test_stats_count_responses_by_state_open_responses_and_answers(buf, db_path, clock):
    empty = buf.stats()
    assert empty == BufferStats(0, 0, 0, 0, 0, 0, None, db_path.absolute())
    drafts = []
    for i in range(4):
        d = buf.new_draft(**DRAFT_FIELDS)
        for q in range(i + 1):
            buf.record_answer(d, question_id=f"q{q}", aspect="totaal", value=q + 1)
        drafts.append(d)
        clock.advance(60)
    for d in drafts[:3]:
        buf.close_response(d)
    con = raw(db_path)  # as the later uploader would
    con.execute("UPDATE responses SET state = 'sent' WHERE seq = 1")
    con.execute("UPDATE responses SET state = 'quarantined', state_reason = 'bad' WHERE seq = 2")
    con.commit()
    con.close()
    stats = buf.stats()
    assert stats == BufferStats(
        responses_total=4, responses_unsent=2, responses_sent=1, responses_quarantined=1,
        responses_open=1, answers_total=10, last_response_at=1_700_000_180.0,
        path=db_path.absolute())


def test_events_are_stored_with_their_time(buf, clock):
    buf.record_event("sync_error", "connection refused")
    clock.advance(1)
    buf.record_event("note", "ok")
    assert buf.events() == [("sync_error", "connection refused", 1_700_000_000.0),
                            ("note", "ok", 1_700_000_001.0)]


def test_the_device_id_is_a_random_uuid_kept_with_the_database(db_path, tmp_path):
    with Buffer.open(db_path) as b:
        first = b.device_id
    with Buffer.open(db_path) as b:
        assert b.device_id == first
    with Buffer.open(tmp_path / "other.sqlite3") as other:
        assert other.device_id != first
    assert uuid.UUID(first).version == 4


def test_the_pragmas_are_in_force_on_the_buffers_connections(buf):
    with buf._engine.connect() as conn:
        got = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
               for p in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    assert got == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000,
                   "foreign_keys": 1}


def test_open_creates_missing_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "c" / "buffer.sqlite3"
    with Buffer.open(path) as b:
        assert b.stats().responses_total == 0
    assert path.is_file()


# --------------------------------------------------------------------------- damaged files


def test_a_file_that_is_not_a_database_is_set_aside_and_a_fresh_buffer_starts(db_path):
    db_path.parent.mkdir(parents=True)
    garbage = os.urandom(8192)
    db_path.write_bytes(garbage)
    with Buffer.open(db_path) as b:
        draft = b.new_draft(**DRAFT_FIELDS)
        b.record_answer(draft, question_id="totaal", aspect="totaal", value=8)
        events = b.events()
        assert b.stats().answers_total == 1
    aside = list(db_path.parent.glob("buffer.sqlite3.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage  # moved, never deleted
    assert [e.kind for e in events] == ["buffer_set_aside"]
    assert str(aside[0]) in events[0].detail and "not a database" in events[0].detail


def test_a_database_truncated_mid_page_is_set_aside_with_its_wal_and_shm(tmp_path, clock):
    source = tmp_path / "source.sqlite3"
    with Buffer.open(source, time_source=clock) as b:
        for _ in range(300):
            d = b.new_draft(**DRAFT_FIELDS)
            for q in range(5):
                b.record_answer(d, question_id=f"q{q}", aspect="totaal", value=q)
            b.close_response(d)
    # Snapshot the files while a writer holds un-checkpointed WAL frames: the
    # state a power cut leaves behind. Then truncate the main file mid-page.
    writer = raw(source)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    writer.commit()
    db_path = tmp_path / "buffer.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
    writer.close()
    size = db_path.stat().st_size
    wal = Path(f"{db_path}-wal").read_bytes()
    assert wal
    with open(db_path, "r+b") as f:
        f.truncate(size // 2 + 1000)  # mid-page
    with Buffer.open(db_path, time_source=clock) as b:
        assert b.stats().answers_total == 0
        d = b.new_draft(**DRAFT_FIELDS)
        assert b.record_answer(d, question_id="totaal", aspect="totaal", value=8).seq == 1
        (event_,) = b.events()
    assert event_.kind == "buffer_set_aside"
    names = sorted(p.name for p in tmp_path.glob("buffer.sqlite3.damaged-*"))
    assert len(names) == 3
    assert names[1].endswith("-shm") and names[2].endswith("-wal")
    assert (tmp_path / names[0]).stat().st_size == size // 2 + 1000
    assert (tmp_path / names[2]).read_bytes() == wal  # moved as found
    assert names[0] in event_.detail


def test_a_sound_database_is_never_set_aside(db_path):
    for _ in range(3):
        with Buffer.open(db_path) as b:
            d = b.new_draft(**DRAFT_FIELDS)
            b.record_answer(d, question_id="totaal", aspect="totaal", value=8)
    assert not list(db_path.parent.glob("*.damaged-*"))
    with Buffer.open(db_path) as b:
        assert b.events() == [] or all(e.kind != "buffer_set_aside" for e in b.events())


# --------------------------------------------------------------------------- migrations


def test_the_head_constant_matches_the_migration_scripts():
    assert buffer_migrations.script_head() == buffer_migrations.HEAD_REVISION


def test_the_migrated_schema_matches_the_table_definitions(buf):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from kiosk.buffer_schema import metadata

    with buf._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_database_at_head_opens_without_running_or_importing_alembic(db_path, monkeypatch):
    Buffer.open(db_path).close()

    def refuse(*_a, **_k):
        raise AssertionError("alembic upgrade ran on a database at head")

    monkeypatch.setattr(buffer_migrations, "upgrade", refuse)
    with Buffer.open(db_path) as b:
        assert b.revision_checked_fast
    code = (
        "import sys; from kiosk.buffer import Buffer; "
        f"b = Buffer.open({str(db_path)!r}); "
        "print(b.revision_checked_fast, 'alembic' in sys.modules, 'sqlalchemy' in sys.modules); "
        "b.warm_up(); print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    # Neither Alembic nor SQLAlchemy before the first frame; warm_up loads SQLAlchemy only.
    assert out == ["True", "False", "False", "True", "False"]


def test_the_fast_open_closes_interrupted_responses_as_the_sqlalchemy_statement_does(tmp_path):
    from kiosk import buffer_sql
    from kiosk.buffer import CLOSE_INTERRUPTED_SQL

    source = tmp_path / "src" / "buffer.sqlite3"
    clock = FakeTimeSource(wall=1000.0)
    with Buffer.open(source, time_source=clock) as b:
        for n in range(3):  # open responses with 1, 2 and 3 answers, minutes apart
            d = b.new_draft(**DRAFT_FIELDS)
            for k in range(n + 1):
                clock.advance(60)
                b.record_answer(d, question_id=f"q{k}", aspect=None, value=k + 1)
        done = b.new_draft(**DRAFT_FIELDS)
        b.record_answer(done, question_id="q0", aspect=None, value=1)
        b.close_response(done)
    copies = []
    for name in ("plain", "sqlalchemy"):
        target = tmp_path / name / "buffer.sqlite3"
        target.parent.mkdir()
        shutil.copy(source, target)
        copies.append(target)
    con = raw(copies[0])
    con.execute(CLOSE_INTERRUPTED_SQL)
    con.commit()
    con.close()
    engine = buffer_sql.make_engine(copies[1])
    with engine.begin() as conn:
        conn.execute(buffer_sql.CLOSE_INTERRUPTED)
    engine.dispose()
    query = "SELECT id, closed_at, end_reason FROM responses ORDER BY seq"
    results = []
    for path in copies:
        con = raw(path)
        results.append(con.execute(query).fetchall())
        con.close()
    assert results[0] == results[1]
    assert [r[2] for r in results[0]] == ["interrupted"] * 3 + ["completed"]


def test_an_empty_database_file_is_migrated_to_head(db_path):
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(str(db_path))
    con.execute("PRAGMA user_version = 1")  # a real, empty SQLite file
    con.close()
    assert db_path.stat().st_size > 0
    with Buffer.open(db_path) as b:
        assert not b.revision_checked_fast
        assert b.device_id
    con = raw(db_path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (
        buffer_migrations.HEAD_REVISION,)
    con.close()


def test_a_database_at_an_older_revision_is_migrated(db_path):
    from alembic import command

    Buffer.open(db_path).close()
    b = Buffer.open(db_path)
    with b._engine.begin() as conn:
        command.downgrade(buffer_migrations.alembic_config(conn), "base")
    b.close()
    con = raw(db_path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert "responses" not in tables
    with Buffer.open(db_path) as b:
        assert not b.revision_checked_fast
        d = b.new_draft(**DRAFT_FIELDS)
        assert b.record_answer(d, question_id="totaal", aspect="totaal", value=8).seq == 1


def test_a_database_from_a_newer_release_is_refused_and_left_untouched(db_path):
    Buffer.open(db_path).close()
    con = raw(db_path)
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    with pytest.raises(BufferUnavailable, match="9999.*newer release"):
        Buffer.open(db_path)
    con = raw(db_path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)
    con.close()
    assert not list(db_path.parent.glob("*.damaged-*"))


# --------------------------------------------------------------------------- storage faults


def fill_disk(b: Buffer, path: Path) -> None:
    """Make the buffer's file unable to grow, as on a full disk (SQLITE_FULL)."""
    con = raw(path)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    b._engine.dispose()

    @event.listens_for(b._engine, "connect")
    def _cap(dbapi_connection, _record):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")


def test_a_full_disk_raises_buffer_unavailable_and_keeps_what_was_stored(buf, db_path):
    kept = buf.new_draft(**DRAFT_FIELDS)
    buf.record_answer(kept, question_id="totaal", aspect="totaal", value=8)
    fill_disk(buf, db_path)
    with pytest.raises(BufferUnavailable) as err:
        buf.record_answer(kept, question_id="opmerking", aspect=None, value="y" * 200_000)
    assert str(db_path.absolute()) in str(err.value) and "disk is full" in str(err.value)
    assert kept.answers == 1
    # The buffer still works for what fits, and nothing stored was changed.
    buf.record_answer(kept, question_id="wachttijd", aspect="wachttijd", value=7)
    con = raw(db_path)
    assert con.execute("SELECT ordinal, value_num FROM answers ORDER BY ordinal").fetchall() == [
        (1, 8), (2, 7)]
    assert con.execute("PRAGMA quick_check").fetchone() == ("ok",)
    con.close()


def test_an_uncreatable_folder_raises_buffer_unavailable_naming_the_path(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    path = blocker / "buffer.sqlite3"
    with pytest.raises(BufferUnavailable) as err:
        Buffer.open(path)
    assert str(path) in str(err.value) and "create its folder" in str(err.value)


def _run_unprivileged(fn) -> tuple[str, str]:
    """Run ``fn()`` where file permissions apply: as ``nobody`` in a child if we are root.

    Returns ("ok", "") or (exception class name, message).
    """
    def call():
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - reported to the parent
            return type(err).__name__, str(err)
        return "ok", ""

    if os.geteuid() != 0:
        return call()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            kind, msg = call()
            os.write(w, f"{kind}\n{msg}".encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    kind, _, msg = data.decode().partition("\n")
    return kind, msg


def test_a_read_only_buffer_file_raises_buffer_unavailable_and_is_not_changed():
    folder = Path(tempfile.mkdtemp(prefix="balie-ro-"))  # reachable by an unprivileged child
    try:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as b:
            d = b.new_draft(**DRAFT_FIELDS)
            b.record_answer(d, question_id="totaal", aspect="totaal", value=8)
        before = path.read_bytes()
        folder.chmod(0o777)  # the folder is writable (lock, -wal, -shm); the file is not
        path.chmod(0o444)
        kind, msg = _run_unprivileged(lambda: Buffer.open(path))
        assert kind == "BufferUnavailable", msg
        assert str(path) in msg and "read-only" in msg
        assert path.read_bytes() == before
        assert not list(folder.glob("*.damaged-*"))
    finally:
        for p in folder.iterdir():
            p.chmod(0o644)
            p.unlink()
        folder.rmdir()
