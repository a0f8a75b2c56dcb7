"""The "PREVIEW" banner over the visitor's screens while staff preview the questionnaire.

It lies on the window above the screens, says that nothing is recorded, and
has one button back to the admin screen (dispatches ``on_end``). Touches
anywhere else pass through to the screen below.
"""

from __future__ import annotations

from kivy.uix.floatlayout import FloatLayout


class PreviewBanner(FloatLayout):
    """Dispatches ``on_end`` when staff end the preview."""

    def __init__(self, **kwargs):
        self.register_event_type("on_end")
        super().__init__(**kwargs)

    def on_end(self):
        """Default handler; the admin control binds the real one."""
