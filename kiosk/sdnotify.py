"""systemd's notification protocol (sd_notify): READY=1, WATCHDOG=1, STATUS=... to $NOTIFY_SOCKET.

Use::

    notify("READY=1")                 # False (and nothing sent) when not run by systemd
    period = watchdog_period()        # seconds between WATCHDOG=1, or None when no watchdog
    notify("WATCHDOG=1")

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named
in ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace); see
sd_notify(3). It is small and stable, and the Python bindings (``systemd-python``)
need libsystemd's headers to build; so it is written out here (20 lines) rather
than added as a compiled dependency.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Mapping

log = logging.getLogger(__name__)


def notify(state: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` to systemd; ``True`` if sent, ``False`` when not under systemd or on error."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        return True
    except OSError as err:  # systemd gone or the socket replaced: never fatal for the app
        log.warning("sd_notify %r to %s failed: %s", state.split("=", 1)[0], address, err)
        return False


def watchdog_period(*, env: Mapping[str, str] | None = None, pid: int | None = None
                    ) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``; ``None`` when not asked.

    ``$WATCHDOG_PID``, when set, must be this process (sd_watchdog_enabled(3)).
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watched = env.get("WATCHDOG_PID")
    if usec <= 0 or (watched and watched != str(os.getpid() if pid is None else pid)):
        return None
    return usec / 1e6 / 2
