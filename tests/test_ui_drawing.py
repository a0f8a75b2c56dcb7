"""What a frame draws: no multisampling, smooth round shapes, no window-sized rectangles.

In software rendering (llvmpipe) 2x multisampling doubled the cost of a frame, and each
window-sized rectangle cost 6 ms (docs/benchmarks.md, longest frame during sync); the
window's clear colour is the screens' background instead.
"""

from __future__ import annotations

from kivy.config import Config
from kivy.graphics import (
    Color,
    Ellipse,
    Rectangle,
    RoundedRectangle,
    SmoothEllipse,
    SmoothRectangle,
    SmoothRoundedRectangle,
)


def instructions(widget):
    """Every canvas instruction of ``widget`` and its children, in drawing order, with the
    widget and the colour in effect."""
    canvases = [widget.canvas]
    if hasattr(widget.canvas, "before"):
        canvases = [widget.canvas.before, widget.canvas, widget.canvas.after]
    colour = None
    for canvas in canvases:
        for instruction in canvas.children:
            if isinstance(instruction, Color):
                colour = tuple(instruction.rgba)
            yield widget, instruction, colour
    for child in widget.children:
        yield from instructions(child)


def test_frames_are_drawn_without_multisampling(kiosk):
    assert Config.get("graphics", "multisamples") == "0"


def test_no_screen_paints_the_background_again(kiosk):
    # A window-sized rectangle in the window's own clear colour changes no pixel and cost
    # 6 ms a frame in software. (The out-of-order screen has a colour of its own.)
    from kivy.core.window import Window

    background = tuple(kiosk.app.theme.background)
    assert tuple(Window.clearcolor) == background
    manager = kiosk.app.root
    rectangles = 0
    for screen in manager.screens:
        screen.size = Window.size
        kiosk.frames(1)
        for widget, instruction, colour in instructions(screen):
            if type(instruction) in (Rectangle, SmoothRectangle):
                rectangles += 1
                w, h = instruction.size
                assert colour != background or w * h < 0.5 * Window.width * Window.height, (
                    f"{screen.name}: {type(widget).__name__} paints the background again")
    assert len(manager.screens) >= 5 and rectangles > 0


def test_round_shapes_are_smoothed(kiosk):
    from kiosk.ui.widgets import FaceDrawing

    face = FaceDrawing(size=(200, 200))
    drawn = [instruction for screen in kiosk.app.root.screens
             for _, instruction, _ in instructions(screen)]
    drawn += face.canvas.children
    shapes = {type(instruction) for instruction in drawn}
    assert {SmoothRoundedRectangle, SmoothEllipse} <= shapes
    assert not shapes & {RoundedRectangle, Ellipse}, "a round shape without smoothing"
