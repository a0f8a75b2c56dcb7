"""Opening hours: open at a given moment, the next opening or closing, opening time in between.

Use::

    hours = OpeningHours({"mon": ["08:30-12:30", "13:00-17:00"], "thu": ["08:30-20:00"]},
                         closed_dates=[date(2026, 12, 25)], timezone="Europe/Amsterdam")
    hours.is_open(now)                      # now: an aware datetime, any zone
    hours.next_change(now)                  # the next moment it opens or closes (town hall time)
    hours.open_seconds_between(t0, t1)      # opening time between two moments, in seconds

Pure: no Kivy, no clock of its own; every moment is an aware ``datetime`` passed
in (a naive one is refused: it would silently mean "this machine's zone").

Ranges are wall-clock times in the town hall's time zone, each inside one day:
``"08:30-12:30"``; ``"24:00"`` is the midnight that ends the day. A range is the
stretch of real time from the first moment the wall clock shows its start to the
first moment it shows its end. So on the night clocks go forward a range across
02:00-03:00 is an hour shorter, on the night they go back an hour longer, and a
start inside the skipped hour opens at 03:00. Ranges that touch (``13:00-24:00``
then the next day ``00:00-02:00``) are one stretch: no change at midnight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

#: The weekday keys, Monday first (``date.weekday()`` order).
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE = "Europe/Amsterdam"
MINUTES_PER_DAY = 24 * 60
#: :meth:`OpeningHours.next_change` looks this many days ahead at most (a long closed stretch).
LOOKAHEAD_DAYS = 400

_UTC = timezone.utc
_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_range(text: str) -> tuple[int, int]:
    """``"08:30-12:30"`` -> ``(510, 750)``: minutes after midnight, start before end.

    Raises ``ValueError`` with a sentence for the administrator: malformed,
    impossible times, an end at or before the start (a range cannot cross midnight).
    """
    found = _RANGE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"must be a time range like \"08:30-12:30\", got {text!r}")
    h1, m1, h2, m2 = (int(part) for part in found.groups())
    if h1 > 23 or m1 > 59:
        raise ValueError(f"{text!r}: the start {h1}:{m1:02d} is not a time of day (00:00 to 23:59)")
    if h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: the end {h2}:{m2:02d} is not a time of day (00:00 to 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == 0:
        raise ValueError(f"{text!r}: write 24:00 for midnight at the end of the day")
    if end <= start:
        raise ValueError(
            f"{text!r}: ends at {_clock(end)}, not after it starts at {_clock(start)}; a range "
            f"cannot cross midnight: split it over two days ({_clock(start)}-24:00 and 00:00-{_clock(end)})"
        )
    return start, end


def check_day(ranges: Iterable[str | tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """One day's ranges parsed and sorted; ``ValueError`` if two of them overlap (touching is fine)."""
    parsed = sorted(parse_range(r) if isinstance(r, str) else tuple(r) for r in ranges)
    for (s1, e1), (s2, e2) in zip(parsed, parsed[1:]):
        if s2 < e1:
            raise ValueError(f"\"{_clock(s1)}-{_clock(e1)}\" and \"{_clock(s2)}-{_clock(e2)}\" overlap")
    return tuple(parsed)


class OpeningHours:
    """A week of opening ranges, closed dates and the zone they are read in.

    ``week``: day key (``"mon"`` .. ``"sun"``) -> ranges (``"08:30-12:30"`` or
    ``(510, 750)`` minutes); a day left out is closed all day. ``closed_dates``:
    dates (public holidays) closed all day. ``timezone``: an IANA name or a tzinfo.
    """

    def __init__(self, week: Mapping[str, Iterable[str | tuple[int, int]]], *,
                 closed_dates: Iterable[date] = (), timezone: str | ZoneInfo = DEFAULT_TIMEZONE):
        unknown = set(week) - set(DAY_KEYS)
        if unknown:
            raise ValueError(f"unknown day(s) {', '.join(sorted(unknown))}; use {', '.join(DAY_KEYS)}")
        self.tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._week = tuple(check_day(week.get(day, ())) for day in DAY_KEYS)
        self.closed_dates = frozenset(closed_dates)

    @classmethod
    def from_settings(cls, settings) -> OpeningHours | None:
        """From ``[opening_hours]`` (:class:`kiosk.settings.OpeningHoursSettings`); ``None``: always open."""
        if settings is None or not settings.enabled:
            return None
        return cls({day: getattr(settings, day) for day in DAY_KEYS},
                   closed_dates=settings.closed_dates, timezone=settings.timezone)

    # ----------------------------------------------------------------- questions

    def is_open(self, at: datetime) -> bool:
        """True if ``at`` lies inside an opening range (its start counts, its end does not)."""
        at = _utc(at)
        day = self.local(at).date()
        return any(a <= at < b for a, b in self._stretches(day - timedelta(days=1), day))

    def next_change(self, after: datetime) -> datetime | None:
        """The first moment after ``after`` when the counter opens or closes, in the town hall's zone.

        ``None`` if nothing changes within :data:`LOOKAHEAD_DAYS` (never open, or open day and night).
        """
        after = _utc(after)
        today = self.local(after).date()
        if (all(ranges == ((0, MINUTES_PER_DAY),) for ranges in self._week)
                and not any(day >= today for day in self.closed_dates)):
            return None  # open day and night from now on: no need to look a year ahead
        for days in (8, LOOKAHEAD_DAYS):
            last = today + timedelta(days=days)
            # A stretch that runs into the midnight after ``last`` may go on the day after.
            horizon = self._instant(last, MINUTES_PER_DAY)
            for a, b in self._stretches(today - timedelta(days=1), last):
                for edge in (a, b):
                    if after < edge < horizon:
                        return self.local(edge)
        return None

    def open_seconds_between(self, t0: datetime, t1: datetime) -> float:
        """Seconds of opening time between ``t0`` and ``t1``: real elapsed time (DST-correct); 0 if t1 <= t0."""
        t0, t1 = _utc(t0), _utc(t1)
        if t1 <= t0:
            return 0.0
        first = self.local(t0).date() - timedelta(days=1)
        total = 0.0
        for a, b in self._stretches(first, self.local(t1).date()):
            if b > t0 and a < t1:
                total += (min(b, t1) - max(a, t0)).total_seconds()
        return total

    def ranges_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """The ranges of ``day`` as ``(start, end)`` minutes; ``()`` on a closed date."""
        return () if day in self.closed_dates else self._week[day.weekday()]

    def local(self, at: datetime) -> datetime:
        """``at`` in the town hall's zone."""
        return _utc(at).astimezone(self.tz)

    # ----------------------------------------------------------------- the arithmetic

    def _stretches(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        """The open stretches of the local days ``first`` .. ``last`` as UTC ``(start, end)``, merged."""
        stretches: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            for start, end in self.ranges_on(day):
                a, b = self._instant(day, start), self._instant(day, end)
                if b <= a:
                    continue  # wholly inside the hour the clocks skip
                if stretches and a <= stretches[-1][1]:
                    stretches[-1] = (stretches[-1][0], max(stretches[-1][1], b))
                else:
                    stretches.append((a, b))
            day += timedelta(days=1)
        return stretches

    def _instant(self, day: date, minutes: int) -> datetime:
        """The first moment (UTC) the wall clock shows ``minutes`` after midnight of ``day``, or later."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        instant = wall.replace(tzinfo=self.tz).astimezone(_UTC)  # fold=0: the first of a repeated time
        if self._wall(instant) == wall:
            return instant
        # The clocks skip ``wall`` (spring forward): find the moment of the jump.
        other = wall.replace(tzinfo=self.tz, fold=1).astimezone(_UTC)
        lo, hi = sorted((instant, other))
        lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
        while hi_s - lo_s > 1:  # invariant: wall(lo_s) < wall <= wall(hi_s)
            mid = (lo_s + hi_s) // 2
            if self._wall(datetime.fromtimestamp(mid, _UTC)) >= wall:
                hi_s = mid
            else:
                lo_s = mid
        return datetime.fromtimestamp(hi_s, _UTC)

    def _wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.tz).replace(tzinfo=None)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"opening hours need an aware datetime (with a time zone), got {at!r}")
    return at.astimezone(_UTC)
