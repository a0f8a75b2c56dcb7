"""Kivy configuration for kiosk or windowed mode, applied before any window exists.

Call :func:`configure` before importing ``kivy.core.window`` or anything that
imports it (``kivy.app``, widgets): Kivy reads its config once, at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

#: Input provider lines per ``display.touch_provider`` setting. Exactly one
#: source of touches is configured: two for the same panel (e.g. SDL's touch
#: events plus hidinput, or SDL's mouse emulation plus the mouse provider)
#: deliver every tap twice. Kivy's SDL2 window always adds its own provider
#: for SDL finger events; "sdl" therefore configures nothing more.
_PROVIDERS = {
    "sdl": None,
    "mouse": ("mouse", "mouse,disable_multitouch"),
    "probesysfs": ("touch", "probesysfs,provider=hidinput"),
    "hidinput": ("touch", "hidinput,/dev/input/event0"),
    "mtdev": ("touch", "mtdev,/dev/input/event0"),
}


def prepare_environment(kivy_home: Path) -> None:
    """Set the environment Kivy reads at import: no argv parsing, a private KIVY_HOME."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")  # logs go to stderr (the journal), not files
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # one log line per record, via logging
    if "KIVY_HOME" not in os.environ:
        try:
            kivy_home.mkdir(parents=True, exist_ok=True)
            writable = os.access(kivy_home, os.W_OK)
        except OSError:
            writable = False
        if not writable:  # a read-only or full data folder: the terminal starts out of order
            import tempfile

            kivy_home = Path(tempfile.mkdtemp(prefix="balie-kivy-"))
        os.environ["KIVY_HOME"] = str(kivy_home)


class _CutBufferNoise(logging.Filter):
    """Drops Kivy's CRITICAL "no Cutbuffer provider" line.

    Kivy probes for the xclip/xsel programs (X11 middle-click paste) whenever a
    TextInput is imported and logs their absence as CRITICAL. A kiosk has no
    middle button and no X clipboard; the line would only alarm whoever reads
    the journal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Cutbuffer" not in record.getMessage()


def quiet_known_noise() -> None:
    """Install the log filters for Kivy messages that are harmless on a kiosk."""
    logging.getLogger("kivy").addFilter(_CutBufferNoise())


def configure(*, windowed: bool, width: int, height: int, touch_provider: str) -> None:
    """Apply the kiosk lockdown (or the windowed development variant) to Kivy's Config."""
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "pause_on_minimize", "0")
    Config.set("kivy", "keyboard_mode", "system")
    Config.set("graphics", "allow_screensaver", "0")
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "1" if windowed else "0")
    Config.set("graphics", "fullscreen", "0" if windowed else "auto")
    Config.set("graphics", "borderless", "0" if windowed else "1")
    Config.set("graphics", "show_cursor", "1" if windowed else "0")
    Config.set("graphics", "maxfps", "60")
    # No multisampling (Kivy's default is 2x): round shapes are smoothed by the Smooth*
    # instructions in the kv files instead. 2x multisampling doubled the cost of every frame
    # drawn in software (94 -> 46 ms at 1280x800 on one core; docs/benchmarks.md).
    Config.set("graphics", "multisamples", "0")

    for option in list(Config.options("input")) if Config.has_section("input") else []:
        Config.remove_option("input", option)
    if not Config.has_section("input"):
        Config.add_section("input")
    provider = _PROVIDERS["mouse" if windowed else touch_provider]
    if provider is not None:
        Config.set("input", *provider)
