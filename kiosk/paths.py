"""Where the kiosk finds its shipped resources and keeps its data.

Shipped resources (``config/``, ``assets/``) live at the project root in a
source checkout and under ``<prefix>/share/balie`` in an installed package.
The data directory holds the buffer and device state; ``--data-dir`` or
``BALIE_DATA_DIR`` override the platform default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resource_root() -> Path:
    """The folder that holds ``config/`` and ``assets/``.

    ``BALIE_RESOURCE_DIR`` wins; then a source checkout; then the installed
    share folder.
    """
    env = os.environ.get("BALIE_RESOURCE_DIR")
    if env:
        return Path(env)
    if (_PROJECT_ROOT / "config" / "kiosk.toml").is_file():
        return _PROJECT_ROOT
    return Path(sys.prefix) / "share" / "balie"


def config_dir() -> Path:
    """The shipped example/default configuration folder."""
    return resource_root() / "config"


def assets_dir() -> Path:
    """The shipped images (logo placeholder and the like)."""
    return resource_root() / "assets"


def default_data_dir() -> Path:
    """The platform's per-user data folder for Balie (e.g. ``~/.local/share/balie``)."""
    import platformdirs  # only when no data folder is given (start-up time counts)

    return Path(platformdirs.user_data_dir("balie", appauthor=False))


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: ``explicit`` (``--data-dir``), else ``BALIE_DATA_DIR``, else the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("BALIE_DATA_DIR")
    if env:
        return Path(env)
    return default_data_dir()
