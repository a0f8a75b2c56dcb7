"""The kiosk's Kivy screens and widgets; :func:`load_kv` loads their kv rules once."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

W = TypeVar("W")

_KV_DIR = Path(__file__).resolve().parent
#: Class rules first (theme, widgets), then the screens that use them.
_KV_FILES = ("theme.kv", "answers.kv", "keyboard.kv", "welcome.kv", "question.kv",
             "comment.kv", "thanks.kv", "idle.kv", "closed.kv", "out_of_order.kv")
#: What the welcome screen and its answer panel need: loaded before the first frame.
FIRST_FRAME_KV = ("theme.kv", "answers.kv", "welcome.kv")


def load_kv(*names: str) -> None:
    """Load the UI's kv files exactly once per process (safe to call again).

    No ``names``: every file. With ``names`` (e.g. :data:`FIRST_FRAME_KV`):
    only those; the others follow with the widgets that need them
    (:func:`with_kv`).
    """
    from kivy.lang import Builder

    # Importing the widget modules registers their classes with Kivy's Factory,
    # which the kv rules look them up in.
    from kiosk.ui import answers, keyboard, widgets  # noqa: F401

    for name in names or _KV_FILES:
        path = str(_KV_DIR / name)
        if path not in Builder.files:
            Builder.load_file(path)


def with_kv(factory: Callable[[], W], *names: str) -> Callable[[], W]:
    """``factory`` that loads ``names`` (kv files) first, for a widget made after the first frame.

    Use::

        LazyWidgets({"comment": with_kv(CommentScreen, "keyboard.kv", "comment.kv")})
    """
    def make() -> W:
        load_kv(*names)
        return factory()

    return make
