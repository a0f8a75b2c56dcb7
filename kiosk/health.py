"""The terminal's own health check, and the systemd watchdog it feeds.

Use (the app, under systemd: ``Type=notify``, ``WatchdogSec=``)::

    monitor = HealthMonitor(buffer, lambda: app.sync)
    watchdog = Watchdog(monitor)
    if watchdog.period:                     # systemd asked for a watchdog
        monitor.start()                     # the buffer probe, on its own thread
        watchdog.ready()                    # READY=1, after the first frame
        Clock.schedule_interval(lambda _dt: watchdog.tick(), watchdog.period)

What "healthy" means, and who checks it:

* **UI loop alive**: :meth:`Watchdog.tick` runs on the Kivy clock. A frozen UI
  (a deadlock, an endless loop, a stopped process) does not tick, so systemd
  hears nothing and restarts the terminal after ``WatchdogSec``.
* **Buffer writable**: a thread commits a tiny probe write every
  ``probe_every_s`` unless a tap committed more recently (an SD card is not
  worn by it: one small commit a minute at most). A probe that has not
  reported for three periods (stuck in I/O) makes the terminal unhealthy; so
  does a failed probe or tap commit whose cause a restart may mend (the
  buffer locked by another process, an unknown cause), until a commit
  succeeds again. The probe runs off the UI thread: the UI never waits on it.
* **Sync scheduler alive** (enrolled terminals): its scheduler is running.

Storage faults are **not** a reason to restart: a full disk, a read-only file
system or file, I/O errors (``BufferUnavailable.cause`` in
:data:`~kiosk.errors.STORAGE_FAULTS`). A restart frees no space and makes
nothing writable; under systemd it would only flash the screen and, after
``StartLimitBurst``, leave a dead one. The terminal stays up **out of order**
instead (kiosk/storage_watch.py: the visitor is told, no ratings are invited,
the buffer is checked again every 30 s and the terminal comes back by
itself), the admin screen says why, and the watchdog goes on being fed with
``STATUS=out of order: …`` (:meth:`HealthMonitor.notice`), so
``systemctl status balie-kiosk`` shows it. The same holds at start-up:
``balie-kiosk run`` opens a buffer whose storage refuses writes for reading
only and starts out of order rather than exit into a restart loop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from kiosk import sdnotify
from kiosk.errors import STORAGE_FAULTS, BufferUnavailable

log = logging.getLogger(__name__)


class HealthMonitor:
    """Knows whether the terminal is healthy; :meth:`problem` is cheap (no I/O), for the UI thread."""

    def __init__(self, buffer, sync: Callable[[], object | None] = lambda: None, *,
                 probe_every_s: float = 20.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.buffer = buffer
        self.sync = sync
        self.probe_every_s = probe_every_s
        self.monotonic = monotonic
        self._probe_at: float | None = None  # when the last probe finished
        self._probe_error: str | None = None
        self._probe_cause: str | None = None  # kiosk.errors.BUFFER_FAULTS
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- the probe thread

    def start(self) -> None:
        """Probe now and then every ``probe_every_s``, on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="balie-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        self.probe()
        while not self._stop.wait(self.probe_every_s):
            self.probe()

    def probe(self) -> None:
        """Commit a probe write unless a write committed within the last period."""
        now = self.monotonic()
        last_ok = self.buffer.last_write_ok
        error = cause = None
        if last_ok is None or now - last_ok >= self.probe_every_s \
                or self.buffer.last_write_error is not None:
            try:
                self.buffer.probe_write()
            except BufferUnavailable as err:
                error, cause = str(err), err.cause
        if error and error != self._probe_error:
            log.error("health: the buffer cannot take writes: %s", error)
        self._probe_error, self._probe_cause = error, cause
        self._probe_at = self.monotonic()

    def _write_fault(self) -> tuple[str, str | None] | None:
        """Why the buffer cannot take writes now, and the cause; ``None`` if it can."""
        if self._probe_error:
            return self._probe_error, self._probe_cause
        error = self.buffer.last_write_error
        if error:
            return error, getattr(self.buffer, "last_write_cause", None)
        return None

    # ----------------------------------------------------------------- the verdict

    def problem(self) -> str | None:
        """Why the terminal is unhealthy now (a restart may help), or ``None``."""
        if self._probe_at is None:
            return "the buffer has not been checked yet"
        silent = self.monotonic() - self._probe_at
        if silent > 3 * self.probe_every_s:
            return f"the buffer check has not finished for {silent:.0f} s (storage stuck?)"
        fault = self._write_fault()
        if fault is not None and fault[1] not in STORAGE_FAULTS:
            return f"buffer not writable: {fault[0]}"
        sync = self.sync()
        if sync is not None and not sync.scheduler.running:
            return "the sync scheduler has stopped"
        return None

    def notice(self) -> str | None:
        """The terminal runs but is out of order (a storage fault no restart mends), or ``None``."""
        fault = self._write_fault()
        if fault is not None and fault[1] in STORAGE_FAULTS:
            return f"out of order: buffer not writable: {fault[0]}"
        return None


class Watchdog:
    """Feeds systemd's watchdog while :class:`HealthMonitor` says the terminal is healthy.

    ``notify``: :func:`kiosk.sdnotify.notify` (tests pass their own);
    ``period``: seconds between ticks, default half of ``$WATCHDOG_USEC``
    (``None``: systemd asked for no watchdog).
    """

    def __init__(self, monitor: HealthMonitor, *, notify=sdnotify.notify,
                 period: float | None = None) -> None:
        self.monitor = monitor
        self.notify = notify
        self.period = period if period is not None else sdnotify.watchdog_period()
        self._last_problem: str | None = None
        self._last_notice: str | None = None

    def ready(self) -> None:
        """READY=1: the first frame is on screen and taps are taken."""
        self.notify("READY=1\nSTATUS=taking ratings")

    def tick(self) -> bool:
        """One WATCHDOG=1 if healthy (returns ``True``); otherwise none, and the reason as STATUS.

        Out of order (:meth:`HealthMonitor.notice`) counts as healthy: fed, with
        the reason as STATUS while it lasts.
        """
        problem = self.monitor.problem()
        if problem is None:
            notice = self.monitor.notice()
            if self._last_problem is not None:
                log.info("health: healthy again")
            if notice != self._last_notice or self._last_problem is not None:
                self.notify(f"STATUS={notice}"[:500] if notice else "STATUS=taking ratings")
            self._last_problem = None
            self._last_notice = notice
            self.notify("WATCHDOG=1")
            return True
        if problem != self._last_problem:
            log.error("health: not feeding the watchdog: %s", problem)
            self.notify(f"STATUS=unhealthy: {problem}"[:500])
        self._last_problem = problem
        self._last_notice = None
        return False
