"""Shared helpers for the sync benches (bench/drain.py, bench/ui_during_sync.py).

Use (from a bench in this folder)::

    from _backlog import build_backlog, PostgresCentral, drain, Stopwatch

    info = build_backlog(Path("/tmp/x/template.sqlite3"), answers=100_000, seed=1)
    with PostgresCentral() as central:                 # PG cluster (fsync on) + central process
        device = central.new_device()                   # fresh database, migrated, one enrolment
        state = device.state                            # kiosk.state.DeviceState for the uploader
        ...
        device.stop()                                   # prints nothing; returns central's timings

Run as a script, this module is the central server process itself (``run_central`` from
``tests/central_fixtures.py`` in its own process, so its CPU and GIL are not the device's)::

    python bench/_backlog.py central --database-url postgresql+psycopg://...

It prints ``URL <base url>`` once serving, and on stdin EOF prints ``TIMINGS <json>``
(seconds spent inside central's ASGI app per path, and request counts) and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Words for the comments (already scrubbed text, as the comment screen stores it).
COMMENTS = (
    "Heel vriendelijk geholpen, maar het duurde lang voordat ik aan de beurt was.",
    "Prima",
    "De wachtruimte was te warm en er was geen water.",
    "Snel geholpen, duidelijke uitleg over mijn paspoortaanvraag. Dank!",
    "Ik begreep niet welk nummer ik moest trekken.",
    "Medewerker nam de tijd om alles uit te leggen, top.",
    "Te weinig stoelen.",
)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (as in bench/tap_latency.py)."""
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# --------------------------------------------------------------------------- the backlog


@dataclass
class BacklogInfo:
    path: Path
    visitors: int
    answers: int
    seconds: float
    bytes: int


def build_backlog(path: Path, *, answers: int = 100_000, seed: int = 1,
                  questionnaire_path: Path | None = None) -> BacklogInfo:
    """Write a buffer holding ``answers`` answers of closed, unsent responses at ``path``.

    Written with the real Buffer API (``Buffer.open``, ``new_draft``,
    ``record_answer``, ``close_response``) and a :class:`FakeTimeSource` that
    moves on a few seconds per tap and a minute or two per visitor. The shipped
    questionnaire's questions in order: 80 % of visitors answer all seven tap
    questions (35 % of them also leave a comment), 20 % stop after 1–7 and
    walk away (closed ``idle``) -- about 6.7 answers per visitor, i.e. ~15 000
    visitors for 100 000 answers. Only for speed, the build's connections run
    with ``synchronous = OFF`` (an extra connect hook); the file is closed
    (WAL checkpointed) and the benches reopen it with ``Buffer.open``, i.e. the
    shipped settings (``synchronous = FULL``).
    """
    from sqlalchemy import event

    from kiosk.buffer import Buffer
    from kiosk.clock import FakeTimeSource
    from kiosk.questionnaire import load_questionnaire
    from kiosk.settings import load_settings

    t0 = time.perf_counter()
    path = Path(path)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    qpath = questionnaire_path or load_settings(None).questionnaire_path
    questions = [q for q in load_questionnaire(qpath).questions]
    taps = [q for q in questions if q.type != "comment"]
    comment = next((q for q in questions if q.type == "comment"), None)
    rng = random.Random(seed)
    clock = FakeTimeSource(wall=1_764_230_400.0, mono=3_600.0)
    buf = Buffer.open(path, time_source=clock)

    @event.listens_for(buf._engine, "connect")
    def _build_fast(dbapi_connection, _record):  # the build only; see the docstring
        dbapi_connection.execute("PRAGMA synchronous = OFF")

    buf._engine.dispose()  # the pooled connection from open() comes back with the hook
    written = visitors = 0
    try:
        while written < answers:
            visitors += 1
            clock.advance(rng.uniform(30, 150))
            draft = buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                                  location_id="stadhuis",
                                  language="nl" if rng.random() < 0.85 else "en")
            full = rng.random() < 0.8
            n = len(taps) if full else rng.randint(1, len(taps))
            for q in taps[:n]:
                if written >= answers:
                    break
                clock.advance(rng.uniform(1.5, 6.0))
                values = q.allowed_values()
                value = rng.choice(values)  # as the flow stores it ("yes"/"no" for yes/no)
                buf.record_answer(draft, question_id=q.id, aspect=q.aspect, value=value)
                written += 1
            if full and comment is not None and written < answers and rng.random() < 0.35:
                clock.advance(rng.uniform(10, 40))
                buf.record_answer(draft, question_id=comment.id, aspect=comment.aspect,
                                  value=rng.choice(COMMENTS))
                written += 1
            clock.advance(rng.uniform(1, 5))
            buf.close_response(draft, "completed" if full else "idle")
    finally:
        buf.close()
    return BacklogInfo(path=path, visitors=visitors, answers=written,
                       seconds=time.perf_counter() - t0, bytes=path.stat().st_size)


def copy_backlog(template: Path, dest: Path) -> Path:
    """A fresh copy of a closed template buffer (main file only: its WAL was checkpointed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, dest)
    return dest


# --------------------------------------------------------------------------- central


class CentralProcess:
    """``run_central`` (tests/central_fixtures.py) in a child process on a migrated database."""

    def __init__(self, database_url: str, cpus: set[int] | None = None):
        env = {**os.environ}
        env.pop("BALIE_CENTRAL_CONFIG", None)
        env.pop("BALIE_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "central", "--database-url", database_url],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        line = self.proc.stdout.readline()
        if not line.startswith("URL "):
            self.proc.kill()
            raise RuntimeError(f"central did not start: {line!r}")
        self.url = line.split()[1]
        self.timings: dict = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> dict:
        """Stop the server; returns its ``{path: {"seconds": s, "requests": n}}``."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                for line in self.proc.stdout:
                    if line.startswith("TIMINGS "):
                        self.timings = json.loads(line[len("TIMINGS "):])
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.timings


@dataclass
class Device:
    database_url: str
    device_id: str
    token: str
    central: CentralProcess

    @property
    def state(self):
        from kiosk.state import DeviceState

        return DeviceState(self.central.url, self.device_id, self.token)

    def stop(self) -> dict:
        return self.central.stop()


class PostgresCentral:
    """A throwaway PostgreSQL cluster (``start_cluster(fast=False)``: fsync on) for central.

    ``cpus``: pin the cluster's processes and every central process to these CPUs
    (the backends forked later inherit the postmaster's affinity).
    """

    def __init__(self, cpus: set[int] | None = None):
        from tests.postgres import start_cluster

        self.cpus = cpus
        self.cluster = start_cluster(fast=False)
        if cpus:
            import psutil

            server = psutil.Process(self.cluster.server_pid)
            for proc in [server, *server.children(recursive=True)]:
                proc.cpu_affinity(sorted(cpus))

    def new_device(self, hint: str = "drain") -> Device:
        """A fresh database on the cluster, migrated, one enrolled device, central serving it."""
        from tests.central_fixtures import central_settings, enrol_device, migrate

        url = self.cluster.create_database(self.cluster.unique_name(hint))
        settings = central_settings(url)
        migrate(settings)
        device_id, token = enrol_device(settings, name="Balie bench", location="stadhuis")
        return Device(url, device_id, token, CentralProcess(url, self.cpus))

    def count_answers(self, database_url: str) -> tuple[int, int]:
        """(responses, answers) stored by central (for the exactly-once check)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                responses = conn.execute(text("SELECT count(*) FROM responses")).scalar_one()
                answers = conn.execute(text("SELECT count(*) FROM answers")).scalar_one()
        finally:
            engine.dispose()
        return responses, answers

    def close(self) -> None:
        self.cluster.stop()

    def __enter__(self) -> "PostgresCentral":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- timing the device side


class Stopwatch:
    """Seconds and calls per label, and (optionally) every interval, from any thread."""

    def __init__(self, keep_intervals: bool = False):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.intervals: list[tuple[str, float, float]] = []  # (label, start, end), perf_counter
        self.keep = keep_intervals
        self._lock = threading.Lock()

    def wrap(self, label: str, fn):
        clock = time.perf_counter

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = clock()
                with self._lock:
                    self.seconds[label] += t1 - t0
                    self.calls[label] += 1
                    if self.keep:
                        self.intervals.append((label, t0, t1))
        timed.__wrapped__ = fn
        return timed


class _TimedGzip:
    """Stands in for the ``gzip`` module inside sync.uploader: ``compress`` is timed."""

    def __init__(self, watch: Stopwatch):
        import gzip

        self.compress = watch.wrap("gzip", gzip.compress)


def instrument(uploader, watch: Stopwatch) -> callable:
    """Time the device side of ``uploader``'s rounds by label; returns an undo function.

    Labels: ``pending`` (SQLite read + building ResponseRecords), ``encode``
    (``model_dump_json`` of each record), ``gzip``, ``http`` (POST until the reply
    is read: loopback + central), ``mark_sent`` (one commit), ``run_once`` (all).
    """
    import sync.uploader as up
    from sync.protocol import ResponseRecord

    buffer = uploader.buffer
    originals = (buffer.pending, buffer.mark_sent, uploader._post, uploader.run_once,
                 up.gzip, ResponseRecord.model_dump_json)
    buffer.pending = watch.wrap("pending", buffer.pending)
    buffer.mark_sent = watch.wrap("mark_sent", buffer.mark_sent)
    uploader._post = watch.wrap("http", uploader._post)
    uploader.run_once = watch.wrap("run_once", uploader.run_once)
    up.gzip = _TimedGzip(watch)
    ResponseRecord.model_dump_json = watch.wrap("encode", ResponseRecord.model_dump_json)

    def undo():
        for name in ("pending", "mark_sent"):
            buffer.__dict__.pop(name, None)
        for name in ("_post", "run_once"):
            uploader.__dict__.pop(name, None)
        up.gzip = originals[4]
        ResponseRecord.model_dump_json = originals[5]
    return undo


# --------------------------------------------------------------------------- the drain


@dataclass
class DrainResult:
    seconds: float
    rounds: int
    batches: int
    attempts: int
    accepted: int
    duplicate: int
    rejected: int
    quarantined: int
    backlog_left: int
    reports: list = field(default_factory=list)


def drain(uploader, *, max_rounds: int = 50) -> DrainResult:
    """Run ``uploader.run_once()`` until the buffer's backlog is empty (or a round fails)."""
    result = DrainResult(0.0, 0, 0, 0, 0, 0, 0, 0, -1)
    t0 = time.perf_counter()
    for _ in range(max_rounds):
        report = uploader.run_once()
        result.rounds += 1
        result.reports.append(report)
        result.batches += report.batches
        result.attempts += report.attempts
        result.accepted += report.accepted
        result.duplicate += report.duplicate
        result.rejected += report.rejected
        result.quarantined += report.quarantined_locally
        result.backlog_left = report.backlog if report.backlog is not None else -1
        if report.backlog == 0 or report.stopped_reason not in ("done", "deadline"):
            break
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- the central child


def _serve_central(database_url: str) -> int:
    import tests.central_fixtures as fixtures
    from tests.central_fixtures import central_settings, run_central

    seconds: dict[str, float] = defaultdict(float)
    requests: dict[str, int] = defaultdict(int)
    create = fixtures.create_app

    def timed_app(settings, **options):
        app = create(settings, **options)

        async def timed(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            t0 = time.perf_counter()
            try:
                return await app(scope, receive, send)
            finally:
                seconds[scope["path"]] += time.perf_counter() - t0
                requests[scope["path"]] += 1
        return timed

    fixtures.create_app = timed_app
    with run_central(central_settings(database_url), migrate_first=False) as url:
        print("URL", url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    print("TIMINGS", json.dumps({p: {"seconds": seconds[p], "requests": requests[p]}
                                 for p in seconds}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="central for the sync benches (child process)")
    sub = ap.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("central")
    serve.add_argument("--database-url", required=True)
    args = ap.parse_args(argv)
    return _serve_central(args.database_url)


if __name__ == "__main__":
    sys.exit(main())
