"""Run the real kiosk (``app.run()``, kiosk lockdown on) and stop it from the admin screen by touch.

Run by tests/test_ui_admin.py as ``python -m tests.admin_stop_app DATA_DIR PIN`` on the test
suite's Xvfb display. Touches are posted into the running event loop as a finger would send
them: five taps in the top-left corner, the PIN, "Stop the kiosk", the confirmation. Prints
``app.run() returned`` when the event loop has ended; exits 3 if that took over a minute.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.kivy_driver import FakeTouch, test_settings  # noqa: E402  (configures Kivy first)

from kivy.base import EventLoop  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402

from kiosk.app import BalieApp  # noqa: E402
from kiosk.buffer import Buffer  # noqa: E402
from kiosk.questionnaire import load_questionnaire  # noqa: E402

TIME_LIMIT_S = 60


def touch_at(x: float, y: float):
    """A finger down and, a frame later, up at window coordinates (a generator step list)."""
    touch = FakeTouch(x, y)
    EventLoop.post_dispatch_input("begin", touch)
    yield
    touch.move({"x": x / float(Window.width), "y": y / float(Window.height)})
    EventLoop.post_dispatch_input("end", touch)
    yield


def tap(widget):
    for _ in range(3):  # a screen or dialog just shown is laid out in the next frames
        yield
    x, y = widget.to_window(*widget.center)
    yield from touch_at(x, y)


def script(app, pin: str):
    """The staff member's fingers, one step per frame."""
    while not app.is_ready:
        yield
    for _ in range(5):
        yield from touch_at(20, Window.height - 20)
    admin = app.admin
    pad = admin.screens["pin_pad"]
    while pad.checking:
        yield
    for digit in pin:
        yield from tap(pad.ids[f"key_{digit}"])
    yield from tap(pad.ids.ok)
    while app.root.current != "admin":
        yield
    screen = admin.screens["admin"]
    yield from tap(screen.ids.stop)
    while screen.confirm.parent is None:
        yield
    yield from tap(screen.confirm.ids.confirm_stop)
    while True:  # the app stops now; nothing more to do
        yield


def main(data_dir: str, pin: str) -> int:
    folder = Path(data_dir)
    settings = test_settings()
    buffer = Buffer.open(folder / "buffer.sqlite3")
    app = BalieApp(settings=settings, questionnaire=load_questionnaire(settings.questionnaire_path),
                   buffer=buffer, lockdown=True)
    steps = script(app, pin)
    Clock.schedule_interval(lambda _dt: next(steps), 0)
    Clock.schedule_once(lambda _dt: os._exit(3), TIME_LIMIT_S)
    app.run()
    print("app.run() returned", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
