"""The sync schedule: APScheduler 3.x runs an upload round every few minutes, off the UI thread.

Use::

    sync = build_sync(settings, buffer, DeviceStateStore(data_dir).load())  # None: not enrolled
    sync.start()            # App.on_start
    sync.trigger_now()      # admin screen "sync now"; returns at once
    sync.shutdown()         # App.on_stop; does not wait for a running round

Operating rules:

* One job on an interval trigger with jitter (``interval_s`` + up to ``jitter_s``),
  ``max_instances=1`` and ``coalesce=True``: runs missed while the machine slept
  collapse into one, never pile up. ``misfire_grace_time`` is generous
  (``misfire_grace_s``, default 600 s = 10 minutes); APScheduler's default of
  1 s would drop every run that starts a moment late on a busy device.
* The round runs in the scheduler's worker thread; :meth:`SyncScheduler.trigger_now`
  only adds a one-off job and returns. The UI never waits on sync.
* Job errors and missed runs are logged by listeners; a failing round never
  stops the schedule.
* APScheduler plans in wall-clock time. A device whose clock jumps back (no
  RTC, NTP correcting) would see its next run move into the far future, so
  :meth:`SyncScheduler.watchdog`, called now and then from the UI's monotonic
  clock, brings the job forward when no round has started for too long.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


class CatchUpIntervalTrigger(IntervalTrigger):
    """An interval trigger that steps over a wall-clock jump in one go.

    APScheduler 3.x lists every run missed since the last one, one trigger
    step at a time (``Job._get_run_times``), before coalescing them into one.
    A terminal boots with its clock in the past (no RTC) and jumps when NTP
    syncs: a year at 5-minute intervals is ~100 000 steps, 1970 to now
    millions, seconds to minutes of CPU with the GIL held. Once the previous
    fire time lies more than an interval behind ``now``, the next one is the
    next one is ``now`` itself: the missed runs collapse into one run now
    (inside the misfire grace), as ``coalesce=True`` would have made them, and
    the interval goes on from there.
    """

    def get_next_fire_time(self, previous_fire_time, now):
        if (previous_fire_time is not None
                and previous_fire_time.timestamp() + self.interval_length < now.timestamp()):
            return now
        return super().get_next_fire_time(previous_fire_time, now)

JOB_ID = "sync"
NOW_JOB_ID = "sync-now"


class SyncScheduler:
    """Runs ``uploader.run_once()`` on a jittered interval in a background thread.

    ``settings``: the ``[sync]`` settings (or the whole KioskSettings).
    ``monotonic``: the clock :meth:`watchdog` measures with (tests inject one).
    """

    def __init__(self, uploader, settings, *, monotonic=time.monotonic) -> None:
        self.uploader = uploader
        self.settings = s = getattr(settings, "sync", settings)
        self.monotonic = monotonic
        self.job_options = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": int(s.misfire_grace_s),
        }
        # Two workers: a "sync now" while a round runs reaches the uploader at
        # once and is told "busy" (skipped), rather than waiting in the pool.
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults=dict(self.job_options),
            timezone=timezone.utc,
            daemon=True,
        )
        self.scheduler.add_listener(self._on_event,
                                    EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.job = None
        self._last_start = monotonic()

    # ----------------------------------------------------------------- control

    def start(self) -> None:
        """Add the interval job and start the scheduler's thread; returns at once."""
        s = self.settings
        self.job = self.scheduler.add_job(
            self._run, CatchUpIntervalTrigger(seconds=s.interval_s, jitter=s.jitter_s or None,
                                              timezone=timezone.utc),
            id=JOB_ID, name="sync round", replace_existing=True, **self.job_options)
        self._last_start = self.monotonic()
        self.scheduler.start()
        log.info("sync scheduled every %g s (+ up to %g s jitter)", s.interval_s, s.jitter_s)

    def trigger_now(self) -> None:
        """Run a round as soon as a worker is free; returns at once (never waits on it).

        If a round is already running the new one finds the uploader busy and
        skips (it does not queue behind it).
        """
        self.scheduler.add_job(self._run, id=NOW_JOB_ID, name="sync now",
                               replace_existing=True, **self.job_options)

    def shutdown(self, wait: bool = False) -> None:
        """Stop the schedule; a running round is asked to stop and not waited for."""
        self.uploader.stop()
        if self.scheduler.running:
            # Jobs first, under the job-store lock, so no run is mid-dispatch: APScheduler 3.x's
            # shutdown() marks the scheduler stopped without that lock, and a run-once job
            # ("sync now") being dispatched at that moment could no longer be removed: its
            # thread died with JobLookupError (40 times in 300 quick start/stop cycles).
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=wait)

    def watchdog(self) -> bool:
        """Bring the job forward if no round started for far longer than planned.

        Call it every minute or so from a monotonic timer (the UI's Kivy Clock).
        Returns True when it rescheduled. Cheap: a comparison, and rarely a
        ``modify`` on the scheduler.
        """
        s = self.settings
        overdue = s.interval_s + s.jitter_s + s.misfire_grace_s + s.deadline_s
        if self.job is None or self.monotonic() - self._last_start <= overdue:
            return False
        log.warning("no sync round for %.0f s (the wall clock may have jumped back); "
                    "running one now", self.monotonic() - self._last_start)
        self._last_start = self.monotonic()
        self.job.modify(next_run_time=datetime.now(timezone.utc))
        return True

    # ----------------------------------------------------------------- the job

    def _run(self):
        self._last_start = self.monotonic()
        lower_thread_priority(getattr(self.settings, "nice", 0))
        return self.uploader.run_once()

    @staticmethod
    def _on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            # APScheduler 3 hands the traceback over as formatted text.
            log.error("sync job %s failed: %r\n%s", event.job_id, event.exception,
                      (event.traceback or "").rstrip())
        elif event.code == EVENT_JOB_MISSED:
            log.warning("sync job %s missed its run at %s (more than the misfire grace late)",
                        event.job_id, event.scheduled_run_time)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("sync job %s skipped: the previous round is still running", event.job_id)


def lower_thread_priority(nice: int) -> int | None:
    """Give the calling thread a nice value ``nice`` above the process's (at most 19).

    Linux keeps a nice value per thread (setpriority(2) with the thread id), so
    only the sync worker yields the processor to the UI and its drawing. Raising
    one's own nice value needs no privilege; where it is not possible (another
    system, a sandbox) sync runs at the app's priority and this logs it once per
    thread. Returns the thread's nice value after the call (None: unchanged).
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return None
    tid = threading.get_native_id()
    try:
        wanted = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)
        if os.getpriority(os.PRIO_PROCESS, tid) < wanted:
            os.setpriority(os.PRIO_PROCESS, tid, wanted)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:
        if tid not in _priority_warned:
            _priority_warned.add(tid)
            log.warning("could not lower the sync thread's priority (nice +%d): %s", nice, exc)
        return None


_priority_warned: set[int] = set()


def build_sync(settings, buffer, state, **uploader_options) -> SyncScheduler | None:
    """The uploader and its schedule for an enrolled terminal; ``None`` (and a log line) if not."""
    if state is None:
        log.info("sync is off: this terminal is not enrolled (run `balie-kiosk enroll URL TOKEN`)")
        return None
    from sync.uploader import Uploader

    uploader = Uploader(settings, buffer, state, **uploader_options)
    log.info("sync on: sending to %s as device %s", state.central_url, state.device_id)
    return SyncScheduler(uploader, settings)
