"""Fleet health: silent devices, devices that record no ratings or are out of order, on a controlled clock;
each change logged once (WARNING in, INFO out); the state in ``device list``; the watcher loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import event

from central.cli import main
from central.db import make_engine
from central.devices import device_statuses, enrol, record_heartbeat, revoke
from central.errors import ConfigError
from central.fleet import FleetWatcher, assess, changes, check_fleet, duration
from central.settings import FleetSettings, load_settings
from sync.protocol import BATCHES_PATH, HEARTBEAT_PATH, Heartbeat
from tests.central_fixtures import (
    FakeClock,
    central_settings,
    make_batch,
    make_heartbeat,
    make_record,
    migrate,
    run_central,
)

ROOT = Path(__file__).resolve().parent.parent
FLEET = FleetSettings(silent_after_s=1800, no_ratings_after_s=7200, check_interval_s=60)
T0 = 1_800_000_000.0
LOGGER = "balie.central.fleet"


def device(*, created_at=T0, last_seen_at=None, quiet_open_s=None, revoked_at=None, **rest):
    return SimpleNamespace(id="dev-1", name="Balie 1", location="stadhuis", created_at=created_at,
                           last_seen_at=last_seen_at, quiet_open_s=quiet_open_s,
                           revoked_at=revoked_at, silent_since=None, no_ratings_since=None,
                           out_of_order_since=None, **rest)


# ----------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize("facts, now, silent", [
    (dict(last_seen_at=T0), T0 + 1799.9, False),
    (dict(last_seen_at=T0), T0 + 1800, True),                   # exactly the threshold
    (dict(last_seen_at=None), T0 + 1799, False),                # counted from enrolment
    (dict(last_seen_at=None), T0 + 1800, True),
    (dict(last_seen_at=T0 + 5000), T0, False),                  # central's clock went back
    (dict(last_seen_at=T0, revoked_at=T0), T0 + 10 ** 6, False),  # revoked: never an alert
])
def test_a_device_is_silent_after_silent_after_s_without_anything_received(facts, now, silent):
    assert assess(device(**facts), FLEET, now).silent is silent


@pytest.mark.parametrize("quiet, expected", [
    (None, False), (0.0, False), (7199.9, False), (7200.0, True), (50_000.0, True)])
def test_no_ratings_follows_the_quiet_opening_time_of_the_last_heartbeat(quiet, expected):
    health = assess(device(last_seen_at=T0, quiet_open_s=quiet), FLEET, T0 + 10)
    assert health.no_ratings is expected and health.silent is False
    assert assess(device(last_seen_at=T0, quiet_open_s=quiet, revoked_at=T0), FLEET,
                  T0 + 10).no_ratings is False


def test_the_status_names_every_state():
    assert assess(device(last_seen_at=T0), FLEET, T0).status == "ok"
    assert assess(device(last_seen_at=T0, quiet_open_s=9000.0), FLEET, T0 + 4000).status == \
        "silent, no ratings"
    assert assess(device(revoked_at=T0), FLEET, T0 + 9000).status == "revoked"


def test_changes_are_entering_and_leaving_a_state_only():
    quiet = device(last_seen_at=T0, quiet_open_s=8000.0)
    [entered] = changes(quiet, assess(quiet, FLEET, T0 + 10))
    assert (entered.state, entered.entered, entered.level) == ("no_ratings", True, logging.WARNING)
    noticed = device(last_seen_at=T0, quiet_open_s=8000.0)
    noticed.no_ratings_since = T0
    assert changes(noticed, assess(noticed, FLEET, T0 + 10)) == []     # still in it: no news
    noticed.quiet_open_s = 0.0
    [left] = changes(noticed, assess(noticed, FLEET, T0 + 10))
    assert (left.state, left.entered, left.level) == ("no_ratings", False, logging.INFO)
    gone = device(last_seen_at=T0, revoked_at=T0 + 1)
    gone.silent_since = T0
    [cleared] = changes(gone, assess(gone, FLEET, T0 + 9000))
    assert (cleared.state, cleared.entered, cleared.message) == ("silent", False, "")


def test_durations_read_well():
    assert [duration(s) for s in (None, 5, 60, 3599, 3600 + 5 * 60, 86400 * 3 + 7200)] == [
        "-", "5 s", "1 min", "59 min", "1 h 05 min", "3 d 2 h"]


# ----------------------------------------------------------------------------- on a database


def beat(device_id, **fields) -> Heartbeat:
    return Heartbeat.model_validate(make_heartbeat(device_id, **fields))


def fleet_lines(caplog) -> list[tuple[str, str]]:
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    caplog.clear()
    return lines


def test_going_silent_is_logged_once_and_coming_back_once(engine, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id, _ = enrol(engine, name="Balie 3", location="stadhuis", now=T0)
    record_heartbeat(engine, device_id, beat(device_id), received_at=T0 + 100)
    assert check_fleet(engine, FLEET, now=T0 + 100) == []
    assert check_fleet(engine, FLEET, now=T0 + 1899) == []
    [change] = check_fleet(engine, FLEET, now=T0 + 1900)
    assert (change.device_id, change.state, change.entered) == (device_id, "silent", True)
    [(level, message)] = fleet_lines(caplog)
    assert level == "WARNING"
    assert message == (f"device {device_id} (Balie 3, stadhuis) is silent: nothing received for "
                       "30 min (last seen 2027-01-15 08:01:40 UTC)")
    for later in (T0 + 2000, T0 + 90_000):                            # still silent: no news
        assert check_fleet(engine, FLEET, now=later) == []
    assert fleet_lines(caplog) == []
    record_heartbeat(engine, device_id, beat(device_id), received_at=T0 + 90_001)
    check_fleet(engine, FLEET, now=T0 + 90_002)
    assert fleet_lines(caplog) == [("INFO", f"device {device_id} (Balie 3, stadhuis) is heard "
                                    "from again (silent since 2027-01-15 08:31:40 UTC)")]
    assert check_fleet(engine, FLEET, now=T0 + 90_003) == []


def test_a_device_never_heard_from_is_silent_from_its_enrolment_on(engine, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id, _ = enrol(engine, name="Nieuw", location="wijk", now=T0)
    check_fleet(engine, FLEET, now=T0 + 1800)
    [(level, message)] = fleet_lines(caplog)
    assert level == "WARNING" and "never heard from since its enrolment" in message


def test_no_ratings_during_opening_hours_is_logged_once_and_recovery_once(engine, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id, _ = enrol(engine, name="Balie 1", location="stadhuis", now=T0)
    record_heartbeat(engine, device_id, beat(device_id, open_now=True, quiet_open_s=7199.0),
                     received_at=T0 + 10)
    assert check_fleet(engine, FLEET, now=T0 + 10) == []
    record_heartbeat(engine, device_id, beat(device_id, open_now=True, quiet_open_s=7500.0),
                     received_at=T0 + 300)
    check_fleet(engine, FLEET, now=T0 + 300)
    check_fleet(engine, FLEET, now=T0 + 360)
    assert fleet_lines(caplog) == [("WARNING", f"device {device_id} (Balie 1, stadhuis) records "
                                    "no ratings: 2 h 05 min of opening time without a response, "
                                    "by its last heartbeat")]
    # closed for the night: the device stops counting, central keeps the state
    record_heartbeat(engine, device_id, beat(device_id, open_now=False, quiet_open_s=7500.0),
                     received_at=T0 + 600)
    assert check_fleet(engine, FLEET, now=T0 + 600) == []
    record_heartbeat(engine, device_id, beat(device_id, open_now=True, quiet_open_s=0.0),
                     received_at=T0 + 900)
    check_fleet(engine, FLEET, now=T0 + 900)
    assert fleet_lines(caplog) == [("INFO", f"device {device_id} (Balie 1, stadhuis) records "
                                    "ratings again")]


def test_out_of_order_is_logged_once_shown_with_its_reason_and_recovery_once(engine, caplog,
                                                                          capsys):
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id, _ = enrol(engine, name="Balie 2", location="stadhuis", now=T0)
    reason = "the buffer cannot take answers: database or disk is full"
    record_heartbeat(engine, device_id, beat(device_id), received_at=T0 + 10)
    assert check_fleet(engine, FLEET, now=T0 + 10) == []
    record_heartbeat(engine, device_id, beat(device_id, out_of_order=reason), received_at=T0 + 20)
    [change] = check_fleet(engine, FLEET, now=T0 + 20)
    assert (change.state, change.entered) == ("out_of_order", True)
    assert check_fleet(engine, FLEET, now=T0 + 80) == []                 # still: no news
    assert fleet_lines(caplog) == [("WARNING", f"device {device_id} (Balie 2, stadhuis) is out "
                                    f"of order: visitors cannot answer there ({reason}), by its "
                                    "last heartbeat")]
    [status] = device_statuses(engine, FLEET, now=T0 + 80)
    assert (status.status, status.out_of_order) == ("out of order", reason)
    record_heartbeat(engine, device_id, beat(device_id), received_at=T0 + 100)
    check_fleet(engine, FLEET, now=T0 + 100)
    assert fleet_lines(caplog) == [("INFO", f"device {device_id} (Balie 2, stadhuis) takes "
                                    "answers again (out of order since 2027-01-15 08:00:20 UTC)")]
    assert next(device_statuses(engine, FLEET, now=T0 + 100)).status == "ok"


def test_an_old_terminal_without_the_field_is_never_out_of_order(engine):
    device_id, _ = enrol(engine, name="Oud", location="stadhuis", now=T0)
    old = make_heartbeat(device_id)
    old.pop("out_of_order", None)
    record_heartbeat(engine, device_id, Heartbeat.model_validate(old), received_at=T0 + 1)
    assert next(device_statuses(engine, FLEET, now=T0 + 2)).status == "ok"
    with pytest.raises(ValueError):
        beat(device_id, out_of_order="")                                  # empty: say None


def test_a_revoked_device_is_never_an_alert_and_its_state_is_cleared_quietly(engine, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    device_id, _ = enrol(engine, name="Weg", location="stadhuis", now=T0)
    check_fleet(engine, FLEET, now=T0 + 5000)
    assert [level for level, _ in fleet_lines(caplog)] == ["WARNING"]
    revoke(engine, device_id, now=T0 + 5001)
    [cleared] = check_fleet(engine, FLEET, now=T0 + 5002)
    assert (cleared.state, cleared.entered) == ("silent", False)
    assert check_fleet(engine, FLEET, now=T0 + 10 ** 7) == []
    assert fleet_lines(caplog) == []


def test_two_central_processes_log_each_change_once(database, caplog):
    """Two checkers at once, each on its own engine. A hook holds the first one's update
    until the other has read the devices too (or 2 s passed: the row locks keep it waiting)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    engines = [make_engine(database) for _ in range(2)]
    both_read = threading.Barrier(2)

    def hold_update(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE DEVICES"):
            try:
                both_read.wait(timeout=2)
            except threading.BrokenBarrierError:
                pass

    try:
        for i in range(5):
            enrol(engines[0], name=f"Balie {i}", location="stadhuis", now=T0)
        for engine in engines:
            event.listen(engine, "before_cursor_execute", hold_update)
        threads = [threading.Thread(target=check_fleet, args=(e, FLEET), kwargs={"now": T0 + 4000})
                   for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for engine in engines:
            engine.dispose()
    lines = fleet_lines(caplog)
    assert len(lines) == 5 and {level for level, _ in lines} == {"WARNING"}, lines


def test_device_list_shows_the_state_and_why(engine, capsys):
    now = time.time()
    silent, _ = enrol(engine, name="Stil", location="stadhuis", now=now - 3990)
    quiet, _ = enrol(engine, name="Rustig", location="stadhuis", now=now - 10)
    record_heartbeat(engine, quiet, beat(quiet, open_now=True, quiet_open_s=7300.0),
                     received_at=now - 5)
    fine, _ = enrol(engine, name="Goed", location="stadhuis", now=now - 10)
    record_heartbeat(engine, fine, beat(fine, open_now=True, quiet_open_s=60.0), received_at=now)
    gone, _ = enrol(engine, name="Weg", location="stadhuis", now=now - 9000)
    revoke(engine, gone, now=now)
    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    table = {line.split()[0]: line for line in out.splitlines() if line.startswith("dev-")}
    assert table[silent].endswith("silent") and table[quiet].endswith("no ratings")
    assert table[fine].endswith("active") and table[gone].endswith("revoked")
    assert f"{silent}: silent: nothing received for 1 h 06 min (after 30 min)" in out
    assert f"{quiet}: no ratings: 2 h 01 min of opening time without a response" in out
    broken, _ = enrol(engine, name="Kapot", location="stadhuis", now=now - 10)
    record_heartbeat(engine, broken, beat(broken, out_of_order="the buffer cannot take answers: "
                                                                "disk I/O error"), received_at=now)
    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith(broken)][0].endswith(
        "out of order")
    assert (f"{broken}: out of order: the buffer cannot take answers: disk I/O error, by its "
            "last heartbeat") in out
    assert main(["device", "list", "--json"]) == 0
    shown = {d["id"]: d for d in json.loads(capsys.readouterr().out)}
    assert shown[broken]["out_of_order"].endswith("disk I/O error")
    assert (shown[silent]["status"], shown[silent]["silent"]) == ("silent", True)
    assert (shown[quiet]["status"], shown[quiet]["no_ratings"]) == ("no ratings", True)
    assert shown[fine]["status"] == "ok" and shown[gone]["status"] == "revoked"


def test_the_thresholds_come_from_central_toml(engine, capsys, tmp_path):
    config = tmp_path / "central.toml"
    config.write_text("[fleet]\nsilent_after_s = 86400\n", encoding="utf-8")
    device_id, _ = enrol(engine, name="Stil", location="stadhuis", now=time.time() - 4000)
    assert main(["--config", str(config), "device", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "ok"
    statuses = list(device_statuses(engine, FleetSettings(silent_after_s=3600), now=time.time()))
    assert statuses[0].status == "silent"


@pytest.mark.parametrize("text, message", [
    ("[fleet]\nsilent_after_s = 10", "fleet.silent_after_s: must be at least 60, got 10"),
    ("[fleet]\ncheck_interval_s = 0", "fleet.check_interval_s: must be at least 1, got 0"),
    ('[fleet]\nno_ratings_after_s = "2h"', "fleet.no_ratings_after_s"),
    ("[fleet]\nsilence = 1", "fleet.silence: unknown field"),
])
def test_bad_fleet_settings_name_the_key(tmp_path, text, message):
    path = tmp_path / "central.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert message in str(caught.value)


# ----------------------------------------------------------------------------- while serving


def test_the_running_service_notices_over_http_with_its_own_clock(database, caplog):
    """Batches and heartbeats over HTTP set "last seen" from the app's clock; the app's
    watcher checks at start-up and every check_interval_s."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    fake = FakeClock(T0)
    settings = central_settings(database, fleet={"check_interval_s": 1})
    engine = make_engine(database)
    try:
        device_id, token = enrol(engine, name="Balie 1", location="stadhuis", now=T0)
        headers = {"Authorization": f"Bearer {token}"}
        with run_central(settings, migrate_first=False, clock=fake) as base_url:
            reply = requests.post(base_url + BATCHES_PATH, headers=headers, timeout=(5, 30),
                                  json=make_batch(device_id, [make_record(1)]))
            assert reply.status_code == 200
            fake.advance(1800)
            wait_for(lambda: fleet_lines_peek(caplog, "is silent"))
            reply = requests.post(base_url + HEARTBEAT_PATH, headers=headers, timeout=(5, 30),
                                  json=make_heartbeat(device_id))
            assert reply.status_code == 200
            wait_for(lambda: fleet_lines_peek(caplog, "heard from again"))
        lines = fleet_lines(caplog)
        assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
        assert [s.last_seen_at for s in device_statuses(engine)] == [T0 + 1800]
    finally:
        engine.dispose()


def fleet_lines_peek(caplog, text: str) -> bool:
    return any(r.name == LOGGER and text in r.getMessage() for r in caplog.records)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_watcher_checks_at_once_then_every_interval_and_survives_a_failing_check(caplog):
    calls = []

    def check():
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("database unreachable\nmore detail")

    async def scenario():
        watcher = FleetWatcher(check, interval_s=0.05)
        task = asyncio.create_task(watcher.run())
        while len(calls) < 4:
            await asyncio.sleep(0.01)
        watcher.stop()
        await asyncio.wait_for(task, 5)
        return watcher.runs

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        runs = asyncio.run(scenario())
    assert runs == len(calls) >= 4
    assert all(later - earlier >= 0.04 for earlier, later in zip(calls, calls[1:]))
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "fleet check failed: database unreachable"]


def test_stopping_the_watcher_does_not_wait_for_the_interval():
    async def scenario():
        watcher = FleetWatcher(lambda: None, interval_s=3600)
        task = asyncio.create_task(watcher.run())
        while watcher.runs < 1:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        watcher.stop()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1


def test_serve_logs_a_silent_device_on_its_standard_error(tmp_path):
    """The real `balie-central serve`: the log level lets the fleet's lines through."""
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    migrate(central_settings(url))
    engine = make_engine(url)
    try:
        device_id, _ = enrol(engine, name="Oud", location="stadhuis", now=time.time() - 3990)
    finally:
        engine.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "BALIE_DATABASE_URL": url}
    env.pop("BALIE_CENTRAL_CONFIG", None)
    server = subprocess.Popen([sys.executable, "-m", "central", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        wait_for(lambda: _answers(port), timeout=20)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert (f"WARNING balie.central.fleet: device {device_id} (Oud, stadhuis) is silent: "
            "nothing received for 1 h 06 min") in err, err


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
