"""Auth, end to end: the real uploader, reading its real device-state file, against a real
central on a loopback port (SQLite and PostgreSQL). A pass-through FaultProxy (no faults)
sits in between only to count what reaches the wire.

* never enrolled → no request at all, a report that says so;
* a wrong token → one request, refused (401), the round stops at once, data kept, event;
* revoked (``balie-central device revoke``, the real CLI) between two rounds of a backlog
  → the next round is refused (403), what was sent stays, the rest is kept on the device;
* device A's token with device B's id in the state file → 403, nothing stored for B (nor A).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from central.devices import device_statuses
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.settings import SyncSettings
from kiosk.state import DeviceStateStore
from sync.protocol import BATCHES_PATH
from sync.scheduler import build_sync
from sync.uploader import Uploader, make_session
from tests.central_fixtures import central_on_backend, enrol_device
from tests.faultproxy import Fault, FaultProxy
from tests.sync_test_server import FakeTime, fill_buffer

BALIE_CENTRAL = Path(sys.executable).with_name("balie-central")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory):
    with central_on_backend(request, tmp_path_factory) as (settings, base_url, engine):
        with FaultProxy(base_url, seed=0) as proxy:  # no faults: it counts requests
            yield settings, proxy, engine


@pytest.fixture
def buf(tmp_path):
    b = Buffer.open(tmp_path / "data" / "buffer.sqlite3",
                    time_source=FakeTimeSource(wall=1_717_000_000.0, mono=100.0, boot_id="boot-a"))
    yield b
    b.close()




def _uploader(buf, state, **settings) -> tuple[Uploader, list[str]]:
    """The real uploader on the state as loaded from its file; returns it and the URLs it
    asked the session for."""
    session = make_session()
    calls: list[str] = []
    send = session.send

    def counting_send(prepared, **kwargs):
        calls.append(prepared.url)
        return send(prepared, **kwargs)

    session.send = counting_send
    fake = FakeTime()
    uploader = Uploader(SyncSettings(**{"batch_records": 10, "connect_timeout_s": 2.0,
                                        "read_timeout_s": 5.0, **settings}),
                        buf, state, session, sleep=fake.sleep, monotonic=fake.monotonic,
                        rng=random.Random(7), clock_synced=lambda: True)
    return uploader, calls


def _enrol_state(tmp_path, url, device_id, token):
    """Write the device-state file as `balie-kiosk enroll` does, and load it back."""
    store = DeviceStateStore(tmp_path / "data")
    store.enroll(url, device_id=device_id, token=token)
    assert (store.path.stat().st_mode & 0o777) == 0o600
    return store.load()


def _stored(engine, device_id) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM responses WHERE device_id = :d"),
                            {"d": device_id}).scalar_one()


def _status(engine, device_id):
    return next(s for s in device_statuses(engine) if s.id == device_id)


def _auth_events(buf):
    return [e for e in buf.events() if e.kind == "sync_auth_refused"]


def test_a_terminal_never_enrolled_sends_nothing_and_says_why(central, buf, tmp_path):
    _settings, proxy, _engine = central
    fill_buffer(buf, 5)
    state = DeviceStateStore(tmp_path / "data").load()  # no state file: never enrolled
    assert state is None
    assert build_sync(SyncSettings(), buf, state) is None  # the app schedules no sync at all
    before = proxy.counters["requests"]
    uploader, calls = _uploader(buf, state)
    report = uploader.run_once()
    assert report.stopped_reason == "not_enrolled" and not report.ok
    assert "not enrolled" in report.last_error and "balie-kiosk enroll" in report.last_error
    assert (report.attempts, report.batches, report.heartbeat_sent) == (0, 0, False)
    assert calls == [] and proxy.counters["requests"] == before  # not a byte on the wire
    assert buf.backlog().responses == 5


def test_a_wrong_token_stops_the_round_at_once_and_keeps_the_data(central, buf, tmp_path):
    settings, proxy, engine = central
    device_id, _token = enrol_device(settings)
    fill_buffer(buf, 25)
    state = _enrol_state(tmp_path, proxy.url, device_id, secrets.token_urlsafe(32))
    before = len(proxy.log)
    uploader, calls = _uploader(buf, state)
    report = uploader.run_once()
    assert report.stopped_reason == "auth", report.summary()
    assert "401" in report.last_error and "enrol it again" in report.last_error
    assert (report.attempts, report.accepted, report.waits, report.heartbeat_sent) == (1, 0, [], False)
    exchanges = list(proxy.log)[before:]
    assert [(e.path, e.upstream_status) for e in exchanges] == [(BATCHES_PATH, 401)]
    assert len(calls) == 1  # stopped at once: no retry, no heartbeat
    assert buf.backlog().responses == 25 and _stored(engine, device_id) == 0
    assert len(_auth_events(buf)) == 1
    assert state.token not in report.summary()
    assert _status(engine, device_id).last_seen_at is None


def test_a_device_revoked_mid_backlog_is_refused_from_the_next_round_on(central, buf, tmp_path):
    settings, proxy, engine = central
    device_id, token = enrol_device(settings)
    fill_buffer(buf, 50)
    state = _enrol_state(tmp_path, proxy.url, device_id, token)
    uploader, _calls = _uploader(buf, state, deadline_s=60.0)
    # Round 1 sends two batches, then central is busy for longer than the round lasts.
    proxy.schedule(Fault.PASS, Fault.PASS, Fault.HTTP_429)
    proxy.retry_after = 3600
    try:
        first = uploader.run_once()
    finally:
        proxy.retry_after = 1
    assert first.stopped_reason == "deadline" and first.accepted == 20, first.summary()
    assert buf.backlog().responses == 30 and _stored(engine, device_id) == 20

    env = {**os.environ, "BALIE_DATABASE_URL": settings.database_url}
    env.pop("BALIE_CENTRAL_CONFIG", None)
    done = subprocess.run([str(BALIE_CENTRAL), "device", "revoke", device_id], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "revoked" in done.stdout, done.stderr

    before = len(proxy.log)
    second = uploader.run_once()
    assert second.stopped_reason == "auth" and second.attempts == 1, second.summary()
    assert "403" in second.last_error and "revoked" in second.last_error
    assert [e.upstream_status for e in list(proxy.log)[before:]] == [403]
    assert buf.backlog().responses == 30 and buf.backlog().quarantined == 0  # kept, not dropped
    assert _stored(engine, device_id) == 20  # what was sent before the revocation stays
    third = uploader.run_once()  # and it stays refused
    assert third.stopped_reason == "auth" and buf.backlog().responses == 30
    assert len(_auth_events(buf)) == 2  # recorded every time, for the admin screen
    assert _status(engine, device_id).revoked


def test_device_a_cannot_write_as_device_b(central, buf, tmp_path):
    settings, proxy, engine = central
    a_id, a_token = enrol_device(settings, name="Balie A")
    b_id, _b_token = enrol_device(settings, name="Balie B")
    fill_buffer(buf, 12)
    state = _enrol_state(tmp_path, proxy.url, b_id, a_token)  # B's id, A's token
    before = len(proxy.log)
    uploader, _calls = _uploader(buf, state)
    report = uploader.run_once()
    assert report.stopped_reason == "auth" and report.attempts == 1, report.summary()
    assert "403" in report.last_error and a_id in report.last_error
    assert [e.upstream_status for e in list(proxy.log)[before:]] == [403]
    assert _stored(engine, b_id) == 0 and _stored(engine, a_id) == 0
    assert _status(engine, b_id).last_seen_at is None and _status(engine, b_id).highest_seq == 0
    assert _status(engine, a_id).highest_seq == 0
    assert buf.backlog().responses == 12 and len(_auth_events(buf)) == 1

    # the same body as a heartbeat: refused too, B's status untouched
    reply = requests.post(proxy.url + "/api/v1/heartbeat", timeout=5,
                          headers={"Authorization": f"Bearer {a_token}"},
                          json={"device_id": b_id, "app_version": "x", "backlog": 0,
                                "quarantined": 0, "clock": {"wall": 1.0, "boot_id": "b",
                                                            "mono": 1.0}})
    assert reply.status_code == 403
    assert _status(engine, b_id).last_seen_at is None
