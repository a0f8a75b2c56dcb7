"""Kivy configuration for kiosk and windowed mode: one input source, lockdown options."""

from __future__ import annotations

import pytest
from kivy.config import Config

from kiosk.kivy_setup import configure


@pytest.fixture
def saved_config():
    sections = {s: dict(Config.items(s)) for s in ("input", "graphics", "kivy")}
    yield
    for section, items in sections.items():
        for option in Config.options(section):
            Config.remove_option(section, option)
        for option, value in items.items():
            Config.set(section, option, value)


def test_kiosk_mode_locks_the_window_down(saved_config):
    configure(windowed=False, width=1280, height=800, touch_provider="sdl")
    assert Config.get("kivy", "exit_on_escape") == "0"
    assert Config.get("graphics", "fullscreen") == "auto"
    assert Config.get("graphics", "show_cursor") == "0"
    assert Config.get("graphics", "allow_screensaver") == "0"


def test_kiosk_mode_with_sdl_touch_adds_no_second_input_provider(saved_config):
    Config.set("input", "mouse", "mouse")
    configure(windowed=False, width=1280, height=800, touch_provider="sdl")
    assert Config.options("input") == []


@pytest.mark.parametrize("provider", ["probesysfs", "hidinput", "mtdev", "mouse"])
def test_kiosk_mode_configures_exactly_the_chosen_provider(saved_config, provider):
    configure(windowed=False, width=1280, height=800, touch_provider=provider)
    options = Config.options("input")
    assert len(options) == 1
    assert Config.get("input", options[0]).split(",")[0] == provider


def test_windowed_mode_uses_the_mouse_and_keeps_a_cursor(saved_config):
    configure(windowed=True, width=1024, height=600, touch_provider="probesysfs")
    assert [Config.get("input", o) for o in Config.options("input")] == ["mouse,disable_multitouch"]
    assert Config.get("graphics", "fullscreen") == "0"
    assert Config.get("graphics", "show_cursor") == "1"
    assert (Config.get("graphics", "width"), Config.get("graphics", "height")) == ("1024", "600")
    assert Config.get("kivy", "exit_on_escape") == "0"
