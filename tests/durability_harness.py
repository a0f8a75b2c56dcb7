"""Kill -9 trials against the buffer, shared by tests/test_durability.py and bench/kill_trials.py.

One trial: fork a recorder that opens the buffer and records answers in a loop
(a new response every few answers, most of them closed), writing an ack line
to a pipe with an unbuffered ``os.write`` only after ``record_answer`` (or
``close_response``) returned; SIGKILL it after a random delay; then open the
buffer as the next start-up would (``Buffer.open``: integrity check, repair)
and check that every acked answer and close is there, nothing was set aside,
and the invariants hold. All trials share one buffer file, so each start-up
also repairs the previous victim's open response.

Forking from the already-imported parent keeps a trial to a few milliseconds.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.buffer import Buffer

RECORDER_TIME_LIMIT = 10.0  # a recorder never outlives a stuck parent by much


@dataclass
class TrialSummary:
    seed: int
    kills: int = 0
    acked_answers: int = 0
    acked_closes: int = 0
    lost_answers: int = 0
    lost_closes: int = 0
    integrity_failures: int = 0
    invariant_failures: int = 0
    early_exits: int = 0
    kills_before_first_ack: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost_answers or self.lost_closes or self.integrity_failures
                    or self.invariant_failures or self.early_exits)

    def report(self) -> str:
        return (
            f"seed {self.seed}: {self.kills} kills in {self.seconds:.1f} s, "
            f"{self.acked_answers} acked answers ({self.lost_answers} lost), "
            f"{self.acked_closes} acked closes ({self.lost_closes} lost), "
            f"{self.integrity_failures} integrity failures, "
            f"{self.invariant_failures} invariant failures, {self.early_exits} early exits, "
            f"{self.kills_before_first_ack} kills before the first ack"
        )


def _recorder(path: Path, ack_fd: int, seed: int) -> None:
    """Child process: record answers until killed. Never returns."""
    code = 0
    try:
        rng = random.Random(seed)
        deadline = time.monotonic() + RECORDER_TIME_LIMIT
        buf = Buffer.open(path)
        os.write(ack_fd, b"R\n")  # ready: start-up (check, repair) done
        while time.monotonic() < deadline:
            draft = buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                                  location_id="stadhuis", language="nl")
            for _ in range(rng.randint(1, 6)):
                value = rng.randint(1, 10) if rng.random() < 0.8 else "paspoort"
                receipt = buf.record_answer(draft, question_id="q", aspect="totaal", value=value)
                os.write(ack_fd, f"A {receipt.answer_id} {receipt.response_id}\n".encode())
            if rng.random() < 0.8:
                reason = rng.choice(("completed", "idle", "abandoned"))
                buf.close_response(draft, end_reason=reason)
                os.write(ack_fd, f"C {draft.id} {reason}\n".encode())
        buf.close()
    except BaseException as err:  # report, never fall back into the parent's code
        try:
            os.write(ack_fd, f"E {type(err).__name__}: {err}\n".encode()[:4000])
        except OSError:
            pass
        code = 1
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _read_until_recording(fd: int) -> bytes:
    """Read from the recorder until its first acknowledged answer (or EOF); return what was read.

    Timing the kill from the first ack rather than from "ready" keeps the
    trials about recording even on a loaded machine, where the first commit
    alone may take longer than the whole random delay.
    """
    data = b""
    while b"\nA " not in data:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def run_kill_trials(path: Path, kills: int, seed: int, *, max_delay: float = 0.02,
                    startup_share: float = 0.2, progress=None) -> TrialSummary:
    """Run ``kills`` trials against the buffer file ``path``; return the summary.

    ``max_delay``: each recorder is killed ``uniform(0, max_delay)`` seconds
    after its first acknowledged answer (or after the fork, see ``startup_share``).
    ``startup_share``: the share of kills timed from the fork rather than from
    the first ack, so that they hit its start-up and first commit.
    ``progress``: called with ``(trial, summary)`` every 100 trials.
    """
    rng = random.Random(seed)
    summary = TrialSummary(seed=seed)
    path = Path(path)
    acked_answers: set[str] = set()
    started = time.perf_counter()
    # Make sure the file exists and is at head before the first fork.
    Buffer.open(path).close()
    for trial in range(kills):
        read_fd, write_fd = os.pipe()
        child_seed = rng.getrandbits(32)
        delay = rng.uniform(0, max_delay)
        # Most kills land while answers are being recorded (timed from the
        # recorder's first ack); some during its start-up (timed from the fork).
        during_startup = rng.random() < startup_share
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _recorder(path, write_fd, child_seed)
        os.close(write_fd)
        head = b""
        if not during_startup:
            head = _read_until_recording(read_fd)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        data = head + _read_all(read_fd)
        os.close(read_fd)
        summary.kills += 1
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            summary.early_exits += 1
            summary.problems.append(f"trial {trial}: recorder exited before the kill: "
                                    f"{data.decode(errors='replace')[-500:]}")
        # Lines are written whole (os.write of < PIPE_BUF bytes is atomic); a
        # recorder killed mid-loop leaves no partial line.
        answers_now: list[str] = []
        closes_now: list[tuple[str, str]] = []
        for line in data.decode().splitlines():
            kind, *rest = line.split(" ")
            if kind == "A":
                answers_now.append(rest[0])
            elif kind == "C":
                closes_now.append((rest[0], rest[1]))
            elif kind == "R":
                pass
            elif kind == "E":
                summary.problems.append(f"trial {trial}: recorder error: {line}")
        if not answers_now:
            summary.kills_before_first_ack += 1
        summary.acked_answers += len(answers_now)
        summary.acked_closes += len(closes_now)
        acked_answers.update(answers_now)
        _verify(path, trial, answers_now, closes_now, summary)
        if progress is not None and (trial + 1) % 100 == 0:
            progress(trial + 1, summary)
    # Finally: every answer acked in any trial is still there.
    con = sqlite3.connect(str(path))
    present = {row[0] for row in con.execute("SELECT id FROM answers")}
    con.close()
    missing = acked_answers - present
    if missing:
        summary.lost_answers += len(missing)
        summary.problems.append(f"at the end: {len(missing)} acked answers missing")
    summary.seconds = time.perf_counter() - started
    return summary


def _verify(path: Path, trial: int, answers_now: list[str],
            closes_now: list[tuple[str, str]], summary: TrialSummary) -> None:
    buf = Buffer.open(path)  # the next start-up: integrity check, set-aside, repair
    try:
        set_aside = [e for e in buf.events() if e.kind == "buffer_set_aside"]
        stats = buf.stats()
    finally:
        buf.close()
    if set_aside:
        summary.integrity_failures += 1
        summary.problems.append(f"trial {trial}: buffer set aside: {set_aside[-1].detail}")
        return
    if stats.responses_open:
        summary.invariant_failures += 1
        summary.problems.append(f"trial {trial}: {stats.responses_open} responses still open")
    con = sqlite3.connect(str(path))
    try:
        if answers_now:
            marks = ",".join("?" * len(answers_now))
            found = con.execute(
                f"SELECT count(*) FROM answers WHERE id IN ({marks})", answers_now
            ).fetchone()[0]
            if found != len(answers_now):
                summary.lost_answers += len(answers_now) - found
                summary.problems.append(
                    f"trial {trial}: {len(answers_now) - found} of {len(answers_now)} acked "
                    "answers missing")
        for response_id, reason in closes_now:
            row = con.execute("SELECT end_reason FROM responses WHERE id = ?",
                              (response_id,)).fetchone()
            if row is None or row[0] != reason:
                summary.lost_closes += 1
                summary.problems.append(
                    f"trial {trial}: close of {response_id} as {reason} lost (got {row})")
        empty = con.execute(
            "SELECT count(*) FROM responses r WHERE NOT EXISTS "
            "(SELECT 1 FROM answers a WHERE a.response_id = r.id)").fetchone()[0]
        if empty:
            summary.invariant_failures += 1
            summary.problems.append(f"trial {trial}: {empty} responses without answers")
    finally:
        con.close()
