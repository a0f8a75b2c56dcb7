"""The sync schedule: APScheduler options, a background thread, errors logged, never fatal."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.settings import SyncSettings
from sync.scheduler import JOB_ID, SyncScheduler, build_sync, lower_thread_priority
from sync.uploader import SyncReport


class RecordingUploader:
    """Stands in for the uploader (the schedule is under test, not the HTTP)."""

    def __init__(self, fail: bool = False, hold: float = 0.0) -> None:
        self.fail = fail
        self.hold = hold
        self.threads: list[threading.Thread] = []
        self.ran = threading.Event()
        self.stopped = False

    def run_once(self):
        self.threads.append(threading.current_thread())
        self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        if self.hold:
            time.sleep(self.hold)
        self.ran.set()
        if self.fail:
            raise RuntimeError("boom in the round")
        return SyncReport()

    def stop(self):
        self.stopped = True


@pytest.fixture
def make():
    made = []

    def _make(uploader, **settings):
        sched = SyncScheduler(uploader, SyncSettings(**settings))
        made.append(sched)
        return sched

    yield _make
    for sched in made:
        sched.shutdown()


def test_the_job_has_max_instances_1_coalescing_jitter_and_a_generous_misfire_grace(make):
    sched = make(RecordingUploader(), interval_s=300, jitter_s=60, misfire_grace_s=600)
    sched.start()
    job = sched.scheduler.get_job(JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    assert job.misfire_grace_time == 600  # APScheduler's own default (1 s) drops late runs
    assert job.trigger.interval == timedelta(seconds=300) and job.trigger.jitter == 60
    assert job.next_run_time > datetime.now(timezone.utc)


def test_trigger_now_returns_at_once_and_runs_the_round_off_the_calling_thread(make):
    uploader = RecordingUploader(hold=0.5)
    sched = make(uploader)
    sched.start()
    started = time.monotonic()
    sched.trigger_now()
    assert time.monotonic() - started < 0.1
    assert uploader.ran.wait(5)
    assert uploader.threads and uploader.threads[0] is not threading.main_thread()
    assert uploader.threads[0] is not threading.current_thread()


def errors_logged(caplog) -> list:
    return [r for r in caplog.records if r.name == "sync.scheduler" and r.levelno >= logging.ERROR]


def test_a_failing_round_is_logged_and_the_schedule_keeps_running(make, caplog):
    uploader = RecordingUploader(fail=True)
    sched = make(uploader)
    sched.start()
    with caplog.at_level(logging.ERROR, logger="sync.scheduler"):
        sched.trigger_now()
        assert uploader.ran.wait(5)
        deadline = time.monotonic() + 5
        while not errors_logged(caplog) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert any("boom in the round" in r.getMessage() for r in errors_logged(caplog))
    assert sched.scheduler.running and sched.scheduler.get_job(JOB_ID) is not None
    uploader.ran.clear()
    sched.trigger_now()
    assert uploader.ran.wait(5)  # still runs rounds after the error


def test_a_missed_run_is_logged(make, caplog):
    from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent

    sched = make(RecordingUploader())
    with caplog.at_level(logging.WARNING, logger="sync.scheduler"):
        sched._on_event(JobExecutionEvent(EVENT_JOB_MISSED, JOB_ID, "default",
                                          datetime.now(timezone.utc)))
    assert "missed" in caplog.text


def test_shutdown_asks_the_uploader_to_stop_and_does_not_wait(make):
    uploader = RecordingUploader(hold=2.0)
    sched = make(uploader)
    sched.start()
    sched.trigger_now()
    time.sleep(0.2)
    started = time.monotonic()
    sched.shutdown()
    assert time.monotonic() - started < 0.5
    assert uploader.stopped and not sched.scheduler.running


def test_the_watchdog_brings_a_stalled_job_forward_after_a_clock_jump(make):
    now = [1000.0]
    uploader = RecordingUploader()
    sched = SyncScheduler(uploader, SyncSettings(interval_s=300, jitter_s=60), monotonic=lambda: now[0])
    try:
        sched.start()
        # the wall clock jumped a year back: APScheduler's next run is a year away
        sched.job.modify(next_run_time=datetime.now(timezone.utc) + timedelta(days=365))
        assert sched.watchdog() is False  # not overdue yet
        now[0] += 300 + 60 + 600 + 120 + 1
        assert sched.watchdog() is True
        assert uploader.ran.wait(5)
    finally:
        sched.shutdown()


def test_an_unenrolled_terminal_gets_no_schedule(caplog):
    with caplog.at_level(logging.INFO, logger="sync.scheduler"):
        assert build_sync(SyncSettings(), buffer=None, state=None) is None
    assert "not enrolled" in caplog.text


def test_a_wall_clock_jump_of_decades_is_stepped_over_in_one_go():
    # A terminal boots in 1970 (no RTC) and NTP moves it to today: APScheduler
    # would otherwise list every missed 5-minute run one by one (millions).
    import time as _time
    from datetime import datetime, timezone

    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler

    from sync.scheduler import CatchUpIntervalTrigger

    boot = datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc)
    trigger = CatchUpIntervalTrigger(seconds=300, jitter=60, start_date=boot, timezone=timezone.utc)
    job = Job(BackgroundScheduler(timezone=timezone.utc), id="j", func=print, args=(), kwargs={},
              trigger=trigger, executor="default", name="j", misfire_grace_time=600,
              coalesce=True, max_instances=1, next_run_time=boot)
    now = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
    started = _time.perf_counter()
    run_times = job._get_run_times(now)
    # The 1970 slot (missed, outside the grace) and "now" (runs): coalesced into one round.
    assert run_times == [boot, now]
    assert _time.perf_counter() - started < 0.5
    following = trigger.get_next_fire_time(now, now)
    assert now < following <= datetime(2026, 11, 27, 8, 6, tzinfo=timezone.utc)


def test_the_catch_up_trigger_keeps_the_plain_interval_when_on_time():
    from datetime import datetime, timedelta, timezone

    from sync.scheduler import CatchUpIntervalTrigger

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trigger = CatchUpIntervalTrigger(seconds=300, start_date=start, timezone=timezone.utc)
    previous = start + timedelta(seconds=600)
    now = previous + timedelta(seconds=10)
    assert trigger.get_next_fire_time(previous, now) == previous + timedelta(seconds=300)


def test_the_round_runs_at_a_lower_cpu_priority_than_the_ui(make):
    # Linux: the nice value is per thread; the sync worker yields the CPU to the UI's drawing
    # (bench/ui_during_sync.py: the longest frame during sync 194 ms with nice 0, 79 with 10).
    uploader = RecordingUploader()
    sched = make(uploader, nice=7)
    ui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    sched.start()
    sched.trigger_now()
    assert uploader.ran.wait(5)
    assert uploader.nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ui_nice  # unchanged


def test_lowering_the_priority_is_per_thread_capped_and_can_be_off():
    seen = {}

    def worker(name, nice):
        seen[name] = (lower_thread_priority(nice),
                      os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    base = os.getpriority(os.PRIO_PROCESS, 0)
    for name, nice in (("off", 0), ("five", 5), ("capped", 40)):
        thread = threading.Thread(target=worker, args=(name, nice))
        thread.start()
        thread.join()
    assert seen["off"] == (None, base)
    assert seen["five"] == (min(19, base + 5),) * 2
    assert seen["capped"] == (19, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_the_sync_priority_setting_is_checked():
    assert SyncSettings().nice == 10
    for bad in (-1, 20, 2.5):
        with pytest.raises(ValueError):
            SyncSettings(nice=bad)


def test_stopping_right_after_sync_now_leaves_no_dying_scheduler_thread(monkeypatch):
    # APScheduler 3.x marks itself stopped before taking its job-store lock; a "sync now" job
    # being dispatched then could not be removed and its thread died with JobLookupError
    # (40 of 300 cycles before SyncScheduler.shutdown removed the jobs first).
    died = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(repr(args.exc_value)))
    for cycle in range(300):
        sched = SyncScheduler(RecordingUploader(), SyncSettings())
        sched.start()
        sched.trigger_now()
        time.sleep(0.0005 * (cycle % 7))
        sched.shutdown()
    time.sleep(0.5)
    assert died == []
