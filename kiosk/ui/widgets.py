"""Shared widgets: big rounded buttons, drawn smiley faces, the progress bar.

Their look lives in ``theme.kv`` (class rules); this module holds only what
needs Python: drawing the faces and the pressed/selected state.
"""

from __future__ import annotations

from kivy.graphics import Color, Line, SmoothEllipse
from kivy.metrics import dp
from kivy.properties import (BooleanProperty, ColorProperty, NumericProperty, StringProperty)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView
from kivy.uix.widget import Widget


class BigButton(ButtonBehavior, Label):
    """A large rounded button with the theme's colours (at least 64 dp high, see theme.kv)."""

    selected = BooleanProperty(False)
    radius = NumericProperty(dp(14))


class QuietButton(BigButton):
    """A secondary action (skip, back): outlined instead of filled."""


class GradeButton(BigButton):
    """One report grade (1-10) as a big square target."""

    value = NumericProperty(0)


#: Face fill per mood from very unhappy (-1) to very happy (+1): soft tones so
#: the black outline, the mouth and the label carry the meaning, not the colour.
_FACE_FILLS = {
    -1.0: (0.96, 0.72, 0.70, 1),
    -0.5: (0.98, 0.84, 0.72, 1),
    0.0: (0.99, 0.93, 0.70, 1),
    0.5: (0.82, 0.92, 0.74, 1),
    1.0: (0.70, 0.88, 0.72, 1),
}


class FaceDrawing(Widget):
    """A smiley drawn with canvas instructions; ``mood`` runs from -1 (sad) to +1 (happy)."""

    mood = NumericProperty(0.0)
    ink = ColorProperty((0.1, 0.1, 0.1, 1))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.canvas:
            # The outline: an ink disc with the face's fill inset on top (smooth edges;
            # a wide Line is not smoothed without multisampling, which kiosk.kivy_setup turns off).
            self._ink_colour = Color(*self.ink)
            self._outline = SmoothEllipse()
            self._fill_colour = Color(*_FACE_FILLS[0.0])
            self._disc = SmoothEllipse()
            self._features_colour = Color(*self.ink)
            self._left_eye = SmoothEllipse()
            self._right_eye = SmoothEllipse()
            self._mouth = Line(width=dp(4), cap="round", joint="round")
        self.bind(pos=self._redraw, size=self._redraw, mood=self._redraw, ink=self._redraw)

    def _redraw(self, *_):
        side = min(self.width, self.height)
        r = side / 2.0
        cx, cy = self.center
        self._fill_colour.rgba = _FACE_FILLS.get(round(self.mood * 2) / 2, _FACE_FILLS[0.0])
        self._ink_colour.rgba = self._features_colour.rgba = self.ink
        self._outline.pos = (cx - r, cy - r)
        self._outline.size = (side, side)
        inner = max(0.0, r - dp(5))          # a 5 dp ring, as the Line of width 2.5 drew
        self._disc.pos = (cx - inner, cy - inner)
        self._disc.size = (2 * inner, 2 * inner)
        eye = r * 0.16
        for shape, dx in ((self._left_eye, -0.34), (self._right_eye, 0.34)):
            shape.pos = (cx + dx * r - eye / 2, cy + 0.22 * r - eye / 2)
            shape.size = (eye, eye * 1.25)
        # The mouth: a parabola whose bend follows the mood; flat for neutral.
        width = 0.52 * r
        bend = 0.26 * r * self.mood
        base = cy - 0.30 * r
        points = []
        for i in range(17):
            t = -1 + i / 8.0
            points += [cx + t * width, base - bend * (1 - t * t) + bend * 0.5]
        self._mouth.points = points


class SmileyButton(ButtonBehavior, BoxLayout):
    """A face with its text label underneath; never colour alone."""

    mood = NumericProperty(0.0)
    label = StringProperty("")
    value = NumericProperty(0)
    selected = BooleanProperty(False)


def moods(faces: int) -> list[float]:
    """Moods for a 3- or 5-face scale, unhappy first."""
    return [-1.0 + 2.0 * i / (faces - 1) for i in range(faces)] if faces > 1 else [0.0]


class ReusableModalView(ModalView):
    """A :class:`ModalView` that can be opened and dismissed for as long as the terminal runs.

    Kivy's ``ModalView.open`` (2.3) binds ``center`` and ``size`` to
    ``_align_center`` on every call and ``dismiss`` never unbinds them: a view
    made once and opened for each visitor who walks away kept two more
    observers per opening (memory, and one more ``_align_center`` call per
    resize), ~0.2 MiB per 1000 visitors in ``bench/memory.py``. Dropping them
    before each opening keeps exactly one of each.
    """

    def open(self, *args, **kwargs):
        if not self._is_open:
            self.funbind("center", self._align_center)
            self.funbind("size", self._align_center)
        super().open(*args, **kwargs)


class ProgressLine(Widget):
    """A thin bar filled to ``value`` (0..1), drawn in theme.kv."""

    value = NumericProperty(0.0)



class BusyIndicator(Widget):
    """A turning arc while ``active`` (a PIN being checked, a sync running); nothing otherwise.

    It turns on the Kivy clock only while active, so an idle terminal draws nothing for it.
    """

    active = BooleanProperty(False)
    ink = ColorProperty((0.1, 0.1, 0.1, 1))
    angle = NumericProperty(0.0)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.canvas:
            self._colour = Color(*self.ink)
            self._arc = Line(width=dp(4), cap="round")
        self._event = None
        self.bind(pos=self._redraw, size=self._redraw, angle=self._redraw, ink=self._redraw,
                  active=self._on_active)

    def _on_active(self, *_):
        from kivy.clock import Clock

        if self.active and self._event is None:
            self._event = Clock.schedule_interval(self._turn, 1 / 30)
        elif not self.active and self._event is not None:
            self._event.cancel()
            self._event = None
        self._redraw()

    def _turn(self, dt):
        self.angle = (self.angle + 360 * dt) % 360

    def _redraw(self, *_):
        self._colour.rgba = self.ink if self.active else (0, 0, 0, 0)
        r = max(0.0, min(self.width, self.height) / 2 - dp(4))
        cx, cy = self.center
        self._arc.circle = (cx, cy, r, self.angle, self.angle + 270)
