"""An out-of-order terminal tells central in its heartbeat; central's fleet health shows it.

The real app, enrolled with a real central on a loopback port; the buffer's
write failure is what the storage watch goes by (``Buffer.last_write_error``,
set here as a failed write sets it: the full-disk path itself is walked in
tests/test_ui_out_of_order.py).
"""

from __future__ import annotations

import time

import pytest

from central.db import make_engine
from central.devices import device_statuses
from central.settings import FleetSettings
from kiosk.state import DeviceState
from tests.central_fixtures import central_settings, enrol_device, migrate, run_central

pytestmark = pytest.mark.ui


@pytest.fixture
def central(tmp_path):
    settings = central_settings(tmp_path / "central.sqlite3")
    migrate(settings)
    device_id, token = enrol_device(settings)
    engine = make_engine(settings.database_url)
    with run_central(settings, migrate_first=False, watch_fleet=False) as base_url:
        yield base_url, engine, device_id, token
    engine.dispose()


def sync_round(driver, timeout: float = 20.0) -> None:
    uploader = driver.app.sync.uploader
    before = uploader.last_report
    driver.app.sync.trigger_now()
    ends = time.monotonic() + timeout
    while uploader.last_report is before:
        assert time.monotonic() < ends, "the sync round did not end"
        time.sleep(0.01)


def test_out_of_order_reaches_central_and_so_does_the_recovery(tmp_path, central):
    from tests.kivy_driver import start_app

    base_url, engine, device_id, token = central
    state = DeviceState(central_url=base_url, device_id=device_id, token=token)
    driver = start_app(tmp_path / "terminal", device_state=state, frames=0)
    try:
        driver.until_ready()
        assert driver.app.storage_watch.heartbeat_fields in driver.app.sync.uploader.heartbeat_extras
        sync_round(driver)
        [status] = device_statuses(engine, FleetSettings())
        assert (status.status, status.out_of_order) == ("ok", None)

        buffer = driver.app.buffer
        buffer.last_write_error = "database or disk is full"
        buffer.last_write_cause = "full"
        sync_round(driver)
        [status] = device_statuses(engine, FleetSettings())
        assert status.status == "out of order"
        assert status.out_of_order == "the buffer cannot take answers: database or disk is full"

        buffer.last_write_error = None
        buffer.last_write_cause = None
        sync_round(driver)
        [status] = device_statuses(engine, FleetSettings())
        assert (status.status, status.out_of_order) == ("ok", None)
    finally:
        driver.close()
