"""Python's cycle collector paused while the terminal starts: nothing it could free is made then.

Use::

    gc_pause.pause()          # balie-kiosk run, first thing
    ...                       # settings, questionnaire, buffer, Kivy's config
    gc_pause.keep_made()      # before the window: Kivy's full collection skips all made so far
    ...                       # window, screens, the first frame
    gc_pause.resume()         # after the first frame (BalieApp), and when `run` ends

Why: start-up makes objects that live as long as the terminal (modules, the
settings and questionnaire models, Kivy's classes, the welcome screen; ~67 000
tracked objects before the window). Collecting among them while they are made
(~120 automatic collections, and the full collection Kivy's graphics context
runs when the window is made, which alone took ~30 ms) cost ~35 ms before the
first frame on the 2-core test VM. :func:`resume` makes every object
collectable as usual again (the next full collection looks at all of them);
calling it when nothing is paused does nothing.
"""

from __future__ import annotations

import gc


def pause() -> None:
    """No automatic collections until :func:`resume`."""
    gc.disable()


def keep_made() -> None:
    """Leave every object made so far out of collections (even explicit ones) until :func:`resume`."""
    gc.freeze()


def resume() -> None:
    """Collect as usual again: automatic collections on, every object back in the oldest generation."""
    gc.unfreeze()
    gc.enable()
