"""Kill -9 trials: SIGKILL a recording process N times; count lost acked taps and integrity failures.

Run::

    .venv/bin/python bench/kill_trials.py                 # 1000 kills, temp dir inside the project
    .venv/bin/python bench/kill_trials.py -n 5000 --seed 42 --dir /var/lib/balie/trials

The trial itself lives in tests/durability_harness.py (shared with
tests/test_durability.py). Exit status 0 only if nothing was lost and no
integrity check failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from durability_harness import run_kill_trials  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--kills", type=int, default=1000, help="number of kills (default 1000)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time based)")
    ap.add_argument("--max-delay", type=float, default=0.02,
                    help="kill after uniform(0, this) seconds (default 0.02)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="folder for the buffer file (default: a temp dir inside the project)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    print(f"kill trials: {args.kills} kills, seed {seed}", flush=True)
    base = args.dir or ROOT
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kill-trials-", dir=base) as tmp:
        summary = run_kill_trials(
            Path(tmp) / "buffer.sqlite3", args.kills, seed, max_delay=args.max_delay,
            progress=lambda n, s: print(f"  {n} kills, {s.acked_answers} acked answers, "
                                        f"{s.lost_answers} lost", flush=True),
        )
    print()
    print(f"{'kills':<28}{summary.kills:>10}")
    print(f"{'acked answers':<28}{summary.acked_answers:>10}")
    print(f"{'acked closes':<28}{summary.acked_closes:>10}")
    print(f"{'kills before first ack':<28}{summary.kills_before_first_ack:>10}")
    print(f"{'lost answers':<28}{summary.lost_answers:>10}")
    print(f"{'lost closes':<28}{summary.lost_closes:>10}")
    print(f"{'integrity failures':<28}{summary.integrity_failures:>10}")
    print(f"{'invariant failures':<28}{summary.invariant_failures:>10}")
    print(f"{'early exits':<28}{summary.early_exits:>10}")
    print(f"{'seconds':<28}{summary.seconds:>10.1f}")
    for problem in summary.problems[:20]:
        print("  problem:", problem)
    print("RESULT:", "OK" if summary.ok else "FAILED", f"(seed {seed})")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
