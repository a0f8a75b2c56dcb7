"""Visitor counts per weekday x part of day, from the municipality, for post-stratification weights.

Use::

    counts = read_visitor_counts(Path("bezoekers-2025.csv"))   # {(1, "morning"): 5400.0, ...}
    build_report(engine, period, visitors=counts)

The file is CSV (UTF-8, comma or semicolon) with a header row naming the
columns ``weekday``, ``part`` and ``visitors`` (Dutch ``weekdag``, ``dagdeel``,
``bezoekers`` work too), one row per cell, e.g. from the queue system::

    weekdag;dagdeel;bezoekers
    maandag;ochtend;5400
    maandag;middag;3100
    donderdag;avond;900

``weekday``: 1-7 (ISO, Monday = 1) or the Dutch or English name (``ma``,
``maandag``, ``mon``, ``monday``); ``part``: ``ochtend``/``middag``/``avond`` or
``morning``/``afternoon``/``evening``, the parts the report uses (before
12:00, 12:00-17:00, from 17:00 local time); ``visitors``: a number >= 0 (a
decimal comma is fine). Cells not listed have no visitors. Every problem is
reported at once, by row and column, as a :class:`VisitorCountsError`; nothing
is guessed.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from central.errors import CentralError

PARTS = {"ochtend": "morning", "middag": "afternoon", "avond": "evening",
         "morning": "morning", "afternoon": "afternoon", "evening": "evening"}
_DAYS = (("ma", "maandag", "mon", "monday"), ("di", "dinsdag", "tue", "tuesday"),
         ("wo", "woensdag", "wed", "wednesday"), ("do", "donderdag", "thu", "thursday"),
         ("vr", "vrijdag", "fri", "friday"), ("za", "zaterdag", "sat", "saturday"),
         ("zo", "zondag", "sun", "sunday"))
WEEKDAYS = {name: number for number, names in enumerate(_DAYS, start=1) for name in names}
COLUMNS = {"weekday": ("weekday", "weekdag", "dag"), "part": ("part", "dagdeel"),
           "visitors": ("visitors", "bezoekers", "aantal")}
MAX_BYTES = 1_000_000


class VisitorCountsError(CentralError):
    """The visitor counts file cannot be used; the message names the file, row and column."""


def read_visitor_counts(path: Path) -> dict[tuple[int, str], float]:
    """The counts in ``path``: {(ISO weekday, "morning"/"afternoon"/"evening"): visitors}."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise VisitorCountsError(f"{path}: cannot read the visitor counts: "
                                 f"{err.strerror or err}") from None
    if len(raw) > MAX_BYTES:
        raise VisitorCountsError(f"{path}: {len(raw)} bytes; a visitor counts file has at most "
                                 f"21 rows (limit {MAX_BYTES} bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise VisitorCountsError(f"{path}: not UTF-8 text (byte {err.start}); save it as "
                                 "CSV UTF-8") from None
    return parse_visitor_counts(text, str(path))


def parse_visitor_counts(text: str, source: str = "visitor counts"
                         ) -> dict[tuple[int, str], float]:
    """:func:`read_visitor_counts` of text already read; ``source`` names it in errors."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise VisitorCountsError(f"{source}: empty; expected a header row "
                                 "(weekday,part,visitors) and a row per cell")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]]
    where: dict[str, int] = {}
    for column, names in COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in names]
        if not found:
            raise VisitorCountsError(
                f"{source}: the header has no column '{column}' (or {', '.join(names[1:])}); "
                f"it has: {', '.join(header) or 'nothing'}")
        where[column] = found[0]
    problems: list[str] = []
    counts: dict[tuple[int, str], float] = {}
    for number, row in enumerate(rows[1:], start=2):
        def cell(column: str) -> str:
            i = where[column]
            return row[i].strip() if i < len(row) else ""

        day_text, part_text, visitors_text = cell("weekday"), cell("part"), cell("visitors")
        day = _weekday(day_text)
        if day is None:
            problems.append(f"row {number}, weekday: {day_text!r} is not a weekday "
                            "(1-7, maandag..zondag or monday..sunday)")
        part = PARTS.get(part_text.lower())
        if part is None:
            problems.append(f"row {number}, part: {part_text!r} is not a part of the day "
                            "(ochtend, middag, avond)")
        visitors = _number(visitors_text)
        if visitors is None:
            problems.append(f"row {number}, visitors: {visitors_text!r} is not a number of "
                            "at least 0")
        if day is None or part is None or visitors is None:
            continue
        if (day, part) in counts:
            problems.append(f"row {number}: weekday {day} {part} is listed twice")
            continue
        counts[(day, part)] = visitors
    if not problems and not any(counts.values()):
        problems.append("no visitors in any cell: nothing to weight with")
    if problems:
        raise VisitorCountsError(f"{source}: " + "; ".join(problems))
    return counts


def _weekday(text: str) -> int | None:
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text)
    return WEEKDAYS.get(text.lower().rstrip("."))


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ".")) if text.count(",") <= 1 else None
    except ValueError:
        return None
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value
