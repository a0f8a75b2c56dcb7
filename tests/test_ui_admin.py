"""The admin screen on the real Kivy window under Xvfb: gesture, PIN pad, status, every action, by touch."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.flow import VisitorFlow
from kiosk.pin import PinStore, hash_pin
from kiosk.questionnaire import load_questionnaire
from kiosk.state import DeviceState

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parent.parent
PIN = "4821"
#: Cheap Argon2 parameters: the tests check behaviour, tests/test_pin.py the real cost.
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
FOLLOW_UPS = ("wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid", "verwachting", "dienst")


# --------------------------------------------------------------------------- helpers


def rows(driver, sql, *params):
    with sqlite3.connect(driver.buffer_path) as db:
        return db.execute(sql, params).fetchall()


def counts(driver):
    """(responses, answers) in the buffer file."""
    return (rows(driver, "SELECT count(*) FROM responses")[0][0],
            rows(driver, "SELECT count(*) FROM answers")[0][0])


def until(driver, condition, timeout: float = 20.0, what: str = "condition"):
    """Run frames until ``condition()`` holds (worker threads need real time too)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        driver.frames(1)
        time.sleep(0.005)


def corner_taps(driver, n: int = 5, gap: float = 0.3) -> None:
    """``n`` real taps in the top-left corner of the window, ``gap`` seconds apart."""
    from kivy.core.window import Window

    for _ in range(n):
        driver.time.now += gap
        driver.tap_at(20, Window.height - 20)


def pad(driver):
    return driver.app.admin.screens["pin_pad"]


def admin_screen(driver):
    return driver.app.admin.screens["admin"]


def open_pad(driver):
    corner_taps(driver)
    assert driver.screen == "pin_pad"
    until(driver, lambda: not pad(driver).checking, what="the PIN state")


def enter(driver, pin: str) -> None:
    """Tap the digits and OK on the pad, then wait for the check to finish."""
    p = pad(driver)
    for digit in pin:
        driver.tap(p.ids[f"key_{digit}"])
    driver.tap(p.ids.ok)
    until(driver, lambda: not p.checking, what="the PIN check")


def open_admin(driver, pin: str = PIN):
    open_pad(driver)
    enter(driver, pin)
    assert driver.screen == "admin"
    until(driver, lambda: admin_screen(driver).snapshot is not None, what="the first snapshot")
    driver.frames(2)
    return admin_screen(driver)


def fill_buffer(path: Path, visits: int) -> None:
    """``visits`` closed responses of three answers each, before the app opens the buffer."""
    from kiosk.settings import load_settings

    questionnaire = load_questionnaire(load_settings(None).questionnaire_path)
    clock = FakeTimeSource(wall=time.time() - 3600, mono=100.0)
    with Buffer.open(path, time_source=clock) as buffer:
        flow = VisitorFlow(questionnaire, buffer, location_id="balie-1", language="nl",
                           rapid_repeat_s=20, monotonic=lambda: clock.mono)
        for _ in range(visits):
            clock.advance(60)
            flow.answer(8)
            flow.answer(4)
            flow.answer(5)
            flow.abandon("idle")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Starter:
    """``start(pin=..., device_state=..., sync=..., visits=...)``: the app with a PIN set, ready.

    Every app is closed at the end of the test; ``start.close(driver)`` closes one earlier.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.drivers = []

    def close(self, driver) -> None:
        self.drivers.remove(driver)
        driver.close()

    def __call__(self, *, pin: str | None = PIN, device_state=None, sync=None, visits: int = 0,
                 admin=None, folder: Path | None = None, clock=None, **params):
        from tests.kivy_driver import start_app, test_settings

        drivers = self.drivers
        if folder is None:
            folder = self.tmp_path / f"app{len(drivers)}"
            folder.mkdir()
        if pin is not None:
            PinStore(folder).save(hash_pin(pin, **{**CHEAP, **params}))
        if visits:
            fill_buffer(folder / "buffer.sqlite3", visits)
        settings = test_settings()
        update = {}
        if sync:
            update["sync"] = settings.sync.model_copy(update=sync)
        if admin:
            update["admin"] = settings.admin.model_copy(update=admin)
        if update:
            settings = settings.model_copy(update=update)
        driver = start_app(folder, settings=settings, device_state=device_state)
        drivers.append(driver)
        driver.until_ready()
        driver.app.admin.lockout.clock = clock or FakeTimeSource(mono=1000.0)
        return driver


@pytest.fixture
def start(tmp_path):
    starter = Starter(tmp_path)
    yield starter
    for driver in list(starter.drivers):
        starter.close(driver)


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """A real central on a loopback port; yields ``(base_url, settings)``."""
    from tests.central_fixtures import central_settings, run_central

    settings = central_settings(tmp_path_factory.mktemp("central") / "central.sqlite3")
    with run_central(settings) as base_url:
        yield base_url, settings


def enrolled(central) -> DeviceState:
    from tests.central_fixtures import enrol_device

    base_url, settings = central
    device_id, token = enrol_device(settings)
    return DeviceState(central_url=base_url, device_id=device_id, token=token)


# --------------------------------------------------------------------------- the way in


def test_five_taps_in_the_top_left_corner_open_the_pin_pad_and_give_no_rating(start):
    driver = start()
    assert driver.screen == "welcome"
    corner_taps(driver, 4)
    assert driver.screen == "welcome"
    corner_taps(driver, 1)
    assert driver.screen == "pin_pad"
    assert counts(driver) == (0, 0)


def test_slow_taps_or_taps_elsewhere_do_not_open_the_pin_pad(start):
    from kivy.core.window import Window

    driver = start()
    corner_taps(driver, 5, gap=0.9)  # 3.6 s from first to fifth
    assert driver.screen == "welcome"
    driver.time.now += 5
    corner_taps(driver, 3)
    driver.tap_at(Window.width / 2, Window.height - 20)  # top centre: starts the count again
    corner_taps(driver, 2)
    assert driver.screen == "welcome"
    corner_taps(driver, 3)  # 5 in a row again
    assert driver.screen == "pin_pad"


def test_the_gesture_does_nothing_during_a_visit(start):
    driver = start()
    driver.tap(driver.button_for("totaal", 7))
    assert driver.screen == "question"
    corner_taps(driver)
    assert driver.screen == "question"


def test_outside_opening_hours_the_gesture_works_on_the_closed_screen(tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from kiosk.settings import OpeningHoursSettings
    from tests.kivy_driver import KivyWallClock, start_app, test_settings

    PinStore(tmp_path).save(hash_pin(PIN, **CHEAP))
    settings = test_settings().model_copy(
        update={"opening_hours": OpeningHoursSettings(enabled=True)})
    sunday = datetime(2026, 4, 5, 11, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    driver = start_app(tmp_path, settings=settings, time_source=KivyWallClock(sunday))
    try:
        driver.until_ready()
        assert driver.screen == "closed"
        open_pad(driver)
        enter(driver, PIN)
        assert driver.screen == "admin"
        driver.tap(admin_screen(driver).ids.close)
        assert driver.screen == "closed"
        assert counts(driver) == (0, 0)
    finally:
        driver.close()


def test_without_a_pin_the_pad_says_so_and_cannot_open_the_admin_screen(start, caplog):
    driver = start(pin=None)
    open_pad(driver)
    p = pad(driver)
    assert p.available is False
    assert "balie-kiosk set-pin" in p.ids.message.text
    driver.tap(p.ids.key_4)
    assert p.entered == ""
    assert any("no PIN is set" in r.getMessage() for r in caplog.records)
    driver.tap(p.ids.cancel)
    assert driver.screen == "welcome"


def test_a_wrong_pin_is_refused_and_the_third_wrong_one_locks_the_pad(start):
    driver = start()
    lockout = driver.app.admin.lockout
    open_pad(driver)
    p = pad(driver)
    enter(driver, "1357")
    assert driver.screen == "pin_pad"
    assert p.ids.message.text == ("Verkeerde pincode. Pogingen over voordat het toetsenbord op "
                                  "slot gaat: 2")
    enter(driver, "2468")
    enter(driver, "9753")
    assert driver.screen == "pin_pad"
    assert p.locked_s == 30
    assert "30" in p.ids.message.text
    assert lockout.failures() == 3 and lockout.remaining() == 30
    # locked: keys do nothing, not even the right PIN
    for digit in PIN:
        driver.tap(p.ids[f"key_{digit}"])
    driver.tap(p.ids.ok)
    assert p.entered == "" and driver.screen == "pin_pad"
    assert lockout.failures() == 3
    lockout.clock.advance(20)
    driver.advance(20, step=1)
    assert p.locked_s == 10 and "10" in p.ids.message.text
    # 31 s after the last touch the pad has given way to the welcome screen; the lock is over
    lockout.clock.advance(11)
    driver.advance(11, step=1)
    assert driver.screen == "welcome"
    open_pad(driver)
    assert p.locked_s == 0 and p.ids.message.text == ""
    enter(driver, PIN)
    assert driver.screen == "admin"
    assert lockout.failures() == 0


def test_the_lock_survives_a_restart_of_the_app(start):
    driver = start()
    open_pad(driver)
    for pin in ("1357", "2468", "9753"):
        enter(driver, pin)
    assert pad(driver).locked_s == 30
    clock = driver.app.admin.lockout.clock
    folder = driver.buffer_path.parent
    start.close(driver)
    clock.advance(10)
    again = start(pin=None, folder=folder, clock=clock)  # the same data folder, the same boot
    open_pad(again)
    assert pad(again).locked_s == 20
    assert "20" in pad(again).ids.message.text


def test_the_pin_check_runs_off_the_ui_thread_with_a_busy_indicator(start):
    # A deliberately slow hash (64 MiB, 6 passes): frames must go on while it is checked.
    driver = start(time_cost=6, memory_cost=64 * 1024, parallelism=1)
    open_pad(driver)
    p = pad(driver)
    for digit in PIN:
        driver.tap(p.ids[f"key_{digit}"])
    driver.tap(p.ids.ok)
    frames_while_checking = 0
    while p.checking:
        assert p.ids.busy.active and p.ids.message.text == "Controleren…"
        driver.frames(1)
        frames_while_checking += 1
        assert frames_while_checking < 100_000
    assert frames_while_checking >= 3
    assert driver.screen == "admin"


def test_the_right_pin_opens_the_admin_screen_with_every_field(start):
    driver = start()
    screen = open_admin(driver)
    ids = screen.ids
    shown = {key: ids[f"value_{key}"].text for key in
             ("device", "location", "version", "questionnaire", "central", "last_sync", "backlog",
              "quarantine", "buffer", "disk", "clock", "last_error")}
    assert shown["device"] == "niet aangemeld"
    assert shown["location"] == "Balie 1 (balie-1)"
    assert shown["version"] == __import__("kiosk").__version__
    assert shown["questionnaire"] == "balie-standaard, versie 1"
    assert shown["central"] == "niet aangemeld"
    assert shown["backlog"] == "0 reacties wachten (0 antwoorden)"
    assert shown["quarantine"] == "0 reacties"
    assert shown["buffer"] == "beschrijfbaar"
    assert shown["disk"].endswith("B") and shown["disk"][0].isdigit()
    assert shown["clock"].startswith(time.strftime("%Y-"))
    assert shown["last_error"] == "geen"
    assert all(shown.values()), shown


def test_every_admin_touch_target_is_at_least_48_dp(start):
    from kivy.metrics import dp
    from kivy.uix.behaviors import ButtonBehavior

    driver = start()
    open_pad(driver)
    for widget in (pad(driver), ):
        for button in [w for w in widget.walk(restrict=True) if isinstance(w, ButtonBehavior)]:
            assert min(button.size) >= dp(48), (button.text, button.size)
    enter(driver, PIN)
    screen = admin_screen(driver)
    buttons = [w for w in screen.walk(restrict=True) if isinstance(w, ButtonBehavior)
               and w.opacity > 0]
    assert len(buttons) >= 6
    for button in buttons:
        assert min(button.size) >= dp(48), (button.text, button.size)


# --------------------------------------------------------------------------- actions


def test_sync_now_sends_the_backlog_to_a_real_central_with_visible_progress(start, central):
    driver = start(device_state=enrolled(central), visits=12,
                   sync={"batch_records": 5, "interval_s": 3600.0, "jitter_s": 0.0})
    screen = open_admin(driver)
    assert screen.ids.value_backlog.text.startswith("12 reacties wachten")
    seen = []
    screen.bind(message=lambda *_: seen.append(screen.ids.message.text),
                message_args=lambda *_: seen.append(screen.ids.message.text))
    # Recorded as it happens: on a quiet machine the round can end within the tap's frames.
    busy_seen, indicator_seen = [], []
    screen.bind(busy=lambda _screen, busy: busy_seen.append(busy))
    screen.ids.busy.bind(active=lambda _indicator, active: indicator_seen.append(active))
    driver.tap(screen.ids.sync_now)
    until(driver, lambda: screen.message.startswith("Sync done"), what="the end of the round")
    assert busy_seen[:2] == [True, False], busy_seen  # busy while it ran, then not
    assert indicator_seen[:2] == [True, False], indicator_seen  # and the indicator showed it
    driver.frames(2)
    seen.append(screen.ids.message.text)
    assert any("verzonden" in text and "te gaan" in text and text.startswith("Versturen")
               for text in seen), seen
    assert screen.ids.message.text == "Synchronisatie klaar: 12 verzonden, 0 te gaan"
    assert screen.busy is False
    until(driver, lambda: screen.ids.value_backlog.text.startswith("0 reacties"),
          what="the backlog to show 0")
    assert rows(driver, "SELECT count(*) FROM responses WHERE state = 'unsent'")[0][0] == 0
    assert "OK, 12 verzonden" in screen.ids.value_last_sync.text


def test_test_connection_says_ok_against_a_real_central(start, central):
    driver = start(device_state=enrolled(central))
    screen = open_admin(driver)
    driver.tap(screen.ids.test_connection)
    until(driver, lambda: not screen.busy, what="the connection test")
    assert screen.message_kind == "ok"
    assert screen.ids.message.text.startswith("Verbinding in orde")


def test_test_connection_shows_the_exact_error_for_an_unreachable_central(start):
    state = DeviceState(central_url=f"http://127.0.0.1:{free_port()}", device_id="dev-1",
                        token="t" * 43)
    driver = start(device_state=state, sync={"interval_s": 3600.0, "jitter_s": 0.0})
    screen = open_admin(driver)
    driver.tap(screen.ids.test_connection)
    until(driver, lambda: not screen.busy, what="the connection test")
    assert screen.message_kind == "error"
    text = screen.ids.message.text
    assert text.startswith("Verbinding mislukt: GET /healthz: ConnectionError"), text
    assert "Connection refused" in text


def test_test_connection_shows_a_refused_token(start, central):
    base_url, _settings = central
    state = DeviceState(central_url=base_url, device_id="dev-unknown", token="x" * 43)
    driver = start(device_state=state, sync={"interval_s": 3600.0, "jitter_s": 0.0})
    screen = open_admin(driver)
    driver.tap(screen.ids.test_connection)
    until(driver, lambda: not screen.busy, what="the connection test")
    assert "POST /api/v1/heartbeat: HTTP 401: unauthorized (unknown token)" in screen.ids.message.text


def test_sync_actions_say_not_enrolled_instead_of_failing(start):
    driver = start()
    screen = open_admin(driver)
    for button in (screen.ids.sync_now, screen.ids.test_connection):
        driver.tap(button)
        assert screen.message_kind == "error"
        assert screen.ids.message.text.startswith("Niet aangemeld")
        assert screen.busy is False


def test_the_preview_walks_the_real_screens_records_nothing_and_ends_on_the_admin_screen(start):
    from kivy.core.window import Window

    driver = start()
    screen = open_admin(driver)
    driver.tap(screen.ids.preview)
    banner = driver.app.admin._banner
    assert banner.parent is Window and banner.ids.marker.text.startswith("VOORBEELD")
    assert driver.screen == "welcome"
    driver.tap(driver.button_for("totaal", 8))
    assert driver.screen == "question"
    driver.tap(driver.button_for("wachttijd", 4))
    for _ in FOLLOW_UPS[1:]:
        driver.tap(driver.current_screen().ids.skip)
    assert driver.screen == "comment"
    driver.tap(driver.current_screen().ids.skip)
    assert driver.screen == "thanks"
    driver.advance(driver.app.settings.timeouts.thanks_s + 0.5)
    assert driver.screen == "admin"
    assert banner.parent is None
    assert counts(driver) == (0, 0)
    # and the visitors' flow records again afterwards
    driver.tap(screen.ids.close)
    assert driver.screen == "welcome"
    driver.tap(driver.button_for("totaal", 6))
    assert counts(driver) == (1, 1)


def test_the_preview_banner_ends_the_preview_at_once(start):
    driver = start()
    screen = open_admin(driver)
    driver.tap(screen.ids.preview)
    driver.tap(driver.button_for("totaal", 3))
    assert driver.screen == "question"
    driver.tap(driver.app.admin._banner.ids.end)
    assert driver.screen == "admin"
    assert counts(driver) == (0, 0)
    assert driver.navigator.flow.in_visit is False
    assert driver.navigator.leave_to is None


def test_leaving_the_admin_screen_returns_to_the_welcome_screen(start):
    driver = start()
    screen = open_admin(driver)
    driver.tap(screen.ids.close)
    assert driver.screen == "welcome"
    assert driver.app.admin.mode == "off"


def test_the_admin_screen_times_out_to_the_welcome_screen(start):
    driver = start(admin={"timeout_s": 120.0})
    screen = open_admin(driver)
    driver.advance(100, step=5)
    assert driver.screen == "admin"
    driver.tap(screen.ids.value_device)  # any touch counts as activity
    driver.advance(100, step=5)
    assert driver.screen == "admin"
    driver.advance(25, step=5)
    assert driver.screen == "welcome"


def test_the_pin_pad_times_out_sooner(start):
    driver = start(admin={"pin_pad_timeout_s": 30.0})
    open_pad(driver)
    driver.advance(31, step=1)
    assert driver.screen == "welcome"


def test_stop_needs_a_confirmation(start):
    driver = start()
    screen = open_admin(driver)
    driver.tap(screen.ids.stop)
    assert screen.confirm.parent is not None
    driver.tap(screen.confirm.ids.keep)
    assert screen.confirm.parent is None
    assert driver.screen == "admin"
    assert rows(driver, "SELECT count(*) FROM events WHERE kind = 'kiosk_stopped'")[0][0] == 0


def test_stop_for_maintenance_exits_the_running_app(tmp_path):
    """A real ``app.run()`` in its own process, driven by touches: the confirmed stop ends it."""
    PinStore(tmp_path).save(hash_pin(PIN, **CHEAP))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.admin_stop_app", str(tmp_path), PIN],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "app.run() returned" in done.stdout
    with sqlite3.connect(tmp_path / "buffer.sqlite3") as db:
        events = db.execute("SELECT kind, detail FROM events WHERE kind = 'kiosk_stopped'").fetchall()
    assert events == [("kiosk_stopped", "stopped for maintenance from the admin screen")]
