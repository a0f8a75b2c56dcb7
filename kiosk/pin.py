"""The admin PIN: its rules, its slow hash (Argon2id), and where the terminal keeps it.

Use::

    check_pin_rules("4821")                    # PinRefused for "1111", "1234", "12", "12a4"
    encoded = hash_pin("4821")                 # "$argon2id$v=19$m=32768,t=3,p=2$…"
    verify_pin(encoded, "4821")                # True; a wrong PIN: False, in the same time
    PinStore(data_dir).save(encoded)           # <data dir>/admin-pin, mode 0600, atomic
    source = find_pin(settings.admin, PinStore(data_dir))   # PinSource, or None: no PIN set

Where the hash comes from (first found wins):

1. ``<data dir>/admin-pin``, written by ``balie-kiosk set-pin`` on this terminal;
2. ``[admin] pin_hash`` in ``kiosk.toml``: one hash for a whole fleet, rolled out
   with the config (``balie-kiosk set-pin --print-hash`` makes one).

The terminal's own PIN wins: setting one on a device is a deliberate act (the
fleet PIN leaked at one counter, say), and ``set-pin --clear`` returns it to the
fleet's. With neither, the admin screen cannot be opened.

Why these Argon2id parameters (:data:`ARGON2_PARAMETERS`): 32 MiB of memory,
3 passes, 2 lanes. One verify takes about 0.08 s on a 2-core x86 server core
(measured for ``docs/ARCHITECTURE.md``) and an estimated 0.3-0.5 s on a
Raspberry Pi 4 (Argon2 is memory-bound; a Pi moves memory 4-6x slower), which
is as slow as a staff member's "OK" can afford to be; 32 MiB fits a 1 GB Pi 3
next to the kiosk. A PIN of 4-8 digits has at most 10**8 values, so no hash can
keep a stolen file safe for long: the file is readable by the kiosk's user
only, and the real protection against guessing on the device is the growing
lockout (:mod:`kiosk.pin_lockout`). The parameters live in each hash, so a
hash made with other parameters (an older release, a fleet hash) still verifies.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.atomic_file import write_atomic
from kiosk.errors import BalieError

log = logging.getLogger(__name__)

PIN_FILE = "admin-pin"
MIN_DIGITS = 4
MAX_DIGITS = 8
#: Argon2id cost, see the module docstring (memory_cost in KiB).
ARGON2_PARAMETERS = {"time_cost": 3, "memory_cost": 32 * 1024, "parallelism": 2,
                     "hash_len": 32, "salt_len": 16}
#: What an encoded Argon2 hash looks like (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``).
ENCODED_HASH = re.compile(r"\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


class PinRefused(BalieError):
    """A new PIN breaks the rules (length, digits only, not trivial). Choose another one."""


class PinFileError(BalieError):
    """The PIN file cannot be read or written, or holds no valid hash.

    Safe to retry once the cause (permissions, disk) is fixed; ``set-pin`` rewrites a damaged file.
    """


def check_pin_rules(pin: str) -> str:
    """``pin`` if it is 4-8 digits and not trivial; else :class:`PinRefused` saying why.

    Trivial: one digit repeated (``0000``), a straight run up or down
    (``1234``, ``98765``), or a short pattern repeated (``1212``, ``123123``).
    """
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        raise PinRefused("the PIN must consist of digits only")
    if not MIN_DIGITS <= len(pin) <= MAX_DIGITS:
        raise PinRefused(f"the PIN must have {MIN_DIGITS} to {MAX_DIGITS} digits, "
                         f"this one has {len(pin)}")
    if len(set(pin)) == 1:
        raise PinRefused("the PIN must not be one digit repeated")
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
    if steps in ({1}, {-1}):
        raise PinRefused("the PIN must not be a straight run of digits (like 1234 or 4321)")
    for size in range(2, len(pin) // 2 + 1):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            raise PinRefused(f"the PIN must not repeat a pattern ({pin[:size]}…)")
    return pin


def hash_pin(pin: str, **parameters) -> str:
    """The encoded Argon2id hash of ``pin`` (rules checked first).

    ``parameters`` override :data:`ARGON2_PARAMETERS` (tests use cheap ones).
    """
    from argon2 import PasswordHasher  # loaded when used: not needed to start the kiosk

    check_pin_rules(pin)
    return PasswordHasher(**{**ARGON2_PARAMETERS, **parameters}).hash(pin)


def verify_pin(encoded: str, pin: str) -> bool:
    """True if ``pin`` matches the hash ``encoded``.

    Always runs the full Argon2 computation with the hash's own parameters and
    compares in constant time (libargon2), so a near miss takes as long as a
    hit: the time it takes tells nothing. ``pin`` is not checked against the
    rules here (a fleet hash may be older than them). A hash that is not an
    Argon2 hash raises :class:`PinFileError`.
    """
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(encoded, pin)
    except VerificationError:
        return False
    except InvalidHashError:
        raise PinFileError("the stored PIN hash is not an Argon2 hash; set the PIN again "
                           "with `balie-kiosk set-pin`") from None


def is_encoded_hash(text: str) -> bool:
    """True if ``text`` looks like an encoded Argon2 hash (what ``[admin] pin_hash`` must hold)."""
    return bool(ENCODED_HASH.fullmatch(text.strip()))


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600 from the first byte (raises OSError).

    The folder is made if missing; see :func:`kiosk.atomic_file.write_atomic`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, 0o600)


@dataclass(frozen=True)
class PinSource:
    """The hash in force and where it came from: ``"terminal"`` (the data folder) or ``"config"``."""

    encoded: str
    origin: str
    path: str  # the file it was read from

    def __repr__(self) -> str:  # the hash stays out of logs
        return f"PinSource(origin={self.origin!r}, path={self.path!r})"


class PinStore:
    """``<data dir>/admin-pin``: this terminal's own PIN hash (one line)."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / PIN_FILE

    def load(self) -> str | None:
        """The stored hash; ``None`` when no PIN is set here; a damaged file: :class:`PinFileError`."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise PinFileError(f"admin PIN file {self.path}: cannot read it: "
                               f"{getattr(err, 'strerror', None) or err}") from None
        if not is_encoded_hash(text):
            raise PinFileError(f"admin PIN file {self.path} holds no Argon2 hash; set the PIN "
                               "again with `balie-kiosk set-pin`")
        return text

    def save(self, encoded: str) -> None:
        """Store ``encoded`` (mode 0600, atomic)."""
        if not is_encoded_hash(encoded):
            raise PinFileError("refusing to store something that is not an Argon2 hash")
        try:
            write_private_file(self.path, encoded.strip().encode("ascii") + b"\n")
        except OSError as err:
            raise PinFileError(f"admin PIN file {self.path}: cannot write it: "
                               f"{err.strerror or err}") from None

    def clear(self) -> bool:
        """Remove this terminal's own PIN; True if there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise PinFileError(f"admin PIN file {self.path}: cannot remove it: "
                               f"{err.strerror or err}") from None
        return True


def find_pin(admin_settings, store: PinStore) -> PinSource | None:
    """The PIN hash in force: the terminal's own file, else ``[admin] pin_hash``; ``None``: no PIN.

    A damaged own file raises :class:`PinFileError` (it does not silently fall
    back to the fleet's PIN: that would reopen a PIN someone chose to replace).
    """
    own = store.load()
    if own is not None:
        return PinSource(own, "terminal", str(store.path))
    fleet = (getattr(admin_settings, "pin_hash", "") or "").strip()
    if fleet:
        return PinSource(fleet, "config", "kiosk.toml [admin] pin_hash")
    return None


def describe_pin(admin_settings, store: PinStore) -> tuple[str, str]:
    """``(state, text)`` for ``balie-kiosk status``; state: terminal, config, none or error."""
    try:
        source = find_pin(admin_settings, store)
    except PinFileError as err:
        return "error", str(err)
    if source is None:
        return "none", ("not set: the admin screen cannot be opened "
                        "(set one with `balie-kiosk set-pin`)")
    if source.origin == "terminal":
        return "terminal", f"set on this terminal ({store.path})"
    return "config", "the fleet PIN from kiosk.toml ([admin] pin_hash)"
