"""Opening hours in the running terminal: the watch that closes and opens it, the heartbeat fields.

Use::

    watch = OpeningWatch(hours, navigator.set_open, time_source)
    watch.start()     # checks at once (before the first frame: the first screen is right),
                      # then every CHECK_S seconds and exactly when the next change is due
    uploader.heartbeat_extras.append(OpeningHeartbeat(hours, buffer, time_source, started))

What the terminal does with the answer (the closed screen, a visitor who is
still answering at closing time) is the navigator's: see
:meth:`kiosk.ui.navigator.Navigator.set_open`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

from kivy.clock import Clock

from kiosk.clock import Stamp, TimeSource
from kiosk.errors import BufferUnavailable
from kiosk.opening_hours import OpeningHours

log = logging.getLogger(__name__)


def _moment(stamp: Stamp) -> datetime:
    return datetime.fromtimestamp(stamp.wall, timezone.utc)


class OpeningWatch:
    """Tells ``report(is_open, next_change, now)`` what the opening hours say, on the Kivy clock.

    It checks at :meth:`start`, every :attr:`CHECK_S` seconds, and exactly at the
    next change (scheduled anew at every check, so a wall clock that jumps, as
    NTP makes it after a boot without RTC, is caught up with within ``CHECK_S``).
    ``report`` is called at every check, changed or not: the closed screen's
    "today" / "tomorrow" moves on at midnight. ``next_change`` and ``now`` are in
    the town hall's zone; ``next_change`` is ``None`` when nothing changes.
    ``time_source``: the wall clock (tests pass one that follows the Kivy clock).
    """

    CHECK_S = 30.0
    #: A check planned for a change that finds the wall clock this little before it counts as at it
    #: (the Kivy clock and the wall clock round differently; the change must not wait CHECK_S).
    SLACK_S = 1.0

    def __init__(self, hours: OpeningHours,
                 report: Callable[[bool, datetime | None, datetime], object],
                 time_source: TimeSource) -> None:
        self.hours = hours
        self.report = report
        self.time_source = time_source
        self._every = None
        self._exact = None

    def start(self) -> None:
        """Check now, then keep checking until :meth:`stop`."""
        self.check()
        self._every = Clock.schedule_interval(self._every_check, self.CHECK_S)

    def _every_check(self, _dt) -> None:
        self.check()  # returns nothing: a False would end Kivy's interval

    def stop(self) -> None:
        for event in (self._every, self._exact):
            if event is not None:
                event.cancel()
        self._every = self._exact = None

    def check(self, due: datetime | None = None) -> bool:
        """Ask the opening hours now, report, and plan the check at the next change; returns open or not.

        ``due``: the change this check was planned for.
        """
        now = _moment(self.time_source.now())
        if due is not None and 0 < due.timestamp() - now.timestamp() < self.SLACK_S:
            now = due
        is_open = self.hours.is_open(now)
        change = self.hours.next_change(now)
        if self._exact is not None:
            self._exact.cancel()
            self._exact = None
        if change is not None:
            delay = max(0.0, change.timestamp() - now.timestamp())
            self._exact = Clock.schedule_once(lambda _dt, due=change: self.check(due), delay)
        self.report(is_open, change, self.hours.local(now))
        return is_open


class OpeningHeartbeat:
    """``open_now`` and ``quiet_open_s`` for every heartbeat: a ``Uploader.heartbeat_extras`` provider.

    ``quiet_open_s``: seconds of opening time since the later of the terminal's
    start (``started``) and the newest response recorded since then: central's
    "no ratings during opening hours" signal. Both moments are measured back
    from now on the monotonic clock when they belong to this boot, so a wall
    clock that jumps (no RTC, NTP) makes no quiet spell out of nothing; it
    counts back at most :attr:`QUIET_HORIZON_S`. Without opening hours
    (``hours`` is ``None``: always open) ``open_now`` is ``None`` and every
    second counts.

    Runs on the sync thread: it reads only the immutable opening hours, the
    time source and the buffer (a connection of its own per unit of work), never Kivy.
    ``time_source`` must be the buffer's (both are the system clocks on a terminal).
    """

    QUIET_HORIZON_S = 366 * 86400.0

    def __init__(self, hours: OpeningHours | None, buffer, time_source: TimeSource,
                 started: Stamp) -> None:
        self.hours = hours
        self.buffer = buffer
        self.time_source = time_source
        self.started = started

    def __call__(self) -> dict:
        now = self.time_source.now()
        since = max(self.quiet_since(now), now.wall - self.QUIET_HORIZON_S)
        if self.hours is None:
            return {"open_now": None, "quiet_open_s": max(0.0, now.wall - since)}
        end = _moment(now)
        start = datetime.fromtimestamp(since, timezone.utc)
        return {"open_now": self.hours.is_open(end),
                "quiet_open_s": self.hours.open_seconds_between(start, end)}

    def quiet_since(self, now: Stamp) -> float:
        """The wall-clock time (as the clock reads now) of the start or the newest response since."""
        origin = self.started
        try:
            last = self.buffer.last_response_stamp()
        except BufferUnavailable as err:
            log.warning("quiet time counted from the start: %s", err)
            last = None
        if last is not None and last.boot_id == origin.boot_id and last.mono > origin.mono:
            origin = last
        if origin.boot_id == now.boot_id:
            return now.wall - (now.mono - origin.mono)
        return origin.wall
