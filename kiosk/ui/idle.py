"""The idle warning: "Are you still there?" with one big button (WCAG 2.2.1)."""

from __future__ import annotations

from kivy.properties import NumericProperty

from kiosk.ui.widgets import ReusableModalView


class IdleWarning(ReusableModalView):
    """Shown when a visitor stops tapping mid-visit; dispatches ``on_still_here``.

    ``seconds_left`` is counted down by the navigator.
    """

    seconds_left = NumericProperty(0)

    def __init__(self, **kwargs):
        self.register_event_type("on_still_here")
        super().__init__(**kwargs)

    def on_still_here(self):
        """Default handler; the navigator binds the real one."""
