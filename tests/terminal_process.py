"""The real terminal as a separate process on the test display, for tests that act from outside.

Use::

    with terminal_process(tmp_path, "--windowed", env={"NOTIFY_SOCKET": ...}) as process:
        ...                      # process.pid; its log is tmp_path / "terminal.log"

``balie-kiosk run --data-dir <tmp_path>/data [ARGS]`` with the test's DISPLAY
and no BALIE_* / KIVY_* variables from the outside. On exit it is resumed (if
stopped), asked to stop (SIGTERM) and killed if it does not within 15 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def terminal_process(tmp_path: Path, *args: str, env: dict | None = None
                     ) -> Iterator[subprocess.Popen]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BALIE_", "KIVY_"))}
    full_env.update(KIVY_NO_ARGS="1", PYTHONPATH=str(ROOT), **(env or {}))
    with open(tmp_path / "terminal.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--data-dir", str(tmp_path / "data"),
             *args], env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield process
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
