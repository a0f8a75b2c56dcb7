"""Frames of the running app while a 100 000-answer backlog syncs, against the same UI without sync.

Run::

    .venv/bin/python bench/ui_during_sync.py               # 100 000 answers
    .venv/bin/python bench/ui_during_sync.py --answers 2000 --no-check   # the suite's smoke run

The real :class:`kiosk.app.BalieApp` runs in this process on a real (virtual)
window (a private Xvfb when DISPLAY is unset), driven like the UI tests and
``bench/memory.py`` (``tests/kivy_driver.py``): real touch events through
Kivy's event loop, the same seeded visitor mix as the memory bench, every
answer a durable commit to the buffer, a controlled Kivy clock for the idle
and thank-you timers. Each frame is one ``EventLoop.idle()`` (clock tick,
input, layout, draw, buffer swap when something changed); its wall-clock
duration is recorded. Between frames the driver sleeps what is left of
1/60 s, as Kivy's frame limiter does at its default 60 fps, so a background
thread gets the GIL as it would in the real app.

Two phases, in one run, on two fresh copies of the same backlog file (written
once with the real Buffer API, ``bench/_backlog.py``):

1. ``sync``: the app enrolled (``device_state`` given), so it builds the real
   sync (``sync.scheduler.build_sync``: APScheduler + ``Uploader`` with the
   shipped ``[sync]`` settings) and starts it in ``on_start``. After a few
   unmeasured warm-up visitors the bench calls ``app.sync.trigger_now()`` (the
   admin screen's "sync now") and measures every frame until the rounds have
   emptied the backlog (another ``trigger_now`` if a round ends on its
   deadline). Central: ``tests.central_fixtures.run_central`` in its own
   process (a deployment runs it on another machine; in this process it would
   compete with the UI for the GIL), on a throwaway PostgreSQL cluster with
   fsync on (``start_cluster(fast=False)``).
2. ``baseline``: the same app, not enrolled (no sync), the same visitor mix,
   for as long as the sync phase took.

Printed: frames, p50/p99/max of both phases (all frames, and frames that
swapped buffers), the drain's figures, and the longest frames of the sync
phase with what overlapped them (the UI's own buffer commits and the sync
thread's pending / encode / gzip / HTTP / mark_sent). Target: longest frame
while syncing <= 50 ms. Exit status 1 when over (0 with ``--no-check``).
Under Xvfb, GL is Mesa llvmpipe (software rendering on the 2 CPUs, shared
with the sync thread, central and PostgreSQL here): frames are slower than on
a Pi's GPU, which the baseline shows.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _backlog import (  # noqa: E402
    PostgresCentral,
    Stopwatch,
    build_backlog,
    copy_backlog,
    instrument,
    percentile,
)

TARGET_MS = 50.0
FPS = 60
WARMUP_FLOWS = 3


def _prepare_kivy(home: Path) -> None:
    os.environ["KIVY_HOME"] = str(home)
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_NO_FILELOG"] = "1"
    os.environ["KIVY_CLIPBOARD"] = "sdl2"
    os.environ.setdefault("KIVY_LOG_LEVEL", "warning")


class FrameLog:
    """Every frame's perf_counter times, whether it swapped buffers, and its rendering time."""

    def __init__(self):
        # (start, end, swapped, render seconds: on_draw start -> swap returned)
        self.frames: list[tuple[float, float, bool, float]] = []
        self.flips = 0
        self.draw_start = 0.0
        self.recording = False

    def on_draw(self, *_args):  # bound handlers run before the window's own on_draw
        self.draw_start = time.perf_counter()

    def on_flip(self, *_args):
        self.flips += 1


def make_driver_class():
    from kivy.base import EventLoop

    from tests.kivy_driver import Driver

    class TimedDriver(Driver):
        """tests.kivy_driver.Driver whose frames are timed and paced at 60 fps."""

        log: FrameLog
        stop_check = None

        def frames(self, count: int = 2) -> None:
            clock = time.perf_counter
            for _ in range(count):
                flips = self.log.flips
                t0 = clock()
                EventLoop.idle()
                t1 = clock()
                if self.log.recording:
                    drew = self.log.flips != flips
                    render = t1 - self.log.draw_start if drew else 0.0
                    self.log.frames.append((t0, t1, drew, render))
                rest = 1 / FPS - (t1 - t0)
                if rest > 0:
                    time.sleep(rest)

    return TimedDriver


def start(tmp: Path, buffer_path: Path, settings, device_state, log: FrameLog):
    """Like tests.kivy_driver.start_app, with a given buffer file and device state."""
    from kivy.core.window import Window

    from kiosk.app import BalieApp
    from kiosk.buffer import Buffer
    from kiosk.questionnaire import load_questionnaire
    from tests.kivy_driver import ControlledTime

    buffer = Buffer.open(buffer_path)
    questionnaire = load_questionnaire(settings.questionnaire_path)
    controlled = ControlledTime()
    app = BalieApp(settings=settings, questionnaire=questionnaire, buffer=buffer,
                   lockdown=True, device_state=device_state)
    app._run_prepare()  # build, window, on_start
    driver = make_driver_class()(app, controlled, buffer_path)
    driver.log = log
    Window.bind(on_flip=log.on_flip, on_draw=log.on_draw)
    driver.until_ready()  # screens made and the sync schedule started (when enrolled)
    return driver


def stop(driver, log: FrameLog) -> None:
    from kivy.core.window import Window

    Window.unbind(on_flip=log.on_flip, on_draw=log.on_draw)
    driver.close()  # on_stop: sync shutdown (if any), buffer closed


def summary(frames: list[tuple[float, float, bool, float]]) -> dict:
    all_ms = [(b - a) * 1e3 for a, b, _, _ in frames]
    drawn = [(b - a) * 1e3 for a, b, d, _ in frames if d]
    # the frame without on_draw + swap: input, taps (commits), clock callbacks, layout
    logic = [(b - a - r) * 1e3 for a, b, _, r in frames]
    def stats(vals):
        if not vals:
            return (0, float("nan"), float("nan"), float("nan"), float("nan"))
        return (len(vals), percentile(vals, 50), percentile(vals, 99), max(vals),
                statistics.fmean(vals))
    return {"all": stats(all_ms), "drawn": stats(drawn), "logic": stats(logic)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=100_000, help="answers in the backlog")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None,
                    help="folder for the buffer files (default: a temp dir under /tmp)")
    ap.add_argument("--batch", type=int, default=None,
                    help="batch_records for the sync (default: the shipped setting)")
    ap.add_argument("--warmup", type=int, default=WARMUP_FLOWS,
                    help=f"unmeasured visitors before each phase (default {WARMUP_FLOWS})")
    ap.add_argument("--top", type=int, default=8, help="longest sync-phase frames to explain")
    ap.add_argument("--max-drain-s", type=float, default=600,
                    help="give up the sync phase after this long")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin: by default (2+ CPUs) this process and its Xvfb run on CPU 0, "
                         "central and PostgreSQL on the other CPUs (a deployment runs them on "
                         "another machine)")
    ap.add_argument("--nice", type=int, default=None,
                    help="the sync thread's [sync] nice (default: the shipped setting)")
    ap.add_argument("--no-check", action="store_true", help="exit 0 whatever the frames")
    args = ap.parse_args(argv)

    base = args.dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ui-sync-", dir=base))
    try:
        return _run(args, base, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, base: Path, work: Path) -> int:
    cpus = sorted(os.sched_getaffinity(0))
    device_cpus = central_cpus = None
    if not args.no_pin and len(cpus) >= 2:
        device_cpus, central_cpus = {cpus[0]}, set(cpus[1:])
        os.sched_setaffinity(0, device_cpus)  # before Xvfb, Kivy and Mesa start their threads
    _prepare_kivy(work / "kivy-home")
    from _display import ensure_display

    display = ensure_display()
    from memory import Visitors  # the memory bench's seeded visitor mix

    from tests.kivy_driver import test_settings  # opens the window

    import logging

    for name in ("apscheduler", "sync", "kiosk", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)

    settings = test_settings(idle_warning_s=30, idle_reset_s=15, thanks_s=5, rapid_repeat_s=20)
    if args.batch:
        settings = settings.model_copy(update={
            "sync": settings.sync.model_copy(update={"batch_records": args.batch})})
    if args.nice is not None:
        settings = settings.model_copy(update={
            "sync": settings.sync.model_copy(update={"nice": args.nice})})
    info = build_backlog(work / "template.sqlite3", answers=args.answers, seed=args.seed)
    print(f"backlog: {info.answers} answers, {info.visitors} visitors, built in "
          f"{info.seconds:.1f} s (untimed); buffers in {base}; display {display}")
    print(f"sync: real APScheduler + Uploader, shipped [sync] settings (batch_records "
          f"{settings.sync.batch_records}, nice {settings.sync.nice}); central: run_central in "
          "its own process on PostgreSQL (fsync on); frames paced at 60 fps")
    print("CPUs: " + (f"this process + Xvfb on {sorted(device_cpus)}, central + PostgreSQL on "
                      f"{sorted(central_cpus)}" if device_cpus else f"not pinned ({cpus})")
          + f"; load average before: {os.getloadavg()[0]:.2f}")

    with PostgresCentral(central_cpus) as pg:
        device = pg.new_device("ui_sync")
        # ---- phase 1: sync ---------------------------------------------------------
        log = FrameLog()
        sync_path = copy_backlog(info.path, work / "sync" / "buffer.sqlite3")
        driver = start(work, sync_path, settings, device.state, log)
        app = driver.app
        assert app.sync is not None, "the enrolled app did not build its sync"
        uploader = app.sync.uploader
        watch = Stopwatch(keep_intervals=True)
        undo = instrument(uploader, watch)
        ui_watch = Stopwatch(keep_intervals=True)
        buf = app.buffer
        buf.record_answer = ui_watch.wrap("ui commit", buf.record_answer)
        buf.close_response = ui_watch.wrap("ui commit", buf.close_response)
        rounds_done = threading.Event()
        reports = []
        run_once = uploader.run_once

        def observed_run_once(*a, **k):
            report = run_once(*a, **k)
            if report.stopped_reason != "busy":
                reports.append(report)
                rounds_done.set()
            return report
        uploader.run_once = observed_run_once

        visitors = Visitors(driver, random.Random(args.seed))
        for _ in range(args.warmup):
            visitors.flow()
        log.recording = True
        t_start = time.perf_counter()
        app.sync.trigger_now()
        flows = 0
        drained_at = None
        while drained_at is None:
            visitors.flow()
            flows += 1
            if rounds_done.is_set() and not uploader.busy:
                rounds_done.clear()
                last = reports[-1]
                if last.stopped_reason == "done":
                    drained_at = time.perf_counter()
                elif last.stopped_reason == "deadline":
                    app.sync.trigger_now()
                else:
                    print(f"sync round failed: {last.summary()}")
                    drained_at = time.perf_counter()
            if time.perf_counter() - t_start > args.max_drain_s:
                print(f"gave up after {args.max_drain_s:g} s")
                drained_at = time.perf_counter()
        log.recording = False
        # the frames of the drain: those that started before the last round ended
        round_end = max((b for label, a, b in watch.intervals if label == "run_once"),
                        default=drained_at)
        sync_frames = [f for f in log.frames if f[0] < round_end]
        drain_s = round_end - t_start
        stats_sync = buf.stats()
        undo()
        stop(driver, log)
        central_timings = device.stop()
        stored = pg.count_answers(device.database_url)

        # ---- phase 2: baseline, same UI without sync, as long as the drain -----------
        base_log = FrameLog()
        base_path = copy_backlog(info.path, work / "baseline" / "buffer.sqlite3")
        driver = start(work, base_path, settings, None, base_log)
        assert driver.app.sync is None
        base_watch = Stopwatch(keep_intervals=True)
        bbuf = driver.app.buffer
        bbuf.record_answer = base_watch.wrap("ui commit", bbuf.record_answer)
        bbuf.close_response = base_watch.wrap("ui commit", bbuf.close_response)
        visitors_b = Visitors(driver, random.Random(args.seed))
        for _ in range(args.warmup):
            visitors_b.flow()
        base_log.recording = True
        t0 = time.perf_counter()
        base_flows = 0
        while time.perf_counter() - t0 < drain_s or base_flows < 1:
            visitors_b.flow()
            base_flows += 1
        base_log.recording = False
        stop(driver, base_log)

    s_sync, s_base = summary(sync_frames), summary(base_log.frames)
    print(f"load average after: {os.getloadavg()[0]:.2f} (other work on this machine shows here)")
    print()
    print(f"{'phase':<22}{'frames':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}"
          f"{'flows':>7}")
    for name, s, n in (("baseline (no sync)", s_base, base_flows), ("during sync", s_sync, flows)):
        for kind, label in (("all", ""), ("drawn", "  swapped only"),
                            ("logic", "  minus draw+swap")):
            c, p50, p99, mx, mean = s[kind]
            print(f"{(name if not label else label):<22}{c:>8}{p50:>9.1f}{p99:>9.1f}{mx:>9.1f}"
                  f"{mean:>9.1f}{(n if not label else ''):>7}")
    for name, iv, lo in (("baseline", base_watch.intervals, t0),
                         ("during sync", ui_watch.intervals, t_start)):
        ms = [(y - x) * 1e3 for _, x, y in iv if x >= lo]
        if ms:
            print(f"UI commits (record_answer/close_response) {name}: {len(ms)}, p50 "
                  f"{percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms, "
                  f"max {max(ms):.2f} ms")
    sent = sum(r.sent for r in reports)
    print()
    print(f"drain while the UI ran: {drain_s:.1f} s, {len(reports)} round(s), "
          f"{sum(r.batches for r in reports)} batches, {sent} responses sent "
          f"({info.visitors} in the backlog + those closed during the phase), "
          f"{info.answers / drain_s:.0f} backlog answers/s; central stored {stored[0]} responses, "
          f"{stored[1]} answers; buffer: {stats_sync.responses_unsent} unsent, "
          f"{stats_sync.responses_sent} sent")
    total = sum(v for k, v in watch.seconds.items() if k != "run_once")
    print("sync thread time: " + ", ".join(
        f"{k} {watch.seconds[k]:.2f} s" for k in ("pending", "encode", "gzip", "http", "mark_sent"))
        + f"; central app {sum(v['seconds'] for v in central_timings.values()):.2f} s")
    del total

    # ---- the longest frames, and what overlapped them ---------------------------------
    labels = ("pending", "gzip", "http", "mark_sent")
    sync_iv = [iv for iv in watch.intervals if iv[0] in labels]
    encode_iv = [iv for iv in watch.intervals if iv[0] == "encode"]
    ui_iv = ui_watch.intervals
    print()
    print(f"longest {args.top} frames during sync (ms; overlap in ms with the UI's own commits "
          "and the sync thread's work):")
    for a, b, drew, render in sorted(sync_frames, key=lambda f: f[1] - f[0],
                                     reverse=True)[:args.top]:
        parts = []
        commits = sum(max(0.0, min(b, y) - max(a, x)) for _, x, y in ui_iv)
        if commits:
            parts.append(f"ui commit {commits * 1e3:.1f}")
        for label in labels:
            o = sum(max(0.0, min(b, y) - max(a, x)) for lab, x, y in sync_iv if lab == label)
            if o:
                parts.append(f"{label} {o * 1e3:.1f}")
        enc = sum(max(0.0, min(b, y) - max(a, x)) for _, x, y in encode_iv)
        if enc:
            parts.append(f"encode {enc * 1e3:.1f}")
        print(f"  t={a - t_start:7.2f} s {(b - a) * 1e3:7.1f} ms "
              + (f"(draw+swap {render * 1e3:5.1f})" if drew else " " * 16) + "  "
              + (", ".join(parts) or "nothing"))

    longest = s_sync["all"][3]
    ok = longest <= TARGET_MS
    print()
    print(f"longest frame during sync {longest:.1f} ms (baseline {s_base['all'][3]:.1f} ms); "
          f"p99 {s_sync['all'][2]:.1f} ms (baseline {s_base['all'][2]:.1f} ms); "
          f"target <= {TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
