"""Device backlog → central: time for the real Uploader to empty a 100 000-answer buffer.

Run::

    .venv/bin/python bench/drain.py                        # 100 000 answers; default batch + sweep
    .venv/bin/python bench/drain.py --sweep 100,200,500 --profile
    .venv/bin/python bench/drain.py --answers 2000 --sweep '' --no-check   # the suite's smoke run

In one run:

* a backlog of ``--answers`` answers (about 15 000 visitors for 100 000) is
  written once with the real Buffer API (``bench/_backlog.py``, untimed) and
  copied afresh for every drain;
* a throwaway PostgreSQL cluster with the durable settings
  (``tests.postgres.start_cluster(fast=False)``: fsync and synchronous_commit
  on); for every drain a fresh database, migrated, one device enrolled, and
  central served by ``tests.central_fixtures.run_central`` on a loopback port
  in its own process (on a deployment central is another machine: it must not
  share the device's GIL);
* the drain: ``Buffer.open`` of the copy (shipped settings: WAL,
  synchronous=FULL) and the real ``sync.uploader.Uploader`` with the shipped
  ``[sync]`` settings (only ``batch_records`` varied), ``run_once()`` again and
  again until the backlog is empty. Timed from the start of the first round to
  the end of the round that left the backlog empty (its heartbeat included).

Printed per batch size: rounds, batches, POSTs, seconds, answers/s and
responses/s; then where the device's time went for the shipped batch size
(SQLite read + building records, JSON encoding, gzip, HTTP until the reply is
read -- split into time inside central's ASGI app and the rest --, mark_sent),
and a check that central stored every response and answer exactly once.
Target: <= 10 s with the shipped batch size. Exit status 1 when over target
(0 with ``--no-check``). ``--profile`` adds a pyinstrument profile of one more
drain at the shipped batch size (device side, this process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _backlog import (  # noqa: E402
    PostgresCentral,
    Stopwatch,
    build_backlog,
    copy_backlog,
    drain,
    instrument,
)

TARGET_S = 10.0


def one_drain(pg: PostgresCentral, template: Path, work: Path, sync_settings, batch: int, *,
              profile: bool = False):
    """Drain a fresh copy of ``template`` with ``batch_records = batch``; returns the figures."""
    from kiosk.buffer import Buffer
    from sync.uploader import Uploader

    device = pg.new_device(f"drain_b{batch}")
    path = copy_backlog(template, work / f"buffer-b{batch}.sqlite3")
    buf = Buffer.open(path)
    settings = sync_settings.model_copy(update={"batch_records": batch})
    uploader = Uploader(settings, buf, device.state)
    watch = Stopwatch()
    undo = instrument(uploader, watch) if not profile else (lambda: None)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    try:
        result = drain(uploader)
    finally:
        if profiler is not None:
            profiler.stop()
        undo()
        uploader.session.close()
        stats = buf.stats()
        buf.close()
        central_timings = device.stop()
    stored = pg.count_answers(device.database_url)
    return {"batch": batch, "result": result, "watch": watch, "central": central_timings,
            "stored": stored, "stats": stats, "profiler": profiler}


def main(argv: list[str] | None = None) -> int:
    from kiosk.settings import load_settings

    shipped = load_settings(None).sync
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=100_000, help="answers in the backlog")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sweep", default="50,100,300,500",
                    help="other batch sizes to drain, comma-separated ('' for none)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="folder for the buffer files (default: a temp dir under /tmp)")
    ap.add_argument("--profile", action="store_true",
                    help="one more drain at the shipped batch size under pyinstrument")
    ap.add_argument("--no-check", action="store_true", help="exit 0 whatever the time")
    args = ap.parse_args(argv)
    sizes = [shipped.batch_records] + [int(s) for s in args.sweep.split(",") if s.strip()
                                       and int(s) != shipped.batch_records]

    base = args.dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-drain-", dir=base) as tmp:
        work = Path(tmp)
        info = build_backlog(work / "template.sqlite3", answers=args.answers, seed=args.seed)
        print(f"backlog: {info.answers} answers, {info.visitors} visitors (responses), "
              f"{info.bytes / 1e6:.1f} MB buffer, built in {info.seconds:.1f} s (untimed); "
              f"files in {base}")
        print("central: run_central (uvicorn, 1 process) on 127.0.0.1 in its own process; "
              "PostgreSQL cluster with fsync on; a fresh database per drain")
        print(f"uploader: shipped [sync] settings (batch_records {shipped.batch_records}, "
              f"deadline_s {shipped.deadline_s:g}), only batch_records varied")
        runs = []
        with PostgresCentral() as pg:
            for batch in sizes:
                runs.append(one_drain(pg, info.path, work, shipped, batch))
                copy = work / f"buffer-b{batch}.sqlite3"
                copy.unlink(missing_ok=True)
            prof = (one_drain(pg, info.path, work, shipped, shipped.batch_records, profile=True)
                    if args.profile else None)

        print()
        print(f"{'batch':>7}{'rounds':>8}{'batches':>9}{'POSTs':>7}{'seconds':>9}"
              f"{'answers/s':>11}{'responses/s':>13}  stored (responses/answers)")
        for run in runs:
            r = run["result"]
            mark = "*" if run["batch"] == shipped.batch_records else " "
            print(f"{run['batch']:>6}{mark}{r.rounds:>8}{r.batches:>9}{r.attempts:>7}"
                  f"{r.seconds:>9.2f}{info.answers / r.seconds:>11.0f}"
                  f"{info.visitors / r.seconds:>13.0f}  {run['stored'][0]}/{run['stored'][1]}")
        print("(* shipped default)")

        ok_all = True
        for run in runs:
            r = run["result"]
            exact = (run["stored"] == (info.visitors, info.answers) and r.backlog_left == 0
                     and r.accepted == info.visitors and r.duplicate == 0 and r.rejected == 0
                     and run["stats"].responses_sent == info.visitors)
            ok_all &= exact
            if not exact:
                print(f"batch {run['batch']}: NOT exactly once: {r.accepted} accepted, "
                      f"{r.duplicate} duplicate, {r.rejected} rejected, {r.backlog_left} left, "
                      f"central stored {run['stored']}; last: {r.reports[-1].summary()}")
        print(f"every response and answer stored exactly once by central (all drains): "
              f"{'yes' if ok_all else 'NO'}")

        default = runs[0]
        r, w = default["result"], default["watch"]
        total = r.seconds
        central_s = sum(v["seconds"] for p, v in default["central"].items() if "batch" in p)
        heartbeat_s = sum(v["seconds"] for p, v in default["central"].items() if "heartbeat" in p)
        http = w.seconds["http"]
        known = sum(w.seconds[k] for k in ("pending", "encode", "gzip", "http", "mark_sent"))
        print()
        print(f"where the time goes, shipped batch {default['batch']} "
              f"({r.batches} batches, {total:.2f} s; device = this process, one thread):")
        rows = [
            ("pending(): SQLite read + ResponseRecord build", w.seconds["pending"], w.calls["pending"]),
            ("model_dump_json of each record", w.seconds["encode"], w.calls["encode"]),
            ("gzip.compress (level 5)", w.seconds["gzip"], w.calls["gzip"]),
            ("HTTP POST until the reply is read", http, w.calls["http"]),
            ("  of which inside central's app (batches)", central_s, None),
            ("  of which inside central's app (heartbeats)", heartbeat_s, None),
            ("  of which client + loopback + uvicorn", http - central_s - heartbeat_s, None),
            ("mark_sent(): one commit (fsync)", w.seconds["mark_sent"], w.calls["mark_sent"]),
            ("the rest (body join, reply parse, backlog, loop)", total - known, None),
        ]
        for label, secs, calls in rows:
            per = f"{secs / calls * 1e3:8.2f} ms/call" if calls else " " * 16
            print(f"  {label:<50}{secs:>7.2f} s {secs / total * 100:5.1f} %  {per}")

        best = min(runs, key=lambda run: run["result"].seconds)
        print()
        print(f"best batch size: {best['batch']} ({best['result'].seconds:.2f} s); shipped "
              f"{default['batch']}: {r.seconds:.2f} s ({r.seconds / best['result'].seconds:.2f}x "
              "the best)")
        if prof is not None:
            print()
            print(f"pyinstrument, one more drain at batch {prof['batch']} "
                  f"({prof['result'].seconds:.2f} s under the profiler):")
            print(prof["profiler"].output_text(unicode=True, color=False, show_all=False))
        passed = r.seconds <= TARGET_S and ok_all
        print(f"drain of {info.answers} answers, shipped batch {default['batch']}: "
              f"{r.seconds:.2f} s, {info.answers / r.seconds:.0f} answers/s; "
              f"target <= {TARGET_S:g} s: {'PASS' if passed else 'FAIL'}")
    return 0 if passed or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
