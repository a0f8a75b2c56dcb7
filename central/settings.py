"""Central's settings: the central.toml model and its loader (every value has a default).

Use::

    settings = load_settings(Path("/etc/balie/central.toml"))   # or None: built-in defaults
    settings.database_url, settings.server.port, settings.limits.max_body_bytes
    settings.fleet.silent_after_s

Which file: ``--config``, else ``BALIE_CENTRAL_CONFIG``, else the built-in
defaults (:func:`settings_path`). ``BALIE_DATABASE_URL`` overrides
``database_url`` from any source. A bad file raises
:class:`~central.errors.ConfigError` naming the key and what is wrong.
A relative SQLite path resolves against the config file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from central.errors import ConfigError
from kiosk.configfile import describe, problem, read_toml, validate_settings_file
from sync.protocol import MAX_BODY_BYTES, MAX_RECORDS

CONFIG_ENV = "BALIE_CENTRAL_CONFIG"
DATABASE_ENV = "BALIE_DATABASE_URL"
#: A body cap above this is refused: one request should never hold this much memory.
MAX_BODY_CAP = 64 * 1024 * 1024
#: Drivers central is tested with; ``postgresql://`` is read as ``postgresql+psycopg://``.
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def default_database_url() -> str:
    """``sqlite:///<user data dir of 'balie-central'>/central.sqlite3``."""
    folder = Path(platformdirs.user_data_dir("balie-central", appauthor=False))
    return f"sqlite:///{folder / 'central.sqlite3'}"


def settings_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file to read: ``explicit`` (``--config``), else ``$BALIE_CENTRAL_CONFIG``, else None."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    """Where ``balie-central serve`` listens, and what it tells a client to wait when busy."""

    host: Annotated[StrictStr, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 8470
    retry_after_s: Annotated[StrictInt, Field(ge=1, le=3600)] = 30


class LimitSettings(_Section):
    """Per request: at most ``max_records`` responses and ``max_body_bytes`` (after gunzip)."""

    max_records: Annotated[StrictInt, Field(ge=1, le=MAX_RECORDS)] = MAX_RECORDS
    max_body_bytes: Annotated[StrictInt, Field(ge=1024, le=MAX_BODY_CAP)] = MAX_BODY_BYTES


class ExportSettings(_Section):
    """``round_time_to``: the export's time column is rounded down to this (privacy)."""

    round_time_to: Literal["hour", "day", "none"] = "hour"


class FleetSettings(_Section):
    """When central calls a device unhealthy (:mod:`central.fleet`), and how often it checks.

    ``silent_after_s``: nothing (batch or heartbeat) received for this long → silent.
    ``no_ratings_after_s``: the last heartbeat reports at least this much opening time
    since the device's last recorded response → no ratings. ``check_interval_s``: how
    often ``serve`` looks, logging each change of state once.
    """

    silent_after_s: Annotated[StrictInt, Field(ge=60, le=30 * 86400)] = 1800
    no_ratings_after_s: Annotated[StrictInt, Field(ge=60, le=30 * 86400)] = 7200
    check_interval_s: Annotated[StrictInt, Field(ge=1, le=3600)] = 60


class MessageSettings(_Section):
    """The current overall grade next to the message to visitors (:mod:`central.messages`).

    ``grade_days``: the grade is the mean of the overall question over this many
    days. ``grade_min_n``: it is shown only from this many answers at a
    location (privacy: never for a small location, nor a quiet counter where one
    staff member could be recognised). ``grade_cache_s``: central computes it at
    most once per location in this many seconds.
    """

    grade_days: Annotated[StrictInt, Field(ge=1, le=3660)] = 90
    grade_min_n: Annotated[StrictInt, Field(ge=30, le=10_000_000)] = 100
    grade_cache_s: Annotated[StrictInt, Field(ge=0, le=86400)] = 300


class CentralSettings(_Section):
    """All settings of one central service; :func:`load_settings` builds it.

    Tests build it directly: ``CentralSettings(database_url="sqlite:///x.sqlite3")``.
    """

    database_url: StrictStr = Field(default_factory=default_database_url)
    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    export: ExportSettings = ExportSettings()
    fleet: FleetSettings = FleetSettings()
    message: MessageSettings = MessageSettings()
    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("database_url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not value.strip():
            raise problem(f"must be a database URL in quotes (like \"sqlite:///central.sqlite3\" or "
                          f"\"postgresql+psycopg://user@host/balie\"), got {describe(value)}")
        return normalise_url(value.strip(), (info.context or {}).get("base_dir"))

    @property
    def source_path(self) -> Path | None:
        """The file these settings came from; ``None`` for the built-in defaults."""
        return self._source_path


def normalise_url(url: str, base_dir: str | os.PathLike | None = None) -> str:
    """Check ``url`` names a supported database; resolve a relative SQLite path.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (the
    driver central ships with). Raises a validation problem otherwise.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise problem(f"is not a database URL: {describe(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in DRIVERS:
        raise problem(f"database {parsed.drivername!r} is not supported; use sqlite:///FILE "
                      "or postgresql+psycopg://USER@HOST/DB")
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise problem("needs a file for SQLite (like \"sqlite:///central.sqlite3\"); an "
                          "in-memory database would lose every answer on restart")
        path = Path(database).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or Path.cwd()) / path
        parsed = parsed.set(database=str(path.resolve()))
    return parsed.render_as_string(hide_password=False)


def load_settings(path: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None) -> CentralSettings:
    """Read and validate central.toml at ``path``; ``None`` gives the built-in defaults.

    ``environ`` (default ``os.environ``): ``BALIE_DATABASE_URL`` there wins over
    the file. Raises :class:`ConfigError` naming the file, the key and what is wrong.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        data, base, source = {}, Path.cwd(), "built-in defaults"
    else:
        data, base, source = read_toml(path, ConfigError), Path(path).resolve().parent, str(path)
    env_url = environ.get(DATABASE_ENV)
    if env_url is not None:
        data = {**data, "database_url": env_url}
        source = f"{source} (database_url from ${DATABASE_ENV})"
    return validate_settings_file(CentralSettings, data, base, source, path, ConfigError)
