"""Kill -9 while taps are recorded: no acknowledged tap is lost, the file stays sound."""

from __future__ import annotations

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from durability_harness import run_kill_trials  # noqa: E402

KILLS = int(os.environ.get("BALIE_KILLS", "250"))


@pytest.fixture
def seed():
    value = int(os.environ.get("BALIE_KILL_SEED", time.time_ns() % 2**32))
    print(f"kill trial seed {value} (re-run with BALIE_KILL_SEED={value})")
    return value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_sigkill_at_random_moments_loses_no_acknowledged_answer(tmp_path, seed):
    summary = run_kill_trials(tmp_path / "buffer.sqlite3", KILLS, seed)
    print(summary.report())
    assert summary.kills == KILLS
    assert summary.ok, summary.report() + "\n" + "\n".join(summary.problems[:20])
    assert summary.problems == []
    # The trials must exercise something: most recorders acked answers before dying.
    assert summary.acked_answers > KILLS
    assert summary.kills - summary.kills_before_first_ack > KILLS // 2
    # Nothing was set aside.
    assert not list(tmp_path.glob("*.damaged-*"))
