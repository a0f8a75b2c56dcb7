"""Smoke tests of the benches (bench/*.py): tiny runs, figures present, exit 0.

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


def test_ingest_bench_prints_its_figures(tmp_path):
    # A real (tiny) run: its own PostgreSQL cluster, central in a uvicorn process, 2 devices.
    out = run_bench("ingest.py", "--devices", "2", "--batches", "1", "--records", "20",
                    "--rounds", "1", "--no-check", tmp_path=tmp_path)
    assert "fsync=on, synchronous_commit=on" in out, out
    row = re.search(rf"^\s+1\s+central,copy,keyed\s+(\d+)\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})"
                    rf"\s+{NUMBER}x$", out, re.M)
    assert row and int(row.group(1)) > 2 * 20 * 7 - 1, out           # 7-8 answers per response
    assert all(float(row.group(i)) > 0 for i in (2, 3, 4)), out
    for label in ("central ingest", "raw COPY into staging", "raw COPY into central's own tables"):
        assert re.search(rf"^\s+{re.escape(label)}.*\s{NUMBER} answers/s$", out, re.M), out
    assert re.search(rf"^ratio central/COPY, medians: {NUMBER}x", out, re.M), out
    for which in ("central", "copy", "keyed"):
        assert re.search(rf"^\s+{which}\s+{NUMBER} /\s+{NUMBER} /\s+{NUMBER} /\s+{NUMBER}; "
                         rf"wall\s+{NUMBER}$", out, re.M), out
    assert re.search(r"^target >= 20000 answers/s: (PASS|FAIL)$", out, re.M), out
    assert re.search(r"^target >= 0\.35x raw COPY: (PASS|FAIL)$", out, re.M), out


# --------------------------------------------------------------------- sync benches
# bench/drain.py and bench/ui_during_sync.py on a 2 000-answer backlog (a real PostgreSQL
# cluster and central, as the full runs): figures printed, exit 0 with --no-check.


def test_drain_bench_prints_its_figures(tmp_path):
    out = run_bench("drain.py", "--answers", "2000", "--sweep", "100", "--dir", str(tmp_path),
                    "--no-check", tmp_path=tmp_path)
    backlog = re.search(r"^backlog: (\d+) answers, (\d+) visitors", out, re.M)
    assert backlog and int(backlog.group(1)) == 2000, out
    visitors = int(backlog.group(2))
    assert 200 < visitors < 400, out  # about 6.7 answers per visitor
    rows = re.findall(rf"^\s+(\d+)(\*| )\s+(\d+)\s+(\d+)\s+(\d+)\s+({NUMBER})\s+(\d+)\s+(\d+)"
                      rf"\s+(\d+)/(\d+)$", out, re.M)
    assert [(int(r[0]), r[1]) for r in rows] == [(300, "*"), (100, " ")], out
    for row in rows:
        assert (int(row[8]), int(row[9])) == (visitors, 2000), out  # stored by central
    assert re.search(r"stored exactly once by central \(all drains\): yes$", out, re.M), out
    for label in ("pending\\(\\)", "model_dump_json", "gzip.compress", "HTTP POST",
                  "of which inside central's app \\(batches\\)", "mark_sent\\(\\)"):
        assert re.search(rf"^\s+{label}.*\s{NUMBER} s\s+{NUMBER} %", out, re.M), (label, out)
    assert re.search(rf"^best batch size: \d+ \({NUMBER} s\)", out, re.M), out
    assert re.search(rf"^drain of 2000 answers, shipped batch 300: {NUMBER} s, \d+ answers/s; "
                     r"target <= 10 s: (PASS|FAIL)$", out, re.M), out
    assert not any(p.name.startswith("bench-drain-") for p in tmp_path.iterdir())


def test_ui_during_sync_bench_prints_its_figures(tmp_path):
    out = run_bench("ui_during_sync.py", "--answers", "2000", "--warmup", "0",
                    "--dir", str(tmp_path), "--no-check", tmp_path=tmp_path)
    for phase in ("baseline \\(no sync\\)", "during sync"):
        assert re.search(rf"^{phase}\s+\d+(\s+{NUMBER}){{4}}\s+\d+$", out, re.M), out
    assert len(re.findall(rf"^  swapped only\s+\d+(\s+{NUMBER}){{4}}\s*$", out, re.M)) == 2, out
    assert len(re.findall(rf"^  minus draw\+swap\s+\d+(\s+{NUMBER}){{4}}\s*$", out, re.M)) == 2
    drain = re.search(r"^drain while the UI ran: .* (\d+) responses sent .* central stored (\d+) "
                      r"responses", out, re.M)
    assert drain and int(drain.group(1)) == int(drain.group(2)) > 200, out
    assert re.search(r"^longest \d+ frames during sync", out, re.M), out
    assert re.search(rf"^longest frame during sync {NUMBER} ms \(baseline {NUMBER} ms\); "
                     rf"p99 {NUMBER} ms .*target <= 50 ms: (PASS|FAIL)$", out, re.M), out
    assert not any(p.name.startswith("bench-ui-sync-") for p in tmp_path.iterdir())


def test_report_bench_prints_its_figures(tmp_path):
    # A real (small) run: its own PostgreSQL cluster, one generated year, no copies.
    out = run_bench("report.py", "--answers", "100000", "--rounds", "1", "--no-check",
                    tmp_path=tmp_path)
    made = re.search(r"^generated one year through ingest: (\d+) responses, (\d+) answers", out,
                     re.M)
    assert made and 10_000 < int(made.group(1)) < 20_000, out
    copied = re.search(r"^copied 0x in SQL .*: (\d+) answers", out, re.M)
    assert copied and int(copied.group(1)) == int(made.group(2)), out
    for name in ("count", "figures", "report"):
        assert re.search(rf"^\s+{name}\s+{NUMBER} s\s+{NUMBER}x count$", out, re.M), (name, out)
    assert re.search(rf"^report / count\(\*\) = {NUMBER}x \(target <= 20x\): (met|NOT met)$",
                     out, re.M), out
