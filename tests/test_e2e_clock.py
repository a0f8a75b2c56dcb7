"""Clock chaos, end to end: a device whose wall clock is wrong or jumps, the real buffer, the
real uploader and a real central on a loopback port (SQLite and PostgreSQL).

Time in these tests: a :class:`World` gives the true time (the real clocks, plus time the
test lets pass without waiting). A :class:`DeviceClock` is a device's view of it: its
monotonic clock counts steadily since its boot, its wall clock is the true time plus an
error the test sets (1970 on a Raspberry Pi without RTC, jumps of ± a year when NTP
corrects it). Central's own clock is the world's true time (``create_app(clock=...)``), so
"the real time of a tap" is ``World.now()`` at the moment the buffer stored it.

The schedule part runs the real :class:`~sync.scheduler.SyncScheduler` (APScheduler 3
``BackgroundScheduler``) and moves the wall clock APScheduler reads: ``datetime.now`` in
the APScheduler modules that read it, and in ``sync.scheduler``, is replaced by one that
adds an offset the test sets. APScheduler's waits are monotonic (``Event.wait``), as on a
real system whose wall clock jumps.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from central.db import make_engine
from kiosk.buffer import Buffer
from kiosk.clock import Stamp
from kiosk.settings import SyncSettings
from kiosk.state import DeviceState
from sync.scheduler import SyncScheduler
from sync.uploader import Uploader
from tests.central_fixtures import central_settings, enrol_device, run_central
from tests.sync_test_server import FakeTime

YEAR = 365 * 24 * 3600.0
TOLERANCE_S = 1.0


class World:
    """The true time: the real wall clock plus the time the test let pass (``skip``)."""

    def __init__(self) -> None:
        self.skip = 0.0

    def now(self) -> float:
        return time.time() + self.skip

    def steady(self) -> float:
        return time.monotonic() + self.skip

    def let_pass(self, seconds: float) -> None:
        self.skip += seconds


class DeviceClock:
    """A terminal's clocks (a :class:`kiosk.clock.TimeSource`): steady monotonic since boot,
    a wall clock with an error the test sets."""

    def __init__(self, world: World, *, wall: float | None = None, uptime: float = 5.0) -> None:
        self.world = world
        self.boot_id = str(uuid.uuid4())
        self._booted_at = world.steady() - uptime
        self.wall_error = 0.0
        if wall is not None:
            self.set_wall(wall)

    def now(self) -> Stamp:
        return Stamp(wall=self.world.now() + self.wall_error, boot_id=self.boot_id,
                     mono=self.world.steady() - self._booted_at)

    def set_wall(self, wall: float) -> None:
        self.wall_error = wall - self.world.now()

    def jump(self, seconds: float) -> None:
        self.wall_error += seconds

    def reboot(self, *, wall: float | None = None, uptime: float = 3.0) -> None:
        self.boot_id = str(uuid.uuid4())
        self._booted_at = self.world.steady() - uptime
        if wall is not None:
            self.set_wall(wall)


class Taps:
    """Stores visits through the Buffer and notes the true time of every tap."""

    def __init__(self, buf: Buffer, world: World, rng: random.Random) -> None:
        self.buf, self.world, self.rng = buf, world, rng
        self.truth: dict[str, float] = {}  # answer id or response id → true time
        self.raw_wall: dict[str, float] = {}  # what the device's wall clock said

    def start(self):
        truth = self.world.now()
        draft = self.buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                                   location_id="stadhuis", language="nl")
        self.truth[draft.id] = truth
        self.raw_wall[draft.id] = draft.started.wall
        return draft

    def answer(self, draft, k: int) -> None:
        self.world.let_pass(self.rng.uniform(1.5, 6.0))  # the visitor reads, then taps
        truth = self.world.now()
        receipt = self.buf.record_answer(draft, question_id=f"q{k}", aspect="totaal",
                                         value=self.rng.randint(1, 10))
        self.truth[receipt.answer_id] = truth
        self.raw_wall[receipt.answer_id] = receipt.stamp.wall

    def visit(self, answers: int = 4, *, close: bool = True):
        draft = self.start()
        for k in range(1, answers + 1):
            self.answer(draft, k)
        if close:
            self.buf.close_response(draft, "completed")
        self.world.let_pass(self.rng.uniform(60, 300))  # until the next visitor
        return draft


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory, world):
    if request.param == "sqlite":
        database = tmp_path_factory.mktemp("central") / "central.sqlite3"
    else:
        database = request.getfixturevalue("pg_cluster").create_database()
    settings = central_settings(database)
    with run_central(settings, clock=world.now) as base_url:
        engine = make_engine(settings.database_url)
        yield settings, base_url, engine
        engine.dispose()


def _uploader(buf, central, device_clock, **settings) -> Uploader:
    central_settings_, base_url, _engine = central
    device_id, token = enrol_device(central_settings_)
    fake = FakeTime()
    return Uploader(SyncSettings(**{"batch_records": 3, "read_timeout_s": 5.0, **settings}), buf,
                    DeviceState(base_url, device_id, token), clock=device_clock,
                    sleep=fake.sleep, monotonic=fake.monotonic, rng=random.Random(1),
                    clock_synced=lambda: False)


def _stored(engine, device_id):
    """``{id: (corrected, verified, raw wall)}`` for the device's responses and answers."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, started_at, time_verified, started_wall FROM responses "
            "WHERE device_id = :d"), {"d": device_id}).all()
        rows += conn.execute(text(
            "SELECT a.id, a.answered_at, a.time_verified, a.at_wall FROM answers a "
            "JOIN responses r ON r.id = a.response_id WHERE r.device_id = :d"),
            {"d": device_id}).all()
    return {r[0]: (r[1], bool(r[2]), r[3]) for r in rows}


def _sync_all(uploader: Uploader, buf: Buffer) -> None:
    report = uploader.run_once()
    assert report.ok and report.rejected == 0, report.summary()
    assert buf.backlog().responses == 0


def test_a_device_booted_in_1970_gets_its_taps_timed_to_the_second(central, world, tmp_path):
    device = DeviceClock(world, wall=0.0)  # no RTC, no NTP yet: the epoch plus uptime
    buf = Buffer.open(tmp_path / "buffer.sqlite3", time_source=device)
    try:
        taps = Taps(buf, world, random.Random(1970))
        for _ in range(3):
            taps.visit(answers=4)
        world.let_pass(600)  # the next sync round, ten minutes later, still in 1970
        uploader = _uploader(buf, central, device)
        _sync_all(uploader, buf)
        stored = _stored(central[2], uploader.state.device_id)
    finally:
        buf.close()
    assert stored.keys() == taps.truth.keys() and len(stored) == 3 + 12
    for key, truth in taps.truth.items():
        corrected, verified, raw = stored[key]
        assert verified, key
        assert abs(corrected - truth) <= TOLERANCE_S, (key, corrected - truth)
        assert raw == taps.raw_wall[key] and raw < 7 * 24 * 3600  # the 1970 value, kept raw


def test_wall_clock_jumps_of_a_year_mid_visit_do_not_move_corrected_times(central, world,
                                                                         tmp_path):
    device = DeviceClock(world)  # correct to start with
    buf = Buffer.open(tmp_path / "buffer.sqlite3", time_source=device)
    try:
        taps = Taps(buf, world, random.Random(2))
        draft = taps.start()
        taps.answer(draft, 1)
        device.jump(+YEAR)  # between two answers of one visit
        taps.answer(draft, 2)
        taps.answer(draft, 3)
        device.jump(-2 * YEAR)  # now a year behind
        taps.answer(draft, 4)
        taps.answer(draft, 5)
        buf.close_response(draft, "completed")
        jumped_visit = draft.id
        taps.visit(answers=3)  # the next visitor, still a year behind
        world.let_pass(120)
        uploader = _uploader(buf, central, device)
        _sync_all(uploader, buf)  # sent while the wall clock is a year behind
        device.jump(+YEAR)  # NTP puts it right
        taps.visit(answers=2)
        _sync_all(uploader, buf)
        stored = _stored(central[2], uploader.state.device_id)
    finally:
        buf.close()
    assert stored.keys() == taps.truth.keys() and len(stored) == 3 + 10
    errors = {}
    for key, truth in taps.truth.items():
        corrected, verified, raw = stored[key]
        assert verified, key
        assert abs(corrected - truth) <= TOLERANCE_S, (key, corrected - truth)
        assert raw == taps.raw_wall[key]
        errors[key] = round((raw - truth) / YEAR)
    # the raw wall clock really jumped: +1 year, then -1 year, inside one visit
    assert sorted(set(errors.values())) == [-1, 0, 1]
    assert errors[jumped_visit] == 0


def test_records_from_before_a_reboot_are_kept_raw_and_marked_unverified(central, world,
                                                                        tmp_path):
    device = DeviceClock(world, wall=86_400.0)  # booted on 2 Jan 1970 (no RTC)
    path = tmp_path / "buffer.sqlite3"
    buf = Buffer.open(path, time_source=device)
    taps = Taps(buf, world, random.Random(3))
    try:
        taps.visit(answers=3)
        taps.visit(answers=2)
        left_open = taps.visit(answers=2, close=False)  # power cut mid-visit
    finally:
        buf.close()
    before_reboot = set(taps.truth)

    device.reboot(wall=None)  # new boot id, monotonic from zero
    device.set_wall(world.now())  # NTP synced this time
    buf = Buffer.open(path, time_source=device)  # closes the open visit as interrupted
    taps.buf = buf
    try:
        taps.visit(answers=3)
        world.let_pass(30)
        uploader = _uploader(buf, central, device)
        _sync_all(uploader, buf)
        stored = _stored(central[2], uploader.state.device_id)
        with central[2].connect() as conn:
            end_reason = conn.execute(text("SELECT end_reason FROM responses WHERE id = :i"),
                                      {"i": left_open.id}).scalar_one()
    finally:
        buf.close()
    assert stored.keys() == taps.truth.keys() and len(stored) == 4 + 10  # nothing lost
    assert end_reason == "interrupted"
    for key, truth in taps.truth.items():
        corrected, verified, raw = stored[key]
        assert raw == taps.raw_wall[key]
        if key in before_reboot:  # another boot than the sending one: cannot be corrected
            assert not verified and corrected == raw, key
        else:
            assert verified and abs(corrected - truth) <= TOLERANCE_S, (key, corrected - truth)


# --------------------------------------------------------------------------- the schedule


@pytest.fixture
def jumpable_wall_clock(monkeypatch):
    import apscheduler.executors.base
    import apscheduler.schedulers.base

    import sync.scheduler

    clock = type("JumpingDatetime", (datetime,), {
        "now": classmethod(lambda cls, tz=None: datetime.now(tz) + timedelta(seconds=clock.offset)),
        "offset": 0.0,
    })
    for module in (apscheduler.schedulers.base, apscheduler.executors.base, sync.scheduler):
        monkeypatch.setattr(module, "datetime", clock)
    return clock


class _CountingUploader:
    """The real uploader, with the start of every round noted."""

    def __init__(self, inner: Uploader) -> None:
        self.inner = inner
        self.starts: list[float] = []

    def run_once(self, deadline=None):
        self.starts.append(time.monotonic())
        return self.inner.run_once(deadline)

    def stop(self) -> None:
        self.inner.stop()


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def sqlite_central(tmp_path):
    settings = central_settings(tmp_path / "central.sqlite3")
    with run_central(settings) as base_url:
        engine = make_engine(settings.database_url)
        yield settings, base_url, engine
        engine.dispose()


def _count_responses(engine, device_id) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM responses WHERE device_id = :d"),
                            {"d": device_id}).scalar_one()


def test_the_schedule_keeps_running_when_the_wall_clock_jumps_back_a_year(
        jumpable_wall_clock, sqlite_central, tmp_path):
    world = World()
    device = DeviceClock(world)
    buf = Buffer.open(tmp_path / "buffer.sqlite3", time_source=device)
    taps = Taps(buf, world, random.Random(4))
    settings = SyncSettings(interval_s=0.4, jitter_s=0.0, misfire_grace_s=1.0, deadline_s=2.0,
                            read_timeout_s=2.0, batch_records=10)
    mono = FakeTime()  # the UI's monotonic clock for the watchdog (the test moves it on)
    uploader = _CountingUploader(_uploader(buf, sqlite_central, device, **settings.model_dump()))
    device_id = uploader.inner.state.device_id
    sched = SyncScheduler(uploader, settings, monotonic=mono.monotonic)
    try:
        taps.visit(answers=2)
        sched.start()
        assert _wait_for(lambda: len(uploader.starts) >= 2, 5), "the schedule did not run"
        assert _wait_for(lambda: _count_responses(sqlite_central[2], device_id) == 1, 5)

        jumpable_wall_clock.offset = -YEAR  # NTP (or a bad RTC) sets the clock back a year
        time.sleep(settings.interval_s + 0.5)  # a round planned before the jump may still start
        stalled_at = len(uploader.starts)
        taps.visit(answers=2)
        time.sleep(2.0)
        # APScheduler plans in wall-clock time: its next run is now a year away.
        assert len(uploader.starts) == stalled_at, "expected the jump to stall the schedule"
        assert not sched.watchdog()  # not overdue yet by the monotonic clock

        mono.sleep(settings.interval_s + settings.jitter_s + settings.misfire_grace_s
                   + settings.deadline_s + 1)  # a while later, by the UI's monotonic clock
        assert sched.watchdog(), "the watchdog did not bring the job forward"
        assert _wait_for(lambda: len(uploader.starts) >= stalled_at + 3, 5), \
            "the schedule did not resume at its interval after the watchdog"
        assert _wait_for(lambda: _count_responses(sqlite_central[2], device_id) == 2, 5)
        assert not sched.watchdog()  # running again: nothing to do
    finally:
        sched.shutdown()
        buf.close()


def test_a_forward_jump_of_a_year_gives_one_coalesced_round_and_the_schedule_goes_on(
        jumpable_wall_clock, sqlite_central, tmp_path):
    """At the shipped interval (300 s + 60 s jitter). APScheduler waits on a monotonic
    timer, so after a forward jump it wakes at the time it had planned and finds a year
    of runs overdue; ``wakeup()`` stands in for that wait ending (300 s in real life)."""
    world = World()
    device = DeviceClock(world)
    buf = Buffer.open(tmp_path / "buffer.sqlite3", time_source=device)
    settings = SyncSettings(deadline_s=5.0, read_timeout_s=2.0)  # interval 300 s, jitter 60 s
    uploader = _CountingUploader(_uploader(buf, sqlite_central, device, **settings.model_dump()))
    sched = SyncScheduler(uploader, settings)
    missed = []
    from apscheduler.events import EVENT_JOB_MISSED

    sched.scheduler.add_listener(missed.append, EVENT_JOB_MISSED)
    try:
        Taps(buf, world, random.Random(5)).visit(answers=2)
        sched.start()
        time.sleep(0.3)
        assert uploader.starts == []  # first run planned 300-360 s from now

        jumpable_wall_clock.offset = +YEAR
        t0 = time.monotonic()
        sched.scheduler.wakeup()  # the monotonic wait ends
        assert _wait_for(lambda: len(uploader.starts) == 1, 15), "no round after the jump"
        catch_up_s = time.monotonic() - t0
        time.sleep(0.5)
        assert len(uploader.starts) == 1, "a year of overdue runs must coalesce into one"
        assert missed == []
        assert buf.backlog().responses == 0
        after = sched.job.next_run_time - jumpable_wall_clock.now(timezone.utc)
        assert timedelta(seconds=0) < after <= timedelta(seconds=settings.interval_s
                                                          + settings.jitter_s)
        print(f"\nforward jump of a year: first round {catch_up_s:.2f} s after the wake-up")
    finally:
        sched.shutdown()
        buf.close()
