"""Out of order: whether the buffer takes answers now; watched on the Kivy clock, tried off it.

Use::

    watch = StorageWatch(buffer, navigator.set_out_of_order)
    watch.start()     # at once (before the first frame: a buffer opened for reading only
                      # starts out of order), then every CHECK_S seconds
    watch.stop()

The terminal is **out of order** while the buffer's last write failed
(``buffer.last_write_error``: a visitor's tap, the sync thread marking
responses sent, the health probe, or a buffer opened for reading only at
start-up). Reading that is free (no I/O), so it is asked every ``check_s``
seconds on the Kivy clock. While out of order, a worker thread tries every
``recheck_s`` seconds (the first time at once): :meth:`Buffer.try_writable`
for a buffer opened for reading only, then one probe commit
(:meth:`Buffer.probe_write`). The first commit that works (that one, or any
other) clears the error, and the next check brings the terminal back. Nothing
is written while the buffer works: a full disk is usually found by the
health probe (under systemd) or by the first tap that cannot be stored.

What out of order means on screen is the navigator's: see
:meth:`kiosk.ui.navigator.Navigator.set_out_of_order`.
"""

from __future__ import annotations

import logging
from typing import Callable

from kivy.clock import Clock

from kiosk.errors import BufferUnavailable

log = logging.getLogger(__name__)

#: Seconds between looks at the buffer's last write (free: no I/O).
CHECK_S = 5.0
#: Seconds between tries while out of order (one small commit each; an SD card does not mind).
RECHECK_S = 30.0


class StorageWatch:
    """Tells ``report(out_of_order)`` at every check whether the buffer cannot take answers now.

    ``report`` is called every check, changed or not (the navigator also goes
    out of order by itself when a tap fails, and must hear when it is over).
    A change is logged once: a warning when the terminal goes out of order,
    with the buffer's error, and the moment it takes ratings again.
    """

    def __init__(self, buffer, report: Callable[[bool], object], *,
                 check_s: float = CHECK_S, recheck_s: float = RECHECK_S) -> None:
        self.buffer = buffer
        self.report = report
        self.check_s = check_s
        self.recheck_s = recheck_s
        self.out_of_order = False
        self.tries = 0  # recovery attempts made so far (for tests and the log)
        self._tried_at: float | None = None
        self._jobs = None
        self._event = None

    def start(self) -> None:
        """Check now, then every ``check_s`` seconds."""
        from kiosk.ui.background import BackgroundJobs

        self._jobs = BackgroundJobs()
        self.check()
        self._event = Clock.schedule_interval(self.check, self.check_s)

    def stop(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        if self._jobs is not None:
            self._jobs.close()

    def check(self, *_args) -> None:
        """Look at the buffer's last write; while it failed, try again every ``recheck_s``."""
        error = self.buffer.last_write_error
        out = error is not None
        if out != self.out_of_order:
            if out:
                log.warning("out of order: the buffer cannot take answers (%s); trying again "
                            "every %.0f s", error, self.recheck_s)
            else:
                log.info("the buffer takes answers again; ratings are invited again")
                self._tried_at = None
        self.out_of_order = out
        if out and self._due():
            self._try_again()
        self.report(out)

    def heartbeat_fields(self) -> dict:
        """``out_of_order`` for the heartbeat (``sync.uploader`` heartbeat_extras; any thread).

        Why the terminal cannot take answers now, from the buffer's last failed
        write (what :meth:`check` goes by), or None: central's fleet health shows
        and logs it (``central.fleet``, state "out of order").
        """
        error = self.buffer.last_write_error
        if error is None:
            return {"out_of_order": None}
        return {"out_of_order": f"the buffer cannot take answers: {error}".replace("\x00", "")[:300]}

    def _due(self) -> bool:
        return self._tried_at is None or Clock.time() - self._tried_at >= self.recheck_s

    def _try_again(self) -> None:
        if self._jobs is None or self._jobs.running("storage-try"):
            return
        self._tried_at = Clock.time()
        self.tries += 1
        self._jobs.run("storage-try", self._try_write, on_done=lambda _r: self.check(),
                       on_error=self._try_failed)

    def _try_write(self) -> None:
        """On a worker: open for writing if opened for reading only, then one probe commit."""
        buffer = self.buffer
        try:
            if not buffer.writable:
                buffer.try_writable()
            buffer.probe_write()
        except BufferUnavailable:
            pass  # still refused: the buffer keeps the error, the next try is in recheck_s

    def _try_failed(self, error: BaseException) -> None:
        log.error("out of order: checking the buffer failed: %s: %s", type(error).__name__, error)
        self.check()
