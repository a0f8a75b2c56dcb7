"""What the admin screen shows, collected off the UI thread; no Kivy here.

Use::

    watch = SyncWatch()                      # uploader.progress.append(watch.listener)
    errors = ErrorMemory.attach()            # remembers the last error the terminal logged
    collector = StatusCollector(settings, buffer, device_state, questionnaire=lambda: q,
                                uploader=lambda: app.sync and app.sync.uploader,
                                watch=watch, errors=errors)
    snapshot = collector.collect()           # blocking (buffer reads, timedatectl): a worker thread
    snapshot.backlog, snapshot.last_sync.stopped_reason, snapshot.last_error
    snapshot.buffer_writable, snapshot.buffer_fault_cause   # "full", "read_only", ...

Sources: the settings and the device state (never the token), the buffer
(backlog, quarantine, its error events, whether its last write failed and
why, whether it was opened for reading only), the uploader's ``last_report`` and
``busy``, the progress seam (:class:`SyncWatch`: when rounds ended, "sent N,
left M" while one runs), ``shutil.disk_usage`` of the data folder, the wall
clock and the NTP facade (:mod:`sync.clocksync`), and errors logged anywhere
in the process (:class:`ErrorMemory`: a failed tap commit on a full disk is
logged, not raised to the visitor).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kiosk import __version__
from kiosk.errors import BufferUnavailable

log = logging.getLogger(__name__)

#: Buffer events that report a fault (others — quarantine, interrupted visits, stops — are facts).
ERROR_EVENTS = ("sync_failed", "sync_auth_refused", "buffer_set_aside")


@dataclass(frozen=True)
class SyncProgress:
    """One progress call from the uploader, as plain values (safe to hand to the UI thread).

    ``left``: closed responses still unsent (``None`` if the buffer could not say);
    ``finished``: the round has ended (``stopped_reason`` says why).
    """

    sent: int
    rejected: int
    left: int | None
    finished: bool
    stopped_reason: str
    error: str | None
    at: float  # wall clock


@dataclass(frozen=True)
class LastSync:
    """The last sync round that ended in this process."""

    at: float | None  # wall clock when it ended (None: ended before the watch was attached)
    ok: bool
    stopped_reason: str
    sent: int
    rejected: int
    backlog: int | None
    heartbeat_sent: bool
    error: str | None


@dataclass(frozen=True)
class AdminSnapshot:
    """Everything the admin screen shows, at one moment. ``None`` where a value is unknown."""

    taken_at: float
    device_id: str | None  # None: not enrolled
    central_url: str | None
    location_id: str
    location_name: str
    app_version: str
    questionnaire_id: str
    questionnaire_version: int
    last_sync: LastSync | None  # None: no round since start
    sync_running: bool
    backlog: int | None  # closed responses waiting for sync
    backlog_answers: int | None
    quarantined: int | None
    in_progress: int | None  # visits being answered
    disk_free: int | None  # bytes free where the buffer lives
    wall: float
    clock_synced: bool | None  # NTP: True / False / None (unknown)
    last_error: str | None
    last_error_at: float | None
    problems: tuple[str, ...] = field(default=())  # what could not be read for this snapshot
    # The buffer takes writes (its last write committed); else why not: the cause
    # (kiosk.errors.BUFFER_FAULTS: "full", "read_only", "io", ...; None: unknown).
    buffer_writable: bool = True
    buffer_fault_cause: str | None = None
    buffer_read_only: bool = False  # opened for reading only at start-up (Buffer.open_error)

    @property
    def enrolled(self) -> bool:
        return self.device_id is not None


class SyncWatch:
    """The uploader's ``progress`` listener: remembers when rounds ended and reports progress.

    ``listener`` runs on the sync thread after every batch and at the end of a
    round; it stores a timestamp and, while ``on_progress`` is set (the admin
    screen is open), asks the buffer for the backlog and hands a
    :class:`SyncProgress` to ``on_progress`` (which must only queue it for
    the UI thread).
    """

    def __init__(self, buffer=None, *, wall: Callable[[], float] = time.time) -> None:
        self.buffer = buffer
        self.wall = wall
        self.on_progress: Callable[[SyncProgress], object] | None = None
        self._lock = threading.Lock()
        self._last: tuple[object, float] | None = None  # (report, wall when last notified)

    def listener(self, report) -> None:
        now = self.wall()
        with self._lock:
            self._last = (report, now)
        sink = self.on_progress
        if sink is None:
            return
        left = report.backlog
        if left is None and self.buffer is not None:
            try:
                left = self.buffer.backlog().responses
            except BufferUnavailable:
                left = None
        # The round's last call comes after the backlog is counted and the error recorded.
        finished = report.backlog is not None or report.stopped_reason != "done"
        sink(SyncProgress(sent=report.sent, rejected=report.rejected + report.quarantined_locally,
                          left=left, finished=finished, stopped_reason=report.stopped_reason,
                          error=report.last_error, at=now))

    def last_sync(self, uploader) -> LastSync | None:
        """The uploader's last finished round, with the time it ended; ``None``: none yet."""
        report = getattr(uploader, "last_report", None)
        if report is None:
            return None
        with self._lock:
            seen = self._last
        # The last progress call of a round comes just before it becomes last_report.
        at = seen[1] if seen is not None and seen[0] is report else None
        return LastSync(at=at, ok=report.ok, stopped_reason=report.stopped_reason, sent=report.sent,
                        rejected=report.rejected + report.quarantined_locally,
                        backlog=report.backlog, heartbeat_sent=report.heartbeat_sent,
                        error=report.last_error)


#: The terminal's own loggers (Kivy's complaints about, say, a missing clipboard tool are not faults).
PROJECT_LOGGERS = ("kiosk", "sync", "balie")


class ErrorMemory(logging.Handler):
    """A logging handler that keeps the last ERROR (or worse) the terminal's own code logged.

    ``ErrorMemory.attach()`` adds one to :data:`PROJECT_LOGGERS`; ``detach()`` removes it.
    Only the first line of the message is kept, with the exception's type and text.
    """

    def __init__(self, loggers: tuple[str, ...] = PROJECT_LOGGERS) -> None:
        super().__init__(level=logging.ERROR)
        self.loggers = loggers
        self.last: tuple[str, float] | None = None

    @classmethod
    def attach(cls, loggers: tuple[str, ...] = PROJECT_LOGGERS) -> "ErrorMemory":
        handler = cls(loggers)
        for name in loggers:
            logging.getLogger(name).addHandler(handler)
        return handler

    def detach(self) -> None:
        for name in self.loggers:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not break logging
            text = str(record.msg)
        text = text.strip().splitlines()[0] if text.strip() else record.levelname
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self.last = (text[:1000], record.created)


class StatusCollector:
    """Makes :class:`AdminSnapshot`\\ s. Every call to :meth:`collect` blocks: run it in a worker.

    ``questionnaire``: returns the questionnaire visitors get now; ``uploader``:
    returns the uploader or ``None`` (not enrolled, or sync not started yet).
    ``clock_synced``, ``disk_usage`` and ``wall`` are the facades (tests stub them).
    """

    def __init__(self, settings, buffer, device_state, *, questionnaire: Callable[[], object],
                 uploader: Callable[[], object | None] = lambda: None,
                 watch: SyncWatch | None = None, errors: ErrorMemory | None = None,
                 clock_synced: Callable[[], bool | None] | None = None,
                 disk_usage=shutil.disk_usage, wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.buffer = buffer
        self.device_state = device_state
        self.questionnaire = questionnaire
        self.uploader = uploader
        self.watch = watch or SyncWatch(buffer)
        self.errors = errors
        if clock_synced is None:
            from sync.clocksync import clock_synced
        self.clock_synced = clock_synced
        self.disk_usage = disk_usage
        self.wall = wall

    def collect(self) -> AdminSnapshot:
        """Read everything once; a source that fails leaves its value ``None`` and a problem."""
        problems: list[str] = []
        backlog = None
        try:
            backlog = self.buffer.backlog()
        except BufferUnavailable as err:
            problems.append(str(err))
        error_event = None
        try:
            error_event = next((e for e in reversed(self.buffer.events())
                                if e.kind in ERROR_EVENTS), None)
        except BufferUnavailable as err:
            problems.append(str(err))
        try:
            free = int(self.disk_usage(self.buffer.path.parent).free)
        except OSError as err:
            free = None
            problems.append(f"disk: {err.strerror or err}")
        try:
            synced = self.clock_synced()
        except Exception:  # a facade must never break the screen
            synced = None
        uploader = self.uploader()
        last_sync = self.watch.last_sync(uploader) if uploader is not None else None
        questionnaire = self.questionnaire()
        state = self.device_state
        now = self.wall()

        # The newest of: the problems now, the last round's error, an error event, a logged error.
        candidates: list[tuple[float, str]] = [(now, p) for p in problems[:1]]
        if last_sync is not None and last_sync.error:
            candidates.append((last_sync.at or 0.0, last_sync.error))
        if error_event is not None:
            candidates.append((error_event.wall, error_event.detail))
        if self.errors is not None and self.errors.last is not None:
            text, at = self.errors.last
            candidates.append((at, text))
        buffer = self.buffer
        fault = getattr(buffer, "last_write_error", None)  # set by any thread's failed write
        if fault is not None:
            candidates.append((getattr(buffer, "last_write_error_at", None) or now, fault))
        last_error_at, last_error = max(candidates, default=(None, None), key=lambda c: c[0])

        return AdminSnapshot(
            taken_at=now,
            device_id=state.device_id if state is not None else None,
            central_url=state.central_url if state is not None else None,
            location_id=self.settings.location.id,
            location_name=self.settings.location.name,
            app_version=__version__,
            questionnaire_id=questionnaire.id,
            questionnaire_version=questionnaire.version,
            last_sync=last_sync,
            sync_running=bool(getattr(uploader, "busy", False)),
            backlog=backlog.responses if backlog else None,
            backlog_answers=backlog.answers if backlog else None,
            quarantined=backlog.quarantined if backlog else None,
            in_progress=backlog.open if backlog else None,
            disk_free=free,
            wall=now,
            clock_synced=synced,
            last_error=last_error,
            last_error_at=last_error_at,
            problems=tuple(problems),
            buffer_writable=fault is None,
            buffer_fault_cause=getattr(buffer, "last_write_cause", None) if fault else None,
            buffer_read_only=not getattr(buffer, "writable", True),
        )
