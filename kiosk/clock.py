"""Time stamps for the buffer: wall clock plus boot id and time since boot.

A Raspberry Pi has no real-time clock: it boots with a wall clock in the past
and jumps when NTP syncs. Every stamp therefore carries, next to the wall
clock, the kernel's boot id and a monotonic clock that counts from boot, so
that central can correct timestamps recorded during the same boot exactly::

    from kiosk.clock import SystemTimeSource
    stamp = SystemTimeSource().now()
    stamp.wall, stamp.boot_id, stamp.mono

Tests pass a :class:`FakeTimeSource` and set its values by hand.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Protocol

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True, slots=True)
class Stamp:
    """One moment, as seen by three clocks."""

    wall: float  # time.time(): seconds since the epoch; may be wrong or jump
    boot_id: str  # the kernel's boot id, or a per-process random fallback where absent
    mono: float  # seconds since boot (CLOCK_BOOTTIME), else time.monotonic()


class TimeSource(Protocol):
    """Anything that can tell the time as a :class:`Stamp`."""

    def now(self) -> Stamp: ...


def _read_boot_id(path: str = BOOT_ID_PATH) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
    except OSError:
        return None
    return value or None


def _boottime_clock():
    """The best monotonic clock: CLOCK_BOOTTIME (counts from boot, includes suspend)."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    if clock_id is not None:
        try:
            time.clock_gettime(clock_id)
        except OSError:
            pass
        else:
            return lambda: time.clock_gettime(clock_id)
    return time.monotonic


class SystemTimeSource:
    """The real clocks of this machine.

    The boot id is read once: it cannot change while the process runs. Where the
    kernel does not offer one (not Linux), a random id per process stands in, so
    that monotonic values from different runs are never compared as if they
    shared an origin.
    """

    def __init__(self, boot_id_path: str = BOOT_ID_PATH) -> None:
        self.boot_id = _read_boot_id(boot_id_path) or f"process-{uuid.uuid4()}"
        self.boot_id_is_kernel = not self.boot_id.startswith("process-")
        self._mono = _boottime_clock()

    def now(self) -> Stamp:
        return Stamp(wall=time.time(), boot_id=self.boot_id, mono=self._mono())


class FakeTimeSource:
    """A clock for tests: it says what it is told.

    ::

        clock = FakeTimeSource(wall=1_700_000_000.0, mono=100.0)
        clock.advance(2.5)          # wall and mono both move on
        clock.wall = 0.0            # a wall-clock jump (NTP, no RTC); mono untouched
        clock.reboot()              # new boot id, mono restarts near zero
    """

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 100.0,
                 boot_id: str = "00000000-0000-4000-8000-000000000000") -> None:
        self.wall = wall
        self.mono = mono
        self.boot_id = boot_id
        self.calls = 0

    def now(self) -> Stamp:
        self.calls += 1
        return Stamp(wall=self.wall, boot_id=self.boot_id, mono=self.mono)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both the wall clock and the monotonic clock."""
        self.wall += seconds
        self.mono += seconds

    def reboot(self, boot_id: str | None = None, mono: float = 5.0) -> None:
        """Simulate a reboot: a fresh boot id and a monotonic clock near zero."""
        self.boot_id = boot_id or str(uuid.uuid4())
        self.mono = mono


_default: SystemTimeSource | None = None


def system_time_source() -> SystemTimeSource:
    """The process-wide :class:`SystemTimeSource` (created on first use)."""
    global _default
    if _default is None:
        _default = SystemTimeSource()
    return _default
