"""Smoke tests of bench/startup.py and bench/memory.py: tiny runs, figures present, exit 0.

These check that the benches work and print what docs/benchmarks.md quotes,
not how fast or small anything is: both run with ``--no-check``, so a missed
target does not fail the suite (the benches themselves are run by hand, see
bench/README.md). The benches run as subprocesses on the suite's Xvfb display
(DISPLAY is set by conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

pytestmark = [pytest.mark.ui, pytest.mark.slow]

NUMBER = r"\d+(?:\.\d+)?"


def run_bench(script: str, *args: str, tmp_path: Path) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (f"{script} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                                  f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc.stdout


def test_startup_bench_prints_its_figures(tmp_path):
    out = run_bench("startup.py", "-n", "2", "--dir", str(tmp_path), "--no-check",
                    tmp_path=tmp_path)
    for run in (1, 2):
        for which in ("kiosk", "hello"):
            assert re.search(rf"run\s+{run} {which}\s+{NUMBER} ms", out), out
    for which in ("kiosk", "hello"):
        # median, p90, min, max
        assert re.search(rf"^{which}\s+({NUMBER}\s+){{3}}{NUMBER}$", out, re.M), out
        # the three phases
        assert re.search(rf"^\s+{which}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$", out, re.M), out
    verdict = re.search(rf"ratio kiosk/hello, median: ({NUMBER})x \(p90: {NUMBER}x\); "
                        rf"target <= 1\.5x: (PASS|FAIL)", out)
    assert verdict, out
    assert float(verdict.group(1)) > 0
    assert not any(p.name.startswith("bench-startup-") for p in tmp_path.iterdir())


def test_memory_bench_prints_its_figures(tmp_path):
    flows, warmup, every = 6, 2, 3
    out = run_bench("memory.py", "--flows", str(flows), "--warmup", str(warmup),
                    "--every", str(every), "--seed", "3", "--dir", str(tmp_path), "--census",
                    "--no-check", tmp_path=tmp_path)
    rows = re.findall(rf"^\s+(\d+)\s+({NUMBER})\s+(-?{NUMBER})\s+{NUMBER}\s+widgets=\d+;", out, re.M)
    assert [int(r[0]) for r in rows] == [0, 3, 6], out
    mix = re.search(r"^flow mix: (.*)$", out, re.M)
    assert mix, out
    counts = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", mix.group(1))}
    assert set(counts) == {"full", "comment", "idle", "language", "still_here"}
    assert sum(counts.values()) == flows + warmup
    answers = re.search(r"^answers in buffer: (\d+)$", out, re.M)
    assert answers and int(answers.group(1)) >= flows + warmup, out  # >= one per visitor
    for label in ("RSS after warm-up", "RSS at end"):
        assert re.search(rf"^{label}\s+{NUMBER} MiB$", out, re.M), out
    assert re.search(rf"^growth\s+-?{NUMBER} MiB \(peak -?{NUMBER} MiB\)$", out, re.M), out
    assert re.search(rf"^slope\s+-?{NUMBER} KiB per 1000 flows$", out, re.M), out
    assert re.search(r"^target growth <= 5 MiB after warm-up: (PASS|FAIL)$", out, re.M), out
    assert not any(p.name.startswith("bench-memory-") for p in tmp_path.iterdir())
