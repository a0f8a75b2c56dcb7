"""Wrong PINs lock the pad for a growing time, kept on disk so a restart does not reset it.

Use (from a worker thread: it reads and writes a file)::

    lockout = PinLockout(data_dir)
    lockout.remaining()                 # seconds until the pad may be used again (0.0: now)
    attempt = lockout.begin_attempt()   # PadLocked(seconds) while locked; counts the try as wrong
    if verify_pin(encoded, pin):
        lockout.succeeded()             # back to zero wrong tries
    else:
        attempt.delay                   # the lock that wrong try started (0.0 for a free try)

Rules:

* :data:`FREE_TRIES` wrong tries in a row cost nothing. The third one locks
  the pad for :data:`FIRST_DELAY_S` (30 s), each further one for twice the
  previous lock, at most :data:`MAX_DELAY_S` (15 minutes). A right PIN resets
  the count; ``balie-kiosk set-pin`` does too.
* A try is counted as wrong *before* the PIN is checked and written to disk
  (``<data dir>/admin-pin-lockout.json``, mode 0600, atomic), and only a right
  PIN takes it back: pulling the plug during the check gives no free try.
* Time is the kernel's boot id plus CLOCK_BOOTTIME (:mod:`kiosk.clock`), not
  the wall clock, which a Raspberry Pi without RTC gets wrong until NTP syncs
  and which anyone with a keyboard could set. Within one boot the lock ends
  exactly when it should, also across restarts of the app. After a reboot the
  time that passed cannot be measured, so the lock runs again, in full, counted
  from boot (it ends when the new boot is as old as the lock was long):
  rebooting never shortens a lock by more than the time the boot itself took.
* When the file cannot be written (disk full, read-only) the state is kept in
  memory for this process and the error logged: staff can still reach the
  admin screen that shows the fault. A damaged file is logged and counts as
  :data:`FREE_TRIES` wrong tries (the next wrong PIN locks the pad).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from kiosk.clock import TimeSource, system_time_source
from kiosk.errors import BalieError
from kiosk.pin import write_private_file

log = logging.getLogger(__name__)

LOCKOUT_FILE = "admin-pin-lockout.json"
FREE_TRIES = 3
FIRST_DELAY_S = 30.0
MAX_DELAY_S = 15 * 60.0
FORMAT = 1


class PadLocked(BalieError):
    """Too many wrong PINs: the pad is locked for ``seconds`` more. Retry after that."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the PIN pad is locked for {seconds:.0f} more seconds")


def delay_after(failures: int) -> float:
    """Seconds the pad stays locked after ``failures`` wrong tries in a row.

    0 for the free tries, then 30, 60, 120, … seconds, at most 15 minutes.
    """
    if failures < FREE_TRIES:
        return 0.0
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** min(failures - FREE_TRIES, 32))


@dataclass(frozen=True)
class LockState:
    """What is on disk: wrong tries in a row, and when the current lock ends (boot id + boot time)."""

    failures: int = 0
    boot_id: str = ""
    locked_until: float = 0.0  # CLOCK_BOOTTIME seconds on ``boot_id``; 0: no lock
    delay: float = 0.0  # the length of the current lock


@dataclass(frozen=True)
class Attempt:
    """A try that has been counted: ``failures`` so far (this one included) and the lock it set."""

    failures: int
    delay: float

    @property
    def tries_left(self) -> int:
        """Wrong tries still free before the pad locks (0: this one locked it)."""
        return max(0, FREE_TRIES - self.failures)


class PinLockout:
    """The persisted count of wrong PINs and the lock it causes.

    ``clock``: boot id + boot time (tests pass a :class:`~kiosk.clock.FakeTimeSource`).
    Thread-safe; every call reads the file again, so ``set-pin`` (another
    process) resetting it takes effect at once.
    """

    def __init__(self, data_dir: str | os.PathLike, clock: TimeSource | None = None) -> None:
        self.path = Path(data_dir) / LOCKOUT_FILE
        self.clock = clock or system_time_source()
        self._lock = threading.Lock()
        self._unsaved: LockState | None = None  # the disk refused the last write

    # ----------------------------------------------------------------- public

    def remaining(self) -> float:
        """Seconds until the pad may be used again; 0.0 when it may be used now."""
        with self._lock:
            return self._remaining(self._load(), self.clock.now())

    def failures(self) -> int:
        """Wrong tries in a row so far."""
        with self._lock:
            return self._load().failures

    def begin_attempt(self) -> Attempt:
        """Count a try as wrong (on disk) before its PIN is checked; :class:`PadLocked` if locked."""
        with self._lock:
            state, now = self._load(), self.clock.now()
            left = self._remaining(state, now)
            if left > 0:
                raise PadLocked(left)
            failures = state.failures + 1
            delay = delay_after(failures)
            self._save(LockState(failures=failures, boot_id=now.boot_id,
                                 locked_until=now.mono + delay if delay else 0.0, delay=delay))
            return Attempt(failures=failures, delay=delay)

    def succeeded(self) -> None:
        """The PIN was right: no wrong tries, no lock."""
        with self._lock:
            self._save(LockState(boot_id=self.clock.now().boot_id))

    def reset(self) -> None:
        """Forget every wrong try (``balie-kiosk set-pin``)."""
        with self._lock:
            self._unsaved = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    # ----------------------------------------------------------------- inside

    @staticmethod
    def _remaining(state: LockState, now) -> float:
        if state.delay <= 0:
            return 0.0
        if state.boot_id == now.boot_id:
            end = state.locked_until
        else:  # rebooted since: the full lock again, counted from boot
            end = state.delay
        return max(0.0, end - now.mono)

    def _load(self) -> LockState:
        if self._unsaved is not None:
            return self._unsaved
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return LockState()
        except OSError as err:
            log.error("PIN lockout %s: cannot read it (%s); counting from %d wrong tries",
                      self.path, err.strerror or err, FREE_TRIES)
            return LockState(failures=FREE_TRIES)
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return LockState(failures=max(0, int(data["failures"])), boot_id=str(data["boot_id"]),
                             locked_until=float(data["locked_until"]),
                             delay=min(MAX_DELAY_S, max(0.0, float(data["delay"]))))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.error("PIN lockout %s is damaged (%s); counting from %d wrong tries",
                      self.path, err, FREE_TRIES)
            return LockState(failures=FREE_TRIES)

    def _save(self, state: LockState) -> None:
        body = json.dumps({"format": FORMAT, **asdict(state)}).encode() + b"\n"
        try:
            write_private_file(self.path, body)
        except OSError as err:
            log.error("PIN lockout %s: cannot write it (%s); keeping the count in memory",
                      self.path, err.strerror or err)
            self._unsaved = state
        else:
            self._unsaved = None
