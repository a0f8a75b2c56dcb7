"""The closed screen: shown outside opening hours; nothing on it records anything."""

from __future__ import annotations

from datetime import date, datetime

from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen

from kiosk.i18n import N_

#: How a time of day is written (gettext ids, so each language writes it its own way: "8.30 uur").
TIME_OF_DAY = N_("{hour}:{minute:02d}")
OPEN_TODAY = N_("We are open again today at {time}.")
OPEN_TOMORROW = N_("We are open again tomorrow at {time}.")
OPEN_ON_DAY = N_("We are open again on {day} at {time}.")


def _fill(gettext, msgid: str, **values) -> str:
    """``gettext(msgid).format(**values)``; a translation with broken placeholders falls back to English."""
    try:
        return gettext(msgid).format(**values)
    except (KeyError, IndexError, ValueError):
        return msgid.format(**values)


def _day_name(day: date, pattern: str, language: str) -> str:
    from babel.core import UnknownLocaleError  # loaded when the terminal first closes
    from babel.dates import format_date

    try:
        return format_date(day, pattern, locale=language)
    except (UnknownLocaleError, ValueError):
        return format_date(day, pattern, locale="en")


def reopening_text(gettext, language: str, reopens_at: datetime | None, today: date | None) -> str:
    """"We are open again on Monday at 8:30." in ``language``; "" when the next opening is unknown.

    ``reopens_at`` and ``today`` are in the town hall's zone. Today and tomorrow
    are named so; within a week the weekday; further away the weekday and the date.
    """
    if reopens_at is None or today is None:
        return ""
    clock = _fill(gettext, TIME_OF_DAY, hour=reopens_at.hour, minute=reopens_at.minute)
    days = (reopens_at.date() - today).days
    if days == 0:
        return _fill(gettext, OPEN_TODAY, time=clock)
    if days == 1:
        return _fill(gettext, OPEN_TOMORROW, time=clock)
    pattern = "EEEE" if 1 < days < 7 else "EEEE d MMMM"
    return _fill(gettext, OPEN_ON_DAY, day=_day_name(reopens_at.date(), pattern, language),
                 time=clock)


class ClosedScreen(Screen):
    """Says the counter is closed and when it opens again. No buttons: a tap changes nothing.

    ``reopens_at``: the next opening (aware, town hall time) or ``None``;
    ``today``: the town hall's date now. The navigator sets both.
    """

    reopens_at = ObjectProperty(None, allownone=True)
    today = ObjectProperty(None, allownone=True)

    @staticmethod
    def reopening(gettext, language, reopens_at, today) -> str:
        """For kv: :func:`reopening_text` (re-rendered when the language or the times change)."""
        return reopening_text(gettext, language, reopens_at, today)
