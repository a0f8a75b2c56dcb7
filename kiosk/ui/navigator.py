"""Moves the visitor between screens: turns flow steps into screens, runs the idle and thank-you timers.

The navigator owns no data: answers go to :class:`kiosk.flow.VisitorFlow`
(which commits them), and the screens only display. Timers run on the Kivy
clock, so tests drive them by ticking the clock.
"""

from __future__ import annotations

import logging

from kivy.clock import Clock

from kiosk.errors import BalieError, BufferUnavailable
from kiosk.flow import Step, VisitorFlow

log = logging.getLogger(__name__)


class Navigator:
    """Wires screens, answer panels and the flow together.

    ``screens`` maps names (``welcome``, ``question``, ``comment``, ``thanks``,
    ``out_of_order``; ``closed`` with opening hours) to screen widgets inside
    ``manager``; ``panels`` maps question ids to their answer panels;
    ``dialogs`` holds the ``idle_warning`` (:class:`kiosk.ui.idle.IdleWarning`).
    All three are :class:`kiosk.ui.lazy.LazyWidgets`: a screen, panel or
    dialog is wired here when it is made, and made when first shown if the app
    has not made it ahead of time.
    """

    def __init__(self, manager, screens, panels, dialogs, flow: VisitorFlow, tr, *,
                 default_language: str, languages, timeouts):
        self.manager = manager
        self.screens = screens
        self.panels = panels
        self.dialogs = dialogs
        self.flow = flow
        self.tr = tr
        self.default_language = default_language
        self.timeouts = timeouts
        self._idle_event = None
        self._countdown_event = None
        self._thanks_event = None
        self.closed = False  # outside opening hours (set_open); never True without them
        # The buffer cannot take answers (set_out_of_order, or a tap that could not be stored).
        self.out_of_order = False
        # Visits the buffer could not close: (buffer, draft, reason), closed when it works again.
        self._unclosed: list[tuple] = []
        # Set during the admin's questionnaire preview: the end of a visit calls it
        # instead of showing the welcome screen (kiosk.ui.admin_control).
        self.leave_to = None

        self._languages = list(languages)
        panels.on_built(self._wire_panel)
        screens.on_built(self._wire_screen)
        dialogs.on_built(self._wire_dialog)

    @property
    def idle_warning(self):
        """The idle warning ("Are you still there?"), made when first asked for."""
        return self.dialogs["idle_warning"]

    def _wire_dialog(self, name, dialog) -> None:
        if name == "idle_warning":
            dialog.bind(on_still_here=lambda *_: self.still_here())

    def _wire_panel(self, _question_id, panel) -> None:
        panel.bind(on_answer=lambda _panel, value: self.answer(value))

    def _wire_screen(self, name, screen) -> None:
        if name == "welcome":
            screen.languages = self._languages
            screen.current_language = self.tr.lang
            screen.bind(on_language=lambda _s, code: self.switch_language(code))
        elif name == "question":
            screen.bind(on_skip=lambda *_: self.skip())
        elif name == "comment":
            screen.bind(on_submit=lambda _s, text: self.submit_comment(text),
                        on_skip=lambda *_: self.skip())
        elif name == "thanks":
            screen.bind(on_done=lambda *_: self.to_welcome())

    # -- visitor actions -------------------------------------------------
    def answer(self, value) -> None:
        """A tap on an answer button: store it (one commit), then show the next step."""
        self._guarded(lambda: self.flow.answer(value))

    def skip(self) -> None:
        """Leave the current question (or the comment) unanswered."""
        self._guarded(self.flow.skip)

    def submit_comment(self, text: str) -> None:
        """Store the (scrubbed) comment and finish the visit."""
        self._guarded(lambda: self.flow.submit_comment(text))

    def switch_language(self, code: str) -> None:
        """Change every text on screen at once."""
        self.tr.switch(code)
        self.screens["welcome"].current_language = code
        self._guarded(lambda: self.flow.set_language(code) or self.flow.current())

    def still_here(self) -> None:
        """The visitor answered the idle warning: carry on where they were."""
        self._stop_countdown()
        self.idle_warning.dismiss(animation=False)
        self.touched()

    def touched(self, *_args) -> None:
        """Any touch during a visit restarts the idle timer."""
        if self.flow.in_visit and not self._countdown_event:
            self._restart_idle()

    def use_questionnaire(self, questionnaire, panels) -> None:
        """Ask ``questionnaire`` with its answer ``panels`` (a LazyWidgets) from the next visit on.

        Between visits only (the flow refuses it during one); on the welcome
        screen its first question shows at once. :mod:`kiosk.switcher` decides when.
        """
        self.flow.use_questionnaire(questionnaire)
        self.panels = panels
        panels.on_built(self._wire_panel)
        if self.manager.current == "welcome":
            self.show(self.flow.current())

    # -- screens -----------------------------------------------------------
    def to_welcome(self) -> None:
        """Back to the start for the next visitor, in the default language."""
        self._cancel_timers()
        if self.flow.in_visit:
            self._abandon("abandoned")
        if self.leave_to is not None:  # a preview ends on the admin screen
            self.leave_to()
            return
        if self.tr.lang != self.default_language:
            self.switch_language(self.default_language)
        if self.out_of_order:  # before "closed": staff opening up see the fault at once
            self._show_out_of_order()
            return
        if self.closed:
            self.screens["closed"]  # made now if not made yet (the terminal starts closed)
            self.manager.current = "closed"
            return
        self.show(self.flow.current())

    def set_open(self, is_open: bool, reopens_at=None, now=None) -> None:
        """Opening hours (:class:`kiosk.opening_watch.OpeningWatch`, at every check): open or closed now.

        Closing never cuts a visit: a visitor who is answering finishes (or the
        idle reset ends the visit as usual, answers kept), and the closed screen
        comes instead of the next welcome screen. A welcome screen with no visit
        under way gives way at once. Opening brings the welcome screen back.
        ``reopens_at`` (the next opening) and ``now`` (town hall time) feed the
        closed screen's "open again on ..." line.
        """
        was_closed, self.closed = self.closed, not is_open
        if self.closed:
            screen = self.screens["closed"]
            screen.reopens_at = reopens_at
            screen.today = now.date() if now is not None else None
            if self.manager.current == "welcome" and not self.flow.in_visit:
                self.to_welcome()
        elif was_closed and self.manager.current == "closed":
            self.to_welcome()

    def set_out_of_order(self, out_of_order: bool) -> None:
        """:class:`kiosk.storage_watch.StorageWatch`, at every check: can the buffer take answers?

        Out of order, the terminal invites no ratings: the out-of-order screen
        ("Sorry, this screen is not working at the moment") comes instead of
        the welcome (or closed) screen. It never cuts a visit: a visitor who is
        answering goes on (their next tap is stored, or they are told). A tap
        that cannot be stored puts the terminal out of order at once
        (:meth:`_guarded`). Coming back closes the visits the buffer could not
        close and brings the welcome (or closed) screen back.
        """
        was, self.out_of_order = self.out_of_order, out_of_order
        if out_of_order:
            if not was and self.manager.current in ("welcome", "closed") and not self.flow.in_visit:
                self.to_welcome()
            return
        if self._unclosed:
            self._close_unclosed()
        if was and self.manager.current == "out_of_order":
            self.to_welcome()

    def _show_out_of_order(self) -> None:
        self.screens["out_of_order"]  # made now if not made yet (the terminal starts out of order)
        self.manager.current = "out_of_order"

    def show(self, step: Step) -> None:
        """Put ``step`` on screen."""
        if step.kind == "welcome":
            screen = self.screens["welcome"]
            screen.question = step.question
            screen.set_panel(self.panels[step.question.id])
        elif step.kind == "question":
            self.screens["question"].show(step.question, self.panels[step.question.id],
                                          step.position, step.total)
        elif step.kind == "comment":
            self.screens["comment"].show(step.question)
        elif step.kind == "thanks":
            self._cancel_timers()
            self._thanks_event = Clock.schedule_once(lambda _dt: self.to_welcome(),
                                                     self.timeouts.thanks_s)
        self.screens[step.kind]  # made now if not made yet (the thank-you screen)
        self.manager.current = step.kind
        if step.kind in ("question", "comment"):
            self._restart_idle()

    # -- timers ------------------------------------------------------------
    def _restart_idle(self) -> None:
        if self._idle_event is not None:
            self._idle_event.cancel()
        self._idle_event = Clock.schedule_once(lambda _dt: self._warn_idle(),
                                               self.timeouts.idle_warning_s)

    def _warn_idle(self) -> None:
        self._idle_event = None
        if not self.flow.in_visit:
            return
        self.idle_warning.seconds_left = self.timeouts.idle_reset_s
        self.idle_warning.open(animation=False)
        self._countdown_event = Clock.schedule_interval(self._count_down, 1.0)

    def _count_down(self, _dt) -> bool:
        self.idle_warning.seconds_left = max(0, self.idle_warning.seconds_left - 1)
        if self.idle_warning.seconds_left > 0:
            return True
        self._stop_countdown()
        self.idle_warning.dismiss(animation=False)
        self._abandon("idle")
        self.to_welcome()
        return False

    def _stop_countdown(self) -> None:
        if self._countdown_event is not None:
            self._countdown_event.cancel()
            self._countdown_event = None

    def _cancel_timers(self) -> None:
        for event in (self._idle_event, self._thanks_event):
            if event is not None:
                event.cancel()
        self._idle_event = self._thanks_event = None
        self._stop_countdown()

    def _guarded(self, action) -> None:
        """Run a flow action; a storage failure is logged and the terminal carries on, out of order.

        The visitor whose answer could not be stored is told so (the
        out-of-order screen, in their language) instead of being dropped back
        silently; the default language returns after ``thanks_s``. Answers
        stored before stay stored.
        """
        try:
            step = action()
        except BalieError as err:
            if isinstance(err, BufferUnavailable):
                log.exception("could not store the visitor's answer; out of order")
                self.out_of_order = True
            else:
                log.exception("could not store the visitor's answer; back to the welcome screen")
            self._drop_visit()
            return
        if step is not None:
            self.show(step)

    def _drop_visit(self) -> None:
        self._abandon("abandoned")
        self._cancel_timers()
        if self.out_of_order:
            self._show_out_of_order()
            self._thanks_event = Clock.schedule_once(lambda _dt: self.to_welcome(),
                                                     self.timeouts.thanks_s)
            return
        self.show(self.flow.current())

    def _abandon(self, reason: str) -> None:
        """End the visit early; one the buffer cannot close now is closed when it works again."""
        buffer, draft = self.flow.buffer, self.flow.draft
        try:
            self.flow.abandon(reason)
        except BalieError as err:
            log.exception("could not close the visit")
            self.flow.forget()
            if isinstance(err, BufferUnavailable):
                self.out_of_order = True
            if draft is not None and draft.persisted:
                self._unclosed.append((buffer, draft, reason))

    def _close_unclosed(self) -> None:
        """Close the visits the buffer could not close (one commit each); keep what still fails."""
        left = []
        for buffer, draft, reason in self._unclosed:
            try:
                buffer.close_response(draft, end_reason=reason)
            except BalieError:
                log.exception("could not close an earlier visit yet")
                left.append((buffer, draft, reason))
        self._unclosed = left
