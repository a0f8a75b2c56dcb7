"""One visitor's way through the questionnaire, independent of Kivy.

Use::

    flow = VisitorFlow(questionnaire, buffer, location_id="stadhuis", language="nl",
                       rapid_repeat_s=20)
    step = flow.answer(8)        # the welcome screen's one-tap rating: stored, then the next step
    step = flow.skip()           # a follow-up left unanswered
    step = flow.submit_comment("Fijn geholpen, bel 06-12345678")   # scrubbed before it is stored
    flow.abandon("idle")         # the visitor walked away: what they answered is kept

Every answer is one buffer commit that has returned before the step comes
back, so the screen moves on only after the tap is durable. The first answer
of a visit creates the response; a visit that starts less than
``rapid_repeat_s`` after the previous one started is flagged as suspect
(a child drumming on the screen), never dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kiosk.buffer import Buffer, ResponseDraft
from kiosk.questionnaire import Question, Questionnaire


@dataclass(frozen=True)
class Step:
    """What the screen should show next.

    ``kind`` is ``"welcome"``, ``"question"``, ``"comment"`` or ``"thanks"``;
    ``position`` counts questions from 1 (the welcome question is 1) out of ``total``.
    """

    kind: str
    question: Question | None = None
    position: int = 0
    total: int = 0


class VisitorFlow:
    """The state of the current visit: which question is next and the draft response."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        buffer: Buffer,
        *,
        location_id: str,
        language: str,
        rapid_repeat_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.questionnaire = questionnaire
        self.buffer = buffer
        self.location_id = location_id
        self.language = language
        self.rapid_repeat_s = rapid_repeat_s
        self._monotonic = monotonic
        self._draft: ResponseDraft | None = None
        self._index = 0
        self._last_start: float | None = None

    @property
    def in_visit(self) -> bool:
        """True between the first answer of a visit and its end."""
        return self._draft is not None

    @property
    def draft(self) -> ResponseDraft | None:
        """The response being filled in, if a visit is under way."""
        return self._draft

    def current(self) -> Step:
        """The step the visitor is on now."""
        if self._draft is None:
            return Step("welcome", self.questionnaire.first, 1, len(self.questionnaire.questions))
        return self._step_for(self._index)

    def use_questionnaire(self, questionnaire: Questionnaire) -> None:
        """Ask ``questionnaire`` from the next visit on; refused (``RuntimeError``) during a visit.

        Answers already stored keep the id and version they were given with.
        """
        if self._draft is not None:
            raise RuntimeError("the questionnaire cannot change in the middle of a visit")
        self.questionnaire = questionnaire
        self._index = 0

    def set_language(self, language: str) -> None:
        """Switch the visit's language (and the response's, once it exists)."""
        self.language = language
        if self._draft is not None:
            self.buffer.set_language(self._draft, language)

    def answer(self, value) -> Step:
        """Store ``value`` for the current question (one commit), then return the next step.

        A refused value (``ValueError``) changes nothing: a refused first tap
        does not start a visit. Text for a comment question is scrubbed, as
        with :meth:`submit_comment`.
        """
        question = self.questionnaire.questions[self._index]
        if question.type == "comment":
            return self.submit_comment(value)
        question.check_value(value)
        if self._draft is None:
            self._begin()
        self.buffer.record_answer(
            self._draft, question_id=question.id, aspect=question.aspect, value=value
        )
        return self._advance()

    def skip(self) -> Step:
        """Leave the current follow-up question unanswered and return the next step."""
        if self._draft is None:
            raise RuntimeError("the welcome question cannot be skipped: it starts the visit")
        return self._advance()

    def submit_comment(self, text: str) -> Step:
        """Scrub ``text`` and store it as the comment answer (nothing stored when empty)."""
        question = self.questionnaire.questions[self._index]
        if question.type != "comment":
            raise RuntimeError(f"question {question.id!r} is not a comment question")
        from kiosk.scrub import scrub  # loaded on first use: keeps start-up short

        cleaned = scrub(text).text
        if cleaned:
            question.check_value(cleaned)
            self.buffer.record_answer(
                self._draft, question_id=question.id, aspect=question.aspect, value=cleaned
            )
        return self._advance()

    def abandon(self, reason: str = "idle") -> None:
        """End the visit early; answers already given stay stored."""
        self._end(reason)

    def forget(self) -> None:
        """Drop the visit without touching the buffer (used when the buffer itself failed)."""
        self._draft = None
        self._index = 0

    def _begin(self) -> None:
        now = self._monotonic()
        suspect = self._last_start is not None and now - self._last_start < self.rapid_repeat_s
        reason = None
        if suspect:
            reason = f"started {now - self._last_start:.1f} s after the previous visit"
        self._last_start = now
        self._draft = self.buffer.new_draft(
            questionnaire_id=self.questionnaire.id,
            questionnaire_version=self.questionnaire.version,
            location_id=self.location_id,
            language=self.language,
            suspect=suspect,
            suspect_reason=reason,
        )
        self._index = 0

    def _advance(self) -> Step:
        self._index += 1
        if self._index >= len(self.questionnaire.questions):
            self._end("completed")
            return Step("thanks")
        return self._step_for(self._index)

    def _step_for(self, index: int) -> Step:
        question = self.questionnaire.questions[index]
        kind = "comment" if question.type == "comment" else "question"
        return Step(kind, question, index + 1, len(self.questionnaire.questions))

    def _end(self, reason: str) -> None:
        if self._draft is not None:
            self.buffer.close_response(self._draft, end_reason=reason)
        self._draft = None
        self._index = 0
