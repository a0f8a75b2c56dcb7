"""The throwaway PostgreSQL cluster (tests/postgres.py, fixtures pg_cluster / pg_url)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from tests import postgres

_SEEN_URLS: list[str] = []


def test_cluster_runs_on_loopback_with_the_suite_settings(pg_cluster):
    assert pg_cluster.running
    with pg_cluster.connect() as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'listen_addresses', 'port', "
            "'unix_socket_directories')").fetchall())
    assert int(version) >= 130000
    assert settings["fsync"] == "off" and settings["synchronous_commit"] == "off"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert int(settings["port"]) == pg_cluster.port
    assert settings["unix_socket_directories"] == str(pg_cluster.socketdir)
    assert pg_cluster.startup_seconds < 5


def test_server_runs_as_postgres_when_root(pg_cluster):
    server = psutil.Process(pg_cluster.server_pid)
    assert "postgres" in server.name()
    if os.geteuid() == 0:
        assert server.username() == "postgres"
        assert server.uids().effective != 0
        assert pg_cluster.run_as == "postgres"
        assert os.stat(pg_cluster.datadir).st_uid == server.uids().effective
    else:
        assert server.uids().effective == os.geteuid()
        assert pg_cluster.run_as is None


def test_a_fresh_empty_database_per_test(pg_url):
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'public'")).scalar_one()
            assert tables == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("run", [1, 2])
def test_tests_do_not_see_each_others_data(pg_url, run):
    _SEEN_URLS.append(pg_url)
    metadata = sa.MetaData()
    answers = sa.Table("answers", metadata,
                       sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("value", sa.String(20), nullable=False))
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            existing = sa.inspect(conn).has_table("answers")
            assert not existing, "a previous test's table is visible"
            metadata.create_all(conn)
            conn.execute(answers.insert(), [{"value": f"run{run}-{i}"} for i in range(3)])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(answers.c.value).order_by(answers.c.id)).scalars()
            assert list(rows) == [f"run{run}-{i}" for i in range(3)]
    finally:
        engine.dispose()
    assert len(set(_SEEN_URLS)) == len(_SEEN_URLS)


def test_database_is_dropped_after_the_test_even_with_open_connections(pg_cluster):
    name = pg_cluster.unique_name("leftover")
    url = pg_cluster.create_database(name)
    engine = sa.create_engine(url)
    conn = engine.connect()                       # left open on purpose
    conn.execute(sa.text("SELECT 1"))
    pg_cluster.drop_database(name)
    with pg_cluster.connect() as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (name,)).fetchone()[0] == 0
    conn.invalidate()
    engine.dispose()


def test_start_cluster_standalone_durable_and_cleaned_up():
    cluster = postgres.start_cluster()           # default: fsync on, as the benchmarks want
    base, pid = cluster.base, cluster.server_pid
    try:
        url = cluster.create_database("bench")
        assert url == cluster.url("bench")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "on"
                assert conn.execute(sa.text("SHOW synchronous_commit")).scalar_one() == "on"
        finally:
            engine.dispose()
        assert cluster.startup_seconds < 5
    finally:
        cluster.stop()
    assert not base.exists()
    assert _gone(pid)
    cluster.stop()                                 # idempotent


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: the server is not our child; a container's PID 1 may be
    slow to reap it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_missing_binaries_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BALIE_PG_BINDIR", str(tmp_path))
    with pytest.raises(postgres.PostgresNotInstalled, match="scripts/test"):
        postgres.find_bindir()
    with pytest.raises(postgres.PostgresNotInstalled, match="scripts/test"):
        postgres.start_cluster()


def test_debian_binaries_are_preferred(monkeypatch):
    monkeypatch.delenv("BALIE_PG_BINDIR", raising=False)
    bindir = postgres.find_bindir()
    if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        assert str(bindir).startswith("/usr/lib/postgresql/")
