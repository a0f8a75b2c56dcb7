"""The terminal's settings: kiosk.toml models and the loader (every value has a default).

Use::

    settings = load_settings(Path("/etc/balie/kiosk.toml"))   # or None: built-in defaults
    settings.location.id, settings.timeouts.idle_reset_s, settings.theme.rgba("primary")

A bad file raises :class:`~kiosk.errors.ConfigError`; each problem names the key
(``timeouts.idle_reset_s: must be at least 5 ...``) and says what is wrong.
Relative paths resolve against the config file's folder (for the built-in defaults:
:func:`kiosk.paths.config_dir`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kiosk import paths
from kiosk.errors import ConfigError
from kiosk.configfile import describe, problem, read_toml, validate_settings_file
from kiosk.opening_hours import DAY_KEYS, DEFAULT_TIMEZONE, check_day, parse_range
from kiosk.questionnaire import Slug
from sync.limits import MAX_RECORDS

COLOURS = ("background", "surface", "primary", "on_primary", "text", "muted_text", "accent", "danger")
# (foreground, background) pairs that carry text; WCAG 1.4.3 asks 4.5:1 for normal text.
CONTRAST_PAIRS = (("text", "background"), ("muted_text", "background"),
                  ("text", "surface"), ("on_primary", "primary"))
MIN_CONTRAST = 4.5
MIN_IDLE_RESET_S = 5.0
TOUCH_PROVIDERS = ("sdl", "probesysfs", "hidinput", "mtdev", "mouse")
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")
_LANG = re.compile(r"[a-z]{2}")


def _colour(value: str) -> str:
    if not _HEX.fullmatch(value):
        raise problem(f"must be a colour like \"#154273\" (#RRGGBB), got {describe(value)}")
    return value.upper()


def _lang(value: str) -> str:
    if not _LANG.fullmatch(value):
        raise problem(f"must be a lowercase 2-letter language code (like 'nl'), got {describe(value)}")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise problem("must not be empty")
    return value


def _touch_provider(value: str) -> str:
    if value not in TOUCH_PROVIDERS:
        raise problem(f"unknown touch provider {describe(value)}; use one of {', '.join(TOUCH_PROVIDERS)}")
    return value


Colour = Annotated[StrictStr, AfterValidator(_colour)]
Lang = Annotated[StrictStr, AfterValidator(_lang)]
Name = Annotated[StrictStr, AfterValidator(_not_blank)]
Seconds = Annotated[float, Field(strict=True, gt=0)]
NonNegativeSeconds = Annotated[float, Field(strict=True, ge=0)]
Pixels = Annotated[StrictInt, Field(gt=0)]
PathText = Annotated[StrictStr, AfterValidator(_not_blank)]


def _resolve(value: str | Path, info: ValidationInfo) -> Path:
    """``value`` as an absolute path; relative ones against the config file's folder."""
    base = (info.context or {}).get("base_dir") or paths.config_dir()
    return (Path(base) / Path(value).expanduser()).resolve()


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``"#RRGGBB"``: 0.0 (black) .. 1.0 (white).

    Each channel ``c = v / 255`` is linearised: ``c / 12.92`` if ``c <= 0.04045``, else
    ``((c + 0.055) / 1.055) ** 2.4``; then ``L = 0.2126 R + 0.7152 G + 0.0722 B``.
    """
    linear = []
    for i in (1, 3, 5):
        c = int(colour[i:i + 2], 16) / 255
        linear.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = linear
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio ``(L_light + 0.05) / (L_dark + 0.05)``, from 1.0 to 21.0."""
    dark, light = sorted((relative_luminance(a), relative_luminance(b)))
    return (light + 0.05) / (dark + 0.05)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocationSettings(_Section):
    """Where the terminal stands: a stable code for the data and a name for people."""

    id: Slug = "balie-1"
    name: Name = "Balie 1"


class LanguageSettings(_Section):
    """The language a session starts in and the ones the visitor can switch to."""

    default: Lang = "nl"
    available: tuple[Lang, ...] = ("nl", "en")

    @model_validator(mode="after")
    def _default_available(self) -> "LanguageSettings":
        if len(set(self.available)) != len(self.available):
            raise problem("each language may be listed in available only once")
        if self.default not in self.available:
            raise problem(
                f"default language {self.default!r} must be one of available "
                f"({', '.join(self.available) or 'none'})"
            )
        return self


class TimeoutSettings(_Section):
    """Seconds: idle warning on a follow-up, reset after the warning, thank-you, repeat window."""

    idle_warning_s: Seconds = 30.0
    idle_reset_s: Seconds = 15.0
    thanks_s: Seconds = 5.0
    rapid_repeat_s: Seconds = 20.0

    @field_validator("idle_reset_s")
    @classmethod
    def _time_to_respond(cls, value: float) -> float:
        if value < MIN_IDLE_RESET_S:
            raise problem(
                f"must be at least {MIN_IDLE_RESET_S:g} seconds, got {value:g}; the visitor needs "
                "time to tap 'I'm still here' (WCAG 2.2.1)"
            )
        return value


class ThemeSettings(_Section):
    """House style: colours as ``"#RRGGBB"``, the logo file (``None``: show the name as text)."""

    municipality_name: Name = "Gemeente Voorbeeld"
    background: Colour = "#FFFFFF"
    surface: Colour = "#EEF2F7"
    primary: Colour = "#154273"
    on_primary: Colour = "#FFFFFF"
    text: Colour = "#1F2933"
    muted_text: Colour = "#4F5B67"
    accent: Colour = "#E17000"
    danger: Colour = "#B42318"
    logo: Path | None = Field(default_factory=lambda: (paths.assets_dir() / "logo.png").resolve())

    @field_validator("logo", mode="before")
    @classmethod
    def _logo_path(cls, value: Any, info: ValidationInfo) -> Path | None:
        if not isinstance(value, str):
            raise problem(f"must be a file path in quotes (\"\" for no logo), got {describe(value)}")
        return _resolve(value, info) if value.strip() else None

    @model_validator(mode="after")
    def _readable(self) -> "ThemeSettings":
        problems = []
        for fg, bg in CONTRAST_PAIRS:
            fg_colour, bg_colour = getattr(self, fg), getattr(self, bg)
            ratio = contrast_ratio(fg_colour, bg_colour)
            if ratio < MIN_CONTRAST:
                shown = int(ratio * 10) / 10  # round down: never claim a pass
                problems.append(
                    f"theme: {fg} colour {fg_colour} on {bg} {bg_colour} has contrast "
                    f"{shown}:1; at least {MIN_CONTRAST}:1 is needed"
                )
        if problems:
            raise problem(problems[0], "balie_list", problems=problems)
        return self

    def rgba(self, name: str) -> tuple[float, float, float, float]:
        """Colour ``name`` (e.g. ``"primary"``) as Kivy's ``(r, g, b, 1.0)`` with 0..1 floats."""
        if name not in COLOURS:
            raise ValueError(f"unknown theme colour {name!r}; use one of {', '.join(COLOURS)}")
        value = getattr(self, name)
        return tuple(int(value[i:i + 2], 16) / 255 for i in (1, 3, 5)) + (1.0,)


class AdminSettings(_Section):
    """The admin screen: a fleet-wide ``pin_hash`` ("" = none; ``balie-kiosk set-pin --print-hash``
    makes one; a PIN set on the terminal itself wins, see :mod:`kiosk.pin`), and seconds without
    a touch before the admin screen (``timeout_s``) or the PIN pad (``pin_pad_timeout_s``)
    gives way to the welcome screen."""

    pin_hash: StrictStr = ""
    timeout_s: Annotated[float, Field(strict=True, ge=10)] = 120.0
    pin_pad_timeout_s: Annotated[float, Field(strict=True, ge=10)] = 30.0

    @field_validator("pin_hash")
    @classmethod
    def _argon2_hash(cls, value: str) -> str:
        from kiosk.pin import is_encoded_hash

        if value.strip() and not is_encoded_hash(value):
            raise problem("must be an Argon2 hash as printed by `balie-kiosk set-pin --print-hash` "
                          "(never the PIN itself), or \"\" for none")
        return value.strip()


class DisplaySettings(_Section):
    """Window size in pixels and the Kivy touch input provider."""

    width: Pixels = 1280
    height: Pixels = 800
    touch_provider: Annotated[StrictStr, AfterValidator(_touch_provider)] = "sdl"


class BufferSettings(_Section):
    """The local buffer's folder; ``None``: ``--data-dir``, ``BALIE_DATA_DIR`` or the default."""

    data_dir: Path | None = None

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_path(cls, value: Any, info: ValidationInfo) -> Path:
        return _folder(value, info)


def _folder(value: Any, info: ValidationInfo) -> Path:
    """A folder path given in the file (relative: to the file's folder)."""
    if not isinstance(value, str) or not value.strip():
        raise problem(f"must be a folder path in quotes, got {describe(value)}")
    return _resolve(value, info)


def _time_of_day(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
        raise problem(f'must be a time of day as "HH:MM" (24-hour clock), got {describe(value)}')
    return value.strip()


class MaintenanceSettings(_Section):
    """The nightly upkeep of the buffer (``kiosk/upkeep.py``).

    At ``backup_time`` (local time, "HH:MM", plus up to ``jitter_s``) a copy of the
    buffer is written to ``backup_dir`` (default: ``backups`` in the data folder) and
    all but the newest ``backup_keep`` copies are deleted; responses central has had
    for more than ``retention_days`` are deleted from the buffer (never unsent ones).
    """

    backup_time: Annotated[StrictStr, AfterValidator(_time_of_day)] = "03:30"
    jitter_s: NonNegativeSeconds = 600.0
    backup_keep: Annotated[StrictInt, Field(ge=1, le=366)] = 7
    backup_dir: Path | None = None
    retention_days: Annotated[StrictInt, Field(ge=1, le=3660)] = 30

    @field_validator("backup_dir", mode="before")
    @classmethod
    def _backup_path(cls, value: Any, info: ValidationInfo) -> Path:
        return _folder(value, info)


class SyncSettings(_Section):
    """How and how often the terminal sends its answers to central (seconds unless named otherwise).

    ``interval_s`` between rounds, plus up to ``jitter_s`` random delay so terminals do not
    all call at once; a round that starts up to ``misfire_grace_s`` late still runs.
    ``batch_records`` responses per POST at most. Every request has a ``connect_timeout_s``
    and a ``read_timeout_s``; a whole round stops after ``deadline_s``. Failures back off
    (full jitter) from ``backoff_base_s`` up to ``backoff_cap_s``; central's Retry-After is
    honoured up to ``retry_after_cap_s``. ``nice``: how much lower the sync thread's CPU
    priority is than the rest of the app (Linux: added to the thread's nice value; 0: the same),
    so drawing the screen comes first when both want the processor.
    """

    interval_s: Seconds = 300.0
    jitter_s: NonNegativeSeconds = 60.0
    misfire_grace_s: Seconds = 600.0
    batch_records: Annotated[StrictInt, Field(ge=1, le=MAX_RECORDS)] = 300
    connect_timeout_s: Seconds = 5.0
    read_timeout_s: Seconds = 30.0
    deadline_s: Seconds = 120.0
    backoff_base_s: Seconds = 2.0
    backoff_cap_s: Seconds = 300.0
    retry_after_cap_s: Seconds = 600.0
    nice: Annotated[StrictInt, Field(ge=0, le=19)] = 10

    @model_validator(mode="after")
    def _cap_above_base(self) -> "SyncSettings":
        if self.backoff_cap_s < self.backoff_base_s:
            raise problem(
                f"backoff_cap_s ({self.backoff_cap_s:g}) must be at least backoff_base_s "
                f"({self.backoff_base_s:g})"
            )
        return self


def _time_range(value: str) -> str:
    try:
        start, end = parse_range(value)
    except ValueError as exc:
        raise problem(str(exc)) from None
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise problem(f"unknown time zone {describe(value)}; use an IANA name like "
                      "\"Europe/Amsterdam\"") from None
    return value


def _closed_date(value: Any) -> date:
    if isinstance(value, datetime):  # a TOML date-time: a day is meant
        raise problem(f"must be a date without a time, like \"2026-12-25\", got {value.isoformat()}")
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise problem(f"must be a date written YYYY-MM-DD, like \"2026-12-25\", got {describe(value)}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise problem(f"{value!r} is not a date: {exc}") from None


TimeRanges = tuple[Annotated[StrictStr, AfterValidator(_time_range)], ...]


class OpeningHoursSettings(_Section):
    """When the counter is open; ``enabled = false`` (the default) or no section: always open.

    Per weekday zero or more ranges of the town hall's wall clock in ``timezone``
    (``"08:30-12:30"``; ``"24:00"`` ends the day; ``[]``: closed that day), and
    ``closed_dates`` (public holidays) closed all day. :mod:`kiosk.opening_hours`
    does the arithmetic.
    """

    enabled: StrictBool = False
    timezone: Annotated[StrictStr, AfterValidator(_zone)] = DEFAULT_TIMEZONE
    mon: TimeRanges = ("08:30-17:00",)
    tue: TimeRanges = ("08:30-17:00",)
    wed: TimeRanges = ("08:30-17:00",)
    thu: TimeRanges = ("08:30-17:00",)
    fri: TimeRanges = ("08:30-17:00",)
    sat: TimeRanges = ()
    sun: TimeRanges = ()
    closed_dates: tuple[Annotated[date, BeforeValidator(_closed_date)], ...] = ()

    @field_validator(*DAY_KEYS)
    @classmethod
    def _no_overlaps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            check_day(value)
        except ValueError as exc:
            raise problem(str(exc)) from None
        return tuple(sorted(value))  # "HH:MM-HH:MM" sorts by time

    @model_validator(mode="after")
    def _opens_at_all(self) -> "OpeningHoursSettings":
        if self.enabled and not any(getattr(self, day) for day in DAY_KEYS):
            raise problem("enabled = true, but no day has opening hours, so the terminal would never "
                          "open; give the days their ranges, or set enabled = false (always open)")
        return self


class KioskSettings(_Section):
    """All settings of one terminal; ``load_settings()`` builds it."""

    questionnaire: Path = Field(default="questionnaires/standaard.toml", validate_default=True)
    location: LocationSettings = LocationSettings()
    languages: LanguageSettings = LanguageSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    theme: ThemeSettings = Field(default_factory=ThemeSettings)
    admin: AdminSettings = AdminSettings()
    display: DisplaySettings = DisplaySettings()
    buffer: BufferSettings = BufferSettings()
    sync: SyncSettings = SyncSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    opening_hours: OpeningHoursSettings = OpeningHoursSettings()
    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("questionnaire", mode="before")
    @classmethod
    def _questionnaire_file(cls, value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise problem(f"must be the questionnaire's file path in quotes, got {describe(value)}")
        path = _resolve(value, info)
        if not path.is_file():
            raise problem(f"file not found: {path}")
        return path

    @property
    def source_path(self) -> Path | None:
        """The file these settings came from; ``None`` for the built-in defaults."""
        return self._source_path

    @property
    def questionnaire_path(self) -> Path:
        """The questionnaire file (absolute)."""
        return self.questionnaire

    @property
    def data_dir(self) -> Path | None:
        """``[buffer] data_dir`` (absolute), or ``None`` when not set."""
        return self.buffer.data_dir


def load_settings(path: str | Path | None = None) -> KioskSettings:
    """Read and validate kiosk.toml at ``path``; ``None`` gives the built-in defaults.

    Raises ``ConfigError`` naming the file, the key and what is wrong.
    """
    if path is None:
        data, base, source = {}, paths.config_dir(), "built-in defaults"
    else:
        data, base, source = read_toml(path, ConfigError), Path(path).resolve().parent, str(path)
    return validate_settings_file(KioskSettings, data, base, source, path)
