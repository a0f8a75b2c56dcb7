"""Export for the study: one CSV row per answer, streamed, times rounded down for privacy.

Use::

    with open("answers.csv", "w", newline="", encoding="utf-8") as fh:
        count = export_csv(engine, fh, start=..., end=..., round_to="hour")

Columns: :data:`COLUMNS`. ``time`` is the answer's corrected time in UTC
(ISO 8601, ``Z``), rounded DOWN to ``round_to`` (``hour``/``day``; ``none``
keeps milliseconds). ``start``/``end`` (Unix seconds, end exclusive) filter on
the exact corrected time. Rows come from the database in chunks, so memory does
not grow with the export.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from typing import IO

from sqlalchemy import Engine, select

from central.models import Answer, Response

COLUMNS = ("response_id", "device_id", "location_id", "questionnaire_id", "questionnaire_version",
           "question_id", "aspect", "value", "language", "time", "time_verified", "suspect",
           "end_reason")
ROUNDING_S = {"hour": 3600, "day": 86400, "none": None}
FETCH_ROWS = 2000

_r = Response.__table__
_a = Answer.__table__


def format_time(seconds: float, round_to: str = "hour") -> str:
    """``2024-11-27T10:00:00Z`` for ``round_to="hour"``: rounded down, UTC, ISO 8601."""
    step = ROUNDING_S[round_to]
    if step is None:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    moment = datetime.fromtimestamp(seconds // step * step, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def export_csv(engine: Engine, out: IO[str], *, start: float | None = None, end: float | None = None,
               round_to: str = "hour") -> int:
    """Write the header and one row per answer to ``out``; returns the number of rows.

    Ordered by corrected time, then response and ordinal.
    """
    if round_to not in ROUNDING_S:
        raise ValueError(f"round_to must be one of {', '.join(ROUNDING_S)}")
    query = (
        select(_r.c.id, _r.c.device_id, _r.c.location_id, _r.c.questionnaire_id,
               _r.c.questionnaire_version, _a.c.question_id, _a.c.aspect, _a.c.value_num,
               _a.c.value_text, _r.c.language, _a.c.answered_at, _a.c.time_verified,
               _r.c.suspect, _r.c.end_reason)
        .select_from(_a.join(_r, _a.c.response_id == _r.c.id))
        .order_by(_a.c.answered_at, _r.c.id, _a.c.ordinal)
    )
    if start is not None:
        query = query.where(_a.c.answered_at >= start)
    if end is not None:
        query = query.where(_a.c.answered_at < end)
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="DEFERRED", stream_results=True,
                                      yield_per=FETCH_ROWS)
        for row in conn.execute(query):
            value = row.value_num if row.value_num is not None else row.value_text
            writer.writerow((row.id, row.device_id, row.location_id, row.questionnaire_id,
                             row.questionnaire_version, row.question_id, row.aspect or "",
                             "" if value is None else value, row.language,
                             format_time(row.answered_at, round_to),
                             _flag(row.time_verified), _flag(row.suspect), row.end_reason))
            count += 1
    return count


def _flag(value: bool) -> str:
    return "true" if value else "false"
