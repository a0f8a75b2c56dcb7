"""Replace a small file so that a power cut leaves the old one or the new one, never half of either.

Use::

    write_atomic(path, data)               # mode 0644
    write_atomic(path, data, 0o600)        # private from the first byte (tokens, PIN hash)
    write_atomic(path, data, durable=False)   # a cache: whole or absent, no fsync wait

Written to a temporary file in the same folder, fsynced, renamed over the old
one, and the folder fsynced. The folder must exist. Raises ``OSError``; the
temporary file is then removed and the old file is untouched.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename, fsync folder.

    ``durable=False`` skips both fsyncs, for caches that can be rebuilt: after a
    power cut the file may be old, empty or missing, so the reader must check
    what it reads.
    """
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # O_CREAT's mode does not apply to a leftover file or the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if durable:
        fsync_folder(folder)


def fsync_folder(folder: Path) -> None:
    """Make a rename or removal in ``folder`` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
