"""Export for the study: the long CSV (one row per answer) and the wide files with a codebook.

Use::

    with open("answers.csv", "w", newline="", encoding="utf-8") as fh:
        count = export_csv(engine, fh, start=..., end=..., round_to="hour")
    done = export_wide(engine, Path("balie.sav"), "sav", start=..., end=..., round_to="hour")
    done.responses, done.files            # 1204, (balie.sav, balie.codebook.csv)

**Long** (:func:`export_csv`, unchanged since the first release): columns
:data:`COLUMNS`. ``time`` is the answer's corrected time in UTC (ISO 8601,
``Z``), rounded DOWN to ``round_to`` (``hour``/``day``; ``none`` keeps
milliseconds). ``start``/``end`` (Unix seconds, end exclusive) filter on the
exact corrected time of the answer. Rows come from the database in chunks, so
memory does not grow with the export. Every answer as stored, comments included.

**Wide** (:func:`export_wide`): one row per response, one variable per question,
described by :mod:`central.codebook`; ``start``/``end`` filter on the response's
corrected start. ``csv``: ``FILE`` and ``<FILE's stem>.codebook.csv``; ``xlsx``:
sheets ``data``, ``codebook`` and ``export``; ``sav``: SPSS with labels, value
labels, user-missing codes and measure levels, plus the codebook CSV (the wording
per version is also in the file's documents). Everything is read in one
database snapshot, so the codebook and the rows agree while terminals keep
sending. Files are written as ``*.partial`` and renamed when complete.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, func, select

from central.codebook import (
    DEFAULT_TIMEZONE,
    MISSING_LABELS,
    ROUNDING_S,
    Answered,
    Codebook,
    Published,
    build_codebook,
)
from central.export_formats import spreadsheet_safe
from central.models import Answer, Questionnaire, Response

COLUMNS = ("response_id", "device_id", "location_id", "questionnaire_id", "questionnaire_version",
           "question_id", "aspect", "value", "language", "time", "time_verified", "suspect",
           "end_reason")
FETCH_ROWS = 2000
#: ``--format`` values of the wide export; ``csv`` is also the long one.
FORMATS = ("csv", "sav", "xlsx")

_r = Response.__table__
_a = Answer.__table__
_q = Questionnaire.__table__


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
                             "" if value is None else spreadsheet_safe(value), row.language,
                             format_time(row.answered_at, round_to),
                             _flag(row.time_verified), _flag(row.suspect), row.end_reason))
            count += 1
    return count


def _flag(value: bool) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------------------- wide

@dataclass(frozen=True)
class WideExport:
    """What :func:`export_wide` wrote: ``files`` (data first), rows, and the codebook."""

    files: tuple[Path, ...]
    responses: int
    codebook: Codebook


def codebook_path(out: Path) -> Path:
    """``antwoorden.codebook.csv`` for ``antwoorden.csv`` or ``antwoorden.sav``."""
    return out.with_name((out.stem if out.suffix else out.name) + ".codebook.csv")


def export_wide(engine: Engine, out: Path, fmt: str, *, start: float | None = None,
                end: float | None = None, round_to: str = "hour",
                timezone_name: str = DEFAULT_TIMEZONE, include_comments: bool = False,
                now: float | None = None) -> WideExport:
    """Write the wide export of the responses started in ``[start, end)`` to ``out``.

    ``fmt``: one of :data:`FORMATS`. ``csv`` and ``sav`` also write
    :func:`codebook_path`. ``timezone_name``: where weekday and part of day are
    read. Raises ``OSError`` when a file cannot be
    written (nothing is left behind), ``ValueError`` for a bad ``fmt`` or
    ``round_to``, ``ZoneInfoNotFoundError`` for an unknown time zone.
    """
    from central import export_formats

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}")
    targets = [out] + ([codebook_path(out)] if fmt in ("csv", "sav") else [])
    partials = [path.with_name(path.name + ".partial") for path in targets]
    with _snapshot(engine) as conn:
        book = _codebook(conn, start, end, round_to=round_to, timezone=timezone_name,
                         include_comments=include_comments)
        about = _about(book, start, end, time.time() if now is None else now)
        rows = _wide_rows(conn, book, start, end)
        try:
            if fmt == "csv":
                count = export_formats.write_csv(partials[0], book, rows)
            elif fmt == "xlsx":
                count = export_formats.write_xlsx(partials[0], book, rows, about)
            else:
                count = export_formats.write_sav(partials[0], book, rows, about)
            if len(partials) > 1:
                export_formats.write_codebook_csv(partials[1], book)
            for partial, target in zip(partials, targets):
                partial.replace(target)
        except BaseException:
            for partial in partials:
                partial.unlink(missing_ok=True)
            raise
    return WideExport(tuple(targets), count, book)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction: the codebook's queries and the rows see the same data."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn.execution_options(sqlite_begin="DEFERRED")
        conn.rollback()


def _started_in(query, start: float | None, end: float | None):
    if start is not None:
        query = query.where(_r.c.started_at >= start)
    if end is not None:
        query = query.where(_r.c.started_at < end)
    return query


def _codebook(conn: Connection, start, end, **options) -> Codebook:
    in_export = {(row[0], row[1]): row[2] for row in conn.execute(_started_in(
        select(_r.c.questionnaire_id, _r.c.questionnaire_version, func.count())
        .group_by(_r.c.questionnaire_id, _r.c.questionnaire_version), start, end))}
    answered = [Answered(*row) for row in conn.execute(_started_in(
        select(_r.c.questionnaire_id, _r.c.questionnaire_version, _a.c.question_id,
               func.count(_a.c.value_num), func.count(_a.c.value_text))
        .select_from(_a.join(_r, _a.c.response_id == _r.c.id))
        .group_by(_r.c.questionnaire_id, _r.c.questionnaire_version, _a.c.question_id),
        start, end))]
    published = [Published(*row) for row in conn.execute(
        select(_q.c.questionnaire_id, _q.c.version, _q.c.toml)
        .order_by(_q.c.published_at, _q.c.pk))]

    def text_values(question_ids):
        values: dict[str, set[str]] = {}
        for qid, value in conn.execute(_started_in(
                select(_a.c.question_id, _a.c.value_text).distinct()
                .select_from(_a.join(_r, _a.c.response_id == _r.c.id))
                .where(_a.c.question_id.in_(list(question_ids)), _a.c.value_text.is_not(None)),
                start, end)):
            values.setdefault(qid, set()).add(value)
        return values

    return build_codebook(published, in_export, answered, text_values=text_values, **options)


def _wide_rows(conn: Connection, book: Codebook, start, end) -> Iterator[list]:
    """One row per response (``book.row``), by corrected start, streamed in chunks."""
    query = _started_in(
        select(_r.c.id, _r.c.location_id, _r.c.questionnaire_id, _r.c.questionnaire_version,
               _r.c.language, _r.c.started_at, _r.c.time_verified, _r.c.suspect,
               _r.c.end_reason, _a.c.question_id, _a.c.value_num, _a.c.value_text)
        .select_from(_r.outerjoin(_a, _a.c.response_id == _r.c.id))
        .order_by(_r.c.started_at, _r.c.id, _a.c.ordinal), start, end)
    current, answers = None, {}
    for row in conn.execution_options(stream_results=True, yield_per=FETCH_ROWS).execute(query):
        if current is not None and row.id != current.id:
            yield book.row(current, answers)
            answers = {}
        current = row
        if row.question_id is not None:
            answers[row.question_id] = (row.value_num if row.value_num is not None
                                        else row.value_text)
    if current is not None:
        yield book.row(current, answers)


def _about(book: Codebook, start, end, now: float) -> list[tuple[str, str]]:
    """What an export is, for the xlsx's ``export`` sheet and the SPSS file's documents."""
    from kiosk import __version__

    def moment(seconds):
        return format_time(seconds, "none")

    period = " and ".join(part for part in (
        f"from {moment(start)}" if start is not None else "",
        f"before {moment(end)}" if end is not None else "") if part) or "whenever"

    versions = "; ".join(
        f"{v.label}: {v.responses} response(s)"
        + ("" if v.known else f", wording not known to central ({v.unknown_because})")
        for v in book.versions) or "none"
    left_out = ", ".join(f"{item.question_id} ({item.reason})" for item in book.left_out)
    return [
        ("made", f"{moment(now)} by balie-central export {__version__}"),
        ("responses", f"one row per response started {period} (corrected start, UTC)"),
        ("time", f"{book.variable('time').notes}; weekday and part of day in {book.timezone}"),
        ("questionnaire versions", versions),
        ("comments", "included (--include-comments)" if book.include_comments else
         "left out: free text may still hold something personal (--include-comments adds "
         "them)" + (f"; left out: {left_out}" if left_out else "")),
        ("missing codes", "; ".join(f"{code} = {text}" for code, text in MISSING_LABELS.items())
         + " (in text variables the same codes as text: '-1', '-2', '-3')"),
    ]
