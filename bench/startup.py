"""Start to first interactive frame: the real terminal against a bare Kivy hello-world.

Run::

    .venv/bin/python bench/startup.py               # 7 runs of each, alternating
    .venv/bin/python bench/startup.py -n 15 --dir /var/lib/balie

Each run is a fresh process. The two contenders:

* ``kiosk``: ``kiosk.cli.main(["run", "--windowed", "--data-dir", DIR])``,
  i.e. ``balie-kiosk run --windowed --data-dir DIR`` with the built-in config
  (every ``BALIE_*`` and ``KIVY_*`` variable removed from its environment), on
  a buffer that exists (created by the discarded warm-up run, as on a
  terminal that reboots);
* ``hello``: a Kivy ``App`` whose root is one ``Button``, with the same Kivy
  environment and config (``kiosk.kivy_setup``: 1280x800, windowed, mouse
  input, its own persistent KIVY_HOME).

"First interactive frame", the same for both: the first buffer swap
(``Window.flip``) that returns after the app's ``on_start`` event, which Kivy
fires once ``build()`` has returned and the root widget is on the window. From
then on the main loop runs and a touch is handled in the next frame. The time
is ``CLOCK_MONOTONIC`` (system-wide) at that moment in the child minus the
parent's stamp taken just before ``Popen``: interpreter start, imports, config,
window, GL, kv, building the screens, opening the buffer, the first draw. The
hook is in ``bench/_startup_child.py``; both children run through it.

The project's own modules are compiled to bytecode first, as a real installation
has them (:func:`compile_project`). One discarded run of each warms the OS file cache (and creates the buffer and
the Kivy homes); then ``-n`` rounds, the order within a round alternating
(kiosk first, then hello first). Prints median and p90 of both, the phases, and
the ratio of the medians against the target (<= 1.5x). Exit status 1 when
over target (0 with ``--no-check``). A private Xvfb is started when DISPLAY is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

CHILD = BENCH / "_startup_child.py"
TARGET_RATIO = 1.5
CONTENDERS = ("kiosk", "hello")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (as in bench/tap_latency.py)."""
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BALIE_", "KIVY_"))}
    env["PYTHONDONTWRITEBYTECODE"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    if not env["PYTHONDONTWRITEBYTECODE"]:
        del env["PYTHONDONTWRITEBYTECODE"]
    return env


def run_once(which: str, folder: Path, timeout: float) -> dict[str, float]:
    """One fresh child; returns seconds from launch to each mark."""
    argv = [sys.executable, str(CHILD), which, str(folder)]
    env = _child_env()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{which}: no first frame within {timeout} s\n{err[-2000:]}")
    marks = None
    for line in out.splitlines():
        if line.startswith("BENCH_STARTUP "):
            marks = json.loads(line.split(" ", 1)[1])
    if proc.returncode != 0 or marks is None:
        raise RuntimeError(f"{which}: exit status {proc.returncode}, first frame "
                           f"{'reported' if marks else 'not reported'}\n{err[-2000:]}")
    return {name: stamp - t0 for name, stamp in marks.items()}


def compile_project() -> str:
    """Write the project's bytecode (``__pycache__``), as ``pip install`` does on a terminal.

    Installed packages (Kivy, SQLAlchemy, ...) were compiled when pip installed
    them; the project's own modules, installed editable in a checkout, are not,
    and with ``PYTHONDONTWRITEBYTECODE=1`` (set on these machines) every start
    would compile them again: ~100 ms the hello-world never pays and a terminal
    installed by ``scripts/install-kiosk`` does not either. ``compileall``
    writes the files regardless of that variable; Python reads them either way.
    """
    import compileall

    ok = all(compileall.compile_dir(str(ROOT / package), quiet=1)
             for package in ("kiosk", "sync"))
    return "project compiled (as installed)" if ok else "project NOT fully compiled"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=7, help="measured runs of each (default 7)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="parent folder for the data dir and Kivy homes "
                         "(default: a temp dir inside the project, on disk)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run (default 120)")
    ap.add_argument("--no-check", action="store_true",
                    help="exit 0 whatever the ratio (the suite's smoke test: structure, not speed)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")

    from _display import ensure_display

    display = ensure_display()
    compiled = compile_project()
    base = args.dir or ROOT
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-startup-", dir=base) as tmp:
        folders = {"kiosk": Path(tmp) / "data", "hello": Path(tmp) / "hello-kivy-home"}
        print(f"startup: {args.runs} runs each after 1 discarded warm-up run each; "
              f"display {display}; files in {base}; bytecode: {compiled}", flush=True)
        for which in CONTENDERS:  # warm the OS file cache; create buffer and Kivy homes
            run_once(which, folders[which], args.timeout)
        runs: dict[str, list[dict[str, float]]] = {w: [] for w in CONTENDERS}
        for r in range(args.runs):
            order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
            for which in order:
                marks = run_once(which, folders[which], args.timeout)
                runs[which].append(marks)
                print(f"  run {r + 1:>2} {which:<6} {marks['first_frame'] * 1e3:8.1f} ms", flush=True)

    total = {w: [m["first_frame"] for m in runs[w]] for w in CONTENDERS}
    print()
    print(f"{'start -> first interactive frame':<34}{'median ms':>11}{'p90 ms':>9}"
          f"{'min ms':>9}{'max ms':>9}")
    for which in CONTENDERS:
        vals = total[which]
        print(f"{which:<34}{statistics.median(vals) * 1e3:>11.1f}{percentile(vals, 90) * 1e3:>9.1f}"
              f"{min(vals) * 1e3:>9.1f}{max(vals) * 1e3:>9.1f}")
    print()
    print("phases, median ms (launch -> interpreter running -> on_start -> first frame)")
    for which in CONTENDERS:
        interp = statistics.median(m["child_start"] for m in runs[which])
        start = statistics.median(m["on_start"] - m["child_start"] for m in runs[which])
        frame = statistics.median(m["first_frame"] - m["on_start"] for m in runs[which])
        print(f"  {which:<8}{interp * 1e3:8.1f}{start * 1e3:10.1f}{frame * 1e3:10.1f}")
    ratio = statistics.median(total["kiosk"]) / statistics.median(total["hello"])
    p90_ratio = percentile(total["kiosk"], 90) / percentile(total["hello"], 90)
    ok = ratio <= TARGET_RATIO
    print()
    print(f"ratio kiosk/hello, median: {ratio:.2f}x (p90: {p90_ratio:.2f}x); "
          f"target <= {TARGET_RATIO}x: {'PASS' if ok else 'FAIL'}")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
