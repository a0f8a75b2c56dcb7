"""The welcome screen: the first question answerable in one tap, and the language switch."""

from __future__ import annotations

from kivy.properties import ListProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.i18n import AUTONYMS, N_
from kiosk.ui.widgets import QuietButton

#: The hint under a question, per question type (gettext ids).
HINTS = {
    "grade": N_("Tap a grade from 1 to 10"),
    "smiley": N_("Tap the face that fits"),
    "choice": N_("Tap what fits"),
    "yesno": N_("Tap yes or no"),
}


class WelcomeScreen(Screen):
    """Dispatches ``on_language(code)``; the answer panel's own event carries the rating."""

    question = ObjectProperty(None, allownone=True)
    languages = ListProperty([])
    current_language = StringProperty("nl")

    def __init__(self, **kwargs):
        self.register_event_type("on_language")
        super().__init__(**kwargs)
        self._language_buttons = {}

    def on_languages(self, *_):
        box = self.ids.languages
        box.clear_widgets()
        self._language_buttons = {}
        for code in self.languages:
            button = QuietButton(text=AUTONYMS.get(code, code.upper()), font_size="24sp")
            button.bind(on_release=lambda _b, c=code: self.dispatch("on_language", c))
            box.add_widget(button)
            self._language_buttons[code] = button
        self.on_current_language()

    def on_current_language(self, *_):
        for code, button in self._language_buttons.items():
            button.selected = code == self.current_language
            button.bold = code == self.current_language

    def set_panel(self, panel) -> None:
        """Show ``panel`` (built once by the navigator) as this screen's answer buttons."""
        holder = self.ids.panel_holder
        holder.clear_widgets()
        if panel.parent is not None:
            panel.parent.remove_widget(panel)
        holder.add_widget(panel)

    def on_language(self, code):
        """Default handler; the navigator binds the real one."""
