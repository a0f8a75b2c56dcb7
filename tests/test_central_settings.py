"""central.toml: defaults, the shipped example, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.errors import ConfigError
from central.settings import CentralSettings, load_settings
from sync.protocol import MAX_BODY_BYTES, MAX_RECORDS

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "central.toml"


def test_built_in_defaults_are_sane():
    settings = load_settings(None, environ={})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("balie-central/central.sqlite3")
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8470)
    assert (settings.limits.max_records, settings.limits.max_body_bytes) == (MAX_RECORDS, MAX_BODY_BYTES)
    assert settings.export.round_time_to == "hour"


def test_the_shipped_central_toml_is_valid_and_equals_the_defaults():
    shipped = load_settings(SHIPPED, environ={})
    assert shipped.model_dump() == load_settings(None, environ={}).model_dump()


def test_balie_database_url_overrides_the_file_and_postgresql_gets_psycopg(tmp_path):
    path = tmp_path / "central.toml"
    path.write_text('database_url = "sqlite:///data/c.sqlite3"\n', encoding="utf-8")
    assert load_settings(path, environ={}).database_url == f"sqlite:///{tmp_path / 'data' / 'c.sqlite3'}"
    settings = load_settings(path, environ={"BALIE_DATABASE_URL": "postgresql://u@db/balie"})
    assert settings.database_url == "postgresql+psycopg://u@db/balie"


@pytest.mark.parametrize("text, message", [
    ('database_url = "mysql://x/y"', "database_url: database 'mysql' is not supported"),
    ('database_url = "sqlite://"', "database_url: needs a file for SQLite"),
    ('database_url = "not a url"', "database_url: is not a database URL"),
    ("[server]\nport = 70000", "server.port: must be at most 65535, got 70000"),
    ("[limits]\nmax_body_bytes = 10", "limits.max_body_bytes: must be at least 1024, got 10"),
    ('[export]\nround_time_to = "minute"', "export.round_time_to: must be one of"),
    ("[server\nport = 1", "line 1"),
])
def test_a_bad_file_names_the_key_and_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "central.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_settings_can_be_built_directly_for_tests(tmp_path):
    settings = CentralSettings(database_url=f"sqlite:///{tmp_path}/x.sqlite3")
    assert settings.database_url.endswith("x.sqlite3")
