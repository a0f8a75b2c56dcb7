"""A large on-screen keyboard that types into a TextInput (no system keyboard on a kiosk)."""

from __future__ import annotations

from kivy.properties import BooleanProperty, ObjectProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.ui.widgets import BigButton

#: Rows of character keys; special keys are added around them.
ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm,.-")


class KeyButton(BigButton):
    """One key; ``char`` is what it types (empty for special keys)."""


class OnScreenKeyboard(BoxLayout):
    """Types into ``target`` (a TextInput); ``shift`` gives one capital letter."""

    target = ObjectProperty(None, allownone=True)
    shift = BooleanProperty(False)

    def __init__(self, **kwargs):
        self._letter_keys = []
        super().__init__(**kwargs)

    def on_kv_post(self, base_widget):
        """Add the character keys once the kv rule has made the rows."""
        for index, row in enumerate(ROWS):
            line = self.ids[f"row{index}"]
            # Row 0 ends in the kv-defined delete key: insert the digits before it.
            at = 1 if index == 0 else 0
            for char in row:
                key = KeyButton(text=char)
                key.bind(on_release=lambda _k, c=char: self.type(c))
                line.add_widget(key, index=at)
                if char.isalpha():
                    self._letter_keys.append(key)

    def type(self, char: str) -> None:
        """Insert ``char`` (upper-cased after shift) at the cursor."""
        if self.target is None:
            return
        if self.shift:
            char = char.upper()
            self.shift = False
        self.target.insert_text(char)

    def backspace(self) -> None:
        """Delete the character before the cursor."""
        if self.target is not None:
            self.target.do_backspace()

    def space(self) -> None:
        """Insert a space."""
        self.type(" ")

    def on_shift(self, *_):
        for key in self._letter_keys:
            key.text = key.text.upper() if self.shift else key.text.lower()
