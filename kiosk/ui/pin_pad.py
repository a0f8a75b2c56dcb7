"""The PIN pad in front of the admin screen: ten digit keys, erase, OK, cancel; never shows the digits.

The pad only collects digits and displays what the admin control tells it
(checking, wrong, locked for N seconds, no PIN set); checking the PIN happens
off the UI thread in :mod:`kiosk.ui.admin_control`.
"""

from __future__ import annotations

from kivy.graphics import Color, Line, SmoothEllipse
from kivy.metrics import dp
from kivy.properties import (BooleanProperty, ColorProperty, DictProperty, NumericProperty,
                             OptionProperty, StringProperty)
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from kiosk.pin import MAX_DIGITS, MIN_DIGITS


class PinDots(Widget):
    """One dot per digit typed (filled), at least four places (open rings): the digits stay hidden."""

    count = NumericProperty(0)
    ink = ColorProperty((0.1, 0.1, 0.1, 1))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bind(pos=self._redraw, size=self._redraw, count=self._redraw, ink=self._redraw)

    def _redraw(self, *_):
        self.canvas.clear()
        places = max(MIN_DIGITS, int(self.count))
        size, gap = dp(26), dp(18)
        width = places * size + (places - 1) * gap
        x = self.center_x - width / 2
        y = self.center_y - size / 2
        with self.canvas:
            Color(*self.ink)
            for i in range(places):
                if i < self.count:
                    SmoothEllipse(pos=(x, y), size=(size, size))
                else:
                    Line(circle=(x + size / 2, y + size / 2, size / 2 - dp(1.5)), width=dp(2))
                x += size + gap


class PinPadScreen(Screen):
    """Dispatches ``on_submit(pin)`` and ``on_cancel``.

    ``message`` is a gettext id shown with ``message_args`` (so it re-renders
    on a language switch); ``checking``: a PIN is being checked (keys off,
    busy indicator on); ``locked_s``: seconds the pad stays locked;
    ``available``: False when no PIN is set (only Cancel works).
    """

    entered = StringProperty("")
    message = StringProperty("")
    message_args = DictProperty({})
    message_kind = OptionProperty("info", options=["info", "error"])
    checking = BooleanProperty(False)
    locked_s = NumericProperty(0)
    available = BooleanProperty(True)

    def __init__(self, **kwargs):
        self.register_event_type("on_submit")
        self.register_event_type("on_cancel")
        super().__init__(**kwargs)

    @property
    def accepting(self) -> bool:
        """True when a key press counts."""
        return self.available and not self.checking and self.locked_s <= 0

    def press(self, digit: str) -> None:
        if self.accepting and len(self.entered) < MAX_DIGITS:
            self.entered += digit

    def erase(self) -> None:
        if self.accepting:
            self.entered = self.entered[:-1]

    def submit(self) -> None:
        if self.accepting and self.entered:
            pin, self.entered = self.entered, ""
            self.dispatch("on_submit", pin)

    def say(self, message: str, kind: str = "info", **args) -> None:
        """Show ``message`` (a gettext id) with its ``{placeholders}`` filled from ``args``."""
        self.message = ""  # first: the old text must not be formatted with the new arguments
        self.message_args = args
        self.message = message
        self.message_kind = kind

    def reset(self) -> None:
        """Empty, unlocked, nothing said: as the gesture opens it."""
        self.entered = ""
        self.checking = False
        self.locked_s = 0
        self.available = True
        self.say("")

    def on_submit(self, pin):
        """Default handler; the admin control binds the real one."""

    def on_cancel(self):
        """Default handler; the admin control binds the real one."""
