"""Answer panels: the buttons for one question, by question type.

Use::

    panel = make_panel(question, translator)
    panel.bind(on_answer=lambda panel, value: ...)

A panel is built once per question and kept (widgets built once: re-creating
labels in long runs leaks textures); a language switch only changes texts.
Layout is in ``answers.kv``; the buttons are added here because their number
depends on the question.
"""

from __future__ import annotations

from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk.i18n import N_
from kiosk.ui.widgets import BigButton, GradeButton, SmileyButton, moods

#: Default smiley labels when the questionnaire gives none (gettext ids).
SMILEY_LABELS = {
    5: (N_("Very bad"), N_("Bad"), N_("Okay"), N_("Good"), N_("Very good")),
    3: (N_("Bad"), N_("Okay"), N_("Good")),
}


class AnswerPanel(BoxLayout):
    """Base class: dispatches ``on_answer(value)`` when the visitor taps an answer."""

    question = ObjectProperty(None)
    tr = ObjectProperty(None)
    lang = StringProperty("")

    def __init__(self, **kwargs):
        self.register_event_type("on_answer")
        super().__init__(**kwargs)
        self.buttons = self.build_buttons()
        self._follow_lang = self.setter("lang")
        self.tr.bind(lang=self._follow_lang)
        self.lang = self.tr.lang

    def release(self) -> None:
        """Take the panel off screen and stop following the language (after a questionnaire switch).

        The translator holds its observers strongly; without this an old panel
        and its textures would stay alive for as long as the terminal runs.
        """
        self.tr.unbind(lang=self._follow_lang)
        if self.parent is not None:
            self.parent.remove_widget(self)

    def build_buttons(self) -> list:
        """Create the answer buttons once; subclasses add them to their containers."""
        raise NotImplementedError

    def on_lang(self, *_):
        """Refresh every text for the new language."""

    def on_answer(self, value):
        """Default handler (the screen binds its own)."""

    def choose(self, value):
        """Dispatch the visitor's answer."""
        self.dispatch("on_answer", value)

    def _wire(self, button, value):
        button.bind(on_release=lambda *_: self.choose(value))
        return button


class GradePanel(AnswerPanel):
    """Ten grade buttons, 1 to 10, with optional anchor texts under the ends."""

    low_label = StringProperty("")
    high_label = StringProperty("")

    def build_buttons(self):
        buttons = [self._wire(GradeButton(value=v), v) for v in self.question.allowed_values()]
        for button in buttons:
            self.ids.row.add_widget(button)
        return buttons

    def on_lang(self, *_):
        self.low_label = self.question.low_label_for(self.lang) or ""
        self.high_label = self.question.high_label_for(self.lang) or ""


class SmileyPanel(AnswerPanel):
    """Three or five faces, each with its label."""

    def build_buttons(self):
        values = self.question.allowed_values()
        buttons = [self._wire(SmileyButton(mood=m, value=v), v)
                   for m, v in zip(moods(self.question.faces), values)]
        for button in buttons:
            self.ids.row.add_widget(button)
        return buttons

    def on_lang(self, *_):
        own = self.question.labels_for(self.lang)
        labels = list(own) if own else [self.tr._(t) for t in SMILEY_LABELS[self.question.faces]]
        for button, label in zip(self.buttons, labels):
            button.label = label


class ChoicePanel(AnswerPanel):
    """One button per option, in two columns."""

    def build_buttons(self):
        buttons = [self._wire(BigButton(), option.value) for option in self.question.options]
        for button in buttons:
            self.ids.grid.add_widget(button)
        return buttons

    def on_lang(self, *_):
        for button, option in zip(self.buttons, self.question.options):
            button.text = option.label_for(self.lang)


class YesNoPanel(AnswerPanel):
    """Two big buttons: yes and no."""

    def build_buttons(self):
        return [self._wire(self.ids.yes, "yes"), self._wire(self.ids.no, "no")]


_PANELS = {"grade": GradePanel, "smiley": SmileyPanel, "choice": ChoicePanel, "yesno": YesNoPanel}


def make_panel(question, tr) -> AnswerPanel:
    """The panel for ``question`` (any type but ``comment``)."""
    try:
        cls = _PANELS[question.type]
    except KeyError:
        raise ValueError(f"question {question.id!r} of type {question.type!r} has no answer panel")
    return cls(question=question, tr=tr)
