"""The optional comment screen: free text typed on a large on-screen keyboard."""

from __future__ import annotations

from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen


class CommentScreen(Screen):
    """Dispatches ``on_submit(text)`` or ``on_skip``; the text is scrubbed by the flow."""

    question = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs):
        self.register_event_type("on_submit")
        self.register_event_type("on_skip")
        super().__init__(**kwargs)

    def on_kv_post(self, base_widget):
        self.ids.keyboard.target = self.ids.text

    def show(self, question) -> None:
        """Start with an empty text field for ``question``."""
        self.question = question
        self._clear()
        self.ids.keyboard.shift = True

    def submit(self) -> None:
        """Hand the typed text on, and forget it here."""
        text = self.ids.text.text
        self._clear()
        self.dispatch("on_submit", text)

    def skip(self) -> None:
        """Leave the comment out, and forget whatever was typed."""
        self._clear()
        self.dispatch("on_skip")

    def _clear(self) -> None:
        # TextInput keeps an undo history of everything typed; clearing the
        # text alone would keep earlier visitors' unscrubbed words in memory
        # (and let Ctrl+Z bring them back), growing with every comment.
        self.ids.text.text = ""
        self.ids.text.reset_undo()

    def on_submit(self, text):
        """Default handler; the navigator binds the real one."""

    def on_skip(self):
        """Default handler; the navigator binds the real one."""
