"""The message to visitors on screen: the kept message turned into the lines the welcome or thank-you screen shows.

Use::

    board = MessageBoard(tr, MessageStore(data_dir).load())   # the kept message at start-up
    board.offer_from_thread(document)   # from the sync thread (None: hide it)
    board.show(document)                # on the UI thread
    # kv: text: app.message_board.welcome_text / welcome_grade / thanks_text / thanks_grade

Language: a Dutch visitor reads the Dutch text; any other reads the English
one when central sent it, else the Dutch one. The grade line is a gettext text
with the numbers in the visitor's language's style ("Uw gemiddelde cijfer: 7,6
(1.234 beoordelingen)"). Everything follows ``tr.lang`` live.

Threads: :meth:`offer_from_thread` puts the document in a one-item slot and
fires a Clock trigger; the UI thread takes the newest (per-item callbacks from
threads could arrive out of order, Kivy issue 5202).
"""

from __future__ import annotations

import threading

from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.properties import ObjectProperty, StringProperty

from kiosk.i18n import N_

#: The grade line under the message ({grade}: "7,6", {count}: "1.234").
GRADE_LINE = N_("Your average grade: {grade} ({count} ratings)")
_EMPTY = object()


def format_number(value, language: str, pattern: str | None = None) -> str:
    """``value`` in ``language``'s style (nl: ``7,6`` and ``1.234``); English style when unknown."""
    from babel.core import UnknownLocaleError  # loaded with the first grade line, not at start-up
    from babel.numbers import format_decimal

    try:
        return format_decimal(value, format=pattern, locale=language)
    except (UnknownLocaleError, ValueError):
        return format_decimal(value, format=pattern, locale="en")


class MessageBoard(EventDispatcher):
    """Observable lines for the screens, from a :class:`~sync.protocol.MessageDocument`."""

    document = ObjectProperty(None, allownone=True)
    welcome_text = StringProperty("")
    welcome_grade = StringProperty("")
    thanks_text = StringProperty("")
    thanks_grade = StringProperty("")

    def __init__(self, tr, document=None, **kwargs):
        super().__init__(**kwargs)
        self.tr = tr
        self._lock = threading.Lock()
        self._handed_over = _EMPTY
        self._take = Clock.create_trigger(self._take_handed_over, 0)
        tr.bind(lang=lambda *_: self._render())
        self.document = document
        self._render()

    def offer_from_thread(self, document) -> None:
        """Any thread: show ``document`` (None: hide the message) at the next frame."""
        with self._lock:
            self._handed_over = document
        self._take()

    def show(self, document) -> None:
        """UI thread: show ``document`` now (None: hide it)."""
        self.document = document
        self._render()

    def _take_handed_over(self, _dt=None) -> None:
        with self._lock:
            document, self._handed_over = self._handed_over, _EMPTY
        if document is not _EMPTY:
            self.show(document)

    def _render(self) -> None:
        document, lang = self.document, self.tr.lang
        text = grade = ""
        if document is not None:
            text = (document.nl or document.en) if lang == "nl" else (document.en or document.nl)
            text = text or ""
            if document.grade is not None:
                grade = self.tr._(GRADE_LINE).format(
                    grade=format_number(document.grade.mean, lang, "0.0"),
                    count=format_number(document.grade.n, lang, "#,##0"))
        on_welcome = document is None or document.where == "welcome"
        self.welcome_text, self.welcome_grade = (text, grade) if on_welcome else ("", "")
        self.thanks_text, self.thanks_grade = ("", "") if on_welcome else (text, grade)
