"""Test the connection to central: is it there, and does it accept this terminal's token?

Use (blocking: call it from a worker thread)::

    result = check_connection(settings.sync, buffer, device_state)
    result.ok, result.error        # False, "GET /healthz: ConnectionError: … Connection refused"
    for step in result.steps:      # ("healthz", True, "HTTP 200", 0.012), ("heartbeat", …)
        ...

Two requests, each with the ``[sync]`` (connect, read) timeouts and no retries
(:func:`sync.uploader.make_session`):

1. ``GET /healthz`` without credentials: the address is right and central and
   its database answer.
2. ``POST /api/v1/heartbeat`` with the device's bearer token: central knows
   the token and has not revoked it. It is a real heartbeat (backlog,
   quarantine, disk, clock), so it also refreshes central's view of the device.

The error text is exact: the exception's class and message, or central's
status code with its error body. Not enrolled: no request is made.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

from kiosk import __version__
from kiosk.clock import TimeSource, system_time_source
from kiosk.errors import BufferUnavailable
from sync.protocol import HEALTH_PATH, HEARTBEAT_PATH, ClockReading, ErrorBody, Heartbeat

NOT_ENROLLED = "not enrolled: run `balie-kiosk enroll URL TOKEN --device-id ID` first"


@dataclass(frozen=True)
class ProbeStep:
    name: str  # "healthz" or "heartbeat"
    ok: bool
    detail: str  # "HTTP 200", or the exact error
    seconds: float


@dataclass(frozen=True)
class ProbeResult:
    """``ok``: both requests succeeded. ``error``: the first failure, exactly as it happened."""

    ok: bool
    enrolled: bool
    steps: tuple[ProbeStep, ...] = field(default=())
    error: str | None = None

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


def _error_text(status: int, content: bytes) -> str:
    text = f"HTTP {status}"
    try:
        body = ErrorBody.model_validate_json(content)
    except ValueError:
        return text
    text += f": {body.error}"
    if body.detail:
        text += f" ({body.detail})"
    return text[:500]


def check_connection(settings, buffer, state, *, session: requests.Session | None = None,
                     clock: TimeSource | None = None,
                     clock_synced: Callable[[], bool | None] | None = None,
                     extras: list[Callable[[], dict]] | tuple = (),
                     last_error: str | None = None,
                     monotonic: Callable[[], float] = time.monotonic) -> ProbeResult:
    """Run both requests (the second only if the first worked); never raises for network errors.

    ``settings``: the ``[sync]`` settings (or all of them); ``extras``: the
    uploader's ``heartbeat_extras`` providers, so the heartbeat is as complete
    as a round's; ``last_error``: what the heartbeat reports as the last error.
    """
    if state is None:
        return ProbeResult(ok=False, enrolled=False, error=NOT_ENROLLED)
    from sync.uploader import make_session

    s = getattr(settings, "sync", settings)
    timeout = (s.connect_timeout_s, s.read_timeout_s)
    own_session = session is None
    session = session or make_session()
    steps: list[ProbeStep] = []
    try:
        start = monotonic()
        try:
            reply = session.get(state.url(HEALTH_PATH), timeout=timeout, allow_redirects=False)
            ok, detail = reply.status_code == 200, (
                "HTTP 200" if reply.status_code == 200 else _error_text(reply.status_code,
                                                                         reply.content))
        except requests.RequestException as err:
            ok, detail = False, f"{type(err).__name__}: {err}"[:500]
        steps.append(ProbeStep("healthz", ok, detail, monotonic() - start))
        if not ok:
            return ProbeResult(ok=False, enrolled=True, steps=tuple(steps),
                               error=f"GET {HEALTH_PATH}: {detail}")

        body = _heartbeat(state, buffer, clock or system_time_source(), clock_synced, extras,
                          last_error).model_dump_json().encode()
        start = monotonic()
        try:
            reply = session.post(state.url(HEARTBEAT_PATH), data=body, timeout=timeout,
                                 allow_redirects=False,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {state.token}"})
            ok, detail = reply.status_code == 200, (
                "HTTP 200" if reply.status_code == 200 else _error_text(reply.status_code,
                                                                         reply.content))
        except requests.RequestException as err:
            ok, detail = False, f"{type(err).__name__}: {err}"[:500]
        steps.append(ProbeStep("heartbeat", ok, detail, monotonic() - start))
        if not ok:
            return ProbeResult(ok=False, enrolled=True, steps=tuple(steps),
                               error=f"POST {HEARTBEAT_PATH}: {detail}")
        return ProbeResult(ok=True, enrolled=True, steps=tuple(steps))
    finally:
        if own_session:
            session.close()


def _heartbeat(state, buffer, clock, clock_synced, extras, last_error) -> Heartbeat:
    try:
        backlog = buffer.backlog()
        pending, quarantined = backlog.responses, backlog.quarantined
    except BufferUnavailable:
        pending, quarantined = 0, 0
    try:
        free = int(shutil.disk_usage(buffer.path.parent).free)
    except OSError:
        free = None
    if clock_synced is None:
        from sync.clocksync import clock_synced
    try:
        synced = clock_synced()
    except Exception:  # a facade never breaks the probe
        synced = None
    fields: dict = {}
    for provider in extras:
        try:
            fields.update(provider() or {})
        except Exception:  # as in the uploader: a provider never breaks a heartbeat
            pass
    reading = clock.now()
    return Heartbeat(
        device_id=state.device_id, app_version=__version__, backlog=pending,
        quarantined=quarantined,
        last_error=last_error.replace("\x00", "")[:1000] if last_error else None,
        disk_free_bytes=free,
        clock=ClockReading(wall=max(0.0, reading.wall), boot_id=reading.boot_id,
                           mono=max(0.0, reading.mono)),
        clock_synced=synced, **fields)
