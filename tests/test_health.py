"""sd_notify, the health monitor and the watchdog feeder, on real sockets and a real buffer."""

from __future__ import annotations

import socket
import sqlite3
import threading

import pytest

from kiosk.buffer import Buffer
from kiosk.health import HealthMonitor, Watchdog
from kiosk.sdnotify import notify, watchdog_period


@pytest.fixture
def notify_socket(tmp_path):
    """A datagram socket standing in for systemd's; yields (env, receive)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)

    def receive():
        return sock.recv(4096).decode()

    yield {"NOTIFY_SOCKET": str(path)}, receive
    sock.close()


def test_notify_sends_one_datagram_to_the_socket(notify_socket):
    env, receive = notify_socket
    assert notify("READY=1\nSTATUS=ok", env=env) is True
    assert receive() == "READY=1\nSTATUS=ok"


def test_notify_reaches_an_abstract_socket_too():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"balie-test-{threading.get_ident()}"
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_notify_without_systemd_or_with_a_dead_socket_is_harmless(tmp_path):
    assert notify("READY=1", env={}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


@pytest.mark.parametrize("env, pid, expected", [
    ({"WATCHDOG_USEC": "30000000"}, 1, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, 1, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "2"}, 1, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, 1, None),
    ({"WATCHDOG_USEC": "soon"}, 1, None),
    ({}, 1, None),
])
def test_the_watchdog_period_is_half_of_what_systemd_asks(env, pid, expected):
    assert watchdog_period(env=env, pid=pid) == expected


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def buf(tmp_path):
    with Buffer.open(tmp_path / "buffer.sqlite3") as b:
        b.warm_up()
        b.last_write_ok = None  # forget the commits of creating it: the probe must write
        yield b


def test_a_writable_buffer_is_healthy_and_probing_commits(buf):
    monitor = HealthMonitor(buf, probe_every_s=10)
    assert monitor.problem() == "the buffer has not been checked yet"
    monitor.probe()
    assert monitor.problem() is None
    con = sqlite3.connect(buf.path)
    assert con.execute("SELECT count(*) FROM meta WHERE key = 'health_probe_at'").fetchone() == (1,)
    con.close()


def test_a_recent_tap_commit_saves_the_probe_write(buf):
    clock = Clock()
    monitor = HealthMonitor(buf, probe_every_s=10, monotonic=clock)
    buf.last_write_ok = clock.t - 1  # a tap committed a second ago
    monitor.probe()
    con = sqlite3.connect(buf.path)
    assert con.execute("SELECT count(*) FROM meta WHERE key = 'health_probe_at'").fetchone() == (0,)
    con.close()
    assert monitor.problem() is None


def test_a_buffer_locked_by_another_process_is_unhealthy_until_it_is_free(buf):
    monitor = HealthMonitor(buf, probe_every_s=10)
    blocker = sqlite3.connect(buf.path, timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock (a stuck other writer)
    try:
        monitor.probe()  # waits out the busy timeout, then fails
        assert "buffer not writable" in monitor.problem()
        assert "locked" in monitor.problem()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    monitor.probe()
    assert monitor.problem() is None


def test_a_probe_that_stops_reporting_is_a_problem(buf):
    clock = Clock()
    monitor = HealthMonitor(buf, probe_every_s=10, monotonic=clock)
    monitor.probe()
    clock.t += 29
    assert monitor.problem() is None
    clock.t += 2  # more than three periods since the last probe finished
    assert "has not finished for 31 s" in monitor.problem()


def test_a_failed_tap_commit_is_a_problem_until_a_commit_succeeds(buf):
    monitor = HealthMonitor(buf, probe_every_s=10)
    monitor.probe()
    buf.last_write_error = "local buffer x: cannot store the answer: the disk is full"
    assert "the disk is full" in monitor.problem()
    monitor.probe()  # the probe commits: the storage works again
    assert monitor.problem() is None


def test_a_stopped_sync_scheduler_is_a_problem(buf):
    class Sync:
        class scheduler:
            running = True

    sync = Sync()
    monitor = HealthMonitor(buf, lambda: sync, probe_every_s=10)
    monitor.probe()
    assert monitor.problem() is None
    Sync.scheduler.running = False
    assert monitor.problem() == "the sync scheduler has stopped"


def test_the_watchdog_is_fed_only_while_healthy_and_the_reason_is_told_once(buf):
    sent = []
    clock = Clock()
    monitor = HealthMonitor(buf, probe_every_s=10, monotonic=clock)
    watchdog = Watchdog(monitor, notify=sent.append, period=5)
    watchdog.ready()
    assert sent == ["READY=1\nSTATUS=taking ratings"]
    assert watchdog.tick() is False  # not probed yet
    monitor.probe()
    assert watchdog.tick() is True and watchdog.tick() is True
    buf.last_write_error = "cannot store: read-only file system"
    assert watchdog.tick() is False and watchdog.tick() is False
    buf.last_write_error = None
    assert watchdog.tick() is True
    assert sent[1:] == ["STATUS=unhealthy: the buffer has not been checked yet",
                        "STATUS=taking ratings", "WATCHDOG=1", "WATCHDOG=1",
                        "STATUS=unhealthy: buffer not writable: cannot store: read-only file system",
                        "STATUS=taking ratings", "WATCHDOG=1"]


def test_a_full_disk_is_out_of_order_not_a_restart_reason_the_watchdog_is_fed_and_told(tmp_path):
    from tests.smallfs import fill, small_filesystem

    with small_filesystem(tmp_path / "fs", size_kib=2048) as folder:
        with Buffer.open(folder / "buffer.sqlite3") as buf:
            sent = []
            monitor = HealthMonitor(buf, probe_every_s=10)
            watchdog = Watchdog(monitor, notify=sent.append, period=5)
            monitor.probe()
            assert watchdog.tick() is True and monitor.notice() is None
            filler = fill(folder)
            buf.last_write_ok = None  # the last commit is not recent: the probe must write
            monitor.probe()  # a real commit, refused: SQLITE_FULL
            assert monitor.problem() is None
            assert monitor.notice().startswith("out of order: buffer not writable: ")
            assert "the disk is full" in monitor.notice()
            assert watchdog.tick() is True and watchdog.tick() is True
            filler.unlink()
            monitor.probe()
            assert monitor.notice() is None
            assert watchdog.tick() is True
    statuses = [m for m in sent if m.startswith("STATUS=")]
    assert len(statuses) == 2, sent  # told once when it began, once when it ended
    assert statuses[0].startswith("STATUS=out of order: buffer not writable: local buffer ")
    assert statuses[1] == "STATUS=taking ratings"
    assert sent.count("WATCHDOG=1") == 4


def test_a_buffer_opened_for_reading_only_is_out_of_order(tmp_path):
    import subprocess

    from tests.smallfs import small_filesystem

    with small_filesystem(tmp_path / "fs", size_kib=1024) as folder:
        Buffer.open(folder / "buffer.sqlite3").close()
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        try:
            with Buffer.open(folder / "buffer.sqlite3", read_only_fallback=True) as buf:
                monitor = HealthMonitor(buf, probe_every_s=10)
                monitor.probe()
                assert monitor.problem() is None
                assert "read-only file system" in monitor.notice()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)


def test_a_locked_buffer_stays_a_restart_reason_even_with_its_cause_known(buf):
    monitor = HealthMonitor(buf, probe_every_s=10)
    monitor.probe()
    buf.last_write_error, buf.last_write_cause = "cannot store: locked", "locked"
    assert monitor.problem() == "buffer not writable: cannot store: locked"
    assert monitor.notice() is None
