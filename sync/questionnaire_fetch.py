"""Fetching the questionnaire central publishes: a conditional GET, the same checks as a local file, atomic storage.

Use::

    fetcher = attach_fetcher(uploader, CentralCopy(data_dir),
                             in_use=lambda: switcher.in_use,        # for the heartbeat
                             on_new=switcher.offer_from_thread)     # called on the sync thread
    # now every sync round ends with fetcher.fetch(), and every heartbeat
    # carries {"questionnaire": {id, version} in use, "questionnaire_error": ...}

    outcome = fetcher.fetch()      # blocking (the sync thread calls it)
    outcome.status                 # "stored", "not_modified", "none_published" or "failed"
    fetcher.last_error             # why the last fetch failed; None when it was fine

Operating rules:

* ``GET`` :data:`~sync.protocol.QUESTIONNAIRE_PATH` with the device's bearer
  token, on the uploader's Session (urllib3 never retries: the next round is
  the retry), with a ``(connect, read)`` timeout; the whole fetch, body
  included, ends after ``connect_timeout_s + read_timeout_s`` and the reply is
  read under a byte cap.
* ``If-None-Match`` carries the stored copy's ETag: ``304`` writes nothing.
* ``200``: the :class:`~sync.protocol.QuestionnaireDocument` is checked with
  :func:`kiosk.questionnaire.parse_questionnaire` (the same errors as a local
  file); its ``id``/``version`` must be the TOML's; a version this terminal
  already has (stored or in use) must not come back with other content
  (published versions are immutable: answers name only id + version). Then it
  is stored atomically (:class:`kiosk.questionnaire_store.CentralCopy`) and
  handed to ``on_new``.
* Everything else keeps the last good questionnaire and sets
  :attr:`QuestionnaireFetcher.last_error` (sent up as ``questionnaire_error``):
  network errors, timeouts, truncated or non-JSON replies, 5xx, 401/403, an
  invalid questionnaire, a full disk.
* ``404`` with ``error="no_questionnaire"``: nothing is published for this
  terminal's location; the questionnaire in use stays, and that is not an error.
* A round that central failed until its deadline skips the fetch: the time
  left belongs to the heartbeat. (A round refused with 401/403 runs no
  after-round steps at all.)
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Callable

import requests
from pydantic import ValidationError

from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Questionnaire, parse_questionnaire
from kiosk.questionnaire_store import CentralCopy, StoredQuestionnaire
from sync.conditional_get import BadReply, conditional_get
from sync.protocol import (
    MAX_BODY_BYTES,
    QUESTIONNAIRE_PATH,
    ErrorBody,
    QuestionnaireDocument,
    QuestionnaireRef,
)

log = logging.getLogger(__name__)

#: A reply larger than this is not a questionnaire document (the TOML is at
#: most MAX_BODY_BYTES characters; JSON escaping can grow it).
MAX_DOCUMENT_BYTES = 2 * MAX_BODY_BYTES + 64 * 1024

#: An ETag worth keeping: printable ASCII without spaces, not too long.
_ETAG = re.compile(r"[!-~]{1,256}")

#: What a fetch did (``FetchOutcome.status``).
FETCH_STATUSES = ("stored", "not_modified", "none_published", "failed", "not_enrolled")


@dataclass(frozen=True)
class FetchOutcome:
    """One fetch: its status, the questionnaire stored (``stored``), or why it failed."""

    status: str
    questionnaire: Questionnaire | None = None
    error: str | None = None


class QuestionnaireFetcher:
    """Downloads, checks and stores central's questionnaire for one terminal.

    ``session``/``settings``/``state``: the uploader's requests Session, its
    ``[sync]`` settings (timeouts) and the device state (URL, token).
    ``store``: where the last good copy lives. ``in_use``: the questionnaire
    visitors are asked now (for the heartbeat and the immutability check).
    ``on_new(questionnaire)``: called on the fetching thread after a new copy
    is stored; it must hand over to the UI thread, not touch widgets.
    """

    def __init__(self, session: requests.Session, settings, state, store: CentralCopy, *,
                 in_use: Callable[[], Questionnaire | None] = lambda: None,
                 on_new: Callable[[Questionnaire], object] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.session = session
        self.settings = getattr(settings, "sync", settings)
        self.state = state
        self.store = store
        self.in_use = in_use
        self.on_new = on_new
        self.monotonic = monotonic
        self.wall = wall
        self.last_error: str | None = None
        self.last_outcome: FetchOutcome | None = None
        self._stored: StoredQuestionnaire | None = None
        self._loaded = False

    @property
    def stored(self) -> StoredQuestionnaire | None:
        """The last good copy from central (read from disk on first use; a damaged one is ``None``)."""
        if not self._loaded:
            self._loaded = True
            try:
                self._stored = self.store.load()
            except QuestionnaireError as err:
                log.warning("the stored questionnaire from central is unusable; the next fetch "
                            "downloads it again. %s", err)
        return self._stored

    # ----------------------------------------------------------------- seams of the uploader

    def after_round(self, report=None) -> FetchOutcome | None:
        """The ``uploader.after_round`` step: a fetch, unless central failed the round until its deadline.

        Then a fetch would most likely time out too, and take the time the
        round keeps for its heartbeat; the next round fetches.
        """
        if report is not None and report.stopped_reason == "deadline" and report.last_error:
            log.debug("no questionnaire fetch this round: central did not answer in time")
            self.last_outcome = None
            return None
        return self.fetch()

    def heartbeat_fields(self) -> dict:
        """The ``uploader.heartbeat_extras`` provider: the questionnaire in use and the last error."""
        questionnaire = self.in_use()
        ref = None
        if questionnaire is not None:
            try:
                ref = QuestionnaireRef(id=questionnaire.id, version=questionnaire.version)
            except ValidationError:  # an id too long for the wire: leave it out, never break the beat
                ref = None
        error = self.last_error.replace("\x00", "")[:1000] if self.last_error else None
        return {"questionnaire": ref, "questionnaire_error": error}

    # ----------------------------------------------------------------- the fetch

    def fetch(self) -> FetchOutcome:
        """One conditional download; keeps the last good copy whatever goes wrong."""
        self.last_outcome = self._fetch()
        return self.last_outcome

    def describe_last(self) -> str:
        """The last fetch in one line, for the CLI."""
        outcome = self.last_outcome
        if outcome is None:
            return "not fetched this round (central refused or did not answer in time)"
        if outcome.status == "stored":
            q = outcome.questionnaire
            return f"{q.id} version {q.version} fetched from central and stored"
        if outcome.status == "not_modified":
            q = self.stored.questionnaire if self.stored else None
            return f"{q.id} version {q.version}, unchanged" if q else "unchanged"
        if outcome.status == "none_published":
            return "central publishes none for this location; the local one stays"
        if outcome.status == "not_enrolled":
            return "not fetched: not enrolled"
        return f"not taken, the last good one stays: {outcome.error}"

    def _fetch(self) -> FetchOutcome:
        if self.state is None:
            return FetchOutcome("not_enrolled")
        stored = self.stored
        try:
            status, headers, content = self._get(stored.etag if stored else None)
        except (requests.RequestException, BadReply) as err:
            return self._failed(f"download failed: {type(err).__name__}: {err}")
        if status == 304:
            return self._fine("not_modified")
        body = _error_body(content) if status != 200 else None
        if status == 404 and body is not None and body.error == "no_questionnaire":
            return self._fine("none_published")
        if status in (401, 403):
            return self._failed(f"central refused this terminal ({_error_text(status, body)}); "
                                "enrol it again with a valid token")
        if status != 200:
            return self._failed(f"download failed: {_error_text(status, body)}")
        try:
            document = QuestionnaireDocument.model_validate_json(content)
        except ValidationError:
            return self._failed(f"central's reply is not a questionnaire document "
                                f"({len(content)} bytes)")
        etag = headers.get("ETag")
        # Sent back as a header later: keep only what a header can carry.
        return self._take(document, etag if etag and _ETAG.fullmatch(etag) else None)

    def _take(self, document: QuestionnaireDocument, etag: str | None) -> FetchOutcome:
        source = f"central questionnaire {document.id!r} version {document.version}"
        try:
            questionnaire = parse_questionnaire(document.toml, source)
        except QuestionnaireError as err:
            return self._failed(str(err))
        if (questionnaire.id, questionnaire.version) != (document.id, document.version):
            return self._failed(f"{source}: its TOML says id {questionnaire.id!r} version "
                                f"{questionnaire.version}; central's record and the file differ")
        stored = self.stored
        for known in (stored.questionnaire if stored else None, self.in_use()):
            if (known is not None and (known.id, known.version) == (document.id, document.version)
                    and known != questionnaire):
                return self._failed(
                    f"{source} differs from the version {known.version} this terminal already "
                    "has; a published version must not change (publish it as a new version)")
        try:
            self._stored = self.store.save(document.toml, questionnaire, etag=etag,
                                           fetched_at=self.wall())
        except OSError as err:
            return self._failed(f"cannot store {source} in {self.store.folder}: "
                                f"{err.strerror or err}")
        self._loaded = True
        self.last_error = None
        log.info("stored %s from central", source)
        if self.on_new is not None:
            try:
                self.on_new(questionnaire)
            except Exception:  # the copy is stored; the next start-up uses it anyway
                log.exception("handing the new questionnaire over failed")
        return FetchOutcome("stored", questionnaire)

    def _get(self, etag: str | None):
        return conditional_get(self.session, self.state, QUESTIONNAIRE_PATH, etag=etag,
                               settings=self.settings, max_bytes=MAX_DOCUMENT_BYTES,
                               monotonic=self.monotonic)

    def _fine(self, status: str) -> FetchOutcome:
        if self.last_error is not None:
            log.info("questionnaire fetch works again")
        self.last_error = None
        return FetchOutcome(status)

    def _failed(self, error: str) -> FetchOutcome:
        error = error[:1000]
        if error != self.last_error:  # once per new problem, not every round
            log.warning("questionnaire from central not taken (the last good one stays): %s",
                        error)
        self.last_error = error
        return FetchOutcome("failed", error=error)


def _error_body(content: bytes) -> ErrorBody | None:
    try:
        return ErrorBody.model_validate_json(content)
    except ValidationError:
        return None


def _error_text(status: int, body: ErrorBody | None) -> str:
    text = f"HTTP {status}"
    if body is not None:
        text += f": {body.error}" + (f" ({body.detail})" if body.detail else "")
    return text


def attach_fetcher(uploader, store: CentralCopy, **options) -> QuestionnaireFetcher:
    """A fetcher on ``uploader``'s Session, settings and state, run after each of its rounds.

    Adds :meth:`~QuestionnaireFetcher.after_round` to ``uploader.after_round`` and
    :meth:`~QuestionnaireFetcher.heartbeat_fields` to ``uploader.heartbeat_extras``.
    ``options`` go to :class:`QuestionnaireFetcher` (``in_use``, ``on_new``, ``wall``).
    """
    options.setdefault("monotonic", uploader.monotonic)
    fetcher = QuestionnaireFetcher(uploader.session, uploader.settings, uploader.state, store,
                                   **options)
    uploader.after_round.append(fetcher.after_round)
    uploader.heartbeat_extras.append(fetcher.heartbeat_fields)
    return fetcher
