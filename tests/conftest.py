"""Shared fixtures: Kivy set up for tests, a private Xvfb display, the real app on it.

Kivy reads its environment and config at import, so this module sets them
before anything imports Kivy. Xvfb is started here when no DISPLAY is set; a
missing Xvfb is an error (scripts/test installs it), never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_KIVY_HOME = tempfile.mkdtemp(prefix="balie-kivy-home-")
os.environ["KIVY_HOME"] = _KIVY_HOME
os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_NO_FILELOG"] = "1"
os.environ["KIVY_CLIPBOARD"] = "sdl2"
os.environ.setdefault("KIVY_LOG_LEVEL", "warning")

_XVFB: subprocess.Popen | None = None


def _start_xvfb() -> None:
    global _XVFB
    binary = shutil.which("Xvfb")
    if binary is None:
        raise pytest.UsageError("Xvfb is not installed: run scripts/test (it installs xvfb) "
                                "or apt-get install xvfb")
    read_fd, write_fd = os.pipe()
    _XVFB = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        raise pytest.UsageError("Xvfb did not start (no display number reported)")
    os.environ["DISPLAY"] = f":{number}"


def pytest_configure(config):
    if not os.environ.get("DISPLAY"):
        _start_xvfb()


def pytest_unconfigure(config):
    if _XVFB is not None:
        _XVFB.terminate()
        _XVFB.wait(timeout=10)
    shutil.rmtree(_KIVY_HOME, ignore_errors=True)


@pytest.fixture
def kiosk(tmp_path):
    """The real app on the real (virtual) window, with a fresh buffer and short timeouts.

    Yields a :class:`tests.kivy_driver.Driver`; the clock is controlled by it.
    """
    from tests.kivy_driver import start_app

    driver = start_app(tmp_path)
    try:
        yield driver
    finally:
        driver.close()


SHIPPED = Path(__file__).resolve().parent.parent / "config"


# --- PostgreSQL: one throwaway cluster per test session (tests/postgres.py) ---

@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL cluster on 127.0.0.1, started on first use, deleted at the end.

    fsync and synchronous_commit are off (suite only). Missing server binaries
    fail the test with how to install them (scripts/test does), never a skip.
    """
    from tests.postgres import PostgresNotInstalled, start_cluster

    try:
        cluster = start_cluster(fast=True)
    except PostgresNotInstalled as exc:
        missing = str(exc)
    else:
        missing = None
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster, request):
    """A fresh, empty database on the session cluster: ``postgresql+psycopg://...``.

    Dropped (open connections closed) after the test.
    """
    name = pg_cluster.unique_name(request.node.name)
    url = pg_cluster.create_database(name)
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path, monkeypatch):
    """A fresh, migrated central database (SQLite, then PostgreSQL), also named in
    BALIE_DATABASE_URL for the CLI. A test module may define its own ``database``."""
    from tests.central_fixtures import central_settings, fresh_database, migrate

    url = fresh_database(request, tmp_path)
    monkeypatch.setenv("BALIE_DATABASE_URL", url)
    monkeypatch.delenv("BALIE_CENTRAL_CONFIG", raising=False)
    migrate(central_settings(url))
    return url


@pytest.fixture
def engine(database):
    """An engine on ``database``, disposed after the test."""
    from central.db import make_engine

    engine = make_engine(database)
    yield engine
    engine.dispose()
