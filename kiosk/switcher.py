"""Switching the terminal to a new questionnaire between visitors, never in the middle of one.

Use::

    switcher = QuestionnaireSwitcher(navigator, make_panels)   # make_panels(q) -> LazyWidgets
    switcher.offer_from_thread(questionnaire)   # from the sync thread: handed over on the Kivy clock
    switcher.offer(questionnaire)               # on the UI thread
    switcher.in_use, switcher.pending

The safe moment is the welcome screen with no visit under way. A questionnaire
offered during a visit (or while the thank-you screen shows) waits, and goes
up the moment the screen turns back to welcome: the visitor on the way
finishes with the questions they started with. Only the newest offer is kept.

Switching gives the flow the new questionnaire (answers from then on carry
its id and version), makes its answer panels (the welcome question's at once,
the rest one per frame after) and releases the old ones.

Threads: :meth:`offer_from_thread` only puts the questionnaire in a one-item
slot and fires a Clock trigger (Kivy's scheduling is thread-safe); the UI
thread takes the newest from the slot. Per-item ``schedule_once`` calls from a
thread could arrive out of order (Kivy issue 5202); a slot cannot.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from kivy.clock import Clock

from kiosk.questionnaire import Questionnaire

log = logging.getLogger(__name__)


class QuestionnaireSwitcher:
    """Holds a new questionnaire back until no visitor is using the old one, then puts it up.

    ``navigator``: the :class:`kiosk.ui.navigator.Navigator` (its flow, panels and
    screen manager). ``make_panels(questionnaire)``: the answer panels for a
    questionnaire as a :class:`kiosk.ui.lazy.LazyWidgets` (the app's factory).
    """

    def __init__(self, navigator, make_panels: Callable[[Questionnaire], object]) -> None:
        self.navigator = navigator
        self.make_panels = make_panels
        self.pending: Questionnaire | None = None
        self._lock = threading.Lock()
        self._handed_over: Questionnaire | None = None
        self._take = Clock.create_trigger(self._take_handed_over, 0)
        self._warm_up_event = None
        navigator.manager.bind(current=lambda *_: self.apply_if_safe())

    @property
    def in_use(self) -> Questionnaire:
        """The questionnaire visitors are asked now (any thread may read it)."""
        return self.navigator.flow.questionnaire

    def offer_from_thread(self, questionnaire: Questionnaire) -> None:
        """Hand ``questionnaire`` to the UI thread; returns at once (safe from any thread)."""
        with self._lock:
            self._handed_over = questionnaire
        self._take()

    def offer(self, questionnaire: Questionnaire) -> None:
        """Switch to ``questionnaire`` now if it is safe, else at the next welcome screen."""
        self.pending = None if questionnaire == self.in_use else questionnaire
        self.apply_if_safe()

    def apply_if_safe(self) -> bool:
        """Put the pending questionnaire up if no visit is under way on the welcome screen."""
        navigator = self.navigator
        if (self.pending is None or navigator.flow.in_visit
                or navigator.manager.current != "welcome"):
            return False
        new, self.pending = self.pending, None
        old, old_panels = self.in_use, navigator.panels
        panels = self.make_panels(new)
        navigator.use_questionnaire(new, panels)
        for panel in old_panels.built().values():
            panel.release()
        if self._warm_up_event is not None:
            self._warm_up_event.cancel()
        # the welcome question's panel is up already; the others follow one per frame
        self._warm_up_event = Clock.schedule_interval(lambda _dt: panels.build_next(), 0)
        log.info("now asking questionnaire %s version %d (was %s version %d)",
                 new.id, new.version, old.id, old.version)
        return True

    def _take_handed_over(self, _dt) -> None:
        with self._lock:
            questionnaire, self._handed_over = self._handed_over, None
        if questionnaire is not None:
            self.offer(questionnaire)
