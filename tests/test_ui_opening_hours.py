"""Opening hours on the real Kivy window: the closed screen, taps that record nothing, on time."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.opening_watch import OpeningHeartbeat, OpeningWatch
from kiosk.settings import OpeningHoursSettings
from tests import kivy_driver
from tests.kivy_driver import KivyWallClock, start_app

pytestmark = pytest.mark.ui

AMS = ZoneInfo("Europe/Amsterdam")
FOLLOW_UPS = ("wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid", "verwachting", "dienst")


def opening_settings(**hours):
    """The test settings with the town hall's week (late evening on Thursday) switched on."""
    settings = kivy_driver.test_settings()
    opening = OpeningHoursSettings(enabled=True, thu=("08:30-12:30", "13:00-20:00"), **hours)
    return settings.model_copy(update={"opening_hours": opening})


@pytest.fixture
def terminal(tmp_path):
    """``terminal(start)``: the app with opening hours, its wall clock starting at ``start``."""
    drivers = []

    def start(when: datetime, **kwargs):
        clock = KivyWallClock(when)
        driver = start_app(tmp_path / f"app{len(drivers)}", settings=opening_settings(),
                           time_source=clock, **kwargs)
        driver.wall = lambda: datetime.fromtimestamp(clock.now().wall, AMS)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.close()


def rows(driver, sql):
    with sqlite3.connect(driver.buffer_path) as db:
        return db.execute(sql).fetchall()


def counts(driver):
    return rows(driver, "SELECT (SELECT count(*) FROM responses), (SELECT count(*) FROM answers)")[0]


def texts(driver):
    return {w.text for w in driver.current_screen().walk() if getattr(w, "text", "")}


def tap_everywhere(driver, columns=8, rows_=6):
    """Fingers on a grid over the whole window: where the answer buttons would be, and more."""
    from kivy.core.window import Window

    for i in range(columns):
        for j in range(rows_):
            driver.tap_at(Window.width * (i + 0.5) / columns, Window.height * (j + 0.5) / rows_)


def test_outside_opening_hours_the_closed_screen_shows_and_taps_record_nothing(terminal):
    kiosk = terminal(datetime(2026, 4, 4, 10, 0, tzinfo=AMS), frames=0)  # Saturday morning
    assert set(kiosk.navigator.screens.built()) == {"closed"}  # the first screen: nothing else yet
    kiosk.frames(1)
    assert kiosk.screen == "closed"
    assert {"De balie is gesloten.", "We zijn weer open op maandag om 8.30 uur."} <= texts(kiosk)
    kiosk.until_ready()
    assert kiosk.screen == "closed"
    tap_everywhere(kiosk)
    kiosk.advance(40)  # a watch check on the way: still closed
    tap_everywhere(kiosk)
    assert kiosk.screen == "closed"
    assert counts(kiosk) == (0, 0)
    assert not kiosk.navigator.flow.in_visit


def test_the_terminal_opens_exactly_at_opening_time_and_a_visitor_can_rate(terminal):
    kiosk = terminal(datetime(2026, 3, 30, 8, 29, 10, tzinfo=AMS))  # Monday, 50 s before opening
    kiosk.until_ready()
    assert kiosk.screen == "closed"
    kiosk.advance(49.5, step=0.5)  # the every-30-s check has run: still closed
    assert kiosk.screen == "closed"
    assert kiosk.wall() < datetime(2026, 3, 30, 8, 30, tzinfo=AMS)
    kiosk.advance(0.5)
    assert kiosk.screen == "welcome"  # at 08:30:00, not at the next 30-s check (08:30:10)
    kiosk.tap(kiosk.button_for("totaal", 8))
    assert kiosk.screen == "question"
    assert rows(kiosk, "SELECT question_id, value_num FROM answers") == [("totaal", 8)]


def test_the_closed_screen_names_today_tomorrow_or_the_day_in_the_visitors_language(terminal):
    kiosk = terminal(datetime(2026, 4, 2, 12, 40, tzinfo=AMS))  # Thursday's lunch break
    assert "We zijn vandaag weer open om 13.00 uur." in texts(kiosk)
    kiosk.app.tr.switch("en")
    kiosk.frames()
    assert {"The counter is closed.", "We are open again today at 13:00."} <= texts(kiosk)
    kiosk.app.tr.switch("nl")
    kiosk.advance(20 * 60, step=30)
    assert kiosk.screen == "welcome"


def test_a_visitor_answering_at_closing_time_finishes_then_the_closed_screen_comes(terminal):
    kiosk = terminal(datetime(2026, 3, 30, 16, 59, 40, tzinfo=AMS))  # Monday, 20 s before closing
    kiosk.until_ready()
    kiosk.tap(kiosk.button_for("totaal", 7))
    assert kiosk.screen == "question"
    kiosk.advance(25)  # 17:00:05: closed, but this visitor is still answering
    assert kiosk.navigator.closed and kiosk.screen == "question"
    choices = {"wachttijd": 4, "vriendelijkheid": 5, "deskundigheid": 3, "duidelijkheid": 2,
               "verwachting": "no", "dienst": "rijbewijs"}
    for question_id in FOLLOW_UPS:
        kiosk.tap(kiosk.button_for(question_id, choices[question_id]))
        kiosk.advance(5)
    assert kiosk.screen == "comment"
    kiosk.tap(kiosk.current_screen().ids.skip)
    assert kiosk.screen == "thanks"
    kiosk.advance(5.5)
    assert kiosk.screen == "closed"
    assert rows(kiosk, "SELECT end_reason FROM responses") == [("completed",)]
    assert counts(kiosk) == (1, 7)  # every answer kept
    tap_everywhere(kiosk, columns=4, rows_=3)
    assert counts(kiosk) == (1, 7)


def test_a_visitor_who_walks_away_after_closing_keeps_the_answers_and_the_terminal_closes(terminal):
    kiosk = terminal(datetime(2026, 3, 30, 16, 59, 50, tzinfo=AMS))
    kiosk.until_ready()
    kiosk.tap(kiosk.button_for("totaal", 4))
    kiosk.tap(kiosk.button_for("wachttijd", 2))
    kiosk.advance(30.5)  # idle warning (past closing time)
    assert kiosk.navigator.idle_warning.parent is not None
    kiosk.advance(10.5)  # no answer: the visit ends as idle
    assert kiosk.screen == "closed"
    assert rows(kiosk, "SELECT end_reason FROM responses") == [("idle",)]
    assert counts(kiosk) == (1, 2)


def test_an_idle_welcome_screen_closes_at_once_and_in_the_default_language(terminal):
    kiosk = terminal(datetime(2026, 4, 2, 19, 59, 50, tzinfo=AMS))  # Thursday's late evening
    kiosk.until_ready()
    welcome = kiosk.current_screen()
    english = [b for b in welcome.ids.languages.children if b.text == "English"][0]
    kiosk.tap(english)
    assert kiosk.app.tr.lang == "en"
    kiosk.advance(10)
    assert kiosk.screen == "closed" and kiosk.app.tr.lang == "nl"
    assert "We zijn morgen weer open om 8.30 uur." in texts(kiosk)
    assert counts(kiosk) == (0, 0)


def test_without_opening_hours_there_is_no_closed_screen_and_no_watch(kiosk):
    kiosk.until_ready()
    assert "closed" not in kiosk.navigator.screens
    assert kiosk.app.opening_watch is None and kiosk.app.opening_hours is None


def test_an_enrolled_terminal_sends_open_now_and_quiet_time_in_its_heartbeat(terminal):
    from kiosk.state import DeviceState

    state = DeviceState(central_url="http://127.0.0.1:9", device_id="dev-00000000", token="t" * 43)
    kiosk = terminal(datetime(2026, 3, 30, 8, 0, tzinfo=AMS), device_state=state)
    kiosk.until_ready()
    providers = [p for p in kiosk.app.sync.uploader.heartbeat_extras
                 if isinstance(p, OpeningHeartbeat)]
    assert len(providers) == 1
    assert providers[0]() == {"open_now": False, "quiet_open_s": 0.0}
    kiosk.advance(45 * 60, step=60)  # 08:45: a quarter of an hour open, nothing recorded
    assert kiosk.screen == "welcome"
    assert providers[0]() == {"open_now": True, "quiet_open_s": pytest.approx(15 * 60)}


def test_the_closed_screen_is_drawn_in_the_municipalitys_calm_surface_colour(terminal, tmp_path):
    from kivy.core.image import Image as CoreImage

    kiosk = terminal(datetime(2026, 4, 3, 17, 30, tzinfo=AMS))  # Friday evening
    kiosk.until_ready()
    assert kiosk.screen == "closed"
    shot = CoreImage(str(kiosk.screenshot(tmp_path / "closed.png")), keep_data=True)
    surface = [round(c * 255) for c in kiosk.app.theme.surface[:3]]
    for x, y in ((5, 5), (shot.width - 5, shot.height // 2), (shot.width // 2, shot.height - 5)):
        assert [round(c * 255) for c in shot.read_pixel(x, y)[:3]] == surface


def test_the_watch_checks_every_30_seconds_and_reports_each_time(terminal):
    kiosk = terminal(datetime(2026, 4, 4, 10, 0, tzinfo=AMS))
    watch = kiosk.app.opening_watch
    seen = []
    watch.report = lambda is_open, change, now: seen.append((is_open, change, now))
    kiosk.advance(95, step=1)
    assert [is_open for is_open, _, _ in seen] == [False, False, False]  # the interval goes on
    assert {change for _, change, _ in seen} == {datetime(2026, 4, 6, 8, 30, tzinfo=AMS)}
    gaps = [(b - a).total_seconds() for (_, _, a), (_, _, b) in zip(seen, seen[1:])]
    assert gaps == [OpeningWatch.CHECK_S, OpeningWatch.CHECK_S]


def test_after_midnight_tomorrow_becomes_today_on_the_closed_screen(terminal):
    kiosk = terminal(datetime(2026, 4, 5, 23, 59, 40, tzinfo=AMS))  # Sunday night
    assert "We zijn morgen weer open om 8.30 uur." in texts(kiosk)
    kiosk.advance(31, step=1)  # a check after midnight
    assert kiosk.screen == "closed"
    assert "We zijn vandaag weer open om 8.30 uur." in texts(kiosk)
