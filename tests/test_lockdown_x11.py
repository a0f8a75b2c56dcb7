"""Kiosk lockdown against the real terminal process: keys from xdotool, a close request over X11.

``balie-kiosk run`` (kiosk mode: fullscreen, no cursor) runs as its own process
on the test display. Escape, Alt+F4, F1 and Ctrl+Q are typed into its window
with xdotool (XTEST: as from a keyboard), and a window-close request
(``WM_DELETE_WINDOW``, what a window manager's close button sends) is sent
with python-xlib. After each, the process must still run, its window must
still be mapped and on top, and what it shows must be unchanged (no settings
panel, no quit, no other screen). SIGTERM (``systemctl stop``) does stop it,
and it leaves no log files behind (logs go to the journal).
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.terminal_process import terminal_process

pytestmark = pytest.mark.ui

KEYS = ("Escape", "alt+F4", "F1", "ctrl+q", "alt+F4")


def xdotool(*args: str, timeout: float = 30) -> str:
    tool = shutil.which("xdotool")
    assert tool, "xdotool is missing (Debian package xdotool; scripts/_bootstrap.sh installs it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True,
                          timeout=timeout).stdout.strip()


class X:
    """The few X11 requests the test needs, through python-xlib."""

    def __init__(self):
        from Xlib import display

        self.display = display.Display()
        self.root = self.display.screen().root

    def find(self, pid: int, seconds: float = 90) -> int:
        """The mapped top-level window of process ``pid`` (by ``_NET_WM_PID``), waiting for it."""
        from Xlib import X as Xc

        pid_atom = self.display.intern_atom("_NET_WM_PID")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for child in self.root.query_tree().children:
                prop = child.get_full_property(pid_atom, Xc.AnyPropertyType)
                if prop and prop.value and prop.value[0] == pid \
                        and child.get_attributes().map_state == Xc.IsViewable:
                    return child.id
            time.sleep(0.3)
        raise AssertionError(f"no window of process {pid} within {seconds} s")

    def window(self, wid: int):
        return self.display.create_resource_object("window", wid)

    def viewable(self, wid: int) -> bool:
        from Xlib import X as Xc

        return self.window(wid).get_attributes().map_state == Xc.IsViewable

    def top_level_of(self, wid: int) -> int:
        window = self.window(wid)
        while True:
            parent = window.query_tree().parent
            if parent.id == self.root.id:
                return window.id
            window = parent

    def topmost_viewable(self) -> int:
        """The top-most mapped child of the root (query_tree lists bottom to top)."""
        from Xlib import X as Xc

        children = [c for c in self.root.query_tree().children
                    if c.get_attributes().map_state == Xc.IsViewable]
        return children[-1].id

    def pixels(self, wid: int) -> bytes:
        from Xlib import X as Xc

        geometry = self.window(wid).get_geometry()
        return self.window(wid).get_image(0, 0, geometry.width, geometry.height,
                                          Xc.ZPixmap, 0xFFFFFFFF).data

    def request_close(self, wid: int) -> None:
        from Xlib import X as Xc
        from Xlib.protocol import event

        protocols = self.display.intern_atom("WM_PROTOCOLS")
        delete = self.display.intern_atom("WM_DELETE_WINDOW")
        window = self.window(wid)
        message = event.ClientMessage(window=window, client_type=protocols,
                                      data=(32, [delete, Xc.CurrentTime, 0, 0, 0]))
        window.send_event(message, event_mask=Xc.NoEventMask)
        self.display.flush()

    def close(self):
        self.display.close()


@pytest.fixture
def terminal(tmp_path):
    x = X()
    try:
        with terminal_process(tmp_path) as process:  # kiosk mode: no --windowed
            yield process, x.find(process.pid), x
    finally:
        x.close()


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)


def test_keys_and_a_close_request_leave_the_terminal_running_unchanged_and_in_front(terminal):
    process, wid, x = terminal
    settle(3)  # the first frames and the one-per-frame warm-up are done
    before = x.pixels(wid)
    top = x.top_level_of(wid)
    assert x.topmost_viewable() == top
    for key in KEYS:
        xdotool("windowfocus", "--sync", str(wid))
        xdotool("key", "--clearmodifiers", key)
        settle()
        assert process.poll() is None, f"the terminal exited after {key}"
        assert x.viewable(wid), f"the window is gone after {key}"
        assert x.topmost_viewable() == top, f"the window is not in front after {key}"
        assert x.pixels(wid) == before, f"the screen changed after {key}"
    x.request_close(wid)
    settle()
    assert process.poll() is None, "the terminal exited on a window-close request"
    assert x.viewable(wid) and x.topmost_viewable() == top
    assert x.pixels(wid) == before
    process.terminate()  # what `systemctl stop` sends: the one way to stop it from outside
    assert process.wait(30) == 0


def test_the_terminal_writes_no_log_files(tmp_path):
    """Logs go to stderr (the journal under systemd), never to files on the SD card."""
    x = X()
    try:
        with terminal_process(tmp_path) as process:
            x.find(process.pid)
            settle(3)
            process.terminate()
            assert process.wait(30) == 0
    finally:
        x.close()
    data = tmp_path / "data"
    assert (data / "buffer.sqlite3").exists()
    assert not (data / "kivy" / "logs").exists()
    assert [p for p in data.rglob("*") if p.suffix in (".txt", ".log")] == []
    assert b"Start application main loop" in (tmp_path / "terminal.log").read_bytes()


def test_the_same_close_request_does_close_a_windowed_terminal(tmp_path):
    """The control: the request reaches the app (so the kiosk test above can fail)."""
    x = X()
    try:
        with terminal_process(tmp_path, "--windowed") as process:
            wid = x.find(process.pid)
            settle(2)
            x.request_close(wid)
            assert process.wait(30) == 0
    finally:
        x.close()
