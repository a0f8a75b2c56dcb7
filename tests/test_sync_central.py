"""End to end: the device's uploader against the real central on a loopback port (SQLite, PostgreSQL)."""

from __future__ import annotations

import random

import pytest

from central.devices import device_statuses, revoke
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.settings import SyncSettings
from kiosk.state import DeviceState
from sync.uploader import Uploader
from tests.central_fixtures import central_on_backend, enrol_device
from tests.sync_test_server import FakeTime, fill_buffer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory):
    with central_on_backend(request, tmp_path_factory) as central:
        yield central


@pytest.fixture
def buf(tmp_path):
    b = Buffer.open(tmp_path / "buffer.sqlite3",
                    time_source=FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a"))
    yield b
    b.close()


def uploader(buf, central, device_id, token, **opts) -> Uploader:
    _settings, base_url, _engine = central
    fake = FakeTime()
    return Uploader(SyncSettings(**{"batch_records": 50, **opts}), buf,
                    DeviceState(base_url, device_id, token), sleep=fake.sleep,
                    monotonic=fake.monotonic, rng=random.Random(3), clock_synced=lambda: True)


def status(central, device_id):
    return next(s for s in device_statuses(central[2]) if s.id == device_id)


def test_a_backlog_reaches_central_once_and_a_resync_finds_nothing_pending(central, buf):
    device_id, token = enrol_device(central[0])
    fill_buffer(buf, 120, answers=3)
    report = uploader(buf, central, device_id, token).run_once()
    assert report.ok, report.summary()
    assert (report.accepted, report.duplicate, report.rejected, report.batches) == (120, 0, 0, 3)
    assert buf.backlog().responses == 0
    seen = status(central, device_id)
    assert (seen.highest_seq, seen.sequence_gaps, seen.backlog, seen.quarantined) == (120, 0, 0, 0)
    assert seen.clock == "synced" and seen.app_version

    again = uploader(buf, central, device_id, token).run_once()
    assert again.ok and (again.accepted, again.duplicate, again.batches) == (0, 0, 0)


def test_records_central_already_has_count_as_duplicates_and_are_marked_sent(central, buf):
    device_id, token = enrol_device(central[0])
    ids = fill_buffer(buf, 10)
    assert uploader(buf, central, device_id, token).run_once().accepted == 10
    # the device lost its acks (e.g. the reply was cut): mark them unsent again
    import sqlite3
    con = sqlite3.connect(buf.path)
    con.execute("UPDATE responses SET state = 'unsent'")
    con.commit()
    con.close()
    report = uploader(buf, central, device_id, token).run_once()
    assert (report.accepted, report.duplicate) == (0, 10) and buf.backlog().responses == 0
    assert len(ids) == 10


def test_new_answers_after_a_sync_change_the_status_counts(central, buf):
    device_id, token = enrol_device(central[0])
    fill_buffer(buf, 5)
    uploader(buf, central, device_id, token).run_once()
    fill_buffer(buf, 7)
    fill_buffer(buf, 1, close=False)
    report = uploader(buf, central, device_id, token).run_once()
    assert report.accepted == 7
    seen = status(central, device_id)
    assert seen.highest_seq == 12 and seen.backlog == 0 and seen.sequence_gaps == 0


def test_a_revoked_device_is_refused_and_keeps_its_data(central, buf):
    device_id, token = enrol_device(central[0])
    fill_buffer(buf, 4)
    import time
    revoke(central[2], device_id, now=time.time())
    report = uploader(buf, central, device_id, token).run_once()
    assert report.stopped_reason == "auth" and buf.backlog().responses == 4
    assert any(e.kind == "sync_auth_refused" for e in buf.events())
