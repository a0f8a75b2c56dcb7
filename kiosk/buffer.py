"""The device's durable local buffer: every tap is one committed SQLite transaction.

Use::

    from kiosk.buffer import Buffer

    buf = Buffer.open(data_dir / "buffer.sqlite3")
    draft = buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                          location_id="stadhuis", language="nl")
    buf.record_answer(draft, question_id="totaal", aspect="totaal", value=8)  # durable now
    buf.close_response(draft, end_reason="completed")
    buf.close()

Operating rules:

* One call, one unit of work: ``record_answer``, ``close_response``,
  ``set_language`` and ``record_event`` each run in one ``BEGIN IMMEDIATE …
  COMMIT`` and return only after the commit, which with WAL and
  ``synchronous=FULL`` has reached the disk (fsync of the WAL). A failed call
  rolls back and raises :class:`~kiosk.errors.BufferUnavailable`; nothing
  stored before is touched.
* A response row exists only together with its first answer (same
  transaction), so the buffer never holds empty responses. It gets the next
  per-device sequence number at that moment.
* Only closed responses (``closed_at`` and ``end_reason`` set) are for the
  uploader; a response left open by a crash is closed as ``interrupted`` the
  next time the buffer is opened by the process that owns it.
* One process owns the buffer at a time (an ``flock`` on ``<name>.lock``). A
  second process (e.g. ``balie-kiosk status`` while the kiosk runs) may open
  it to read and record but does no start-up repair.
* Storage faults are told apart (``BufferUnavailable.cause``: ``full``,
  ``read_only``, ``io``, ``locked``, ``damaged``), and the last failed write
  is remembered (:attr:`Buffer.last_write_error`, ``last_write_cause``) for
  the health check, the out-of-order screen and the admin screen. The
  terminal opens with ``read_only_fallback=True``: storage that refuses
  writes at start-up gives a buffer opened for reading only (no restart
  loop), which :meth:`Buffer.try_writable` later makes whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

from kiosk import buffer_migrations
from kiosk.clock import Stamp, TimeSource, system_time_source
from kiosk.errors import STORAGE_FAULTS, BufferUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: How a response ended. ``interrupted``: left open by a crash or power cut
#: and closed when the buffer was next opened. (kiosk.buffer_schema's CHECK uses it.)
END_REASONS = ("completed", "idle", "abandoned", "interrupted")

try:  # POSIX only; without it every opener counts as the owner.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["Backlog", "Buffer", "BufferStats", "Event", "Receipt", "ResponseDraft", "END_REASONS"]

BUSY_TIMEOUT_MS = 5000

# SQLite primary result codes (sqlite3 exposes them from Python 3.11 on).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_READONLY = 3, 5, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26
_DAMAGED = {_SQLITE_CORRUPT, _SQLITE_NOTADB}
#: SQLite result code / errno → the BufferUnavailable cause (kiosk.errors.BUFFER_FAULTS).
_FAULTS = {
    _SQLITE_FULL: "full", _SQLITE_READONLY: "read_only", _SQLITE_PERM: "read_only",
    _SQLITE_CANTOPEN: "read_only", _SQLITE_IOERR: "io", _SQLITE_BUSY: "locked",
    _SQLITE_CORRUPT: "damaged", _SQLITE_NOTADB: "damaged",
}
_OS_FAULTS = {
    errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read_only",
    errno.EACCES: "read_only", errno.EPERM: "read_only", errno.EIO: "io",
}
_CAUSES = {
    _SQLITE_PERM: "permission denied",
    _SQLITE_BUSY: "the database is locked by another process",
    _SQLITE_READONLY: "the file, its folder or the file system is read-only",
    _SQLITE_IOERR: "input/output error on the storage",
    _SQLITE_CORRUPT: "the file is damaged",
    _SQLITE_FULL: "the disk is full",
    _SQLITE_CANTOPEN: "the file cannot be opened (missing folder, permissions or read-only file system)",
    _SQLITE_NOTADB: "the file is not a database",
}


# --------------------------------------------------------------------------- values


@dataclass(slots=True)
class ResponseDraft:
    """One visitor's response while it is being answered; lives in memory.

    Nothing is stored until its first answer: :meth:`Buffer.record_answer`
    then writes the response row and the answer in one transaction and fills
    in :attr:`seq`. Create one with :meth:`Buffer.new_draft` (stamped by the
    buffer's time source) or :meth:`ResponseDraft.new` (stamped by ``started``,
    else ``time_source``, else the system clock).
    """

    id: str
    questionnaire_id: str
    questionnaire_version: int
    location_id: str
    language: str
    started: Stamp
    suspect: bool = False
    suspect_reason: str | None = None
    seq: int | None = None  # set once the response row is committed
    answers: int = 0  # answers committed so far (the last ordinal)
    end_reason: str | None = None  # set by close_response

    @classmethod
    def new(
        cls,
        *,
        questionnaire_id: str,
        questionnaire_version: int,
        location_id: str,
        language: str,
        suspect: bool = False,
        suspect_reason: str | None = None,
        started: Stamp | None = None,
        time_source: TimeSource | None = None,
    ) -> ResponseDraft:
        """A fresh draft with a new client UUID, started now."""
        if started is None:
            started = (time_source or system_time_source()).now()
        return cls(
            id=str(uuid.uuid4()),
            questionnaire_id=questionnaire_id,
            questionnaire_version=int(questionnaire_version),
            location_id=location_id,
            language=language,
            started=started,
            suspect=bool(suspect),
            suspect_reason=suspect_reason,
        )

    @property
    def persisted(self) -> bool:
        """True once the response row (with a first answer) is committed."""
        return self.seq is not None

    @property
    def closed(self) -> bool:
        return self.end_reason is not None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that an answer is on disk: returned by :meth:`Buffer.record_answer`."""

    answer_id: str
    response_id: str
    seq: int
    ordinal: int
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Counts for the admin screen and ``balie-kiosk status``."""

    responses_total: int
    responses_unsent: int
    responses_sent: int
    responses_quarantined: int
    responses_open: int
    answers_total: int
    last_response_at: float | None  # wall clock of the newest response's start (highest seq)
    path: Path


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the uploader still has to do: closed unsent responses (and their answers)."""

    responses: int  # closed and unsent: eligible for the next sync round
    answers: int  # answers of those responses
    quarantined: int  # rejected by central (or unsendable); kept, never retried
    open: int  # still being answered; sent once closed


class Event(NamedTuple):
    kind: str
    detail: str
    wall: float


# --------------------------------------------------------------------------- helpers


def _errcode(err: BaseException | None) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _unavailable(path: Path, doing: str, err: BaseException) -> BufferUnavailable:
    """A :class:`BufferUnavailable` naming the file, the action and the cause."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # only loaded once the engine is in use
    if sa_exc is not None and isinstance(err, sa_exc.DBAPIError) and err.orig is not None:
        err = err.orig
    if isinstance(err, OSError):
        fault = _OS_FAULTS.get(err.errno)
        cause = err.strerror or str(err)
        if err.errno == errno.EROFS:
            cause = "read-only file system"
        elif err.errno == errno.ENOSPC:
            cause = "the disk is full"
    else:
        fault = _FAULTS.get(_errcode(err))
        cause = _CAUSES.get(_errcode(err))
        if fault == "read_only" and _read_only_mount(path):
            cause = "read-only file system"
        elif fault == "io" and _no_space(path):  # e.g. the WAL's -shm file could not be made
            fault, cause = "full", _CAUSES[_SQLITE_FULL]
        cause = f"{cause} ({err})" if cause else str(err)
    return BufferUnavailable(f"local buffer {path}: cannot {doing}: {cause}", cause=fault)


def _read_only_mount(path: Path) -> bool:
    """True if the file system holding ``path`` (or its folder) is mounted read-only."""
    for place in (path, path.parent):
        try:
            return bool(os.statvfs(place).f_flag & os.ST_RDONLY)
        except OSError:
            continue
    return False


def _no_space(path: Path) -> bool:
    """True if the file system holding ``path``'s folder has (almost) no space left for us."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _check_integrity(path: Path) -> str | None:
    """``None`` if ``path`` is absent, empty or a sound database; else what is wrong.

    ``PRAGMA quick_check`` rather than ``integrity_check``: both read every page
    and catch a file that is not a database, broken b-trees, torn or truncated
    pages and malformed records; only ``integrity_check`` also cross-checks
    every index entry against its row and the UNIQUE constraints. Measured on
    a 100 000-answer buffer (29 MB, warm OS cache, this project's 2-core VM):
    quick_check 55 ms, integrity_check 255 ms. Start-up time counts on the
    device, and an index that disagrees with its table comes from a SQLite or
    hardware bug, not from the power cuts and kills this check is for.

    Errors that are not damage (permissions, read-only, locked, I/O) raise
    :class:`BufferUnavailable`: such a file must not be set aside.
    """
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    except OSError as err:
        raise _unavailable(path, "open", err) from err
    try:
        # Read-only: this connection must not checkpoint the WAL into a damaged
        # file on close; whatever is set aside is exactly what was found.
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                              timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as err:
        raise _unavailable(path, "open", err) from err
    try:
        rows = con.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as err:
        if _errcode(err) in _DAMAGED:
            return str(err)
        raise _unavailable(path, "check", err) from err
    finally:
        con.close()
    if rows == [("ok",)]:
        return None
    return "quick_check: " + "; ".join(str(r[0]) for r in rows[:5])


def _set_aside(path: Path) -> list[Path]:
    """Move ``path`` and its -wal/-shm to ``<name>.damaged-<UTC time>``; never delete.

    The -wal and -shm go first: a stale WAL left next to a fresh database would
    be replayed into it.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(Path(f"{base}{s}").exists() for s in ("", "-wal", "-shm")):
        base = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    moved: list[Path] = []
    for suffix in ("-wal", "-shm", ""):
        src = Path(f"{path}{suffix}")
        if src.exists():
            dst = Path(f"{base}{suffix}")
            try:
                os.rename(src, dst)
            except OSError as err:
                raise _unavailable(path, f"set the damaged file aside as {dst}", err) from err
            moved.append(dst)
    _fsync_dir(path.parent)
    return moved[::-1]  # the database first


def _fsync_dir(folder: Path) -> None:
    """Make renames and creations in ``folder`` survive a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _OwnerLock:
    """An exclusive ``flock`` on ``<name>.lock`` held while a buffer is open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}.lock")
        self.fd: int | None = None
        self.owner = True
        if fcntl is None:  # pragma: no cover
            return
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            try:  # read-only folder or file system: an existing lock file still locks
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                raise _unavailable(path, "create its lock file", err) from err
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.owner = False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def configure_connection(dbapi_connection, path: Path) -> None:
    """The settings every connection to the buffer runs with (the engine's and the fast open's).

    BEGIN is taken away from the sqlite3 module (it skips it before SELECT and
    DDL): each unit of work emits exactly one BEGIN … COMMIT itself. PRAGMAs
    then run outside transactions.
    """
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()
    if str(mode).lower() != "wal":
        raise BufferUnavailable(
            f"local buffer {path}: cannot switch to WAL journal mode (got {mode!r})"
        )


def _wal_size(path: Path) -> int:
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A ``sqlite3`` connection that can only read ``path`` (a buffer opened for reading only).

    ``mode=ro`` first. Where SQLite cannot create the WAL's ``-shm`` file (a
    read-only file system: ``SQLITE_CANTOPEN``; a full one: ``SQLITE_IOERR``)
    it refuses even to read; when no ``-wal`` file is left either, everything
    is in the main file, and ``immutable=1`` reads it without the ``-shm``
    (nothing should write it meanwhile: the storage refuses writes, and the
    terminal swaps this engine for the normal one within
    ``kiosk.storage_watch.RECHECK_S`` of the file turning writable). A
    non-empty ``-wal`` is never read around: the read fails rather than show
    stale rows.
    """
    uri = path.as_uri()
    timeout = BUSY_TIMEOUT_MS / 1000
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=timeout)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            con.close()
            raise
    except sqlite3.OperationalError as err:
        if _errcode(err) not in (_SQLITE_CANTOPEN, _SQLITE_IOERR) or not path.is_file() \
                or _wal_size(path) > 0:
            raise
        con = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None,
                              timeout=timeout)
    con.execute("PRAGMA query_only = ON")
    return con


def _sql():
    """:mod:`kiosk.buffer_sql` (SQLAlchemy's engine and statements), imported on first use."""
    from kiosk import buffer_sql

    return buffer_sql


_NEXT_SEQ_SQL = (
    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'last_seq' RETURNING value"
)
# The fast open's statements (plain SQL: no SQLAlchemy before the first frame).
# Same effect as kiosk.buffer_sql.CLOSE_INTERRUPTED and INSERT_EVENT (tests compare).
CLOSE_INTERRUPTED_SQL = (
    "UPDATE responses SET closed_at = coalesce((SELECT max(answers.wall) FROM answers "
    "WHERE answers.response_id = responses.id), responses.started_wall), "
    "end_reason = 'interrupted' WHERE responses.closed_at IS NULL"
)
INSERT_EVENT_SQL = "INSERT INTO events (kind, detail, wall, boot_id, mono) VALUES (?, ?, ?, ?, ?)"


_STATS_SQL = (
    "SELECT count(*), coalesce(sum(state = 'unsent'), 0), coalesce(sum(state = 'sent'), 0), "
    "coalesce(sum(state = 'quarantined'), 0), coalesce(sum(closed_at IS NULL), 0) "
    "FROM responses",
    "SELECT count(*) FROM answers",
    "SELECT started_wall FROM responses ORDER BY seq DESC LIMIT 1",
)
_LAST_RESPONSE_SQL = (
    "SELECT started_wall, started_boot_id, started_mono FROM responses ORDER BY seq DESC LIMIT 1"
)


def _stats(fetch_one, path: Path) -> BufferStats:
    total, unsent, sent, quarantined, open_ = fetch_one(_STATS_SQL[0])
    (answers_total,) = fetch_one(_STATS_SQL[1])
    last = fetch_one(_STATS_SQL[2])
    return BufferStats(
        responses_total=total,
        responses_unsent=unsent,
        responses_sent=sent,
        responses_quarantined=quarantined,
        responses_open=open_,
        answers_total=answers_total,
        last_response_at=last[0] if last else None,
        path=path,
    )


# The uploader's reads (see Buffer.pending): the eligible responses oldest first, and
# the answers of exactly those responses, in one read transaction (one snapshot).
_ELIGIBLE = "FROM responses WHERE state = 'unsent' AND closed_at IS NOT NULL"
_PENDING_RESPONSES_SQL = (
    "SELECT id, seq, questionnaire_id, questionnaire_version, location_id, language, "
    "started_wall, started_boot_id, started_mono, closed_at, end_reason, suspect, suspect_reason "
    f"{_ELIGIBLE} ORDER BY seq LIMIT ?"
)
_PENDING_ANSWERS_SQL = (
    "SELECT response_id, id, ordinal, question_id, aspect, value_num, value_text, wall, boot_id, "
    f"mono FROM answers WHERE response_id IN (SELECT id {_ELIGIBLE} ORDER BY seq LIMIT ?) "
    "ORDER BY response_id, ordinal"
)
_MARK_SENT_SQL = (
    "UPDATE responses SET state = 'sent', state_reason = NULL, state_changed_at = ? "
    "WHERE id = ? AND state = 'unsent'"
)
_PROBE_SQL = (
    "INSERT INTO meta (key, value) VALUES ('health_probe_at', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_PRUNE_SQL = (
    "DELETE FROM responses WHERE state = 'sent' AND state_changed_at IS NOT NULL "
    "AND state_changed_at < ?"
)  # answers go with them: ON DELETE CASCADE, foreign_keys = ON
_QUARANTINE_SQL = (
    "UPDATE responses SET state = 'quarantined', state_reason = ?, state_changed_at = ? "
    "WHERE id = ? AND state = 'unsent'"
)
_BACKLOG_SQL = (
    "SELECT coalesce(sum(state = 'unsent' AND closed_at IS NOT NULL), 0), "
    "coalesce(sum(state = 'quarantined'), 0), coalesce(sum(closed_at IS NULL), 0) FROM responses",
    f"SELECT count(*) FROM answers WHERE response_id IN (SELECT id {_ELIGIBLE})",
)
MAX_STATE_REASON = 500


def _record_from_rows(row: tuple, answer_rows: list[tuple]):
    """One ``responses`` row and its ``answers`` rows as a protocol ``ResponseRecord``.

    Raises pydantic's ``ValidationError`` when the stored values do not fit the
    protocol (the caller quarantines such a response).
    """
    from sync.protocol import ResponseRecord

    (rid, seq, q_id, q_version, location_id, language, s_wall, s_boot, s_mono, closed_at,
     end_reason, suspect, suspect_reason) = row
    return ResponseRecord.model_validate({
        "id": rid,
        "seq": seq,
        "questionnaire": {"id": q_id, "version": q_version},
        "location_id": location_id,
        "language": language,
        "started": {"wall": s_wall, "boot_id": s_boot, "mono": s_mono},
        "closed_wall": closed_at,
        "end_reason": end_reason,
        "suspect": bool(suspect),
        "suspect_reason": suspect_reason,
        "answers": [
            {"id": a_id, "ordinal": ordinal, "question_id": question_id, "aspect": aspect,
             "value": value_num if value_num is not None else value_text,
             "at": {"wall": wall, "boot_id": boot_id, "mono": mono}}
            for (_rid, a_id, ordinal, question_id, aspect, value_num, value_text, wall, boot_id,
                 mono) in answer_rows
        ],
    })


def _short(error) -> str:
    """A pydantic ValidationError as one line: ``field: message; ...`` (for state_reason)."""
    parts = []
    for e in error.errors()[:3]:
        place = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{place}: {e['msg']}")
    return "does not fit the protocol: " + "; ".join(parts)


# --------------------------------------------------------------------------- the buffer


class Buffer:
    """The local buffer: one SQLite file. Open with :meth:`Buffer.open`."""

    def __init__(self, path: Path, engine: Engine | None, clock: TimeSource,
                 lock: _OwnerLock | None) -> None:
        self.path = path
        self._engine_or_none = engine  # made on first use (see warm_up)
        self._engine_lock = threading.Lock()
        self._reopen_lock = threading.Lock()
        self._clock = clock
        self._lock = lock  # taken by open(); None until then
        self.device_id: str = ""
        self.revision_checked_fast = False  # True: opened at head without Alembic
        # False: opened for reading only (open(read_only_fallback=True)); open_error says why.
        self.writable = True
        self.open_error: str | None = None
        # The last write unit of work: when one last committed (time.monotonic()), and
        # why the last one failed (None once one commits again): the message, its cause
        # (kiosk.errors.BUFFER_FAULTS) and when (wall clock). For the health check, the
        # out-of-order watch (kiosk/storage_watch.py) and the admin screen.
        self.last_write_ok: float | None = None
        self.last_write_error: str | None = None
        self.last_write_cause: str | None = None
        self.last_write_error_at: float | None = None

    @property
    def _engine(self) -> Engine:
        engine = self._engine_or_none
        if engine is None:
            with self._engine_lock:  # the UI, sync and health threads may all ask first
                if self._engine_or_none is None:
                    self._engine_or_none = _sql().make_engine(self.path,
                                                              read_only=not self.writable)
                engine = self._engine_or_none
        return engine

    def _set_writable(self, writable: bool) -> None:
        """Switch between the read-write and the read-only engine (made again on next use)."""
        with self._engine_lock:
            engine, self._engine_or_none = self._engine_or_none, None
            self.writable = writable
        if engine is not None:
            engine.dispose()

    def _write_failed(self, err: BufferUnavailable) -> None:
        self.last_write_error = str(err)
        self.last_write_cause = err.cause
        self.last_write_error_at = time.time()

    def warm_up(self) -> None:
        """Load SQLAlchemy and make the engine now (the app calls it after its first frame).

        Opening an up-to-date buffer does not need SQLAlchemy (see :meth:`open`);
        without this call the first unit of work loads it, ~200 ms on the test VM.
        """
        self._engine

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike, *, time_source: TimeSource | None = None,
             read_only_fallback: bool = False) -> Buffer:
        """Open (or create) the buffer at ``path`` and make it ready for taps.

        In order: create the parent folders; take the owner lock; check the
        file (``PRAGMA quick_check``) and move a damaged one aside to
        ``<name>.damaged-<UTC time>`` (never deleted; an event
        ``buffer_set_aside`` names it); migrate to the current schema if the
        stored revision is not head (Alembic is only imported then); create the
        device id on a new file; close responses left open by a crash as
        ``interrupted``. Raises :class:`BufferUnavailable` naming the path and
        the cause if any of this cannot be done.

        ``time_source``: the clock for every stamp (tests pass a
        :class:`~kiosk.clock.FakeTimeSource`); default the system clocks.

        ``read_only_fallback`` (``balie-kiosk run``): when the storage refuses
        writes (``BufferUnavailable.cause`` in
        :data:`~kiosk.errors.STORAGE_FAULTS`: a read-only file system or file,
        a full disk, I/O errors), return the buffer **opened for reading only**
        instead of raising: :attr:`writable` is ``False``, :attr:`open_error`
        and :attr:`last_write_error` say why, reads work where SQLite can read
        the file, every write raises :class:`BufferUnavailable` with the same
        cause without touching the file, and :meth:`try_writable` does the
        whole open again. Any other error still raises.
        """
        path = Path(path).expanduser().absolute()
        buf = cls(path, None, time_source or system_time_source(), None)
        try:
            buf._make_ready()
        except BufferUnavailable as err:
            if not read_only_fallback or err.cause not in STORAGE_FAULTS:
                buf.close()
                raise
            buf._set_writable(False)
            buf.open_error = str(err)
            buf._write_failed(err)
        except BaseException:
            buf.close()
            raise
        return buf

    def _make_ready(self) -> None:
        """:meth:`open`'s work: folder, owner lock, integrity check, set-aside, start-up work."""
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _unavailable(path, f"create its folder {path.parent}", err) from err
        if self._lock is None:
            self._lock = _OwnerLock(path)
        problem = _check_integrity(path)
        moved: list[Path] = []
        if problem is not None:
            if not self._lock.owner:
                raise BufferUnavailable(
                    f"local buffer {path}: the file is damaged ({problem}) and another "
                    "process has it open; it is set aside when that process restarts",
                    cause="damaged",
                )
            moved = _set_aside(path)
        if problem is not None or not self._prepare_fast():
            self._prepare(problem, moved)

    def try_writable(self) -> bool:
        """A buffer opened for reading only: do the whole :meth:`open` again; True once writable.

        Use (off the UI thread: it reads the whole file)::

            if not buf.writable:
                buf.try_writable()   # raises BufferUnavailable while the storage still refuses
            buf.probe_write()        # a commit proves it takes writes

        Returns ``True`` at once for a writable buffer. On success the
        read-only engine is replaced by the normal one and :attr:`open_error`
        is cleared; :attr:`last_write_error` stays until a commit succeeds
        (an open that needed no write proves nothing about a full disk).
        """
        if self.writable:
            return True
        with self._reopen_lock:
            if self.writable:
                return True
            self._set_writable(True)
            try:
                self._make_ready()
            except BaseException as err:
                self._set_writable(False)
                if isinstance(err, BufferUnavailable):
                    self.open_error = str(err)
                    self._write_failed(err)
                raise
            self.open_error = None
        return True

    def _prepare_fast(self) -> bool:
        """The start-up unit of work on plain ``sqlite3``, for a sound buffer at the head revision.

        Reads the device id and closes responses left open by a crash, as
        :meth:`_prepare` does, in one transaction. Returns ``False`` (and
        changes nothing) when the file is new, at another revision or lacks its
        meta rows: then :meth:`_prepare` (SQLAlchemy, Alembic) does the work.
        """
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return False
        stamp = self._clock.now()
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as err:
            raise _unavailable(self.path, "open", err) from err
        try:
            configure_connection(con, self.path)
            con.execute("BEGIN IMMEDIATE")
            has_version = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            revision = (con.execute("SELECT version_num FROM alembic_version").fetchone()
                        if has_version else None)
            rows = dict(con.execute("SELECT key, value FROM meta").fetchall()) if revision else {}
            if (revision is None or revision[0] != buffer_migrations.HEAD_REVISION
                    or "device_id" not in rows or "last_seq" not in rows):
                con.execute("ROLLBACK")
                return False
            if self._lock.owner:
                closed = con.execute(CLOSE_INTERRUPTED_SQL).rowcount
                if closed:
                    con.execute(INSERT_EVENT_SQL, (
                        "responses_interrupted",
                        f"{closed} response(s) left open by a crash closed as interrupted",
                        stamp.wall, stamp.boot_id, stamp.mono))
            con.execute("COMMIT")
        except sqlite3.Error as err:
            raise _unavailable(self.path, "open", err) from err
        finally:
            con.close()
        self.device_id = rows["device_id"]
        self.revision_checked_fast = True
        return True

    def _prepare(self, problem: str | None, moved: list[Path]) -> None:
        """The start-up unit of work: migrate, device id, repair, events. One commit."""
        stamp = self._clock.now()
        with self._unit("open") as conn:
            revision = conn.exec_driver_sql(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' "
                "AND name = 'alembic_version') THEN 1 ELSE 0 END"
            ).scalar_one()
            if revision:
                revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            else:
                revision = None
            if revision == buffer_migrations.HEAD_REVISION:
                self.revision_checked_fast = True
            else:
                self._migrate(conn, revision)
            sql = _sql()
            rows = dict(conn.execute(sql.SELECT_META).all())
            if "device_id" not in rows:
                rows["device_id"] = str(uuid.uuid4())
                conn.execute(
                    sql.INSERT_META,
                    [
                        {"key": "device_id", "value": rows["device_id"]},
                        {"key": "created_at", "value": repr(stamp.wall)},
                    ],
                )
            if "last_seq" not in rows:
                conn.execute(sql.INSERT_META, {"key": "last_seq", "value": "0"})
            self.device_id = rows["device_id"]
            if problem is not None:
                detail = f"{problem}; moved {moved[0] if moved else self.path} aside"
                if len(moved) > 1:
                    detail += " (with " + ", ".join(p.name for p in moved[1:]) + ")"
                detail += f"; started a fresh buffer at {self.path}"
                self._insert_event(conn, "buffer_set_aside", detail, stamp)
            if self._lock.owner:
                closed = conn.execute(sql.CLOSE_INTERRUPTED).rowcount
                if closed:
                    self._insert_event(
                        conn,
                        "responses_interrupted",
                        f"{closed} response(s) left open by a crash closed as interrupted",
                        stamp,
                    )

    def _migrate(self, conn: Connection, revision: str | None) -> None:
        if revision is not None and revision not in buffer_migrations.known_revisions():
            raise BufferUnavailable(
                f"local buffer {self.path}: schema revision {revision!r} is unknown to this "
                f"release (head {buffer_migrations.HEAD_REVISION!r}); it was written by a newer "
                "release and is left untouched"
            )
        buffer_migrations.upgrade(conn)

    # ----------------------------------------------------------------- units of work

    @contextlib.contextmanager
    def _unit(self, doing: str, *, read: bool = False) -> Iterator[Connection]:
        """One transaction, committed on exit; storage errors become BufferUnavailable."""
        if not read and not self.writable:
            refused = BufferUnavailable(
                f"{self.open_error} (opened for reading only: cannot {doing})",
                cause=self.last_write_cause)
            self._write_failed(refused)
            raise refused
        engine = self._engine  # SQLAlchemy is loaded from here on
        sa_exc = _sql().sa_exc
        try:
            if read:
                with engine.connect() as conn:
                    conn = conn.execution_options(sqlite_begin="DEFERRED")
                    with conn.begin():
                        yield conn
            else:
                with engine.begin() as conn:
                    yield conn
                self.last_write_ok = time.monotonic()
                self.last_write_error = self.last_write_cause = self.last_write_error_at = None
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.InterfaceError,
                sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug, not the storage
        except (sa_exc.DBAPIError, sqlite3.Error) as err:
            unavailable = _unavailable(self.path, doing, err)
            if not read:
                self._write_failed(unavailable)
            raise unavailable from err

    def probe_write(self) -> None:
        """Commit one tiny write (meta ``health_probe_at``), as a tap would.

        For the health check (``kiosk/health.py``): raises
        :class:`BufferUnavailable` when the buffer cannot take a commit now
        (locked by another process, read-only, full, I/O errors).
        """
        stamp = self._clock.now()
        with self._unit("write the health probe") as conn:
            conn.connection.driver_connection.execute(_PROBE_SQL, (repr(stamp.wall),))

    def _insert_event(self, conn: Connection, kind: str, detail: str, stamp: Stamp) -> None:
        conn.execute(
            _sql().INSERT_EVENT,
            {"kind": kind, "detail": detail, "wall": stamp.wall, "boot_id": stamp.boot_id,
             "mono": stamp.mono},
        )

    # ----------------------------------------------------------------- the visitor's taps

    def new_draft(self, **fields) -> ResponseDraft:
        """A :class:`ResponseDraft` started now by this buffer's time source.

        Takes the keyword arguments of :meth:`ResponseDraft.new`.
        """
        fields.setdefault("time_source", self._clock)
        return ResponseDraft.new(**fields)

    def record_answer(
        self, draft: ResponseDraft, *, question_id: str, aspect: str | None, value: int | str
    ) -> Receipt:
        """Store one answer durably; returns after COMMIT.

        The first answer of a draft also inserts its response row with the next
        sequence number, in the same transaction. ``value``: an int (grades,
        smileys, yes/no as 1/0) or a str (choices, scrubbed free text).
        """
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"answer value must be int or str, not {type(value).__name__}")
        if draft.closed:
            raise ValueError(f"response {draft.id} is closed ({draft.end_reason})")
        stamp = self._clock.now()
        answer_id = str(uuid.uuid4())
        ordinal = draft.answers + 1
        seq = draft.seq
        is_num = isinstance(value, int)
        answer_row = (
            answer_id, draft.id, ordinal, question_id, aspect,
            value if is_num else None, None if is_num else value,
            stamp.wall, stamp.boot_id, stamp.mono,
        )
        with self._unit("store the answer") as conn:
            dbapi = conn.connection.driver_connection
            sql = _sql()
            if seq is None:
                seq = int(dbapi.execute(_NEXT_SEQ_SQL).fetchone()[0])
                dbapi.execute(sql.RESPONSE_SQL, self._response_row(draft, seq))
            dbapi.execute(sql.ANSWER_SQL, answer_row)
        draft.seq = seq
        draft.answers = ordinal
        return Receipt(answer_id=answer_id, response_id=draft.id, seq=seq, ordinal=ordinal,
                       stamp=stamp)

    @staticmethod
    def _response_row(draft: ResponseDraft, seq: int) -> tuple:
        s = draft.started
        row = {
            "id": draft.id,
            "seq": seq,
            "questionnaire_id": draft.questionnaire_id,
            "questionnaire_version": draft.questionnaire_version,
            "location_id": draft.location_id,
            "language": draft.language,
            "started_wall": s.wall,
            "started_boot_id": s.boot_id,
            "started_mono": s.mono,
            "closed_at": None,
            "end_reason": None,
            "suspect": 1 if draft.suspect else 0,
            "suspect_reason": draft.suspect_reason,
            "state": "unsent",
            "state_reason": None,
            "state_changed_at": None,
        }
        return tuple(row[c] for c in _sql().RESPONSE_COLUMNS)

    def close_response(self, draft: ResponseDraft, end_reason: str = "completed") -> bool:
        """Mark the response finished (``completed``/``idle``/``abandoned``/``interrupted``).

        One commit. A draft never persisted (no answers) is only marked closed
        in memory; returns whether a stored row was closed. Closing twice keeps
        the first reason.
        """
        if end_reason not in END_REASONS:
            raise ValueError(f"end_reason must be one of {END_REASONS}, not {end_reason!r}")
        if draft.closed:
            return False
        if not draft.persisted:
            draft.end_reason = end_reason
            return False
        stamp = self._clock.now()
        with self._unit("close the response") as conn:
            n = conn.execute(
                _sql().CLOSE, {"rid": draft.id, "closed_at": stamp.wall, "reason": end_reason}
            ).rowcount
        draft.end_reason = end_reason
        return bool(n)

    def set_language(self, draft: ResponseDraft, language: str) -> None:
        """Change the response's language (the visitor switched); one commit if stored."""
        if draft.persisted and language != draft.language:
            with self._unit("change the response's language") as conn:
                conn.execute(_sql().SET_LANGUAGE, {"rid": draft.id, "lang": language})
        draft.language = language

    # ----------------------------------------------------------------- for the uploader

    def pending(self, limit: int, *, invalid: dict[str, str] | None = None) -> list:
        """Up to ``limit`` closed, unsent responses, oldest (lowest ``seq``) first.

        Use::

            records = buf.pending(200)              # list[sync.protocol.ResponseRecord]
            ...POST them...
            buf.mark_sent([r.id for r in acked])

        One read transaction, two queries (the responses, then all their answers),
        however large the backlog. A stored response that does not fit the
        protocol (it could never be sent) is left out of the list and, when
        ``invalid`` is given, reported there as ``{id: reason}`` for the caller
        to :meth:`quarantine`. Responses still open are never returned.
        """
        if limit < 1:
            return []
        with self._unit("read the responses to send", read=True) as conn:
            dbapi = conn.connection.driver_connection
            rows = dbapi.execute(_PENDING_RESPONSES_SQL, (limit,)).fetchall()
            answer_rows = dbapi.execute(_PENDING_ANSWERS_SQL, (limit,)).fetchall() if rows else []
        by_response: dict[str, list[tuple]] = {}
        for a in answer_rows:
            by_response.setdefault(a[0], []).append(a)
        from pydantic import ValidationError

        records = []
        for row in rows:
            try:
                records.append(_record_from_rows(row, by_response.get(row[0], [])))
            except ValidationError as err:
                if invalid is not None:
                    invalid[row[0]] = _short(err)
        return records

    # ----------------------------------------------------------------- upkeep

    def backup_to(self, target: str | os.PathLike) -> Path:
        """A consistent copy of the buffer at ``target`` (``VACUUM INTO``); returns ``target``.

        The copy is a snapshot taken on its own read-only connection (taps go on
        meanwhile), written to ``<target>.tmp``, made readable by its owner only
        (it holds the visitors' answers), fsynced and renamed into place, so
        ``target`` is either the old copy or a whole new one, never half a file.
        Raises :class:`BufferUnavailable` naming the cause (a full disk, a
        read-only folder); the buffer itself is only read.
        """
        target = Path(target).expanduser().absolute()
        tmp = target.with_name(target.name + ".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            con = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                                  timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                con.execute("VACUUM INTO ?", (str(tmp),))
            finally:
                con.close()
            os.chmod(tmp, 0o600)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except (OSError, sqlite3.Error) as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise _unavailable(self.path, f"back it up to {target}", err) from err
        return target

    def prune_sent(self, before_wall: float) -> int:
        """Delete responses central has had since before ``before_wall`` (Unix seconds); one commit.

        Only ``sent`` responses go (their answers with them); unsent, open and
        quarantined ones are never touched, and the sequence numbers carry on.
        An event ``responses_pruned`` records how many. Returns how many.
        """
        stamp = self._clock.now()
        with self._unit("delete old sent responses") as conn:
            dbapi = conn.connection.driver_connection
            n = dbapi.execute(_PRUNE_SQL, (before_wall,)).rowcount
            if n:
                self._insert_event(conn, "responses_pruned",
                                   f"{n} sent response(s) older than {before_wall:.0f} deleted",
                                   stamp)
        return n

    def mark_sent(self, ids) -> int:
        """Mark the responses ``ids`` as sent (central acknowledged them); one commit.

        Only responses currently ``unsent`` change; returns how many did.
        """
        ids = list(ids)
        if not ids:
            return 0
        wall = self._clock.now().wall
        with self._unit("mark responses as sent") as conn:
            dbapi = conn.connection.driver_connection
            return dbapi.executemany(_MARK_SENT_SQL, [(wall, i) for i in ids]).rowcount

    def quarantine(self, reasons: dict[str, str]) -> int:
        """Move unsent responses to the quarantine with a reason each; one commit.

        ``reasons``: ``{response id: why}`` (central's reason, or "too large").
        Quarantined responses are kept and never sent again. Only responses
        currently ``unsent`` change; an event ``responses_quarantined`` records
        how many. Returns how many changed.
        """
        if not reasons:
            return 0
        stamp = self._clock.now()
        rows = [((reason or "rejected")[:MAX_STATE_REASON], stamp.wall, rid)
                for rid, reason in reasons.items()]
        with self._unit("quarantine responses") as conn:
            dbapi = conn.connection.driver_connection
            n = dbapi.executemany(_QUARANTINE_SQL, rows).rowcount
            if n:
                first_id, first_reason = next(iter(reasons.items()))
                self._insert_event(
                    conn, "responses_quarantined",
                    f"{n} response(s) quarantined, e.g. {first_id}: {first_reason}"[:1000], stamp)
        return n

    def backlog(self) -> Backlog:
        """Counts for the uploader and the heartbeat; one read transaction."""
        with self._unit("read the backlog", read=True) as conn:
            dbapi = conn.connection.driver_connection
            pending, quarantined, open_ = dbapi.execute(_BACKLOG_SQL[0]).fetchone()
            (answers_pending,) = dbapi.execute(_BACKLOG_SQL[1]).fetchone()
        return Backlog(responses=pending, answers=answers_pending, quarantined=quarantined,
                       open=open_)

    # ----------------------------------------------------------------- status and events

    def stats(self) -> BufferStats:
        """Counts of responses by state, open responses, answers; one read transaction."""
        with self._unit("read the statistics", read=True) as conn:
            return _stats(lambda sql: conn.exec_driver_sql(sql).first(), self.path)

    def last_response_stamp(self) -> Stamp | None:
        """When the newest response (highest seq) started, as stamped then; ``None``: none yet.

        One short read (the seq index); safe from the sync thread, as every unit of work is.
        """
        with self._unit("read the last response", read=True) as conn:
            row = conn.exec_driver_sql(_LAST_RESPONSE_SQL).first()
        return Stamp(wall=row[0], boot_id=row[1], mono=row[2]) if row else None

    @classmethod
    def inspect(cls, path: str | os.PathLike) -> BufferStats:
        """The :meth:`stats` of the buffer at ``path``, without disturbing its owner.

        For ``balie-kiosk status`` next to a running terminal: a read-only
        connection; no lock, no integrity check, no migration, no repair, no
        write. Raises :class:`BufferUnavailable` if there is no buffer at
        ``path`` or it cannot be read.
        """
        path = Path(path).expanduser().absolute()
        if not path.is_file():
            raise BufferUnavailable(
                f"local buffer {path}: no such file (the terminal has not run with this "
                "data folder yet, or --data-dir/BALIE_DATA_DIR points elsewhere)"
            )
        try:
            con = read_only_connection(path)  # also on a read-only or full file system
            try:
                con.execute("BEGIN")  # one consistent snapshot for the three counts
                return _stats(lambda sql: con.execute(sql).fetchone(), path)
            finally:
                con.close()
        except sqlite3.Error as err:
            raise _unavailable(path, "read the statistics", err) from err

    def record_event(self, kind: str, detail: str) -> None:
        """Append an event (e.g. ``buffer_set_aside``) with a stamp; one commit."""
        stamp = self._clock.now()
        with self._unit("record an event") as conn:
            self._insert_event(conn, kind, detail, stamp)

    def events(self) -> list[Event]:
        """All events, oldest first, as ``(kind, detail, wall)``."""
        with self._unit("read the events", read=True) as conn:
            rows = conn.execute(_sql().SELECT_EVENTS).all()
        return [Event(*r) for r in rows]

    @property
    def is_owner(self) -> bool:
        """True if this process holds the owner lock (and did the start-up repair)."""
        return self._lock is not None and self._lock.owner

    # ----------------------------------------------------------------- closing

    def close(self) -> None:
        """Close every connection (SQLite checkpoints the WAL) and drop the lock."""
        if self._engine_or_none is not None:
            self._engine_or_none.dispose()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Buffer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
