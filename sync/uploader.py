"""The device-side uploader: one sync round moves the buffer's unsent responses to central.

Use::

    uploader = Uploader(settings.sync, buffer, DeviceStateStore(data_dir).load())
    report = uploader.run_once()          # blocking: call it from a worker thread
    report.accepted, report.duplicate, report.rejected, report.stopped_reason

The round has the shape of ODK Collect's sender: pick the eligible responses
oldest first, send them in bounded batches, turn every outcome into a value
(acknowledged / too large / retry later / refused), and mark only what central
acknowledged. Operating rules:

* Every request has a ``(connect, read)`` timeout, and the whole round has a
  deadline (``deadline_s``); the body of a reply is read under that deadline too.
* A batch holds at most ``batch_records`` responses (and never more than
  :data:`~sync.protocol.MAX_RECORDS`) and at most
  :data:`~sync.protocol.MAX_BODY_BYTES` of JSON before gzip. The body is
  gzipped. The batch's ``sent`` clock reading is taken anew at every attempt.
* ``accepted`` and ``duplicate`` → sent; ``rejected`` → quarantine with
  central's reason; a response missing from the reply stays unsent.
* 413 → halve the batch (down to one; one response that still gets 413 is
  quarantined as "too large"). 429/503 → wait ``Retry-After`` (seconds or an
  HTTP date, capped by ``retry_after_cap_s``). Other 5xx, network errors and
  unreadable replies → full-jitter exponential backoff
  (``uniform(0, min(cap, base * 2**attempt))``), again and again until the
  deadline; the data stays in the buffer. A wait that would pass the deadline
  ends the round instead (the next round carries on).
* 401/403 → the round stops at once, the data stays, and the refusal is
  recorded as a buffer event (``sync_auth_refused``) for the admin screen.
* Retries live here, in one loop, and nowhere else: the mounted urllib3
  policy is ``Retry(total=0)`` so nothing retries behind the loop's back (and
  its deadline). Re-sending a batch is safe: responses carry client UUIDs and
  central answers ``duplicate`` for what it already has.
* One round at a time: a second ``run_once`` while one runs returns at once
  with ``stopped_reason == "busy"`` (it skips; it does not queue).
* After the batches, a :class:`~sync.protocol.Heartbeat` goes up (also when the
  batches failed or ran out of time: the batches stop early enough to leave
  it a share of the round).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kiosk import __version__
from kiosk.clock import TimeSource, system_time_source
from kiosk.errors import BufferUnavailable
from sync.clocksync import clock_synced as system_clock_synced
from sync.protocol import (
    BATCHES_PATH,
    HEARTBEAT_PATH,
    MAX_BODY_BYTES,
    MAX_RECORDS,
    BatchResult,
    ClockReading,
    ErrorBody,
    Heartbeat,
)

log = logging.getLogger(__name__)

#: Room kept in :data:`MAX_BODY_BYTES` for the batch envelope (device id, clock reading…).
ENVELOPE_BYTES = 4096
#: A reply larger than this is not central's (a batch result is ~100 bytes per record).
MAX_REPLY_BYTES = 1024 * 1024
GZIP_LEVEL = 5
TOO_LARGE = "too large"

#: Why a round ended (``SyncReport.stopped_reason``).
STOP_REASONS = ("done", "deadline", "auth", "error", "buffer", "busy", "not_enrolled", "stopped")


@dataclass
class SyncReport:
    """What one round did. ``ok``: everything eligible was sent and the heartbeat went up."""

    accepted: int = 0  # central stored them now
    duplicate: int = 0  # central had them already (counts as sent)
    rejected: int = 0  # central refused them: quarantined with its reason
    quarantined_locally: int = 0  # never sendable (too large, does not fit the protocol)
    missing: int = 0  # sent but absent from central's reply: still unsent
    batches: int = 0  # batches central answered (200)
    attempts: int = 0  # batch POSTs tried, retries included
    waits: list[float] = field(default_factory=list)  # seconds waited before retries
    last_error: str | None = None
    stopped_reason: str = "done"
    heartbeat_sent: bool = False
    backlog: int | None = None  # closed responses still unsent at the end

    @property
    def sent(self) -> int:
        return self.accepted + self.duplicate

    @property
    def ok(self) -> bool:
        return self.stopped_reason == "done" and self.heartbeat_sent

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = (f"{self.accepted} accepted, {self.duplicate} duplicate, {self.rejected} rejected, "
                f"{self.quarantined_locally} quarantined locally, {self.batches} batch(es), "
                f"stopped: {self.stopped_reason}")
        if self.backlog is not None:
            text += f", {self.backlog} still to send"
        if self.last_error:
            text += f"; last error: {self.last_error}"
        return text


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class _Acked:
    result: BatchResult


@dataclass(frozen=True)
class _TooLarge:
    error: str


@dataclass(frozen=True)
class _RetryLater:
    error: str
    wait: float | None = None  # from Retry-After; None: back off


@dataclass(frozen=True)
class _AuthRefused:
    error: str


@dataclass(frozen=True)
class _Refused:
    """A 4xx other than 401/403/413/429: resending the same batch will not help."""

    error: str


class _DeadlineHit(Exception):
    pass


class _BadReply(Exception):
    pass


# --------------------------------------------------------------------------- helpers


def retry_after_seconds(value: str | None, date_header: str | None = None,
                        now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait (never negative); ``None`` if absent or unreadable.

    An HTTP date is measured against the reply's own ``Date`` header when there
    is one (the device's wall clock may be far off: a Raspberry Pi has no RTC),
    else against ``now`` (default: the wall clock).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = None
    if date_header:
        try:
            reference = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            reference = None
    if reference is None:
        reference = time.time() if now is None else now
    return max(0.0, when - reference)


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): ``uniform(0, min(cap, base·2^attempt))``."""
    return rng.uniform(0, min(cap, base * 2 ** min(attempt, 64)))


def make_session() -> requests.Session:
    """A Session whose adapters never retry on their own: the uploader's loop decides."""
    session = requests.Session()
    # total=0: no connect/read/status retries and no redirects inside urllib3.
    # The loop in Uploader._round retries (it knows the deadline and backoff),
    # and it may: batch POSTs are idempotent (client UUIDs, "duplicate" on a resend).
    no_retry = Retry(total=0, redirect=0, raise_on_status=False)
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(max_retries=no_retry, pool_connections=1, pool_maxsize=2))
    session.headers["User-Agent"] = f"balie-kiosk/{__version__}"
    return session


def _error_text(status: int, content: bytes) -> str:
    """``HTTP 503: overloaded (detail)`` from central's ErrorBody, else the status alone."""
    text = f"HTTP {status}"
    try:
        body = ErrorBody.model_validate_json(content)
    except ValidationError:
        return text
    text += f": {body.error}"
    if body.detail:
        text += f" ({body.detail})"
    return text[:1000]


# --------------------------------------------------------------------------- the uploader


class Uploader:
    """Sends the buffer's closed, unsent responses to central; one round per :meth:`run_once`.

    ``settings``: the ``[sync]`` settings (:class:`kiosk.settings.SyncSettings`, or
    the whole KioskSettings). ``state``: the :class:`~kiosk.state.DeviceState`
    (``None``: not enrolled, rounds do nothing). ``session``: a requests Session
    (default :func:`make_session`). ``clock``: the time source for clock readings.
    ``sleep``/``monotonic``: waiting and the deadline's clock (tests inject both);
    the default sleep wakes up early when :meth:`stop` is called. ``rng``: the
    backoff's randomness. ``clock_synced``: the NTP facade. ``disk_usage``:
    ``shutil.disk_usage``.

    Seams for the rest of the terminal (both may be added to after construction):

    * ``heartbeat_extras``: callables returning a dict of extra
      :class:`~sync.protocol.Heartbeat` fields (the questionnaire in use, the
      opening-hours state, ...); merged into every heartbeat. A provider that
      raises is logged and left out: it never breaks a round.
    * ``progress``: callables ``progress(report)`` called (on the sync thread)
      after every batch and at the end of a round, for the admin screen's
      progress display. They must return quickly and not touch Kivy widgets
      directly (schedule on the Kivy clock instead).
    * ``after_round``: callables ``after_round(report)`` run on the sync
      thread at the end of each round, before the heartbeat (e.g. fetching the
      questionnaire); an exception is logged and put in ``report.last_error``.
    """

    def __init__(self, settings, buffer, state, session: requests.Session | None = None, *,
                 clock: TimeSource | None = None, sleep: Callable[[float], object] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 clock_synced: Callable[[], bool | None] = system_clock_synced,
                 disk_usage=shutil.disk_usage, app_version: str = __version__) -> None:
        self.settings = getattr(settings, "sync", settings)
        self.buffer = buffer
        self.state = state
        self.session = session or make_session()
        self.clock = clock or system_time_source()
        self._stopping = threading.Event()
        self.sleep = sleep or self._stopping.wait
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.clock_synced = clock_synced
        self.disk_usage = disk_usage
        self.app_version = app_version
        self._lock = threading.Lock()
        self.last_report: SyncReport | None = None  # for the admin screen
        self.heartbeat_extras: list[Callable[[], dict]] = []
        self.progress: list[Callable[[SyncReport], object]] = []
        self.after_round: list[Callable[[SyncReport], object]] = []
        self._last_recorded_error: str | None = None

    # ----------------------------------------------------------------- public

    def run_once(self, deadline: float | None = None) -> SyncReport:
        """One round: send everything eligible (or until ``deadline`` seconds pass), then a heartbeat.

        Returns at once with ``stopped_reason == "busy"`` if a round is running.
        Never raises for network or central errors; they end up in the report.
        """
        if not self._lock.acquire(blocking=False):
            return SyncReport(stopped_reason="busy")
        try:
            if self.state is None:
                report = SyncReport(stopped_reason="not_enrolled",
                                    last_error="not enrolled: run `balie-kiosk enroll`")
            else:
                budget = self.settings.deadline_s if deadline is None else deadline
                report = self._round(self.monotonic() + budget)
            self.last_report = report
            log.info("sync round: %s", report.summary())
            return report
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Ask a running round to end soon (at its next wait or batch); for shutdown."""
        self._stopping.set()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    # ----------------------------------------------------------------- the round

    def _round(self, round_end: float) -> SyncReport:
        report = SyncReport()
        s = self.settings
        # The batches stop a little early so the heartbeat still fits in the round:
        # it matters most when sending goes wrong.
        reserve = min(s.connect_timeout_s + s.read_timeout_s, (round_end - self.monotonic()) / 4)
        deadline_at = round_end - max(0.0, reserve)
        size = min(s.batch_records, MAX_RECORDS)
        attempt = 0  # consecutive failures, for the backoff
        try:
            while True:
                if self._stopping.is_set():
                    report.stopped_reason = "stopped"
                    break
                if self.monotonic() >= deadline_at:
                    report.stopped_reason = "deadline"
                    break
                invalid: dict[str, str] = {}
                records = self.buffer.pending(size, invalid=invalid)
                if invalid:
                    report.quarantined_locally += self.buffer.quarantine(invalid)
                    continue
                if not records:
                    break
                encoded = [r.model_dump_json().encode() for r in records]
                n, total = 0, 0
                for item in encoded:
                    if total + len(item) + 1 > MAX_BODY_BYTES - ENVELOPE_BYTES:
                        break
                    total += len(item) + 1
                    n += 1
                if n == 0:
                    report.quarantined_locally += self.buffer.quarantine({records[0].id: TOO_LARGE})
                    continue
                records, encoded = records[:n], encoded[:n]

                outcome = self._send_batch(encoded, deadline_at, report)
                if isinstance(outcome, _Acked):
                    if self._apply(records, outcome.result, report):
                        attempt = 0
                        self._notify(report)
                        continue
                    outcome = _RetryLater(f"central acknowledged none of the {len(records)} "
                                          "responses sent")
                if isinstance(outcome, _TooLarge):
                    report.last_error = outcome.error
                    if len(records) == 1:
                        report.quarantined_locally += self.buffer.quarantine(
                            {records[0].id: TOO_LARGE})
                    else:
                        size = max(1, len(records) // 2)
                    continue
                if isinstance(outcome, _RetryLater):
                    report.last_error = outcome.error
                    if outcome.wait is not None:
                        wait = min(outcome.wait, s.retry_after_cap_s)
                    else:
                        wait = full_jitter(attempt, s.backoff_base_s, s.backoff_cap_s, self.rng)
                        attempt += 1
                    if self.monotonic() + wait >= deadline_at:
                        report.stopped_reason = "deadline"
                        break
                    report.waits.append(wait)
                    self.sleep(wait)
                    continue
                if isinstance(outcome, _AuthRefused):
                    report.last_error = outcome.error
                    report.stopped_reason = "auth"
                    break
                report.last_error = outcome.error  # _Refused
                report.stopped_reason = "error"
                break
        except BufferUnavailable as err:
            report.last_error = str(err)
            report.stopped_reason = "buffer"

        if report.stopped_reason not in ("auth", "stopped") and self.monotonic() < round_end:
            self._run_after_round(report)
        if (report.stopped_reason in ("done", "deadline", "error", "buffer")
                and self.monotonic() < round_end):
            self._heartbeat(round_end, report)
        try:
            report.backlog = self.buffer.backlog().responses
        except BufferUnavailable:
            pass
        self._record_error(report)
        self._notify(report)
        return report

    def _apply(self, records, result: BatchResult, report: SyncReport) -> bool:
        """Mark what central acknowledged; returns False if it acknowledged nothing."""
        verdicts = {r.id: r for r in result.results}
        sent: list[str] = []
        rejected: dict[str, str] = {}
        for record in records:
            verdict = verdicts.get(record.id)
            if verdict is None:
                report.missing += 1
            elif verdict.status == "accepted":
                report.accepted += 1
                sent.append(record.id)
            elif verdict.status == "duplicate":
                report.duplicate += 1
                sent.append(record.id)
            else:
                report.rejected += 1
                rejected[record.id] = verdict.reason or "rejected by central"
        self.buffer.mark_sent(sent)
        self.buffer.quarantine(rejected)
        report.batches += 1
        return bool(sent or rejected)

    # ----------------------------------------------------------------- HTTP

    def _send_batch(self, encoded: list[bytes], deadline_at: float, report: SyncReport):
        """POST one batch (``sent`` read now) and turn the reply into an outcome value."""
        state = self.state
        reading = self.clock.now()
        sent = ClockReading(wall=max(0.0, reading.wall), boot_id=reading.boot_id,
                            mono=max(0.0, reading.mono))
        body = b"".join((
            b'{"device_id":', json.dumps(state.device_id).encode(),
            b',"app_version":', json.dumps(self.app_version).encode(),
            b',"sent":', sent.model_dump_json().encode(),
            b',"responses":[', b",".join(encoded), b"]}",
        ))
        report.attempts += 1
        try:
            status, headers, content = self._post(BATCHES_PATH, gzip.compress(
                body, compresslevel=GZIP_LEVEL, mtime=0), deadline_at, gzipped=True)
        except _DeadlineHit:
            return _RetryLater("the round's deadline passed while central answered")
        except (requests.RequestException, _BadReply) as err:
            return _RetryLater(f"{type(err).__name__}: {err}"[:1000])
        if status == 200:
            try:
                return _Acked(BatchResult.model_validate_json(content))
            except ValidationError:
                return _RetryLater("central's reply is not a valid batch result "
                                   f"({len(content)} bytes)")
        error = _error_text(status, content)
        if status in (401, 403):
            return _AuthRefused(f"central refused this terminal ({error}); "
                                "enrol it again with a valid token")
        if status == 413:
            return _TooLarge(error)
        if status in (429, 503):
            return _RetryLater(error, retry_after_seconds(headers.get("Retry-After"),
                                                          headers.get("Date")))
        if status >= 500:
            return _RetryLater(error)
        return _Refused(error)

    def _post(self, path: str, body: bytes, deadline_at: float, *, gzipped: bool = False):
        """POST with (connect, read) timeouts inside the deadline; returns (status, headers, body)."""
        s = self.settings
        remaining = deadline_at - self.monotonic()
        if remaining <= 0:
            raise _DeadlineHit()
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {self.state.token}"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        timeout = (min(s.connect_timeout_s, remaining), min(s.read_timeout_s, remaining))
        response = self.session.post(self.state.url(path), data=body, headers=headers,
                                     timeout=timeout, stream=True, allow_redirects=False)
        try:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise _BadReply(f"reply larger than {MAX_REPLY_BYTES} bytes")
                if self.monotonic() > deadline_at:
                    raise _DeadlineHit()
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            response.close()

    def _heartbeat(self, deadline_at: float, report: SyncReport) -> None:
        """POST a Heartbeat; one attempt (the next round sends another)."""
        try:
            backlog = self.buffer.backlog()
            pending, quarantined = backlog.responses, backlog.quarantined
        except BufferUnavailable as err:
            pending, quarantined = 0, 0
            report.last_error = report.last_error or str(err)
        try:
            free = int(self.disk_usage(self.buffer.path.parent).free)
        except OSError:
            free = None
        reading = self.clock.now()
        try:
            synced = self.clock_synced()
        except Exception:  # a facade must never break a round
            synced = None
        heartbeat = Heartbeat(
            device_id=self.state.device_id, app_version=self.app_version, backlog=pending,
            quarantined=quarantined,
            # NUL is not allowed on the wire; an OS error text could carry one.
            last_error=report.last_error.replace("\x00", "")[:1000] if report.last_error else None,
            disk_free_bytes=free,
            clock=ClockReading(wall=max(0.0, reading.wall), boot_id=reading.boot_id,
                               mono=max(0.0, reading.mono)),
            clock_synced=synced, **self._extras())
        try:
            status, _headers, content = self._post(
                HEARTBEAT_PATH, heartbeat.model_dump_json().encode(), deadline_at)
        except (_DeadlineHit, _BadReply, requests.RequestException) as err:
            report.last_error = f"heartbeat: {type(err).__name__}: {err}"[:1000]
            return
        if status == 200:
            report.heartbeat_sent = True
        elif status in (401, 403):
            report.last_error = (f"central refused this terminal ({_error_text(status, content)}); "
                                 "enrol it again with a valid token")
            report.stopped_reason = "auth"
        else:
            report.last_error = f"heartbeat: {_error_text(status, content)}"

    def _extras(self) -> dict:
        """The heartbeat_extras providers' fields (a failing provider is logged and skipped)."""
        fields: dict = {}
        for provider in self.heartbeat_extras:
            try:
                fields.update(provider() or {})
            except Exception:  # a provider must never break a round
                log.exception("heartbeat field provider %r failed", provider)
        return fields

    def _notify(self, report: SyncReport) -> None:
        for listener in self.progress:
            try:
                listener(report)
            except Exception:
                log.exception("sync progress listener %r failed", listener)

    def _run_after_round(self, report: SyncReport) -> None:
        for step in self.after_round:
            try:
                step(report)
            except Exception as err:
                log.exception("after-round step %r failed", step)
                report.last_error = report.last_error or f"{type(err).__name__}: {err}"[:1000]

    # ----------------------------------------------------------------- for the admin screen

    def _record_error(self, report: SyncReport) -> None:
        """Keep a round-ending failure as a buffer event (the admin screen reads events).

        An auth refusal is recorded every time; other errors once until they change.
        """
        if report.stopped_reason == "auth":
            kind = "sync_auth_refused"
        elif report.stopped_reason in ("deadline", "error", "buffer") and report.last_error:
            kind = "sync_failed"
            if report.last_error == self._last_recorded_error:
                return
        else:
            self._last_recorded_error = None
            return
        try:
            self.buffer.record_event(kind, report.last_error or report.stopped_reason)
            self._last_recorded_error = report.last_error
        except BufferUnavailable as err:
            log.warning("cannot record the sync error in the buffer: %s", err)
