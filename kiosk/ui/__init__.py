"""The kiosk's Kivy screens and widgets; :func:`load_kv` loads their kv rules once."""

from __future__ import annotations

from pathlib import Path

_KV_DIR = Path(__file__).resolve().parent
#: Class rules first (theme, widgets), then the screens that use them.
_KV_FILES = ("theme.kv", "answers.kv", "keyboard.kv", "welcome.kv", "question.kv",
             "comment.kv", "thanks.kv", "idle.kv", "closed.kv", "out_of_order.kv")


def load_kv() -> None:
    """Load every kv file of the UI exactly once per process (safe to call again)."""
    from kivy.lang import Builder

    # Importing the widget modules registers their classes with Kivy's Factory,
    # which the kv rules look them up in.
    from kiosk.ui import answers, keyboard, widgets  # noqa: F401

    for name in _KV_FILES:
        path = str(_KV_DIR / name)
        if path not in Builder.files:
            Builder.load_file(path)
