"""The questionnaire preview: a visitor flow whose buffer keeps nothing.

Use::

    flow = preview_flow(questionnaire, settings)      # a VisitorFlow on a PreviewBuffer
    flow.answer(8)                                     # the next step, and nothing on disk

Staff walk through the real question screens with it (the admin screen's
"preview"); the answers are checked as a visitor's would be, then forgotten.
:class:`PreviewBuffer` has only the methods :class:`~kiosk.flow.VisitorFlow`
calls while a visitor answers: a new call in the flow fails loudly here
instead of writing somewhere by accident.
"""

from __future__ import annotations

from kiosk.buffer import ResponseDraft
from kiosk.clock import TimeSource, system_time_source
from kiosk.flow import VisitorFlow


class PreviewBuffer:
    """Stands in for :class:`~kiosk.buffer.Buffer` and records nothing. ``calls`` counts what it got."""

    def __init__(self, time_source: TimeSource | None = None) -> None:
        self._clock = time_source or system_time_source()
        self.calls = 0

    def new_draft(self, **fields) -> ResponseDraft:
        self.calls += 1
        return ResponseDraft.new(time_source=self._clock, **fields)

    def record_answer(self, draft: ResponseDraft, **_answer) -> None:
        self.calls += 1
        draft.answers += 1
        if draft.seq is None:
            draft.seq = 0  # "persisted" for the flow's bookkeeping; nothing was stored

    def close_response(self, draft: ResponseDraft, end_reason: str = "completed") -> bool:
        self.calls += 1
        draft.end_reason = end_reason
        return True

    def set_language(self, _draft: ResponseDraft, _language: str) -> None:
        self.calls += 1


def preview_flow(questionnaire, settings, *, language: str | None = None,
                 monotonic=None) -> VisitorFlow:
    """A :class:`VisitorFlow` over ``questionnaire`` that records nothing."""
    options = {} if monotonic is None else {"monotonic": monotonic}
    return VisitorFlow(questionnaire, PreviewBuffer(), location_id=settings.location.id,
                       language=language or settings.languages.default,
                       rapid_repeat_s=settings.timeouts.rapid_repeat_s, **options)
