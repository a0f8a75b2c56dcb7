"""The thank-you screen, shown for a few seconds after the last question."""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class ThanksScreen(Screen):
    """Dispatches ``on_done`` when the visitor taps it (the navigator also times it out)."""

    def __init__(self, **kwargs):
        self.register_event_type("on_done")
        super().__init__(**kwargs)

    def on_touch_up(self, touch):
        if self.collide_point(*touch.pos) and self.manager and self.manager.current == self.name:
            self.dispatch("on_done")
            return True
        return super().on_touch_up(touch)

    def on_done(self):
        """Default handler; the navigator binds the real one."""
