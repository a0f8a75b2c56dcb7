"""Central ingest end to end, against a raw COPY of the same rows, on one PostgreSQL cluster.

Run::

    .venv/bin/python bench/ingest.py                     # 4 devices x 4 batches x 500 responses, 3 rounds
    .venv/bin/python bench/ingest.py --workers 2 --also-fast --profile /tmp/ingest-profile

What is measured, in one run on one throwaway cluster (``tests/postgres.py``,
fsync ON unless ``--fast``):

* ``central``: central as it runs in production: ``central.app`` under uvicorn
  in its own process (``--workers``, default 1), on loopback. ``--devices``
  terminals (default 4, each with its own token) send at once, each one batch
  at a time like ``sync/uploader.py``: ``requests``, gzip level 5 bodies built
  with the protocol models, ``--records`` responses per batch (default 500,
  the protocol's maximum) of 7-8 answers each. The clock runs from the first
  request to the last reply; every reply is parsed and every record must come
  back ``accepted``. This is HTTP + gunzip + validation + the duplicate /
  conflict / sequence checks + PostgreSQL commit (one per batch) + the
  per-record results.
* ``copy``: the baseline. The same rows (every column central stores,
  computed beforehand in this process) written with psycopg 3
  ``cursor.copy`` into staging tables (``CREATE TABLE … (LIKE responses)``:
  same columns, no keys, no indexes), one transaction per batch, one
  connection per device, the devices at once: the same shape of work with
  everything but the database's own cost taken away.

Rounds alternate which goes first; each round has fresh responses. Prints
answers/s of both per round, the medians, their ratio, the CPU seconds used by
the server, PostgreSQL and this client process while central ran, and the
verdicts: >= 20 000 answers/s and >= 0.35 x the COPY. Exit 1 when a target is
missed (0 with ``--no-check``). ``--profile DIR`` samples the server with
py-spy during the central phases and prints its top costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from _central import CentralServer, RecordMaker, batch_of, gzip_batch  # noqa: E402

TARGET_RATE = 20_000
TARGET_RATIO = 0.35

RESPONSE_COLUMNS = (
    "id", "device_id", "seq", "questionnaire_id", "questionnaire_version", "location_id",
    "language", "started_wall", "started_boot", "started_mono", "closed_wall", "end_reason",
    "suspect", "suspect_reason", "received_at", "sent_wall", "sent_boot", "sent_mono",
    "started_at", "time_verified", "content_hash")
ANSWER_COLUMNS = (
    "id", "response_id", "ordinal", "question_id", "aspect", "value_num", "value_text",
    "at_wall", "at_boot", "at_mono", "answered_at", "time_verified",
    "questionnaire_id", "questionnaire_version", "started_at", "suspect", "service", "overall")


@dataclass
class Prepared:
    """One batch: the gzipped body central gets, and the rows the COPY writes."""

    body: bytes
    responses: int
    answers: int
    response_rows: list[tuple] = field(repr=False)
    answer_rows: list[tuple] = field(repr=False)


def staging_rows(device_id: str, batch, received_at: float) -> tuple[list[tuple], list[tuple]]:
    """Every column central stores for ``batch``, as tuples in table order."""
    from central.ingest import content_hash, report_keys
    from central.timecorrect import corrected_time

    sent = batch.sent
    responses, answers = [], []
    for r in batch.responses:
        started_at, verified = corrected_time(r.started, sent=sent, received_at=received_at)
        responses.append((
            r.id, device_id, r.seq, r.questionnaire.id, r.questionnaire.version, r.location_id,
            r.language, r.started.wall, r.started.boot_id, r.started.mono, r.closed_wall,
            r.end_reason, r.suspect, r.suspect_reason, received_at, sent.wall, sent.boot_id,
            sent.mono, started_at, verified, content_hash(r)))
        service, overall = report_keys(r.answers)
        for a in r.answers:
            at, ok = corrected_time(a.at, sent=sent, received_at=received_at)
            numeric = isinstance(a.value, int)
            answers.append((
                a.id, r.id, a.ordinal, a.question_id, a.aspect, a.value if numeric else None,
                None if numeric else a.value, a.at.wall, a.at.boot_id, a.at.mono, at, ok,
                r.questionnaire.id, r.questionnaire.version, started_at, r.suspect, service,
                overall))
    return responses, answers


def prepare(makers: dict[str, RecordMaker], batches: int, records: int) -> dict[str, list[Prepared]]:
    out: dict[str, list[Prepared]] = {}
    now = time.time()
    for device_id, maker in makers.items():
        out[device_id] = []
        for _ in range(batches):
            batch = batch_of(device_id, maker.records(records), maker.sent())
            rows, answer_rows = staging_rows(device_id, batch, now)
            out[device_id].append(Prepared(gzip_batch(batch), len(rows), len(answer_rows),
                                           rows, answer_rows))
    return out


# --------------------------------------------------------------------- CPU accounting

class CpuMeter:
    """CPU seconds (user + system) of groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, callable]):
        import psutil

        self.psutil = psutil
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}

    def _sample(self, pids) -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                t = self.psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
            except self.psutil.Error:
                pass
        return out

    def _busy(self) -> float:
        t = self.psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) \
            - getattr(t, "guest_nice", 0.0)

    def start(self) -> None:
        self.before = {name: self._sample(pids()) for name, pids in self.groups.items()}
        self.busy_before = self._busy()

    def stop(self) -> dict[str, float]:
        for name, pids in self.groups.items():
            after = self._sample(pids())
            before = self.before[name]
            self.used[name] = sum(after[p] - before.get(p, 0.0) for p in after)
        # Everything else the machine did meanwhile (other users of a shared VM, the kernel).
        self.used["other"] = max(0.0, self._busy() - self.busy_before - sum(self.used.values()))
        return self.used


def postgres_pids(cluster) -> list[int]:
    import psutil

    pid = cluster.server_pid
    try:
        parent = psutil.Process(pid)
        return [pid] + [c.pid for c in parent.children(recursive=True)]
    except (psutil.Error, TypeError):
        return []


# --------------------------------------------------------------------- the two contenders

def run_central(server: CentralServer, tokens: dict[str, str], work: dict[str, list[Prepared]]) -> float:
    """All devices at once, each one batch at a time; returns seconds. Checks every result."""
    import requests

    from sync.protocol import BATCHES_PATH

    url = server.url + BATCHES_PATH
    sessions = {}
    for device_id, token in tokens.items():
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                                "Content-Type": "application/json"})
        sessions[device_id] = session
    barrier = threading.Barrier(len(work) + 1)
    failures: list[str] = []

    def device(device_id: str) -> None:
        session = sessions[device_id]
        barrier.wait()
        for prepared in work[device_id]:
            reply = session.post(url, data=prepared.body, timeout=(5, 120))
            if reply.status_code != 200:
                failures.append(f"{device_id}: HTTP {reply.status_code} {reply.text[:300]}")
                return
            results = reply.json()["results"]
            statuses = Counter(r["status"] for r in results)
            if len(results) != prepared.responses or statuses["accepted"] != prepared.responses:
                failures.append(f"{device_id}: {dict(statuses)} of {prepared.responses}")
                return

    threads = [threading.Thread(target=device, args=(d,)) for d in work]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for session in sessions.values():
        session.close()
    if failures:
        raise SystemExit("central did not accept everything: " + "; ".join(failures[:4]))
    return elapsed


class CopyClient:
    """The baseline: the same rows by COPY into ``responses``/``answers`` of ``dbname``.

    One connection per device (opened once, so their backends' CPU is metered),
    all at once, one transaction per batch.
    """

    def __init__(self, cluster, dbname: str, devices, *, responses: str, answers: str):
        import psycopg

        self.conns = {d: psycopg.connect(cluster.dsn(dbname)) for d in devices}
        self.copy_responses = f"COPY {responses} ({', '.join(RESPONSE_COLUMNS)}) FROM STDIN"
        self.copy_answers = f"COPY {answers} ({', '.join(ANSWER_COLUMNS)}) FROM STDIN"

    def run(self, work: dict[str, list[Prepared]]) -> float:
        """Returns seconds."""
        barrier = threading.Barrier(len(work) + 1)
        failures: list[str] = []

        def device(device_id: str) -> None:
            conn = self.conns[device_id]
            barrier.wait()
            try:
                for prepared in work[device_id]:
                    with conn.transaction(), conn.cursor() as cur:
                        with cur.copy(self.copy_responses) as copy:
                            for row in prepared.response_rows:
                                copy.write_row(row)
                        with cur.copy(self.copy_answers) as copy:
                            for row in prepared.answer_rows:
                                copy.write_row(row)
            except Exception as exc:  # reported below
                failures.append(f"{device_id}: {exc!r}")

        threads = [threading.Thread(target=device, args=(d,)) for d in work]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if failures:
            raise SystemExit("COPY failed: " + "; ".join(failures[:4]))
        return elapsed

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


# --------------------------------------------------------------------- profiling

class Profiler:
    """py-spy sampling the server's worker processes; collapsed stacks appended per phase."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.files: list[Path] = []
        self.py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(self.py_spy, os.X_OK):
                raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")

    def start(self, pids: list[int], tag: str) -> None:
        if self.folder is None:
            return
        for pid in pids:
            out = self.folder / f"{tag}-{pid}.txt"
            self.files.append(out)
            self.procs.append(subprocess.Popen(
                [self.py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                 "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)   # attach before the clock starts

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []

    def report(self, top: int = 25) -> None:
        if self.folder is None:
            return
        inclusive: Counter = Counter()
        own: Counter = Counter()
        total = 0
        for path in self.files:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                n = int(count)
                frames = [_frame_name(f) for f in stack.split(";")[1:]]  # [0] is the thread
                total += n
                for name in set(frames):
                    inclusive[name] += n
                if frames:
                    own[frames[-1]] += n
        if not total:
            print("profile: no samples (is py-spy allowed to attach?)")
            return
        print(f"\nprofile of the server (py-spy, {total} samples of busy threads, "
              f"files in {self.folder}):")
        print("  inclusive %  function")
        for name, n in inclusive.most_common(top):
            print(f"  {100 * n / total:10.1f}  {name}")
        print("  self %       function")
        for name, n in own.most_common(top):
            print(f"  {100 * n / total:10.1f}  {name}")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``: lines merged, paths shortened."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    project = str(Path(__file__).resolve().parent.parent) + "/"
    for marker in ("site-packages/", project, "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


# --------------------------------------------------------------------- the run

CONTENDERS = ("central", "copy", "keyed")
LABELS = {"central": "central ingest (HTTP, validation, checks, commit, results)",
          "copy": "raw COPY into staging tables (baseline)",
          "keyed": "raw COPY into central's own tables (keys, FKs; for reference)"}


def bench_cluster(args, *, fast: bool, profiler: Profiler) -> dict:
    from central.db import make_engine, upgrade
    from central.devices import enrol
    from tests.postgres import start_cluster

    label = "fsync off (fast=True)" if fast else "fsync on (fast=False)"
    print(f"\n== PostgreSQL cluster, {label}")
    cluster = start_cluster(fast=fast)
    try:
        dbname, keyed_db = "bench_ingest", "bench_keyed"
        url = cluster.create_database(dbname)
        keyed_url = cluster.create_database(keyed_db)
        engine = make_engine(url)
        upgrade(engine)
        tokens = {}
        for n in range(args.devices):
            device_id, token = enrol(engine, name=f"Balie {n + 1}", location="stadhuis", now=time.time())
            tokens[device_id] = token
        engine.dispose()
        engine = make_engine(keyed_url)
        upgrade(engine)
        engine.dispose()
        with cluster.connect(keyed_db) as conn:
            for device_id in tokens:   # the same device rows, for the foreign key
                conn.execute("INSERT INTO devices (id, name, location, token_hash, created_at, "
                             "highest_seq, seq_count) VALUES (%s, 'x', 'x', %s, 0, 0, 0)",
                             (device_id, device_id))
        with cluster.connect(dbname) as conn:
            conn.execute("CREATE TABLE staging_responses (LIKE responses)")
            conn.execute("CREATE TABLE staging_answers (LIKE answers)")
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
        print(f"PostgreSQL {version}: fsync={fsync}, synchronous_commit={sync_commit}; "
              f"central: uvicorn, {args.workers} worker(s); {args.devices} devices at once, "
              f"{args.batches} batches each of {args.records} responses per round")
        makers = {d: RecordMaker(d, seed=args.seed) for d in tokens}
        with CentralServer(url, workers=args.workers) as server:
            staging = CopyClient(cluster, dbname, tokens, responses="staging_responses",
                                 answers="staging_answers")
            keyed = CopyClient(cluster, keyed_db, tokens, responses="responses", answers="answers")
            runners = {
                "central": lambda work: run_central(server, tokens, work),
                "copy": staging.run,
                "keyed": keyed.run,
            }
            # Warm-up (not timed): pools, imports, first plans, on every path.
            warm = prepare(makers, 1, 50)
            for run in runners.values():
                run(warm)
            meter = CpuMeter({"server": server.pids, "postgres": lambda: postgres_pids(cluster),
                              "client": lambda: [os.getpid()]})
            rates: dict[str, list[float]] = {k: [] for k in CONTENDERS}
            cpu: dict[str, list[dict[str, float]]] = {k: [] for k in CONTENDERS}
            total_answers = 0
            print(f"{'round':>5}  {'order':<20} {'answers':>8} {'central/s':>10} {'copy/s':>10} "
                  f"{'keyed/s':>10} {'central/copy':>12}")
            for round_no in range(1, args.rounds + 1):
                work = prepare(makers, args.batches, args.records)
                answers = sum(p.answers for batches in work.values() for p in batches)
                total_answers += answers
                shift = (round_no - 1) % len(CONTENDERS)
                order = CONTENDERS[shift:] + CONTENDERS[:shift]
                for which in order:
                    tag = f"{'fast' if fast else 'fsync'}-r{round_no}"
                    if which == "central":
                        profiler.start(server.worker_pids(), tag)
                    meter.start()
                    seconds = runners[which](work)
                    used = meter.stop()
                    if which == "central":
                        profiler.stop()
                    cpu[which].append({**used, "wall": seconds, "answers": answers})
                    rates[which].append(answers / seconds)
                print(f"{round_no:>5}  {','.join(order):<20} {answers:>8} {rates['central'][-1]:>10.0f} "
                      f"{rates['copy'][-1]:>10.0f} {rates['keyed'][-1]:>10.0f} "
                      f"{rates['central'][-1] / rates['copy'][-1]:>11.2f}x", flush=True)
            staging.close()
            keyed.close()
        counts = {}
        for db, table in ((dbname, "answers"), (dbname, "staging_answers"), (keyed_db, "answers")):
            with cluster.connect(db) as conn:
                counts[(db, table)] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        sent = total_answers + sum(p.answers for batches in warm.values() for p in batches)
        if set(counts.values()) != {sent}:
            raise SystemExit(f"row counts do not add up: {counts}, sent {sent}")
    finally:
        cluster.stop()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    ratio = medians["central"] / medians["copy"]
    print("medians:")
    for which in CONTENDERS:
        print(f"  {LABELS[which]:<62} {medians[which]:>8.0f} answers/s")
    print(f"ratio central/COPY, medians: {ratio:.2f}x (central/keyed COPY: "
          f"{medians['central'] / medians['keyed']:.2f}x; keyed/staging COPY: "
          f"{medians['keyed'] / medians['copy']:.2f}x)")
    print("CPU while each ran, all rounds, microseconds per answer "
          "(server / postgres / this client / other processes; wall):")
    for which in CONTENDERS:
        n = sum(c["answers"] for c in cpu[which])
        per = {k: sum(c[k] for c in cpu[which]) / n * 1e6
               for k in ("server", "postgres", "client", "other", "wall")}
        print(f"  {which:<8} {per['server']:6.1f} / {per['postgres']:6.1f} / {per['client']:6.1f} / "
              f"{per['other']:6.1f}; wall {per['wall']:6.1f}")
    return {"central": medians["central"], "copy": medians["copy"], "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=4, help="terminals sending at once (4)")
    parser.add_argument("--batches", type=int, default=4, help="batches per device per round (4)")
    parser.add_argument("--records", type=int, default=500, help="responses per batch (500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, order alternating (3)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fast", action="store_true",
                        help="only a cluster with fsync off (not the figure that counts)")
    parser.add_argument("--also-fast", action="store_true",
                        help="after the fsync-on run, the same on a cluster with fsync off")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the server with py-spy during the central phases")
    parser.add_argument("--no-check", action="store_true", help="exit 0 whatever the figures")
    args = parser.parse_args(argv)

    print(f"bench/ingest: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    profiler = Profiler(args.profile)
    runs = [True] if args.fast else ([False, True] if args.also_fast else [False])
    figures = {fast: bench_cluster(args, fast=fast, profiler=profiler) for fast in runs}
    profiler.report()
    main_fig = figures[runs[0]]
    label = "fsync off" if runs[0] else "fsync on"
    rate_ok = main_fig["central"] >= TARGET_RATE
    ratio_ok = main_fig["ratio"] >= TARGET_RATIO
    print(f"\n{label}: central {main_fig['central']:.0f} answers/s, COPY {main_fig['copy']:.0f} "
          f"answers/s, ratio {main_fig['ratio']:.2f}x")
    print(f"target >= {TARGET_RATE} answers/s: {'PASS' if rate_ok else 'FAIL'}")
    print(f"target >= {TARGET_RATIO}x raw COPY: {'PASS' if ratio_ok else 'FAIL'}")
    if args.no_check:
        return 0
    return 0 if rate_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
