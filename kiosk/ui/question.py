"""The follow-up question screen: progress, the question, its answer panel, skip."""

from __future__ import annotations

from kivy.properties import NumericProperty, ObjectProperty
from kivy.uix.screenmanager import Screen


class QuestionScreen(Screen):
    """Shows one follow-up question; dispatches ``on_skip``."""

    question = ObjectProperty(None, allownone=True)
    position = NumericProperty(1)
    total = NumericProperty(1)

    def __init__(self, **kwargs):
        self.register_event_type("on_skip")
        super().__init__(**kwargs)

    def show(self, question, panel, position: int, total: int) -> None:
        """Put ``question`` and its prebuilt ``panel`` on screen."""
        self.question = question
        self.position = position
        self.total = total
        holder = self.ids.panel_holder
        holder.clear_widgets()
        if panel.parent is not None:
            panel.parent.remove_widget(panel)
        holder.add_widget(panel)

    def on_skip(self):
        """Default handler; the navigator binds the real one."""
