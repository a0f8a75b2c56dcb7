"""The device registry: enrolment, tokens, revocation, heartbeats and the status shown by `device list`.

Use::

    device_id, token = enrol(engine, name="Balie 1", location="stadhuis")   # token shown once
    device = authenticate(engine, token)        # None: unknown token; .revoked_at set: revoked
    record_heartbeat(engine, device_id, heartbeat, received_at=time.time())
    revoke(engine, device_id)
    for status in device_statuses(engine, settings.fleet, now=time.time()): ...
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Iterator

from sqlalchemy import Engine, insert, select, update

from central.errors import UnknownDevice
from central.fleet import assess
from central.models import Device
from central.settings import FleetSettings
from sync.protocol import Heartbeat

_devices = Device.__table__
TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 256


def hash_token(token: str) -> str:
    """sha256 hex of ``token``: what the database keeps instead of the token.

    The token is 32 random bytes, so no slow hash is needed (see central.models).
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_device_id() -> str:
    """``dev-`` and 8 random hex digits."""
    return f"dev-{secrets.token_hex(4)}"


def enrol(engine: Engine, *, name: str, location: str, now: float) -> tuple[str, str]:
    """Add a device; returns ``(device_id, token)``. Only the token's hash is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with engine.begin() as conn:
        while True:
            device_id = new_device_id()
            if conn.execute(select(_devices.c.id).where(_devices.c.id == device_id)).first() is None:
                break
        conn.execute(insert(_devices).values(
            id=device_id, name=name, location=location, token_hash=hash_token(token),
            created_at=now, highest_seq=0, seq_count=0))
    return device_id, token


@dataclass(frozen=True)
class AuthDevice:
    """The device a token belongs to, and where it stands (for its questionnaire)."""

    id: str
    revoked_at: float | None
    location: str | None = None


def authenticate(engine: Engine, token: str) -> AuthDevice | None:
    """The device whose token this is, or ``None``. Looked up on every request (no cache),
    so a revocation holds from the next request on."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="DEFERRED")
        row = conn.execute(select(_devices.c.id, _devices.c.revoked_at, _devices.c.location)
                           .where(_devices.c.token_hash == hash_token(token))).first()
    return AuthDevice(row.id, row.revoked_at, row.location) if row else None


def revoke(engine: Engine, device_id: str, *, now: float) -> bool:
    """Refuse the device's token from now on; False if it was revoked already.

    Raises :class:`UnknownDevice` for an id that is not enrolled.
    """
    with engine.begin() as conn:
        row = conn.execute(select(_devices.c.revoked_at).where(_devices.c.id == device_id)).first()
        if row is None:
            raise UnknownDevice(f"no device {device_id!r} is enrolled (see balie-central device list)")
        if row.revoked_at is not None:
            return False
        conn.execute(update(_devices).where(_devices.c.id == device_id).values(revoked_at=now))
    return True


def record_heartbeat(engine: Engine, device_id: str, beat: Heartbeat, *, received_at: float) -> None:
    """Keep what the heartbeat says on the device's row; the device was seen now."""
    with engine.begin() as conn:
        conn.execute(update(_devices).where(_devices.c.id == device_id).values(
            last_seen_at=received_at, heartbeat_at=received_at, app_version=beat.app_version,
            backlog=beat.backlog, quarantined=beat.quarantined, last_error=beat.last_error,
            disk_free_bytes=beat.disk_free_bytes, clock_wall=beat.clock.wall,
            clock_boot=beat.clock.boot_id, clock_mono=beat.clock.mono,
            clock_synced=beat.clock_synced,
            questionnaire_id=beat.questionnaire.id if beat.questionnaire else None,
            questionnaire_version=beat.questionnaire.version if beat.questionnaire else None,
            questionnaire_error=beat.questionnaire_error, open_now=beat.open_now,
            quiet_open_s=beat.quiet_open_s, out_of_order=beat.out_of_order))


def known_locations(engine: Engine) -> set[str]:
    """The locations of the enrolled, not revoked devices."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="DEFERRED")
        return set(conn.execute(select(_devices.c.location).distinct()
                                .where(_devices.c.revoked_at.is_(None))).scalars())


@dataclass(frozen=True)
class DeviceStatus:
    """One line of ``balie-central device list``.

    ``sequence_gaps``: sequence numbers missing between 1 and the highest seen.
    ``clock``: ``synced``/``unsynced`` as the device reported, ``unknown`` otherwise;
    ``clock_skew_s``: the device's wall clock minus central's at the last heartbeat.
    ``questionnaire``: ``id vN`` the device asks (last heartbeat), ``questionnaire_error``
    why its last download failed; ``open_now``, ``quiet_open_s``: its opening hours' view;
    ``out_of_order``: why it cannot take answers now (its last heartbeat), else None.
    ``status``: ``ok``, or the states it is in (``silent``, ``no ratings``, ``out of order``,
    joined by ", "), or ``revoked``
    (:func:`central.fleet.assess`); ``unheard_s``: seconds since central heard from it.
    """

    id: str
    name: str
    location: str
    created_at: float
    last_seen_at: float | None
    app_version: str | None
    backlog: int | None
    quarantined: int | None
    last_error: str | None
    disk_free_bytes: int | None
    highest_seq: int
    sequence_gaps: int
    clock: str
    clock_skew_s: float | None
    revoked: bool
    revoked_at: float | None
    heartbeat_at: float | None = None
    questionnaire: str | None = None
    questionnaire_error: str | None = None
    open_now: bool | None = None
    quiet_open_s: float | None = None
    out_of_order: str | None = None
    status: str = "ok"
    silent: bool = False
    no_ratings: bool = False
    unheard_s: float = 0.0

    def as_dict(self) -> dict:
        """Plain values for JSON."""
        return asdict(self)


def device_statuses(engine: Engine, fleet: FleetSettings | None = None, *,
                    now: float | None = None) -> Iterator[DeviceStatus]:
    """Every enrolled device's status at ``now`` (default: the time now), oldest enrolment first.

    ``fleet``: the thresholds of its health (default: the built-in ones).
    """
    fleet = fleet or FleetSettings()
    now = time.time() if now is None else now
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="DEFERRED")
        rows = conn.execute(select(_devices).order_by(_devices.c.created_at, _devices.c.id)).all()
    for row in rows:
        if row.clock_synced is None:
            clock = "unknown"
        else:
            clock = "synced" if row.clock_synced else "unsynced"
        skew = None
        if row.clock_wall is not None and row.heartbeat_at is not None:
            skew = round(row.clock_wall - row.heartbeat_at, 3)
        health = assess(row, fleet, now)
        questionnaire = None
        if row.questionnaire_id is not None:
            questionnaire = f"{row.questionnaire_id} v{row.questionnaire_version}"
        yield DeviceStatus(
            id=row.id, name=row.name, location=row.location, created_at=row.created_at,
            last_seen_at=row.last_seen_at, app_version=row.app_version, backlog=row.backlog,
            quarantined=row.quarantined, last_error=row.last_error,
            disk_free_bytes=row.disk_free_bytes, highest_seq=row.highest_seq,
            sequence_gaps=row.highest_seq - row.seq_count, clock=clock, clock_skew_s=skew,
            revoked=row.revoked_at is not None, revoked_at=row.revoked_at,
            heartbeat_at=row.heartbeat_at, questionnaire=questionnaire,
            questionnaire_error=row.questionnaire_error, open_now=row.open_now,
            quiet_open_s=row.quiet_open_s, out_of_order=row.out_of_order,
            status=health.status, silent=health.silent,
            no_ratings=health.no_ratings, unheard_s=round(health.unheard_s, 3))
