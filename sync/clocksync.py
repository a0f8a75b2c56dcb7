"""Is the system clock synchronised (NTP)? A small facade tests can stub.

Use::

    from sync.clocksync import clock_synced
    clock_synced()        # True / False, or None where the system cannot tell

Backend: ``timedatectl show -p NTPSynchronized --value`` (systemd). Where
``timedatectl`` is missing, fails or does not answer within a second, the
answer is ``None`` ("unknown"), never an exception.
"""

from __future__ import annotations

import shutil
import subprocess

TIMEOUT_S = 1.0


def clock_synced(timeout: float = TIMEOUT_S) -> bool | None:
    """True if systemd reports the clock as NTP-synchronised, False if not, None if unknown."""
    binary = shutil.which("timedatectl")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip().lower()
    if done.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"
