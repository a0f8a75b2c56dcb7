"""The report over millions of answers on PostgreSQL, against ``SELECT count(*)`` over the same table.

Run::

    .venv/bin/python bench/report.py                          # 5 000 000 answers, 5 rounds
    .venv/bin/python bench/report.py --answers 500000 --rounds 3 --explain

What it does, in one run on one throwaway cluster (``tests/postgres.py``, durable
default settings):

1. ``scripts/generate_study_data.py`` fills a database with a year (2025) of a
   busy counter through central's own ingest (about 15 000 responses, 115 000
   answers; the waiting-time question reworded on 1 July);
2. that year is copied in SQL (new ids from md5, sequence numbers shifted, a
   location per copy) until the ``answers`` table holds at least ``--answers``
   rows: the same counter's year at many counters. ``VACUUM ANALYZE``;
3. one untimed run of each contender warms the caches; then ``--rounds``
   rounds, the order alternating within a round:

   * ``count``: ``SELECT count(*) FROM answers`` (the baseline);
   * ``figures``: :func:`central.report.build_report` for the year with the first
     half year as comparison period: every table of the report, from the database;
   * ``report``: that plus :func:`central.report_render.render_html` (the
     charts drawn with matplotlib, the self-contained HTML), which is what
     ``balie-central report --format html`` does.

Prints the medians, the ratios of the medians against ``count`` and the target
(``report`` <= 20x ``count``). Exit status 1 when over target (0 with
``--no-check``). ``--explain`` prints ``EXPLAIN ANALYZE`` of each query of the
report once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

TARGET = 20.0
YEAR = 2025


def _columns(conn, table: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position", (table,))]


def replicate(conn, copies: int) -> None:
    """Add ``copies`` copies of every response and answer (new ids, shifted seq, own location)."""
    swap = {
        "responses": {"id": "md5(id || '/' || k)::uuid::text",
                      "seq": "seq + k::bigint * 1000000000",
                      "location_id": "location_id || '-' || k"},
        "answers": {"id": "md5(id || '/' || k)::uuid::text",
                    "response_id": "md5(response_id || '/' || k)::uuid::text"},
    }
    for table in ("responses", "answers"):
        columns = _columns(conn, table)
        values = ", ".join(swap[table].get(c, c) for c in columns)
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "
                     f"FROM {table} CROSS JOIN generate_series(1, {copies}) AS k")


def explain(engine, period, compare) -> None:
    """EXPLAIN ANALYZE every statement build_report runs (printed once)."""
    from sqlalchemy import event

    from central.report import build_report
    from central.report_query import _cube_settings, prepare_session

    statements = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        build_report(engine, period, compare_with=compare)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    with engine.connect() as conn:       # rolled back: EXPLAIN ANALYZE changes nothing anyway
        prepare_session(conn)            # the report's own settings, as build_report sets them
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            _cube_settings(conn, "AS week_hour" in statement)   # on for the cube, as the report
            plan = [row[0] for row in conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)]
            print("\n" + statement.split("\n")[0][:100] + " ...")
            print("\n".join("    " + line for line in plan))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=5_000_000,
                        help="at least this many answers in the table (default 5 000 000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each query once")
    parser.add_argument("--no-check", action="store_true", help="exit 0 even when over target")
    args = parser.parse_args(argv)

    import generate_study_data
    from central.db import make_engine
    from central.report import Period, build_report
    from central.report_render import render_html
    from tests.postgres import start_cluster

    period = Period.from_dates(date(YEAR, 1, 1), date(YEAR, 12, 31))
    compare = Period.from_dates(date(YEAR, 1, 1), date(YEAR, 6, 30))
    cluster = start_cluster()
    try:
        url = cluster.create_database("bench_report")
        t0 = time.perf_counter()
        made = generate_study_data.generate(url, start=date(YEAR, 1, 1), days=365,
                                            seed=args.seed)
        print(f"generated one year through ingest: {made['responses']} responses, "
              f"{made['answers']} answers ({time.perf_counter() - t0:.0f} s)")
        with cluster.connect("bench_report", autocommit=True) as conn:
            base = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
            copies = max(0, -(-args.answers // base) - 1)
            t0 = time.perf_counter()
            replicate(conn, copies)
            conn.execute("VACUUM ANALYZE")
            total = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
            responses = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('answers'))"
                                ).fetchone()[0]
            version = conn.execute("SHOW server_version").fetchone()[0]
            print(f"copied {copies}x in SQL ({time.perf_counter() - t0:.0f} s): {total} answers "
                  f"({size} with indexes), {responses} responses; PostgreSQL {version}")

        engine = make_engine(url)
        with cluster.connect("bench_report") as conn:
            def count() -> int:
                return conn.execute("SELECT count(*) FROM answers").fetchone()[0]

            def figures():
                return build_report(engine, period, compare_with=compare)

            def report() -> int:
                return len(render_html(figures()))

            contenders = {"count": count, "figures": figures, "report": report}
            for fn in contenders.values():          # warm-up, not timed
                fn()
            if args.explain:
                explain(engine, period, compare)
            times: dict[str, list[float]] = {k: [] for k in contenders}
            names = list(contenders)
            print(f"\n{'round':>5}  " + "  ".join(f"{k + ' s':>10}" for k in names))
            for round_no in range(args.rounds):
                order = names if round_no % 2 == 0 else names[::-1]
                for name in order:
                    t0 = time.perf_counter()
                    contenders[name]()
                    times[name].append(time.perf_counter() - t0)
                print(f"{round_no + 1:>5}  " + "  ".join(f"{times[k][-1]:>10.3f}" for k in names))
        engine.dispose()
    finally:
        cluster.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedians over {args.rounds} rounds, {total} answers, {os.cpu_count()} CPUs:")
    for name in names:
        print(f"  {name:<8} {med[name]:8.3f} s   {med[name] / med['count']:6.1f}x count")
    ratio = med["report"] / med["count"]
    ok = ratio <= TARGET
    print(f"report / count(*) = {ratio:.1f}x (target <= {TARGET:.0f}x): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
