"""A small file system of its own for disk-full tests: a size-limited tmpfs mounted for the test.

Use::

    with small_filesystem(tmp_path / "fs", size_kib=512) as folder:
        ...  # files in `folder` get ENOSPC once 512 KiB are used
        fill(folder)  # take (almost) all of the free space

Mounting needs root (CI runs as root; so do the test machines). As another
user the tests that need it are skipped with the reason given, never passed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


def can_mount() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def small_filesystem(folder: Path, size_kib: int = 1024) -> Iterator[Path]:
    """Mount a ``size_kib`` tmpfs on ``folder`` (created) for the duration of the block."""
    if not can_mount():
        pytest.skip("mounting a small tmpfs for the disk-full test needs root "
                    "(CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs",
                    str(folder)], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file until the file system is full (less ``leave_bytes``); returns it."""
    filler = folder / "filler.bin"
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            st = os.statvfs(folder)
            if st.f_bavail * st.f_frsize <= leave_bytes:
                break
            try:
                os.write(fd, chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return filler
