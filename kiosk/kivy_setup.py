"""Kivy configuration for kiosk or windowed mode, applied before any window exists.

Call :func:`configure` before importing ``kivy.core.window`` or anything that
imports it (``kivy.app``, widgets): Kivy reads its config once, at import.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Input provider lines per ``display.touch_provider`` setting. Exactly one
#: provider is configured: two providers for the same panel (e.g. SDL's mouse
#: emulation plus hidinput) deliver every tap twice.
_PROVIDERS = {
    "mouse": ("mouse", "mouse,disable_multitouch"),
    "probesysfs": ("touch", "probesysfs,provider=hidinput"),
    "hidinput": ("touch", "hidinput,/dev/input/event0"),
    "mtdev": ("touch", "mtdev,/dev/input/event0"),
}


def prepare_environment(kivy_home: Path) -> None:
    """Set the environment Kivy reads at import: no argv parsing, a private KIVY_HOME."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")  # logs go to stderr (the journal), not files
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")  # no probing for xclip/xsel binaries
    if "KIVY_HOME" not in os.environ:
        kivy_home.mkdir(parents=True, exist_ok=True)
        os.environ["KIVY_HOME"] = str(kivy_home)


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

    for option in list(Config.options("input")) if Config.has_section("input") else []:
        Config.remove_option("input", option)
    if not Config.has_section("input"):
        Config.add_section("input")
    name, line = _PROVIDERS["mouse" if windowed else touch_provider]
    Config.set("input", name, line)
