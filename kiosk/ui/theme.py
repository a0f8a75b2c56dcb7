"""The theme object kv rules read colours from, built from ``[theme]`` in kiosk.toml."""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import ColorProperty, StringProperty

#: Theme attribute -> [theme] key in kiosk.toml. ``on_primary`` is renamed:
#: Kivy would take an attribute called ``on_primary`` for the change handler of ``primary``.
_COLOURS = {"background": "background", "surface": "surface", "primary": "primary",
            "primary_text": "on_primary", "text": "text", "muted_text": "muted_text",
            "accent": "accent", "danger": "danger"}


def _darker(rgba, factor=0.78):
    r, g, b, a = rgba
    return (r * factor, g * factor, b * factor, a)


class Theme(EventDispatcher):
    """Colours and names for kv: ``app.theme.primary``, ``app.theme.pressed``, ..."""

    background = ColorProperty((1, 1, 1, 1))
    surface = ColorProperty((0.95, 0.96, 0.97, 1))
    primary = ColorProperty((0, 0.27, 0.49, 1))
    pressed = ColorProperty((0, 0.2, 0.38, 1))
    primary_text = ColorProperty((1, 1, 1, 1))
    text = ColorProperty((0.1, 0.1, 0.1, 1))
    muted_text = ColorProperty((0.29, 0.29, 0.29, 1))
    accent = ColorProperty((0.88, 0.44, 0, 1))
    danger = ColorProperty((0.7, 0.1, 0.1, 1))
    municipality_name = StringProperty("")
    logo = StringProperty("")

    @classmethod
    def from_settings(cls, theme_settings) -> "Theme":
        """Build from the validated ``settings.theme`` section."""
        theme = cls()
        for name, key in _COLOURS.items():
            setattr(theme, name, theme_settings.rgba(key))
        theme.pressed = _darker(theme.primary)
        theme.municipality_name = theme_settings.municipality_name
        logo = theme_settings.logo
        theme.logo = str(logo) if logo is not None and logo.is_file() else ""
        return theme
