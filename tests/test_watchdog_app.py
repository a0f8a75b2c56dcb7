"""The real terminal under a stand-in for systemd: READY=1, then WATCHDOG=1 while healthy.

A process runs ``balie-kiosk run --windowed`` on the test display with
``NOTIFY_SOCKET`` pointing at a datagram socket of this test and
``WATCHDOG_USEC=4000000`` (a ping every 2 s, the buffer probed as often). The watchdog pings must stop
when the UI loop is stopped (SIGSTOP) and when the buffer cannot take writes
(another process holds its write lock), and come back when that ends.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.terminal_process import terminal_process

pytestmark = pytest.mark.ui



class Systemd:
    """The notification socket; collects what the app sends."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = path

    def messages(self, seconds: float) -> list[str]:
        """Everything received within ``seconds``."""
        got, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        return got

    def wait_for(self, text: str, seconds: float) -> list[str]:
        got, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            got += self.messages(0.2)
            if any(text in m for m in got):
                return got
        raise AssertionError(f"no {text!r} within {seconds} s; got {got}")

    def quiet_for(self, text: str, seconds: float, within: float) -> None:
        """Wait (up to ``within`` s) until ``text`` has not come for ``seconds`` s in a row."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            if not any(text in m for m in self.messages(seconds)):
                return
        raise AssertionError(f"{text!r} kept coming for {within} s")


@pytest.fixture
def terminal(tmp_path):
    systemd = Systemd(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "4000000"}
    try:
        with terminal_process(tmp_path, "--windowed", env=env) as process:
            yield process, systemd, tmp_path / "data" / "buffer.sqlite3"
    finally:
        systemd.sock.close()


def test_ready_then_watchdog_pings_that_stop_when_the_ui_loop_stops(terminal):
    process, systemd, _buffer = terminal
    systemd.wait_for("READY=1", 90)
    systemd.wait_for("WATCHDOG=1", 10)
    pings = [m for m in systemd.messages(6.5) if "WATCHDOG=1" in m]
    assert len(pings) >= 2, pings
    os.kill(process.pid, signal.SIGSTOP)
    try:
        systemd.messages(0.5)  # what was on its way before the stop
        assert [m for m in systemd.messages(6) if "WATCHDOG=1" in m] == []
    finally:
        os.kill(process.pid, signal.SIGCONT)
    systemd.wait_for("WATCHDOG=1", 10)
    assert process.poll() is None


def test_watchdog_pings_stop_while_the_buffer_cannot_take_writes(terminal):
    process, systemd, buffer = terminal
    systemd.wait_for("READY=1", 90)
    systemd.wait_for("WATCHDOG=1", 10)
    blocker = sqlite3.connect(buffer, timeout=10, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the buffer's write lock, held by "another process"
    try:
        systemd.quiet_for("WATCHDOG=1", seconds=6, within=40)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    systemd.wait_for("WATCHDOG=1", 30)
    assert process.poll() is None
