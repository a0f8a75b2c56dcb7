"""Drive the real Kivy app in tests: touches through the event loop, a controlled clock.

Kivy allows one window per process; every test builds a fresh app (fresh
buffer) on that window and removes it afterwards. Touches are real
:class:`MotionEvent` objects posted to ``EventLoop``, so they travel the same
path as a finger: window -> screen -> widget.
"""

from __future__ import annotations

import os
import time as time_module  # ``time`` names the Driver's controlled Kivy clock here
from pathlib import Path

from kiosk.kivy_setup import configure

# BALIE_TEST_WINDOW=WxH: a smaller window draws faster in software (long benches).
_WIDTH, _HEIGHT = (int(v) for v in os.environ.get("BALIE_TEST_WINDOW", "1280x800").split("x"))
configure(windowed=True, width=_WIDTH, height=_HEIGHT, touch_provider="mouse")

from kivy.base import EventLoop  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.input.motionevent import MotionEvent  # noqa: E402

from kiosk.app import BalieApp  # noqa: E402
from kiosk.buffer import Buffer  # noqa: E402
from kiosk.questionnaire import load_questionnaire  # noqa: E402
from kiosk.settings import load_settings  # noqa: E402

EventLoop.ensure_window()


class FakeTouch(MotionEvent):
    """One finger at window coordinates (x, y)."""

    _next_id = 1000

    def __init__(self, x, y):
        FakeTouch._next_id += 1
        super().__init__("test", FakeTouch._next_id,
                         {"x": x / float(Window.width), "y": y / float(Window.height)},
                         is_touch=True, type_id="touch")
        self.profile = ["pos"]

    def depack(self, args):
        self.sx, self.sy = args["x"], args["y"]
        super().depack(args)


class ControlledTime:
    """Replaces the Kivy clock's time source so tests advance time instead of sleeping."""

    def __init__(self):
        self._real = Clock.time
        self._real_fps = Clock._max_fps
        self.now = self._real()
        Clock.time = lambda: self.now
        # The frame limiter waits for the clock to move on; with a clock that
        # only moves when told, it would wait forever.
        Clock._max_fps = 0

    def restore(self):
        Clock.time = self._real
        # The frame limiter sleeps until (last tick + 1/fps): a last tick taken
        # from the advanced fake clock would make it sleep that far ahead.
        Clock._last_tick = self._real()
        Clock._max_fps = self._real_fps


class KivyWallClock:
    """A wall clock (a :class:`kiosk.clock.TimeSource`) that moves with the controlled Kivy clock.

    ``KivyWallClock(datetime(2026, 3, 30, 8, 29, tzinfo=AMS))``: the wall clock reads that
    moment at its first use, then moves on as :meth:`Driver.advance` moves the Kivy clock.
    Pass it as ``start_app(..., time_source=clock)`` (the app first asks it once the clock is
    controlled). The monotonic reading is the Kivy clock; the boot id is made up.
    """

    def __init__(self, start) -> None:
        self.start = start.timestamp()
        self.origin = None

    def now(self):
        from kiosk.clock import Stamp

        kivy_now = Clock.time()
        if self.origin is None:
            self.origin = kivy_now
        return Stamp(wall=self.start + kivy_now - self.origin, boot_id="kivy-clock", mono=kivy_now)


def test_settings(**timeouts):
    """The shipped settings with short, test-friendly timeouts (overridable)."""
    settings = load_settings(None)
    values = dict(idle_warning_s=30, idle_reset_s=10, thanks_s=5, rapid_repeat_s=20)
    values.update(timeouts)
    return settings.model_copy(update={"timeouts": settings.timeouts.model_copy(update=values)})


class Driver:
    """What a test does to the app: tap widgets, advance time, look at the screen."""

    def __init__(self, app: BalieApp, time: ControlledTime, buffer_path: Path):
        self.app = app
        self.time = time
        self.buffer_path = buffer_path

    @property
    def navigator(self):
        return self.app.navigator

    @property
    def screen(self) -> str:
        """The name of the screen on show."""
        return self.app.root.current

    def current_screen(self):
        return self.app.root.current_screen

    def frames(self, count: int = 2) -> None:
        """Let Kivy run ``count`` frames (layout, drawing, due clock events)."""
        for _ in range(count):
            EventLoop.idle()

    def until_ready(self, max_frames: int = 200) -> int:
        """Run frames until the app has made every screen and started sync; returns the frames run."""
        for count in range(1, max_frames + 1):
            self.frames(1)
            if self.app.is_ready:
                return count
        raise AssertionError(f"the app was not ready after {max_frames} frames")

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move the clock on by ``seconds``, running frames along the way."""
        remaining = seconds
        while remaining > 0:
            delta = min(step, remaining)
            self.time.now += delta
            remaining -= delta
            self.frames(1)
        self.frames(1)

    def tap(self, widget) -> None:
        """Press and release a finger on the centre of ``widget``."""
        self.frames(2)
        assert widget.get_root_window() is not None, f"{widget!r} is not on the window"
        x, y = widget.to_window(*widget.center)
        self.tap_at(x, y)

    def tap_at(self, x: float, y: float) -> None:
        touch = FakeTouch(x, y)
        EventLoop.post_dispatch_input("begin", touch)
        self.frames(1)
        touch.move({"x": x / float(Window.width), "y": y / float(Window.height)})
        EventLoop.post_dispatch_input("end", touch)
        self.frames(2)

    def panel(self, question_id: str):
        return self.navigator.panels[question_id]

    def button_for(self, question_id: str, value):
        """The answer button of ``question_id`` that gives ``value``."""
        panel = self.panel(question_id)
        if panel.question.type == "yesno":
            return panel.ids.yes if value == "yes" else panel.ids.no
        values = list(panel.question.allowed_values())
        return panel.buttons[values.index(value)]

    def screenshot(self, path: Path) -> Path:
        """Save what the window shows as a PNG."""
        self.frames(3)
        Window.screenshot(name=str(path))
        # Window.screenshot numbers the file name ("name0001.png"); find what it wrote
        # (only numbered names: "admin*.png" would also match "admin_disk_full.png").
        written = sorted(path.parent.glob(path.stem + "[0-9]" * 4 + path.suffix))
        target = written[-1]
        if target != path:
            target.replace(path)
        return path

    def close(self) -> None:
        self.navigator._cancel_timers()
        if self.navigator.idle_warning.parent is not None:
            self.navigator.idle_warning.dismiss(animation=False)
        Window.unbind(on_touch_down=self.navigator.touched)
        Window.unbind(on_request_close=self.app._refuse_close)
        Window.remove_widget(self.app.root)
        # on_stop closes the buffer, and makes kv's ``app`` proxy forget this app
        # (it caches the first running app until that app stops).
        self.app.dispatch("on_stop")
        self.frames(2)
        # A kv rule of this app evaluated in those frames asks the proxy again, and it
        # caches this (stopped) app anew: the next app's kv rules would then read this
        # one (its message board, say). Forget it once more, now that nothing runs.
        from kivy.lang.parser import global_idmap

        object.__setattr__(global_idmap["app"], "_obj", None)
        self.time.restore()


def sync_round(driver: Driver, timeout: float = 20.0, *, frames: int = 0) -> None:
    """One sync round of the running app on its scheduler's worker thread (as "sync now" on the
    admin screen); returns when the round has ended, after ``frames`` frames (for what the
    round hands over to the UI thread)."""
    uploader = driver.app.sync.uploader
    before = uploader.last_report
    driver.app.sync.trigger_now()
    ends = time_module.monotonic() + timeout
    while uploader.last_report is before:  # the sync thread sets it when the round ends
        assert time_module.monotonic() < ends, "the sync round did not end"
        time_module.sleep(0.01)
    if frames:
        driver.frames(frames)


def start_app(tmp_path: Path, *, settings=None, lockdown: bool = True, device_state=None,
              frames: int = 3, read_only_fallback: bool = False, **app_options) -> Driver:
    """Build a fresh app with a fresh buffer in ``tmp_path`` and show it (``frames`` drawn).

    ``app_options`` go to :class:`BalieApp` (e.g. ``time_source``: a wall clock that
    follows the controlled Kivy clock; it is asked only once the clock is controlled).
    ``read_only_fallback``: open the buffer as ``balie-kiosk run`` does (storage that
    refuses writes gives a buffer opened for reading only, and the app starts out of order).
    """
    settings = settings or test_settings()
    buffer_path = tmp_path / "buffer.sqlite3"
    buffer = Buffer.open(buffer_path, read_only_fallback=read_only_fallback)
    questionnaire = load_questionnaire(settings.questionnaire_path)
    time = ControlledTime()
    app = BalieApp(settings=settings, questionnaire=questionnaire, buffer=buffer,
                   lockdown=lockdown, device_state=device_state, **app_options)
    app._run_prepare()
    driver = Driver(app, time, buffer_path)
    driver.frames(frames)
    return driver
