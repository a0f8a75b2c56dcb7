"""Tap → durable commit latency: Buffer.record_answer against a bare sqlite3 commit.

Run::

    .venv/bin/python bench/tap_latency.py            # 2000 taps each, temp dir next to the project
    .venv/bin/python bench/tap_latency.py -n 5000 --dir /var/lib/balie --profile

In one run it measures (a) the stdlib sqlite3 module inserting one row per
commit into a WAL + synchronous=FULL file and (b) ``Buffer.record_answer`` in
a realistic flow (a new response every ~8 answers; its first answer also
writes the response row), both on
files in the same folder, and prints p50/p99 and the ratio p99(b)/p99(a)
against the target (≤ 3×). Only the tap is timed: closing a finished
response happens on the thank-you screen, not in a tap. The two runs are interleaved in rounds so that a
slow patch of the disk hits both alike.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.buffer import Buffer  # noqa: E402

TARGET_RATIO = 3.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class BareSqlite:
    """(a): the floor — one INSERT per commit with the same durability settings."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(str(path), isolation_level=None)
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA synchronous = FULL")
        self.con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")

    def between(self) -> None:
        pass

    def tap(self, i: int) -> None:
        self.con.execute("BEGIN IMMEDIATE")
        self.con.execute("INSERT INTO t (v) VALUES (?)", (i,))
        self.con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


class BufferFlow:
    """(b): the kiosk's real path — a new response every ~8 answers."""

    QUESTIONS = [("totaal", "totaal"), ("wachttijd", "wachttijd"),
                 ("vriendelijkheid", "vriendelijkheid"), ("dienst", "dienst")]

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.buf = Buffer.open(path)
        self.rng = rng
        self.draft = None
        self.left = 0

    def between(self) -> None:
        """Untimed: the thank-you screen closes a finished response, a new visitor starts."""
        if self.left == 0:
            if self.draft is not None:
                self.buf.close_response(self.draft, "completed")
            self.draft = self.buf.new_draft(
                questionnaire_id="balie-standaard", questionnaire_version=1,
                location_id="stadhuis", language="nl")
            self.left = self.rng.randint(6, 10)  # about 8 answers per response

    def tap(self, i: int) -> None:
        qid, aspect = self.QUESTIONS[self.draft.answers % len(self.QUESTIONS)]
        value = self.rng.randint(1, 10) if qid != "dienst" else "paspoort"
        self.buf.record_answer(self.draft, question_id=qid, aspect=aspect, value=value)
        self.left -= 1

    def close(self) -> None:
        if self.draft is not None:
            self.buf.close_response(self.draft, "completed")
        self.buf.close()


def measure(n: int, folder: Path, seed: int, rounds: int = 10) -> dict[str, list[float]]:
    rng = random.Random(seed)
    bare = BareSqlite(folder / "bare.sqlite3")
    flow = BufferFlow(folder / "buffer.sqlite3", rng)
    for i in range(50):  # warm-up: caches, first pages, compiled statements
        for runner in (bare, flow):
            runner.between()
            runner.tap(i)
    samples: dict[str, list[float]] = {"bare sqlite3": [], "Buffer.record_answer": []}
    per_round = max(1, n // rounds)
    clock = time.perf_counter
    for r in range(rounds):
        for name, runner in (("bare sqlite3", bare), ("Buffer.record_answer", flow)):
            out = samples[name]
            for i in range(per_round):
                runner.between()
                t0 = clock()
                runner.tap(i)
                out.append(clock() - t0)
    bare.close()
    flow.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="taps per contender (default 2000)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="folder for the two files (default: a temp dir inside the project)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true",
                    help="also profile 500 Buffer taps with pyinstrument")
    args = ap.parse_args(argv)

    base = args.dir or ROOT  # same disk as the project, not a tmpfs /tmp
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tap-latency-", dir=base) as tmp:
        samples = measure(args.n, Path(tmp), args.seed)
        print(f"tap latency, {args.n} taps each, files in {base}")
        print(f"{'contender':<24}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean ms':>10}")
        for name, vals in samples.items():
            print(f"{name:<24}{percentile(vals, 50) * 1e3:>10.3f}{percentile(vals, 99) * 1e3:>10.3f}"
                  f"{max(vals) * 1e3:>10.3f}{statistics.fmean(vals) * 1e3:>10.3f}")
        a = percentile(samples["bare sqlite3"], 99)
        b = percentile(samples["Buffer.record_answer"], 99)
        ratio = b / a
        verdict = "OK" if ratio <= TARGET_RATIO else "OVER TARGET"
        print(f"p99 ratio Buffer/bare = {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x): {verdict}")
        print(f"p50 ratio Buffer/bare = "
              f"{percentile(samples['Buffer.record_answer'], 50) / percentile(samples['bare sqlite3'], 50):.2f}x")
        if args.profile:
            from pyinstrument import Profiler

            flow = BufferFlow(Path(tmp) / "profile.sqlite3", random.Random(args.seed))
            profiler = Profiler(interval=0.0002)
            with profiler:
                for i in range(500):
                    flow.between()
                    flow.tap(i)
            flow.close()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
