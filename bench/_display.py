"""A private Xvfb display for benches that need a window (same approach as tests/conftest.py).

Use::

    from _display import ensure_display
    ensure_display()          # starts Xvfb and sets DISPLAY only when DISPLAY is unset

The server is stopped when the process exits. A missing Xvfb is an error with
a hint, never a silent skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess

SCREEN = "1280x800x24"

_server: subprocess.Popen | None = None


def _stop() -> None:
    global _server
    if _server is not None:
        _server.terminate()
        try:
            _server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _server.kill()
            _server.wait()
        _server = None


def ensure_display(screen: str = SCREEN) -> str:
    """Return the DISPLAY to use; start a private Xvfb first if none is set."""
    global _server
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"]
    binary = shutil.which("Xvfb")
    if binary is None:
        raise SystemExit("Xvfb is not installed and DISPLAY is not set: "
                         "apt-get install xvfb (or run under a desktop session)")
    read_fd, write_fd = os.pipe()
    _server = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        _stop()
        raise SystemExit("Xvfb did not start (no display number reported)")
    atexit.register(_stop)
    os.environ["DISPLAY"] = f":{number}"
    return os.environ["DISPLAY"]
