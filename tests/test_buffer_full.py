"""The buffer on a full and on a read-only file system: real tmpfs mounts (tests/smallfs.py, root).

What SQLite 3.40 did here (tmpfs, WAL, ``synchronous=FULL``), and what the tests pin down:

* A commit that must grow the WAL fails at once on a full disk with
  ``SQLITE_FULL``; the transaction rolls back, the file stays sound
  (``integrity_check`` ok) and every earlier row is unchanged. The next
  commit after space is freed goes through.
* A WAL that was checkpointed and restarted has room: new commits overwrite it
  from its start and go on succeeding on a full disk (11 visits of two commits
  in a 500 kB WAL here) until they reach its end, and only then fail. So
  "the disk is full" is not "no commit works": the terminal goes out of order
  on a commit that fails, not on the free space.
* A buffer closed cleanly (no ``-wal``/``-shm``) on a full disk cannot even be
  read the normal way: SQLite cannot size the ``-shm`` file and reports
  ``SQLITE_IOERR_SHMSIZE`` ("disk I/O error"), which the buffer reports as a
  full disk (no space left). A read-only mount gives ``SQLITE_CANTOPEN`` for
  the same reason. With no WAL content, ``immutable=1`` still reads the file
  (:func:`kiosk.buffer.read_only_connection`).
* ``mount -o remount,ro`` fails (EBUSY) while a file on the mount is open
  for writing, so the read-only cases close the buffer first, remount, and
  open it again. ``chattr +i`` (an immutable buffer file) works on tmpfs as
  root and gives ``SQLITE_READONLY`` at the first write.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from kiosk.buffer import Buffer
from kiosk.errors import BufferUnavailable
from tests.smallfs import fill, small_filesystem

FIELDS = dict(questionnaire_id="balie-standaard", questionnaire_version=1, location_id="balie-1",
              language="nl")


def visit(buf: Buffer, value: int = 8, *, close: bool = True):
    """One visitor: a first answer (one commit) and, if ``close``, the visit's end (another)."""
    draft = buf.new_draft(**FIELDS)
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=value)
    if close:
        buf.close_response(draft, end_reason="completed")
    return draft


def stored(path: Path) -> tuple[list, list]:
    """Every response and answer row, in order (read on a plain read-only connection)."""
    from kiosk.buffer import read_only_connection

    con = read_only_connection(path)
    try:
        return (con.execute("SELECT * FROM responses ORDER BY seq").fetchall(),
                con.execute("SELECT * FROM answers ORDER BY wall, id").fetchall())
    finally:
        con.close()


def integrity(path: Path) -> list:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True,
                   capture_output=True)


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


# --------------------------------------------------------------------------- a full disk


def test_a_commit_on_a_full_disk_fails_as_full_rolls_back_and_the_next_one_after_freeing_works(
        tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            for value in (7, 8, 9):
                visit(buf, value)
            before = stored(path)
            filler = fill(folder)
            with pytest.raises(BufferUnavailable) as failed:
                visit(buf, 3)
            assert failed.value.cause == "full"
            assert "the disk is full" in str(failed.value)
            assert buf.last_write_cause == "full" and "the disk is full" in buf.last_write_error
            assert buf.last_write_error_at is not None
            with pytest.raises(BufferUnavailable):
                buf.probe_write()
            assert stored(path) == before  # the failed visit left nothing behind
            filler.unlink()
            buf.probe_write()
            assert buf.last_write_error is None and buf.last_write_cause is None
            visit(buf, 4)
        responses, answers = stored(path)
        assert integrity(path) == [("ok",)]
        assert responses[:3] == before[0] and answers[:3] == before[1]
        assert [a[5] for a in answers] == [7, 8, 9, 4]


def test_a_wal_with_room_takes_commits_on_a_full_disk_until_it_must_grow(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=4096) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            for _ in range(10):
                visit(buf)
            con = sqlite3.connect(path)
            busy, frames, copied = con.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            con.close()
            assert busy == 0 and frames == copied > 0  # the next writer starts the WAL over
            fill(folder)
            on_full_disk = 0
            with pytest.raises(BufferUnavailable) as failed:
                while on_full_disk < 1000:
                    visit(buf, 6)
                    on_full_disk += 1
            assert failed.value.cause == "full"
            # Observed: 11 visits went into the old WAL's room before one had to grow it.
            assert 1 <= on_full_disk < 1000, on_full_disk
            responses, answers = stored(path)
        assert integrity(path) == [("ok",)]
        # every visit that returned is there; the one that failed left at most its first answer
        assert len(answers) in (10 + on_full_disk, 10 + on_full_disk + 1)
        assert sum(1 for r in responses if r[9] is None) <= 1  # closed_at: a failed close only


def test_a_full_disk_at_start_up_gives_a_buffer_open_for_reading_until_space_is_freed(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            visit(buf, 9)
            visit(buf, 2, close=False)  # a crash: left open, closed as interrupted at the next open
        before = stored(path)
        filler = fill(folder)
        with pytest.raises(BufferUnavailable) as failed:
            Buffer.open(path)  # the default: raise, as before
        assert failed.value.cause == "full"
        buf = Buffer.open(path, read_only_fallback=True)
        try:
            assert buf.writable is False
            assert buf.last_write_cause == "full" and buf.open_error == buf.last_write_error
            assert buf.stats().answers_total == 2  # reads work (immutable: no WAL content)
            with pytest.raises(BufferUnavailable) as refused:
                visit(buf)
            assert refused.value.cause == "full" and "opened for reading only" in str(refused.value)
            with pytest.raises(BufferUnavailable):
                buf.try_writable()
            assert buf.writable is False
            filler.unlink()
            assert buf.try_writable() is True and buf.writable and buf.open_error is None
            buf.probe_write()
            assert buf.last_write_error is None
            visit(buf, 5)
            assert buf.stats().responses_open == 0  # the crash's visit: closed as interrupted
        finally:
            buf.close()
        responses, answers = stored(path)
        assert integrity(path) == [("ok",)]
        assert answers[:2] == before[1]
        assert [r[10] for r in responses] == ["completed", "interrupted", "completed"]


# --------------------------------------------------------------------------- read-only storage


def test_a_buffer_on_a_read_only_mount_opens_for_reading_and_turns_writable_after_a_remount(
        tmp_path):
    """Remount read-only *before* the terminal opens the buffer: ``remount,ro`` fails with
    EBUSY while a file on the mount is open for writing, so the buffer is made and closed first."""
    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            visit(buf, 8)
            visit(buf, 6)
        before, raw = stored(path), path.read_bytes()
        remount(folder, "ro")
        try:
            with pytest.raises(BufferUnavailable) as failed:
                Buffer.open(path)
            assert failed.value.cause == "read_only"
            assert "read-only file system" in str(failed.value)
            buf = Buffer.open(path, read_only_fallback=True)
            assert buf.writable is False and buf.last_write_cause == "read_only"
            assert buf.stats().answers_total == 2 and buf.backlog().responses == 2
            assert buf.events() == []
            with pytest.raises(BufferUnavailable) as refused:
                visit(buf)
            assert refused.value.cause == "read_only"
            with pytest.raises(BufferUnavailable):
                buf.try_writable()
            assert path.read_bytes() == raw
        finally:
            remount(folder, "rw")
        try:
            assert buf.try_writable() is True
            buf.probe_write()
            visit(buf, 10)
        finally:
            buf.close()
        responses, answers = stored(path)
        assert integrity(path) == [("ok",)]
        assert responses[:2] == before[0] and answers[:2] == before[1]
        assert len(answers) == 3


def test_an_immutable_buffer_file_opens_for_reading_until_the_flag_is_taken_off(tmp_path):
    """``chattr +i`` as root: the file cannot be written (nor its mode changed) by anyone."""
    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            visit(buf, 8)
        raw = path.read_bytes()
        chattr("+i", path)
        try:
            buf = Buffer.open(path, read_only_fallback=True)
            assert buf.writable is False and buf.last_write_cause == "read_only"
            assert "read-only" in buf.open_error
            assert buf.stats().answers_total == 1
            with pytest.raises(BufferUnavailable):
                buf.try_writable()
            assert path.read_bytes() == raw
        finally:
            chattr("-i", path)
        try:
            buf.try_writable()
            visit(buf, 9)
            assert buf.stats().answers_total == 2
        finally:
            buf.close()
        assert integrity(path) == [("ok",)]


def test_the_fallback_is_only_for_storage_faults_a_newer_schema_still_refuses(tmp_path):
    path = tmp_path / "buffer.sqlite3"
    with Buffer.open(path) as buf:
        visit(buf)
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = 'from-the-future'")
    con.commit()
    con.close()
    with pytest.raises(BufferUnavailable) as failed:
        Buffer.open(path, read_only_fallback=True)
    assert failed.value.cause is None and "newer release" in str(failed.value)


def test_status_reads_a_buffer_on_a_read_only_mount(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        path = folder / "buffer.sqlite3"
        with Buffer.open(path) as buf:
            visit(buf, 8)
        remount(folder, "ro")
        try:
            assert Buffer.inspect(path).answers_total == 1
        finally:
            remount(folder, "rw")
