"""An out-of-order terminal tells central in its heartbeat; central's fleet health shows it.

The real app, enrolled with a real central on a loopback port; the buffer's
write failure is what the storage watch goes by (``Buffer.last_write_error``,
set here as a failed write sets it: the full-disk path itself is walked in
tests/test_ui_out_of_order.py).
"""

from __future__ import annotations

import pytest

from central.devices import device_statuses
from central.settings import FleetSettings
from kiosk.state import DeviceState
from tests.central_fixtures import enrolled_central
from tests.kivy_driver import sync_round

pytestmark = pytest.mark.ui


@pytest.fixture
def central(tmp_path):
    with enrolled_central(tmp_path / "central.sqlite3") as central:
        yield central


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
