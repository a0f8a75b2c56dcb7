"""Fetching the message to visitors central sets: a conditional GET after each sync round, kept on disk.

Use::

    fetcher = attach_message_fetcher(uploader, MessageStore(data_dir),
                                     on_change=board.offer_from_thread)  # called on the sync thread
    # now every sync round ends with fetcher.fetch()

    outcome = fetcher.fetch()      # blocking (the sync thread calls it)
    outcome.status                 # "stored", "not_modified", "cleared", "none", "failed"
    fetcher.last_error             # why the last fetch failed; None when it was fine

Operating rules (as :mod:`sync.questionnaire_fetch`):

* ``GET`` :data:`~sync.protocol.MESSAGE_PATH` with the device's bearer token on
  the uploader's Session, a ``(connect, read)`` timeout, the whole fetch ending
  after ``connect_timeout_s + read_timeout_s`` and the reply read under a byte cap.
* ``If-None-Match`` carries the kept message's ETag: ``304`` writes nothing.
* ``200``: a :class:`~sync.protocol.MessageDocument` whose texts pass
  :func:`sync.message_text.text_problem` is kept atomically
  (:class:`kiosk.message_store.MessageStore`) and handed to ``on_change``.
* ``404`` ``no_message``: central has none (any more); a kept one is removed and
  ``on_change(None)`` hides it.
* Anything else (network, timeout, 5xx, 401/403, a bad document, a full disk)
  keeps the last good message on screen and sets :attr:`MessageFetcher.last_error`.
* A round that central failed until its deadline skips the fetch; the
  questionnaire's fetch and the heartbeat need the time more.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import requests
from pydantic import ValidationError

from kiosk.message_store import MessageStore, StoredMessage, document_problem
from sync.conditional_get import BadReply, conditional_get
from sync.protocol import MESSAGE_PATH, MessageDocument
from sync.questionnaire_fetch import _ETAG, _error_body, _error_text

log = logging.getLogger(__name__)

#: A message document is a few hundred bytes; anything near this is not one.
MAX_MESSAGE_BYTES = 16 * 1024


@dataclass(frozen=True)
class MessageOutcome:
    """One fetch: its status, the document kept (``stored``), or why it failed."""

    status: str
    document: MessageDocument | None = None
    error: str | None = None


class MessageFetcher:
    """Downloads, checks and keeps central's message for one terminal.

    ``session``/``settings``/``state``: the uploader's Session, ``[sync]``
    settings and device state. ``on_change(document or None)``: called on the
    fetching thread when the message to show changed; it must hand over to the
    UI thread, not touch widgets.
    """

    def __init__(self, session: requests.Session, settings, state, store: MessageStore, *,
                 on_change: Callable[[MessageDocument | None], object] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.session = session
        self.settings = getattr(settings, "sync", settings)
        self.state = state
        self.store = store
        self.on_change = on_change
        self.monotonic = monotonic
        self.wall = wall
        self.last_error: str | None = None
        self.last_outcome: MessageOutcome | None = None
        self._kept: StoredMessage | None = store.load()

    @property
    def kept(self) -> StoredMessage | None:
        """The message kept on disk (what the terminal shows)."""
        return self._kept

    def after_round(self, report=None) -> MessageOutcome | None:
        """The ``uploader.after_round`` step: a fetch, unless central failed the round until its deadline."""
        if report is not None and report.stopped_reason == "deadline" and report.last_error:
            self.last_outcome = None
            return None
        return self.fetch()

    def fetch(self) -> MessageOutcome:
        """One conditional download; keeps the last good message whatever goes wrong."""
        self.last_outcome = self._fetch()
        return self.last_outcome

    def _fetch(self) -> MessageOutcome:
        if self.state is None:
            return MessageOutcome("none")
        kept = self._kept
        try:
            status, headers, content = self._get(kept.etag if kept else None)
        except (requests.RequestException, BadReply) as err:
            return self._failed(f"download failed: {type(err).__name__}: {err}")
        if status == 304:
            return self._fine(MessageOutcome("not_modified"))
        body = _error_body(content) if status != 200 else None
        if status == 404 and body is not None and body.error == "no_message":
            if kept is None:
                return self._fine(MessageOutcome("none"))
            try:
                self.store.clear()
            except OSError as err:
                return self._failed(f"cannot remove {self.store.path}: {err.strerror or err}")
            self._kept = None
            log.info("central has no message for visitors any more; it is hidden")
            self._hand_over(None)
            return self._fine(MessageOutcome("cleared"))
        if status != 200:
            return self._failed(f"download failed: {_error_text(status, body)}")
        try:
            document = MessageDocument.model_validate_json(content)
        except ValidationError:
            return self._failed(f"central's reply is not a message document ({len(content)} bytes)")
        problem = document_problem(document)
        if problem:
            return self._failed(f"central's message is not shown: {problem}")
        etag = headers.get("ETag")
        try:
            self._kept = self.store.save(document, etag=etag if etag and _ETAG.fullmatch(etag)
                                         else None, fetched_at=self.wall())
        except OSError as err:
            return self._failed(f"cannot keep the message in {self.store.folder}: "
                                f"{err.strerror or err}")
        log.info("new message for visitors from central")
        self._hand_over(document)
        return self._fine(MessageOutcome("stored", document))

    def _hand_over(self, document: MessageDocument | None) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(document)
        except Exception:  # kept on disk; the next start-up shows it anyway
            log.exception("handing the message over failed")

    def _get(self, etag: str | None):
        return conditional_get(self.session, self.state, MESSAGE_PATH, etag=etag,
                               settings=self.settings, max_bytes=MAX_MESSAGE_BYTES,
                               monotonic=self.monotonic)

    def _fine(self, outcome: MessageOutcome) -> MessageOutcome:
        self.last_error = None
        return outcome

    def _failed(self, error: str) -> MessageOutcome:
        error = error[:1000]
        if error != self.last_error:  # once per new problem, not every round
            log.warning("message from central not taken (the last good one stays): %s", error)
        self.last_error = error
        return MessageOutcome("failed", error=error)


def attach_message_fetcher(uploader, store: MessageStore, **options) -> MessageFetcher:
    """A fetcher on ``uploader``'s Session, settings and state, run after each of its rounds.

    ``options`` go to :class:`MessageFetcher` (``on_change``, ``wall``).
    """
    options.setdefault("monotonic", uploader.monotonic)
    fetcher = MessageFetcher(uploader.session, uploader.settings, uploader.state, store, **options)
    uploader.after_round.append(fetcher.after_round)
    return fetcher
