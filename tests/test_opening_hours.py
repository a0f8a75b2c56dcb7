"""Opening hours: the arithmetic (DST, midnight, closed dates), the settings, the heartbeat fields."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk import cli
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.errors import ConfigError
from kiosk.flow import VisitorFlow
from kiosk.opening_hours import OpeningHours, check_day, parse_range
from kiosk.opening_watch import OpeningHeartbeat
from kiosk.paths import config_dir
from kiosk.questionnaire import load_questionnaire
from kiosk.settings import SyncSettings, load_settings

AMS = ZoneInfo("Europe/Amsterdam")
UTC = timezone.utc
HOUR = 3600.0
QUESTIONNAIRE = config_dir() / "questionnaires" / "standaard.toml"
# A town hall week: a lunch break on Monday, a late evening on Thursday, closed at the weekend.
TOWN_HALL = {"mon": ["08:30-12:30", "13:00-17:00"], "tue": ["08:30-17:00"], "wed": ["08:30-17:00"],
             "thu": ["08:30-12:30", "13:00-20:00"], "fri": ["08:30-12:30"]}
# 2026: clocks go forward on Sunday 29 March (02:00 -> 03:00), back on Sunday 25 October (03:00 -> 02:00).
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)


def at(y, m, d, hh=0, mm=0, ss=0, fold=0) -> datetime:
    """Amsterdam wall-clock time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=AMS, fold=fold)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=AMS)


@pytest.fixture
def hall():
    return OpeningHours(TOWN_HALL, closed_dates=[date(2026, 4, 6)])  # Easter Monday


# --------------------------------------------------------------------------- is_open


def test_open_inside_the_ranges_closed_outside_start_counts_end_does_not(hall):
    monday = (2026, 3, 30)
    assert not hall.is_open(at(*monday, 8, 29, 59))
    assert hall.is_open(at(*monday, 8, 30))
    assert hall.is_open(at(*monday, 12, 29, 59))
    assert not hall.is_open(at(*monday, 12, 30))  # lunch break
    assert hall.is_open(at(*monday, 13, 0))
    assert not hall.is_open(at(*monday, 17, 0))
    assert hall.is_open(at(2026, 4, 2, 19, 59))  # Thursday's late evening
    assert not hall.is_open(at(2026, 4, 4, 11, 0))  # Saturday


def test_a_moment_in_any_zone_is_read_on_the_town_halls_clock(hall):
    assert hall.is_open(datetime(2026, 3, 30, 6, 30, tzinfo=UTC))  # 08:30 summer time
    assert not hall.is_open(datetime(2026, 3, 27, 6, 30, tzinfo=UTC))  # 07:30 winter time (Friday)
    assert hall.is_open(datetime(2026, 3, 27, 7, 30, tzinfo=UTC))


def test_a_closed_date_is_closed_all_day(hall):
    assert not hall.is_open(at(2026, 4, 6, 10, 0))
    assert hall.is_open(at(2026, 4, 13, 10, 0))  # the Monday after


def test_a_naive_moment_is_refused(hall):
    with pytest.raises(ValueError, match="aware datetime"):
        hall.is_open(datetime(2026, 3, 30, 10, 0))


# --------------------------------------------------------------------------- next_change


@pytest.mark.parametrize("now, expected", [
    (at(2026, 3, 30, 7, 0), at(2026, 3, 30, 8, 30)),  # before opening: opens
    (at(2026, 3, 30, 10, 0), at(2026, 3, 30, 12, 30)),  # closes for lunch
    (at(2026, 3, 30, 12, 30), at(2026, 3, 30, 13, 0)),  # at the closing moment: the reopening
    (at(2026, 4, 2, 17, 0), at(2026, 4, 2, 20, 0)),  # Thursday evening
    (at(2026, 3, 27, 12, 30), at(2026, 3, 30, 8, 30)),  # Friday afternoon: Monday morning
    (at(2026, 4, 3, 13, 0), at(2026, 4, 7, 8, 30)),  # Easter Monday skipped
])
def test_the_next_change_is_the_next_opening_or_closing(hall, now, expected):
    change = hall.next_change(now)
    assert change == expected and change.utcoffset() == expected.utcoffset()
    assert change.tzinfo is AMS


def test_the_next_change_after_a_long_closed_stretch_is_found():
    closed = [date(2026, 12, 21) + timedelta(days=n) for n in range(14)]  # two weeks of holiday
    hours = OpeningHours(TOWN_HALL, closed_dates=closed)
    assert hours.next_change(at(2026, 12, 18, 13, 0)) == at(2027, 1, 4, 8, 30)  # Dec 21 - Jan 3


def test_no_next_change_when_never_open_or_open_day_and_night():
    assert OpeningHours({}).next_change(at(2026, 3, 30)) is None
    always = OpeningHours({day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri",
                                                             "sat", "sun")})
    assert always.next_change(at(2026, 3, 30)) is None
    assert always.is_open(at(2026, 3, 29, 2, 30))
    with_holiday = OpeningHours({day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu",
                                                                   "fri", "sat", "sun")},
                                closed_dates=[date(2026, 5, 5)])
    assert with_holiday.next_change(at(2026, 3, 30)) == at(2026, 5, 5)


# --------------------------------------------------------------------------- midnight


def test_a_range_ending_at_midnight_closes_at_the_start_of_the_next_day():
    hours = OpeningHours({"fri": ["18:00-24:00"]})
    assert hours.is_open(at(2026, 4, 3, 23, 59, 59))
    assert not hours.is_open(at(2026, 4, 4, 0, 0))
    assert hours.next_change(at(2026, 4, 3, 20, 0)) == at(2026, 4, 4, 0, 0)
    assert hours.open_seconds_between(at(2026, 4, 3), at(2026, 4, 5)) == 6 * HOUR


def test_ranges_that_meet_at_midnight_are_one_stretch_without_a_change():
    hours = OpeningHours({"fri": ["18:00-24:00"], "sat": ["00:00-02:00"]})
    assert hours.is_open(at(2026, 4, 4, 0, 0))
    assert hours.next_change(at(2026, 4, 3, 20, 0)) == at(2026, 4, 4, 2, 0)
    assert hours.next_change(at(2026, 4, 3, 12, 0)) == at(2026, 4, 3, 18, 0)


def test_a_range_across_sunday_midnight_wraps_to_monday():
    hours = OpeningHours({"sun": ["22:00-24:00"], "mon": ["00:00-01:00"]})
    assert hours.next_change(at(2026, 4, 5, 23, 0)) == at(2026, 4, 6, 1, 0)


# --------------------------------------------------------------------------- DST change days


def test_a_whole_day_lasts_23_hours_in_spring_and_25_in_autumn():
    every_day = OpeningHours({day: ["00:00-24:00"] for day in ("sat", "sun", "mon")})
    for day, hours in ((SPRING, 23), (AUTUMN, 25), (date(2026, 3, 30), 24)):
        elapsed = every_day.open_seconds_between(midnight(day), midnight(day + timedelta(days=1)))
        assert elapsed == hours * HOUR, day


def test_a_start_in_the_skipped_hour_opens_when_the_clock_jumps():
    hours = OpeningHours({"sun": ["02:30-03:30"]})
    opens = hours.next_change(at(2026, 3, 28, 12, 0))
    assert opens == at(2026, 3, 29, 3, 0)  # the first moment the clock shows 02:30 or later
    assert opens.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert hours.next_change(opens) == at(2026, 3, 29, 3, 30)
    assert hours.open_seconds_between(midnight(SPRING), midnight(SPRING + timedelta(days=1))) == 1800


def test_a_range_in_the_repeated_hour_runs_from_the_first_start_to_the_first_end():
    hours = OpeningHours({"sun": ["02:00-03:00"]})
    day = (midnight(AUTUMN), midnight(AUTUMN + timedelta(days=1)))
    assert hours.open_seconds_between(*day) == 2 * HOUR  # 02:00 summer time to 03:00 winter time
    assert hours.is_open(at(2026, 10, 25, 2, 15, fold=0))
    assert hours.is_open(at(2026, 10, 25, 2, 15, fold=1))  # the second 02:15 (winter time)
    assert not hours.is_open(at(2026, 10, 25, 3, 0))
    ending = OpeningHours({"sun": ["01:00-02:30"]})
    assert ending.open_seconds_between(*day) == 1.5 * HOUR
    assert not ending.is_open(at(2026, 10, 25, 2, 15, fold=1))


def test_daytime_opening_time_of_a_week_is_the_same_across_a_dst_change(hall):
    # Mon 8, Tue 8.5, Wed 8.5, Thu 11, Fri 4 hours; the weeks before and after each change
    for monday in (date(2026, 3, 23), date(2026, 3, 30), date(2026, 10, 19), date(2026, 10, 26)):
        elapsed = hall.open_seconds_between(midnight(monday), midnight(monday + timedelta(days=7)))
        assert elapsed == 40.0 * HOUR, monday


def test_open_seconds_counts_real_time_for_partial_overlaps(hall):
    assert hall.open_seconds_between(at(2026, 3, 30, 12, 0), at(2026, 3, 30, 13, 30)) == HOUR
    assert hall.open_seconds_between(at(2026, 3, 30, 13, 30), at(2026, 3, 30, 12, 0)) == 0.0
    assert hall.open_seconds_between(at(2026, 3, 28), at(2026, 3, 29, 23, 0)) == 0.0  # weekend


def test_open_seconds_add_up_over_any_split_of_the_interval(hall):
    rng = random.Random(4)
    start = at(2026, 3, 20)
    end = at(2026, 4, 10)
    total = hall.open_seconds_between(start, end)
    cuts = sorted(start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
                  for _ in range(25))
    points = [start, *cuts, end]
    assert sum(hall.open_seconds_between(a, b) for a, b in zip(points, points[1:])) == \
        pytest.approx(total)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize("text, minutes", [
    ("08:30-12:30", (510, 750)), ("8:30-9:00", (510, 540)), ("18:00-24:00", (1080, 1440)),
    (" 13:00 - 17:00 ", (780, 1020)), ("00:00-24:00", (0, 1440)),
])
def test_well_formed_ranges_parse_to_minutes(text, minutes):
    assert parse_range(text) == minutes


@pytest.mark.parametrize("text, message", [
    ("08:30", "must be a time range like"),
    ("8.30-12.30", "must be a time range like"),
    ("24:00-24:00", "the start 24:00 is not a time of day"),
    ("08:60-12:00", "the start 8:60 is not a time of day"),
    ("08:00-24:30", "the end 24:30 is not a time of day"),
    ("18:00-00:00", "write 24:00 for midnight"),
    ("12:00-12:00", "ends at 12:00, not after it starts at 12:00"),
    ("22:00-02:00", "split it over two days (22:00-24:00 and 00:00-02:00)"),
])
def test_malformed_or_backwards_ranges_are_refused_with_a_reason(text, message):
    with pytest.raises(ValueError) as caught:
        parse_range(text)
    assert message in str(caught.value)


def test_overlapping_ranges_of_a_day_are_refused_touching_ones_are_not():
    assert check_day(["13:00-17:00", "08:30-13:00"]) == ((510, 780), (780, 1020))
    with pytest.raises(ValueError, match='"08:30-12:30" and "12:00-17:00" overlap'):
        check_day(["12:00-17:00", "08:30-12:30"])


# --------------------------------------------------------------------------- settings


def write(folder: Path, section: str) -> Path:
    path = folder / "kiosk.toml"
    path.write_text(f'questionnaire = "{QUESTIONNAIRE}"\n\n[opening_hours]\n{section}',
                    encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: invalid configuration")
    assert "pydantic" not in str(caught.value) and "Input should" not in str(caught.value)
    return caught.value.problems


def test_without_the_section_or_enabled_the_terminal_is_always_open(tmp_path):
    assert load_settings(None).opening_hours.enabled is False
    assert OpeningHours.from_settings(load_settings(None).opening_hours) is None
    assert OpeningHours.from_settings(load_settings(config_dir() / "kiosk.toml").opening_hours) is None
    path = tmp_path / "kiosk.toml"
    path.write_text(f'questionnaire = "{QUESTIONNAIRE}"\n', encoding="utf-8")
    assert OpeningHours.from_settings(load_settings(path).opening_hours) is None


def test_enabled_opening_hours_default_to_a_town_hall_week_in_amsterdam(tmp_path):
    settings = load_settings(write(tmp_path, "enabled = true\n")).opening_hours
    assert (settings.timezone, settings.mon, settings.sat, settings.closed_dates) == (
        "Europe/Amsterdam", ("08:30-17:00",), (), ())
    hours = OpeningHours.from_settings(settings)
    assert hours.is_open(at(2026, 3, 30, 9, 0)) and not hours.is_open(at(2026, 3, 28, 9, 0))


def test_a_full_section_loads_with_toml_dates_and_iso_strings(tmp_path):
    path = write(tmp_path, 'enabled = true\ntimezone = "Europe/Brussels"\n'
                           'thu = ["13:00-20:00", "08:30-12:30"]\nsat = ["09:00-12:00"]\n'
                           'closed_dates = ["2026-12-25", 2026-12-26]\n')
    settings = load_settings(path).opening_hours
    assert settings.thu == ("08:30-12:30", "13:00-20:00")  # sorted
    assert settings.closed_dates == (date(2026, 12, 25), date(2026, 12, 26))
    hours = OpeningHours.from_settings(settings)
    assert str(hours.tz) == "Europe/Brussels"
    assert hours.is_open(at(2026, 4, 2, 19, 0)) and not hours.is_open(at(2026, 12, 25, 10, 0))


def test_every_mistake_is_named_by_section_field_and_entry(tmp_path):
    path = write(tmp_path, 'enabled = true\ntimezone = "Europe/Amsterdm"\n'
                           'mon = ["08:30-12:30", "12:00-17:00"]\n'
                           'tue = ["8:30-25:00", "x", 830]\n'
                           'wed = "08:30-17:00"\n'
                           'thu = ["18:00-00:00", "22:00-02:00"]\n'
                           'closed_dates = ["2026-02-30", "25-12-2026", 2026-12-25T10:00:00]\n'
                           'monday = []\n')
    assert problems_of(path) == [
        "opening_hours.timezone: unknown time zone 'Europe/Amsterdm'; use an IANA name like "
        "\"Europe/Amsterdam\"",
        "opening_hours.mon: \"08:30-12:30\" and \"12:00-17:00\" overlap",
        "opening_hours.tue, entry #1: '8:30-25:00': the end 25:00 is not a time of day "
        "(00:00 to 24:00)",
        "opening_hours.tue, entry #2: must be a time range like \"08:30-12:30\", got 'x'",
        "opening_hours.tue, entry #3: must be text in quotes, got 830",
        "opening_hours.wed: must be a list [ ... ], got '08:30-17:00'",
        "opening_hours.thu, entry #1: '18:00-00:00': write 24:00 for midnight at the end of the day",
        "opening_hours.thu, entry #2: '22:00-02:00': ends at 02:00, not after it starts at 22:00; "
        "a range cannot cross midnight: split it over two days (22:00-24:00 and 00:00-02:00)",
        "opening_hours.closed_dates, entry #1: '2026-02-30' is not a date: day is out of range "
        "for month",
        "opening_hours.closed_dates, entry #2: must be a date written YYYY-MM-DD, like "
        "\"2026-12-25\", got '25-12-2026'",
        "opening_hours.closed_dates, entry #3: must be a date without a time, like \"2026-12-25\", "
        "got 2026-12-25T10:00:00",
        "opening_hours.monday: unknown field; check the spelling (known fields: enabled, timezone, "
        "mon, tue, wed, thu, fri, sat, sun, closed_dates)",
    ]


def test_enabled_hours_that_never_open_are_refused(tmp_path):
    path = write(tmp_path, "enabled = true\n" + "".join(f"{d} = []\n" for d in
                                                         ("mon", "tue", "wed", "thu", "fri")))
    assert problems_of(path) == [
        "opening_hours: enabled = true, but no day has opening hours, so the terminal would never "
        "open; give the days their ranges, or set enabled = false (always open)"]


def test_enabled_must_be_true_or_false(tmp_path):
    assert problems_of(write(tmp_path, 'enabled = "yes"\n')) == [
        "opening_hours.enabled: must be true or false, got 'yes'"]


# --------------------------------------------------------------------------- heartbeat fields


@pytest.fixture
def clock():
    # Monday 30 March 2026, 08:00 in Amsterdam (half an hour before opening)
    return FakeTimeSource(wall=at(2026, 3, 30, 8, 0).timestamp(), mono=1000.0, boot_id="boot-a")


@pytest.fixture
def buf(tmp_path, clock):
    b = Buffer.open(tmp_path / "buffer.sqlite3", time_source=clock)
    yield b
    b.close()


def rate(buf) -> None:
    """One visitor's one-tap rating (a response with one answer), closed."""
    flow = VisitorFlow(load_questionnaire(QUESTIONNAIRE), buf, location_id="balie-1",
                       language="nl", rapid_repeat_s=20)
    flow.answer(8)
    flow.abandon("abandoned")


def test_quiet_open_time_counts_from_the_start_then_from_each_rating(buf, clock):
    beat = OpeningHeartbeat(OpeningHours(TOWN_HALL), buf, clock, clock.now())
    assert beat() == {"open_now": False, "quiet_open_s": 0.0}
    clock.advance(2 * HOUR)  # 10:00: open since 08:30, nothing recorded
    assert beat() == {"open_now": True, "quiet_open_s": 1.5 * HOUR}
    rate(buf)
    clock.advance(600)
    assert beat() == {"open_now": True, "quiet_open_s": 600.0}
    clock.advance(6 * HOUR + 50 * 60)  # 17:00: since 10:00, the lunch break does not count
    assert beat() == {"open_now": False, "quiet_open_s": 6.5 * HOUR}
    clock.advance(16.5 * HOUR)  # Tuesday 09:30: the night does not count either
    assert beat() == {"open_now": True, "quiet_open_s": 7.5 * HOUR}


def test_a_rating_from_before_the_start_does_not_count_the_start_does(buf, clock):
    rate(buf)  # an earlier run of the terminal, same boot
    clock.advance(3 * HOUR)  # 11:00
    beat = OpeningHeartbeat(OpeningHours(TOWN_HALL), buf, clock, clock.now())
    clock.advance(HOUR)
    assert beat()["quiet_open_s"] == HOUR


def test_a_wall_clock_jump_makes_no_quiet_spell_out_of_nothing(buf, clock):
    beat = OpeningHeartbeat(None, buf, clock, clock.now())  # no opening hours: always open
    clock.advance(300)
    assert beat() == {"open_now": None, "quiet_open_s": 300.0}
    clock.wall += 365 * 86400  # NTP puts a clock without RTC right; the monotonic clock runs on
    clock.advance(60)
    assert beat() == {"open_now": None, "quiet_open_s": 360.0}
    clock.wall -= 2 * 365 * 86400
    assert beat() == {"open_now": None, "quiet_open_s": 360.0}


def test_a_long_quiet_spell_is_counted_back_at_most_a_year(buf, clock):
    beat = OpeningHeartbeat(None, buf, clock, clock.now())
    clock.advance(3 * 365 * 86400)
    assert beat()["quiet_open_s"] == OpeningHeartbeat.QUIET_HORIZON_S


def test_a_real_uploader_sends_the_fields_in_its_heartbeat(buf, clock):
    from kiosk.state import DeviceState
    from sync.uploader import Uploader
    from tests.sync_test_server import FakeTime, ScriptedCentral

    rate(buf)
    clock.advance(2 * HOUR)  # 10:00, rated at 08:00 before opening: 1.5 h of quiet opening time
    with ScriptedCentral(token="secret-token-1") as central:
        fake = FakeTime()
        uploader = Uploader(SyncSettings(connect_timeout_s=2.0, read_timeout_s=2.0), buf,
                            DeviceState(central_url=central.url, device_id="dev-1",
                                        token="secret-token-1"),
                            clock=clock, sleep=fake.sleep, monotonic=fake.monotonic,
                            clock_synced=lambda: True)
        started = FakeTimeSource(wall=clock.wall - 3 * HOUR, mono=clock.mono - 3 * HOUR,
                                 boot_id="boot-a").now()  # started at 07:00
        uploader.heartbeat_extras.append(OpeningHeartbeat(OpeningHours(TOWN_HALL), buf, clock,
                                                          started))
        report = uploader.run_once()
    assert report.ok, report.summary()
    beat = central.heartbeats[-1]
    assert (beat.open_now, beat.quiet_open_s) == (True, 1.5 * HOUR)


# --------------------------------------------------------------------------- balie-kiosk status


def test_status_shows_open_or_closed_now_and_the_next_change(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "enabled = true\n" + 'thu = ["08:30-12:30", "13:00-20:00"]\n')
    monkeypatch.setattr(cli, "_now", lambda: at(2026, 4, 2, 18, 0))  # Thursday evening
    monkeypatch.delenv("BALIE_KIOSK_CONFIG", raising=False)
    monkeypatch.delenv("BALIE_DATA_DIR", raising=False)
    args = ["status", "--config", str(path), "--data-dir", str(tmp_path / "data")]
    assert cli.main(args) == 0
    assert "Opening hours: open now; closes Thu 2026-04-02 20:00 (Europe/Amsterdam)" in \
        capsys.readouterr().out.splitlines()
    monkeypatch.setattr(cli, "_now", lambda: at(2026, 4, 4, 13, 0))  # Saturday
    assert cli.main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["opening_hours"] == {
        "configured": True, "open_now": False, "next_change": "2026-04-06T08:30+02:00",
        "timezone": "Europe/Amsterdam"}
    assert cli.main(["status", "--data-dir", str(tmp_path / "data")]) == 0
    assert "Opening hours: not set (always open)" in capsys.readouterr().out.splitlines()
