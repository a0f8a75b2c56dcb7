#!/usr/bin/env python3
"""The report's A4 pages as PNG images (the same figures the PDF holds), for docs/report/.

Use::

    .venv/bin/python scripts/render_report_pages.py sqlite:////tmp/study.sqlite3 docs/report \\
        --from 2025-01-01 --to 2025-12-31 --compare-from 2024-01-01 --compare-to 2024-12-31

Writes ``<prefix><n>-<name>.png`` per page at ``--dpi`` (default 80: about 660 x 935 pixels,
under 150 KB a page). No poppler needed: matplotlib draws the pages itself.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from central.db import make_engine  # noqa: E402
from central.report import Period, build_report  # noqa: E402
from central.report_render import pages  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="database URL (sqlite:///... or postgresql+psycopg://...)")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    parser.add_argument("--compare-from", type=date.fromisoformat)
    parser.add_argument("--compare-to", type=date.fromisoformat)
    parser.add_argument("--prefix", default="pagina-")
    parser.add_argument("--dpi", type=int, default=80)
    parser.add_argument("--visitors", type=Path, help="visitor counts CSV: a weighted report")
    parser.add_argument("--pages", help="only these page numbers, e.g. 1,7")
    args = parser.parse_args(argv)
    visitors = None
    if args.visitors is not None:
        from central.visitors import read_visitor_counts
        visitors = read_visitor_counts(args.visitors)
    engine = make_engine(args.database)
    try:
        previous = (Period.from_dates(args.compare_from, args.compare_to)
                    if args.compare_from else None)
        report = build_report(engine, Period.from_dates(args.start, args.end),
                              compare_with=previous, visitors=visitors,
                              visitors_source=args.visitors.name if args.visitors else "")
    finally:
        engine.dispose()
    args.folder.mkdir(parents=True, exist_ok=True)
    wanted = {int(n) for n in args.pages.split(",")} if args.pages else None
    for number, (name, fig) in enumerate(pages(report), start=1):
        if wanted is not None and number not in wanted:
            continue
        path = args.folder / f"{args.prefix}{number}-{name}.png"
        fig.savefig(path, dpi=args.dpi, facecolor="white")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
