"""The report's counts, computed by the database: a few GROUP BY queries instead of every answer.

Use::

    with engine.connect() as conn:
        questions = question_map(read_questionnaires(conn))
        cur, prev = read_counts(conn, period, questions, compare_with)  # PeriodCounts (or None)
        cur.grades["totaal"]                                            # {series: {grade: count}}

The report needs frequency tables, not answers: a summary of grades is a
function of how often each grade occurs (``central.stats.summarise_counts``),
a correlation a function of six sums (``key_drivers_from_sums``). So the
database counts, grouped by what the report splits on, and at most a few tens
of thousands of small rows reach Python whatever the number of answers
(docs/benchmarks.md, "bench/report"). The queries:

* ``responses`` (both periods in one pass over the responses): responses per
  version and period, their first start, idle ends, suspect ones;
* ``cube`` (both periods in one pass over the answers): answers to grade,
  smiley and service questions, counted per questionnaire version, question,
  value, period, local month and local hour of the week; with each count the
  answers per service option and the count, sum and sum of squares of the
  overall grades paired with them (the service grid and the key drivers' sums).

The cube does not join answers to responses: each answer carries what the
report splits on from its response (start, version, suspect flag, service,
overall grade; ``central.models.Answer``, written by ``central.ingest``).

Local time without time-zone support in SQLite: the period's offsets from UTC
are a handful of constant stretches between daylight-saving changes, found
here in Python and written into the query as a ``CASE``; so are the UTC starts
of the local months. Hours of the week count from a local Monday 00:00 on or
before the first day of both periods, so every value is a whole number >= 0 in
both databases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone as dt_timezone
from math import gcd
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from central.models import OVERALL_ASPECT, SERVICE_ASPECT, Answer, Response
from central.stats import series_numbers

_r = Response.__table__
_a = Answer.__table__

HOURS_PER_WEEK = 7 * 24
#: Bisection stops once a change of offset is pinned to this many seconds.
_STEP = 6 * 3600


@dataclass(frozen=True)
class QuestionMap:
    """What the queries filter and group on, from the published questionnaires.

    ``kind``: (questionnaire, version, question id) -> (type, aspect, faces) for
    the grade and smiley questions; ``series``: the same key -> series number;
    ``service``: (questionnaire, version) -> the id of its service question;
    ``overall``: (questionnaire, version) -> the id of its overall grade question;
    ``service_values``: the options of all service questions (the grid's services: an
    answer outside its question's options is not a service, as in the export's code -4).
    """

    kind: Mapping[tuple[str, int, str], tuple[str, str, int | None]]
    series: Mapping[tuple[str, int, str], int]
    service: Mapping[tuple[str, int], str]
    overall: Mapping[tuple[str, int], str]
    known: frozenset[tuple[str, int]]
    service_values: tuple[str, ...] = ()


@dataclass
class PeriodCounts:
    """One period's frequency tables (suspect responses left out).

    ``grades[aspect][series][grade]``; ``months[aspect][series][month][grade]``
    (``month``: the first day of a local month); ``week_hours[aspect][hour of the
    week][grade]`` (0 = Monday 00:00-01:00 local; both periods: weights need it);
    ``smileys[aspect] = (faces,
    {face: count})``; ``services[aspect][service][grade]``; ``service_responses[service]``; ``drivers[aspect] =
    [n, sum_x, sum_y, sum_xx, sum_yy, sum_xy]``; ``versions``: responses per
    (questionnaire, version); ``first_seen``: the first start per version.
    """

    responses: int = 0
    suspect: int = 0
    idle: int = 0
    versions: dict[tuple[str, int], int] = field(default_factory=dict)
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    grades: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_counter)))
    months: dict = field(default_factory=lambda: defaultdict(
        lambda: defaultdict(lambda: defaultdict(_counter))))
    week_hours: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_counter)))
    smileys: dict = field(default_factory=dict)
    services: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_counter)))
    service_responses: dict[str, int] = field(default_factory=dict)
    drivers: dict = field(default_factory=dict)


def _counter() -> dict[int, int]:
    return defaultdict(int)


def question_map(questionnaires) -> QuestionMap:
    """The :class:`QuestionMap` of parsed questionnaires {(id, version): Questionnaire}."""
    series = series_by_question(questionnaires)
    kind, service, overall, values = {}, {}, {}, set()
    for (qid, version), q in questionnaires.items():
        for question in q.questions:
            key = (qid, version, question.id)
            if question.type in ("grade", "smiley"):
                kind[key] = (question.type, question.aspect, question.faces)
                if question.type == "grade" and question.aspect == OVERALL_ASPECT:
                    overall.setdefault((qid, version), question.id)
            elif (question.type == "choice" and question.aspect == SERVICE_ASPECT
                  and service.setdefault((qid, version), question.id) == question.id):
                values.update(option.value for option in question.options)
    return QuestionMap(kind, {k: series[(k[0], k[2], k[1])] for k in kind}, service, overall,
                       frozenset(questionnaires), tuple(sorted(values)))


def series_by_question(questionnaires) -> dict[tuple[str, str, int], int]:
    """(questionnaire id, question id, version) -> series number (central.stats.series_numbers)."""
    by_id: dict[str, dict[int, dict[str, dict[str, str]]]] = defaultdict(dict)
    for (qid, version), q in questionnaires.items():
        by_id[qid][version] = {question.id: dict(question.text) for question in q.questions}
    out = {}
    for qid, versions in by_id.items():
        for (question, version), number in series_numbers(versions).items():
            out[(qid, question, version)] = number
    return out


# ---------------------------------------------------------------------------- SQL pieces

class floor_int(FunctionElement):
    """``floor(x)`` as a whole number (x >= 0 where it is used): SQLite has no floor() everywhere."""

    type = BigInteger()
    inherit_cache = True


@compiles(floor_int)
def _floor_default(element, compiler, **kw):
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(floor_int, "sqlite")
def _floor_sqlite(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"   # truncates: x >= 0


def utc_offsets(timezone: str, start: float, end: float) -> tuple[int, list[tuple[float, int]]]:
    """The zone's UTC offset (seconds) at ``start`` and each change ``(moment, new offset)`` up to ``end``."""
    tz = ZoneInfo(timezone)

    def offset(t: float) -> int:
        return int(datetime.fromtimestamp(t, tz).utcoffset().total_seconds())

    first = offset(start)
    changes: list[tuple[float, int]] = []
    current, t = first, float(int(start))
    while t < end:
        nxt = min(t + _STEP, end)
        if offset(nxt) != current:
            lo, hi = t, nxt                       # offset(lo) == current != offset(hi)
            while hi - lo > 1:
                mid = float(int((lo + hi) / 2))
                if offset(mid) == current:
                    lo = mid
                else:
                    hi = mid
            current = offset(hi)
            changes.append((hi, current))
        t = nxt
    return first, changes


def month_starts(period) -> list[tuple[date, float]]:
    """The local months the period touches, each with the UTC moment it starts (the first: the period's)."""
    tz = ZoneInfo(period.timezone)
    out = [(date(period.first.year, period.first.month, 1), period.start)]
    month = out[0][0]
    while True:
        month = (month + timedelta(days=32)).replace(day=1)
        if month > period.last:
            return out
        out.append((month, datetime(month.year, month.month, 1, tzinfo=tz).timestamp()))


def _week_origin(period) -> float:
    """Local Monday 00:00 on or before the period's first day, as seconds on a UTC-like scale."""
    monday = period.first - timedelta(days=period.first.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=dt_timezone.utc).timestamp()


@dataclass(frozen=True)
class _Span:
    """Both periods at once, for the hours of the week (what _local_hour_of_week reads)."""

    first: date
    start: float
    end: float
    timezone: str


def _span(period, other=None) -> _Span:
    if other is None:
        return _Span(period.first, period.start, period.end, period.timezone)
    return _Span(min(period.first, other.first), min(period.start, other.start),
                 max(period.end, other.end), period.timezone)


def _local_hour_of_week(period, started):
    first, changes = utc_offsets(period.timezone, period.start, period.end)
    if changes:
        offset = case(*[(started < moment, before) for moment, before in
                        zip([m for m, _ in changes], [first] + [o for _, o in changes[:-1]])],
                      else_=changes[-1][1])
    else:
        offset = literal(first)
    hours = floor_int((started + offset - _week_origin(period)) / 3600.0)
    return hours % HOURS_PER_WEEK


def _month_index(period, started):
    starts = month_starts(period)
    if len(starts) == 1:
        return literal(0)
    return case(*[(started < moment, i) for i, (_, moment) in enumerate(starts[1:])],
                else_=len(starts) - 1)


def slice_seconds(period, other=None) -> int:
    """The longest time slice (a divisor of an hour) in which every moment the report splits on
    falls on a slice boundary: the periods' ends, local month starts and the zone's offset
    changes, with every offset a whole number of slices. 3600 for whole-hour zones; 1800 for
    Lord Howe Island. Answers in one slice then share period, month and local hour."""
    size = 3600
    for p in (period, other):
        if p is None:
            continue
        first, changes = utc_offsets(p.timezone, p.start, p.end)
        moments = [p.start, p.end, *(m for _, m in month_starts(p)), *(m for m, _ in changes)]
        for value in [first, *(o for _, o in changes), *moments]:
            size = gcd(size, int(value) % 3600)
    return size


def _between(moment, period):
    """``moment`` (an SQL expression of seconds) within ``period``: ``[start, end)``."""
    return and_(moment >= period.start, moment < period.end)


def _within(period, table=_r):
    """Responses (or answers of responses: ``table``) started in ``period`` (``[start, end)``)."""
    return and_(table.c.started_at >= period.start, table.c.started_at < period.end)


# ---------------------------------------------------------------------------- reading

#: Memory per sort or hash of the report's queries on PostgreSQL (its default is 4 MB):
#: the cube's hash tables (tens of thousands of slices, about 40 MB at 5 million answers).
REPORT_WORK_MEM = "64MB"


def prepare_session(conn: Connection) -> None:
    """Settings for the report's own transaction (PostgreSQL): memory to hash in, no JIT.

    ``SET LOCAL``: they end with the transaction. JIT is off but for the cube
    (:func:`_cube_settings`): on the small queries compiling costs more than it saves.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        conn.exec_driver_sql("SET LOCAL jit = off")


def _cube_settings(conn: Connection, on: bool) -> None:
    """PostgreSQL settings for the cube (``on``), or back to the transaction's own.

    * Group by hashing: the planner cannot know how few slices, months and hours
      there are. It once estimated 4.5 million groups for 21 000 on 5 million
      answers, sorted every row on disk to group them, and spent 12 of the
      query's 16 s there (bench/report.py --explain). Sorting is switched off for
      this one query only: elsewhere the same switch made PostgreSQL walk an index
      row by row, far slower.
    * JIT-compiled expressions, optimised but not inlined: the cube evaluates a
      dozen aggregates per answer. 1.70-1.79 s against 1.97-2.04 s at 5 million
      answers, compiling included (about 0.45 s over the three processes); with
      inlining, compiling alone took 1.3 s. A server without JIT ignores it.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL enable_sort = {'off' if on else 'DEFAULT'}")
        conn.exec_driver_sql(f"SET LOCAL jit = {'on' if on else 'off'}")
        conn.exec_driver_sql(f"SET LOCAL jit_inline_above_cost = {-1 if on else 'DEFAULT'}")


def read_counts(conn: Connection, period, questions: QuestionMap, compare_with=None
                ) -> tuple[PeriodCounts, PeriodCounts | None]:
    """Count the period's (and the comparison period's) answers: two queries.

    Returns ``(current, previous)``; ``previous`` is None without ``compare_with``
    and holds only the responses and the grades (what a comparison needs).
    """
    cur = PeriodCounts()
    prev = PeriodCounts() if compare_with is not None else None
    _read_responses(conn, period, compare_with, cur, prev)
    if questions.kind and (cur.responses or (prev is not None and prev.responses)):
        _read_cube(conn, period, compare_with, questions, cur, prev)
    if questions.kind and cur.responses:
        for aspect in list(cur.grades) + list(cur.smileys):    # asked but never paired: None
            if aspect != OVERALL_ASPECT:
                cur.drivers.setdefault(aspect, [0] * 6)
    return cur, prev


def _read_responses(conn: Connection, period, compare_with, cur: PeriodCounts,
                    prev: PeriodCounts | None) -> None:
    """Responses per version, suspect flag and period: one pass for both periods."""
    in_cur = _within(period)
    in_prev = _within(compare_with) if compare_with is not None else None
    keys = [_r.c.questionnaire_id, _r.c.questionnaire_version, _r.c.suspect,
            case((in_cur, 1), else_=0).label("cur"),
            (case((in_prev, 1), else_=0) if in_prev is not None else literal(0)).label("prev")]
    inner = (select(*keys, _r.c.started_at,
                    case((_r.c.end_reason == "idle", 1), else_=0).label("idle"))
             .where(in_cur if in_prev is None else or_(in_cur, in_prev))
             .subquery("period_responses"))    # PostgreSQL cannot match bound values in GROUP BY
    grouped = [inner.c[k.name] for k in keys]
    query = (select(*grouped, func.count(), func.min(inner.c.started_at), func.sum(inner.c.idle))
             .group_by(*grouped))
    for qid, version, suspect, is_cur, is_prev, n, first, idle in conn.execute(query):
        for out, member in ((cur, is_cur), (prev, is_prev)):
            if not member:
                continue
            if suspect:
                out.suspect += n
                continue
            key = (qid, int(version))
            out.responses += n
            out.idle += int(idle or 0)
            out.versions[key] = out.versions.get(key, 0) + n
            out.first_seen[key] = min(first, out.first_seen.get(key, first))


def _read_cube(conn: Connection, period, compare_with, questions: QuestionMap,
               cur: PeriodCounts, prev: PeriodCounts | None) -> None:
    """One pass over both periods' answers (they may overlap: a flag for each).

    Two steps in one statement: the answers are counted per time slice of
    :func:`slice_seconds` (an hour where the zone's offsets are whole hours) with
    nothing but a division per row; the periods, local months and hours of the
    week are then worked out once per slice, not once per answer.

    The same pass holds the service grid and the key drivers. Every answer
    carries its response's service and overall grade (central.ingest), so each
    group also counts its answers per service (a column per option of the
    service questions) and sums the overall grades paired with it: its own value
    is fixed within the group, so those give every sum a correlation needs, as
    whole numbers.
    """
    service_ids = set(questions.service.values())
    ids = sorted({k[2] for k in questions.kind} | service_ids)
    size = slice_seconds(period, compare_with)
    # A service answer's text is its response's service (ingest's first ``dienst`` text):
    # that column, not value_text, so comments stay out of the scan.
    service = case((_a.c.question_id.in_(sorted(service_ids)), _a.c.service))
    keys = [_a.c.questionnaire_id, _a.c.questionnaire_version, _a.c.question_id,
            _a.c.value_num, service.label("service")]
    in_either = (_within(period, _a) if compare_with is None
                 else or_(_within(period, _a), _within(compare_with, _a)))
    y = _a.c.overall
    tallies = [func.count().label("n"), func.count(y).label("paired"),
               func.sum(y).label("sum_y"), func.sum(y * y).label("sum_yy")]
    tallies += [func.count().filter(_a.c.service == value).label(f"s{i}")
                for i, value in enumerate(questions.service_values)]
    sliced = (select(*keys, floor_int(_a.c.started_at / float(size)).label("slice"), *tallies)
              .where(in_either, _a.c.suspect.is_(False), _a.c.question_id.in_(ids))
              .group_by(*keys, "slice")
              .subquery("sliced"))
    start = sliced.c.slice * size          # the slice's first second: all of it is alike
    in_cur = _between(start, period)
    columns = [*(sliced.c[k.name] for k in keys),
               case((in_cur, 1), else_=0).label("cur"),
               (case((_between(start, compare_with), 1), else_=0) if compare_with is not None
                else literal(0)).label("prev"),
               case((in_cur, _month_index(period, start)), else_=-1).label("month"),
               _local_hour_of_week(_span(period, compare_with), start).label("week_hour")]
    # The buckets are computed in a subquery: PostgreSQL cannot match bound values in GROUP BY.
    # Answers carry their response's start, version and suspect flag: no join (central.models).
    names = [t.name for t in tallies]
    inner = select(*columns, *(sliced.c[n] for n in names)).subquery("answered")
    grouped = [c for c in inner.c if c.name not in names]
    query = select(*grouped, *(cast(func.sum(inner.c[n]), BigInteger) for n in names)  # not numeric
                   ).group_by(*grouped)
    months = [m for m, _ in month_starts(period)]
    service_values = frozenset(questions.service_values)
    _cube_settings(conn, True)
    try:
        rows = conn.execute(query).all()
    finally:
        _cube_settings(conn, False)
    for row in rows:
        qid, version, question, value, text, is_cur, is_prev, month, hour, count = row[:10]
        version = int(version)
        kind = questions.kind.get((qid, version, question))
        if kind is None or value is None:
            if (is_cur and text in service_values
                    and questions.service.get((qid, version)) == question):
                cur.service_responses[text] = cur.service_responses.get(text, 0) + count
            continue
        qtype, aspect, faces = kind
        value = int(value)
        if qtype == "grade" and 1 <= value <= 10:
            series = (qid, question, questions.series[(qid, version, question)])
            if is_cur:
                cur.grades[aspect][series][value] += count
                cur.months[aspect][series][months[month]][value] += count
                cur.week_hours[aspect][int(hour)][value] += count
            if is_prev:
                prev.grades[aspect][series][value] += count
                prev.week_hours[aspect][int(hour)][value] += count
        elif qtype == "smiley" and faces and 1 <= value <= faces and is_cur:
            cur.smileys.setdefault(aspect, (faces, defaultdict(int)))[1][value] += count
        else:
            continue
        if is_cur:
            _pair(cur, questions, (qid, version), question, qtype, aspect, value, row[10:])


def _pair(out: PeriodCounts, questions: QuestionMap, key: tuple[str, int], question: str,
          qtype: str, aspect: str, value: int, tallies) -> None:
    """Add one group's service counts and overall-grade sums to the grid and the drivers' sums."""
    paired, sum_y, sum_yy, *per_service = tallies
    if qtype == "grade" and key in questions.service:
        for service, n in zip(questions.service_values, per_service):
            if n:
                out.services[aspect][service][value] += n
    overall_question = questions.overall.get(key)
    if (paired and overall_question is not None and aspect != OVERALL_ASPECT
            and question != overall_question):
        sums = out.drivers.setdefault(aspect, [0] * 6)
        for i, term in enumerate((paired, value * paired, sum_y, value * value * paired, sum_yy,
                                  value * sum_y)):
            sums[i] += term
