"""Fleet health: which terminals are silent, record no ratings or are out of order; each change logged once.

Use::

    health = assess(device_row, settings.fleet, now=time.time())   # pure: no database, no clock
    health.silent, health.no_ratings, health.status                 # status: "ok", "silent", ...
    check_fleet(engine, settings.fleet, now=time.time())            # logs each change of state once
    watcher = FleetWatcher(lambda: check_fleet(engine, fleet, now=clock()), interval_s=60)
    task = asyncio.create_task(watcher.run()); ...; watcher.stop(); await task

States (``[fleet]`` in central.toml):

* **silent**: nothing (batch or heartbeat) received for ``silent_after_s``
  (counted from enrolment for a device never heard from);
* **no ratings**: the last heartbeat reported at least ``no_ratings_after_s`` of
  opening time since the terminal's last recorded response (``quiet_open_s``:
  the terminal knows its opening hours; terminals that do not send it never
  are in this state). It is what the last heartbeat said, also when that is old;
* **out of order**: the last heartbeat said the terminal shows its out-of-order
  screen (its buffer cannot take answers: a full disk, a read-only file
  system) and why. The terminal recovers by itself once it can write again;
  until then no visitor can answer there.

A revoked device is never in a state. :func:`check_fleet` keeps the moment it
noticed a state on the device row (``silent_since``, ``no_ratings_since``), so a
change is logged once — a WARNING on entering, INFO on recovering — also with
several central processes on one database (the rows are locked while it looks).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

from sqlalchemy import Engine, select, update

from central.models import Device
from central.settings import FleetSettings

log = logging.getLogger("balie.central.fleet")
_devices = Device.__table__
STATES = ("silent", "no_ratings", "out_of_order")


class DeviceFacts(Protocol):
    """What :func:`assess` reads of a device (a ``devices`` row or a ``DeviceStatus``)."""

    created_at: float
    last_seen_at: float | None
    quiet_open_s: float | None
    out_of_order: str | None
    revoked_at: float | None


@dataclass(frozen=True)
class Health:
    """A device's health at one moment.

    ``unheard_s``: seconds since central last heard from it (since enrolment if
    never); ``quiet_open_s``, ``reason``: what its last heartbeat said (None: not
    reported; ``reason``: why it is out of order).
    """

    silent: bool
    no_ratings: bool
    revoked: bool
    unheard_s: float
    quiet_open_s: float | None
    out_of_order: bool = False
    reason: str | None = None

    @property
    def status(self) -> str:
        """``revoked``, ``ok``, or the states joined: ``silent``, ``no ratings``, ``out of order``."""
        if self.revoked:
            return "revoked"
        states = [name for name, on in (("silent", self.silent), ("no ratings", self.no_ratings),
                                        ("out of order", self.out_of_order)) if on]
        return ", ".join(states) or "ok"


def assess(device: DeviceFacts, fleet: FleetSettings, now: float) -> Health:
    """The health of ``device`` at ``now`` under ``fleet``'s thresholds (pure)."""
    revoked = device.revoked_at is not None
    heard = device.last_seen_at if device.last_seen_at is not None else device.created_at
    unheard = max(0.0, now - heard)
    quiet = device.quiet_open_s
    reason = getattr(device, "out_of_order", None)
    return Health(
        silent=not revoked and unheard >= fleet.silent_after_s,
        no_ratings=not revoked and quiet is not None and quiet >= fleet.no_ratings_after_s,
        revoked=revoked, unheard_s=unheard, quiet_open_s=quiet,
        out_of_order=not revoked and reason is not None, reason=reason)


@dataclass(frozen=True)
class Change:
    """A device entered (``entered``) or left a state (``silent`` / ``no_ratings`` / ``out_of_order``).

    ``message`` is what is logged; empty for a revoked device's state being cleared.
    """

    device_id: str
    state: str
    entered: bool
    message: str

    @property
    def level(self) -> int:
        """WARNING on entering a state, INFO on recovering."""
        return logging.WARNING if self.entered else logging.INFO


def changes(device, health: Health) -> list[Change]:
    """The changes between what was noticed before (``device.silent_since``,
    ``device.no_ratings_since``, ``device.out_of_order_since``) and ``health`` (pure)."""
    name = f"device {device.id} ({device.name}, {device.location})"
    found = []
    for state in STATES:
        since = getattr(device, f"{state}_since")
        on = getattr(health, state)
        if on and since is None:
            if state == "silent":
                last = (f"last seen {when(device.last_seen_at)}" if device.last_seen_at is not None
                        else f"never heard from since its enrolment {when(device.created_at)}")
                message = (f"{name} is silent: nothing received for {duration(health.unheard_s)} "
                           f"({last})")
            elif state == "no_ratings":
                message = (f"{name} records no ratings: {duration(health.quiet_open_s)} of "
                           "opening time without a response, by its last heartbeat")
            else:
                message = (f"{name} is out of order: visitors cannot answer there "
                           f"({health.reason}), by its last heartbeat")
            found.append(Change(device.id, state, True, message))
        elif since is not None and not on:
            if health.revoked:
                message = ""
            elif state == "silent":
                message = f"{name} is heard from again (silent since {when(since)})"
            elif state == "no_ratings":
                message = f"{name} records ratings again"
            else:
                message = f"{name} takes answers again (out of order since {when(since)})"
            found.append(Change(device.id, state, False, message))
    return found


def check_fleet(engine: Engine, fleet: FleetSettings, *, now: float,
                logger: logging.Logger = log) -> list[Change]:
    """Compare every device's health at ``now`` with what was noticed before, store the
    changes and log them (after the commit). Returns the changes."""
    found: list[Change] = []
    with engine.begin() as conn:
        rows = conn.execute(select(
            _devices.c.id, _devices.c.name, _devices.c.location, _devices.c.created_at,
            _devices.c.last_seen_at, _devices.c.quiet_open_s, _devices.c.out_of_order,
            _devices.c.revoked_at, _devices.c.silent_since, _devices.c.no_ratings_since,
            _devices.c.out_of_order_since,
        ).order_by(_devices.c.id).with_for_update()).all()
        for row in rows:
            row_changes = changes(row, assess(row, fleet, now))
            if row_changes:
                conn.execute(update(_devices).where(_devices.c.id == row.id).values({
                    f"{c.state}_since": now if c.entered else None for c in row_changes}))
                found += row_changes
    for change in found:
        if change.message:
            logger.log(change.level, change.message)
    return found


class FleetWatcher:
    """Runs a blocking ``check`` in a worker thread now and every ``interval_s`` until stopped.

    A failing check (the database is down) is logged and tried again next time.
    """

    def __init__(self, check: Callable[[], object], interval_s: float):
        self.check = check
        self.interval_s = interval_s
        self.runs = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """The loop; returns after :meth:`stop` (waiting for a check in progress to end)."""
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.check)
            except Exception as exc:  # noqa: BLE001 - keep watching; the next round may work
                log.warning("fleet check failed: %s", str(exc).strip().splitlines()[0] if
                            str(exc).strip() else type(exc).__name__)
            self.runs += 1
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()


def when(seconds: float | None) -> str:
    """``2026-11-27 10:00:00 UTC`` (``never`` for None)."""
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``, ``3 d 4 h``."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
