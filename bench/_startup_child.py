"""Child process of bench/startup.py: start one Kivy app, report its first interactive frame, stop.

Run by the bench, not by hand::

    python bench/_startup_child.py kiosk DATA_DIR     # kiosk.cli.main(["run", "--windowed", "--data-dir", DATA_DIR])
    python bench/_startup_child.py hello KIVY_HOME    # a bare Kivy App whose root is one Button

Both go through the same hook, so both are timed the same way. The hook is
installed right after ``kiosk.kivy_setup.configure`` (which both call: the
kiosk from ``cmd_run``, the hello-world itself, with the kiosk's default
display settings), and changes no kiosk code:

* every ``kivy.app.App`` gets a handler bound to its ``on_start`` event (fired
  once ``build()`` has returned and the root widget is on the window);
* that handler wraps the window's ``flip`` (the buffer swap that ends a
  drawn frame); when the first swap after ``on_start`` has returned, the
  child prints ``BENCH_STARTUP {json}`` with ``time.monotonic()`` stamps and
  stops the app.

``time.monotonic()`` is CLOCK_MONOTONIC, one clock for the whole machine, so
the parent subtracts its own stamp taken just before ``Popen``.
"""

from __future__ import annotations

import time

MARKS = {"child_start": time.monotonic()}

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _report_first_frame(app) -> None:
    from kivy.core.window import Window

    MARKS["on_start"] = time.monotonic()
    real_flip = Window.flip

    def flip(*args, **kwargs):
        result = real_flip(*args, **kwargs)
        MARKS["first_frame"] = time.monotonic()
        del Window.flip  # back to the class's method: only the first frame is timed
        print("BENCH_STARTUP " + json.dumps(MARKS), flush=True)
        app.stop()
        return result

    Window.flip = flip


def _install_hook() -> None:
    from kivy.app import App

    real_init = App.__init__

    def init(self, **kwargs):
        real_init(self, **kwargs)
        self.fbind("on_start", _report_first_frame)

    App.__init__ = init


def _hook_configure() -> None:
    """Install the hook as soon as Kivy is configured (before any App exists)."""
    import kiosk.kivy_setup as kivy_setup

    real_configure = kivy_setup.configure

    def configure(**kwargs):
        real_configure(**kwargs)
        _install_hook()

    kivy_setup.configure = configure


def run_kiosk(data_dir: str) -> int:
    _hook_configure()
    from kiosk.cli import main

    return main(["run", "--windowed", "--data-dir", data_dir])


def run_hello(kivy_home: str) -> int:
    _hook_configure()
    from kiosk import kivy_setup

    # The same environment and Kivy config as the kiosk's defaults (display 1280x800, windowed).
    kivy_setup.prepare_environment(Path(kivy_home))
    kivy_setup.configure(windowed=True, width=1280, height=800, touch_provider="mouse")
    from kivy.app import App
    from kivy.uix.button import Button

    class HelloApp(App):
        def build(self):
            return Button(text="Hello, world")

    HelloApp().run()
    return 0


if __name__ == "__main__":
    which, folder = sys.argv[1], sys.argv[2]
    sys.exit({"kiosk": run_kiosk, "hello": run_hello}[which](folder))
