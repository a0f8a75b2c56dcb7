"""The report's counts in SQL (central.report_query) against the answers read one by one.

The data set crosses the start of summer time (30 March 2025) and a month end,
with the waiting-time question reworded on 2 April: the local hours of the week,
the months and the series must come out as Python's zoneinfo computes them,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
import sys
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from central.db import make_engine
from central.models import Answer, Response
from central.report import Period, build_report
from central.report_query import month_starts, slice_seconds, utc_offsets
from central.stats import key_drivers, summarise, weekday_part_of_day

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_study_data  # noqa: E402

AMS = ZoneInfo("Europe/Amsterdam")
START = date(2025, 3, 24)
CHANGE = date(2025, 4, 2)
PERIOD = Period.from_dates(date(2025, 3, 24), date(2025, 4, 6))
GRADES = ("totaal", "wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid",
          "afhandeling")


def utc(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_utc_offsets_find_both_daylight_saving_changes_to_the_second():
    year = Period.from_dates(date(2025, 1, 1), date(2025, 12, 31))
    first, changes = utc_offsets("Europe/Amsterdam", year.start, year.end)
    assert first == 3600
    assert changes == [(utc(2025, 3, 30, 1), 7200), (utc(2025, 10, 26, 1), 3600)]
    assert utc_offsets("UTC", year.start, year.end) == (0, [])
    # a zone that moves by half an hour (Lord Howe Island)
    first, changes = utc_offsets("Australia/Lord_Howe", year.start, year.end)
    assert (first, [o for _, o in changes]) == (39600, [37800, 39600])


def test_month_starts_are_local_midnights():
    assert month_starts(PERIOD) == [(date(2025, 3, 1), PERIOD.start),
                                    (date(2025, 4, 1), utc(2025, 3, 31, 22))]
    one = Period.from_dates(date(2025, 2, 3), date(2025, 2, 9))
    assert month_starts(one) == [(date(2025, 2, 1), one.start)]


def answers_of(engine, period=PERIOD) -> list[tuple[str, int, float, str, int]]:
    """Independently of central.report_query: (response, version, start, question, value)."""
    r, a = Response.__table__, Answer.__table__
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(r.c.id, r.c.questionnaire_version, r.c.started_at, a.c.question_id,
                   a.c.value_num)
            .select_from(a.join(r, a.c.response_id == r.c.id))
            .where(r.c.started_at >= period.start, r.c.started_at < period.end,
                   r.c.suspect.is_(False), a.c.value_num.isnot(None)))]


def check_against_python(engine, zone: str = "Europe/Amsterdam") -> None:
    period = Period.from_dates(PERIOD.first, PERIOD.last, zone)
    local_zone = ZoneInfo(zone)
    report = build_report(engine, period)
    rows = answers_of(engine, period)
    grades = [row for row in rows if row[3] in GRADES and 1 <= row[4] <= 10]

    cells = defaultdict(list)
    for _, _, started, question, value in grades:
        if question == "totaal":
            cells[weekday_part_of_day(datetime.fromtimestamp(started, local_zone))].append(value)
    assert report.heatmap_aspect == "totaal"
    assert set(report.heatmap) == set(cells)
    for cell, values in cells.items():
        assert report.heatmap[cell] == summarise(values), cell

    months = defaultdict(list)
    for _, version, started, question, value in grades:
        series = 2 if question == "wachttijd" and version == 2 else 1
        local = datetime.fromtimestamp(started, local_zone)
        months[(question, series, date(local.year, local.month, 1))].append(value)
    got = {(t.aspect, t.series, p.month): p.summary for t in report.trends for p in t.points}
    assert set(got) == set(months)
    assert {m for _, _, m in got} == {date(2025, 3, 1), date(2025, 4, 1)}
    for key, values in months.items():
        assert got[key] == summarise(values), key

    per_response = defaultdict(dict)
    for rid, _, _, question, value in rows:
        per_response[rid][question] = value
    expected = key_drivers([{k: v for k, v in answers.items()
                             if k in GRADES + ("wachtruimte",)} for answers in
                            per_response.values()], overall="totaal")
    assert set(report.drivers) == set(expected)
    for aspect, driver in expected.items():
        assert report.drivers[aspect].n == driver.n
        assert report.drivers[aspect].r == pytest.approx(driver.r, abs=1e-12)


@pytest.fixture(scope="module")
def dst_study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('dst') / 'study.sqlite3'}"
    generate_study_data.generate(url, start=START, days=14, version_change=CHANGE, seed=11)
    return url


def test_sql_counts_match_python_across_summer_time_on_sqlite(dst_study):
    engine = make_engine(dst_study)
    try:
        check_against_python(engine)
    finally:
        engine.dispose()


def test_sql_counts_match_python_in_a_half_hour_zone(dst_study):
    # India is UTC+5:30: the answers are counted per half hour, and the counter's hours
    # (8-17 in Amsterdam) reach across local 12:00, where morning turns into afternoon.
    engine = make_engine(dst_study)
    try:
        check_against_python(engine, "Asia/Kolkata")
    finally:
        engine.dispose()


def test_answers_are_counted_per_hour_where_the_zone_allows_it():
    assert slice_seconds(PERIOD) == 3600
    assert slice_seconds(PERIOD, Period.from_dates(date(2024, 3, 24), date(2024, 4, 6))) == 3600
    assert slice_seconds(Period.from_dates(date(2025, 1, 1), date(2025, 1, 31),
                                           "Asia/Kathmandu")) == 900       # UTC+5:45
    assert slice_seconds(Period.from_dates(PERIOD.first, PERIOD.last, "Asia/Kolkata")) == 1800
    # Lord Howe Island moves from UTC+11 to UTC+10:30 on 6 April 2025
    assert slice_seconds(PERIOD, Period.from_dates(date(2025, 4, 1), date(2025, 4, 30),
                                                   "Australia/Lord_Howe")) == 1800


def test_sql_counts_match_python_across_summer_time_on_postgresql(pg_url):
    generate_study_data.generate(pg_url, start=START, days=14, version_change=CHANGE, seed=11)
    engine = make_engine(pg_url)
    try:
        check_against_python(engine)
    finally:
        engine.dispose()


def test_services_are_ordered_by_responses_then_name(dst_study):
    engine = make_engine(dst_study)
    try:
        report = build_report(engine, PERIOD)
        r, a = Response.__table__, Answer.__table__
        with engine.connect() as conn:
            counts = defaultdict(int)
            for (value,) in conn.execute(
                    select(a.c.value_text).select_from(a.join(r, a.c.response_id == r.c.id))
                    .where(r.c.started_at >= PERIOD.start, r.c.started_at < PERIOD.end,
                           r.c.suspect.is_(False), a.c.question_id == "dienst")):
                counts[value] += 1
    finally:
        engine.dispose()
    assert [s for s, _ in report.services] == sorted(counts, key=lambda s: (-counts[s], s))


def test_a_service_outside_the_questions_options_is_not_a_service(dst_study, tmp_path):
    copy = tmp_path / "study.sqlite3"
    shutil.copyfile(dst_study.removeprefix("sqlite:///"), copy)
    engine = make_engine(f"sqlite:///{copy}")
    a = Answer.__table__
    try:
        before = build_report(engine, PERIOD)
        with engine.begin() as conn:   # 40 graded responses of the busiest service: a value no option has
            busiest = before.services[0][0]
            rids = conn.execute(select(a.c.response_id).where(
                a.c.question_id == "dienst", a.c.value_text == busiest, a.c.suspect.is_(False),
                a.c.overall.isnot(None)).order_by(a.c.response_id).limit(40)).scalars().all()
            conn.execute(update(a).where(a.c.response_id.in_(rids)).values(service="onbekend"))
            conn.execute(update(a).where(a.c.response_id.in_(rids), a.c.question_id == "dienst")
                         .values(value_text="onbekend"))
        after = build_report(engine, PERIOD)
    finally:
        engine.dispose()
    assert "onbekend" not in dict(after.services)
    assert all(service != "onbekend" for service, _ in after.service_grid)
    assert dict(after.services).keys() == dict(before.services).keys()
    cell = (busiest, "totaal")
    assert after.service_grid[cell].n == before.service_grid[cell].n - 40
