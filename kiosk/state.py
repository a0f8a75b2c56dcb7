"""The device state: which central this terminal sends to, as which device, with which token.

Use::

    store = DeviceStateStore(data_dir)
    store.enroll("https://balie.example.nl", device_id="d-7f3a", token="…")   # once, by an admin
    state = store.load()          # None: not enrolled (sync is off)
    state.central_url, state.device_id, state.token

The state lives in ``<data_dir>/device-state.json``. It holds a secret, so the
file is created with mode 0600 (never wider, not even for a moment) and
replaced atomically: written to a temporary file in the same folder, fsynced,
renamed over the old one, and the folder fsynced. A damaged or unreadable file
raises :class:`DeviceStateError` naming the file and what is wrong; it is
never silently treated as "not enrolled". The token never appears in logs,
``repr()`` or error messages.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kiosk.atomic_file import write_atomic
from kiosk.errors import BalieError

STATE_FILE = "device-state.json"
FORMAT = 1
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # sync.protocol.Id
_TOKEN = re.compile(r"[!-~]{8,512}")  # printable ASCII, no spaces: it goes into a header


class DeviceStateError(BalieError):
    """The device state file is damaged or unreadable, or enrolment values are invalid.

    Not safe to retry as is: enrol again (``balie-kiosk enroll``) or fix the file's
    permissions.
    """


@dataclass(frozen=True)
class DeviceState:
    """Where and as whom this terminal sends its answers."""

    central_url: str  # e.g. "https://balie.example.nl" (no trailing slash)
    device_id: str
    token: str = field(repr=False)
    enrolled_at: float | None = None

    def url(self, path: str) -> str:
        """``central_url`` joined with a protocol path such as ``/api/v1/batches``."""
        return self.central_url + path


def check_url(url: str) -> str:
    """``url`` without a trailing slash if it is an http(s) address with a host; else an error."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeviceStateError(
            f"central URL must start with https:// (or http://) and name a host, got {url!r}")
    if parts.query or parts.fragment:
        raise DeviceStateError(f"central URL must not have a query or fragment, got {url!r}")
    return url.rstrip("/")


def check_device_id(device_id: str) -> str:
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise DeviceStateError(
            f"device id must be 1-64 letters, digits or . _ : -, got {device_id!r}")
    return device_id


def check_token(token: str) -> str:
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        # Never echo the token itself.
        raise DeviceStateError(
            "token must be 8-512 printable characters without spaces (copy it exactly as "
            "`balie-central device add` printed it)")
    return token


class DeviceStateStore:
    """Reads and writes ``<data_dir>/device-state.json``."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / STATE_FILE

    def load(self) -> DeviceState | None:
        """The stored state; ``None`` when the terminal was never enrolled."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise DeviceStateError(f"device state {self.path}: cannot read it: "
                                   f"{err.strerror or err}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return DeviceState(
                central_url=check_url(data["central_url"]),
                device_id=check_device_id(data["device_id"]),
                token=check_token(data["token"]),
                enrolled_at=data.get("enrolled_at"),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, DeviceStateError) as err:
            what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise DeviceStateError(
                f"device state {self.path} is damaged ({what}); enrol the terminal again "
                "with `balie-kiosk enroll URL TOKEN --device-id ID`") from None

    def enroll(self, url: str, device_id: str, token: str, *, now: float | None = None
               ) -> DeviceState:
        """Check the values and store them (atomically, mode 0600); returns the new state."""
        import time

        state = DeviceState(central_url=check_url(url), device_id=check_device_id(device_id),
                            token=check_token(token),
                            enrolled_at=time.time() if now is None else now)
        self._write(state)
        return state

    def _write(self, state: DeviceState) -> None:
        body = json.dumps({"format": FORMAT, "central_url": state.central_url,
                           "device_id": state.device_id, "token": state.token,
                           "enrolled_at": state.enrolled_at}, indent=2).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, body, 0o600)
        except OSError as err:
            raise DeviceStateError(f"device state {self.path}: cannot write it: "
                                   f"{err.strerror or err}") from None
