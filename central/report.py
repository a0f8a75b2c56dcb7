"""The thermometer's figures: a period's answers read from the database, made into the report's tables.

Use::

    period = Period.from_dates(date(2025, 1, 1), date(2025, 12, 31))      # whole local days
    previous = Period.from_dates(date(2024, 1, 1), date(2024, 12, 31))
    report = build_report(engine, period, compare_with=previous, target=7.5)
    report.scorecard[0].aspect, report.scorecard[0].summary.mean, report.scorecard[0].comparison
    report.method.breaks            # where a question's wording changed (a new trend series)

Every figure comes from :mod:`central.stats` (``summarise``, ``compare``,
``key_drivers``, ``series_numbers``/``series_breaks``, ``wilson_interval``);
this module only selects and groups the answers. Rules (docs/CENTRAL.md, "The report"):

* **Grades only** go into the grade statistics: answers to questions that the
  published questionnaire version calls ``grade``. Smiley answers (1-3 or 1-5)
  get their own table (share of the two happiest faces) and take part in the
  key drivers; answers of versions central does not know are left out and
  counted in the method note.
* Responses flagged **suspect** (rapid repeated sessions) are left out and
  counted; sessions ended by the idle timer count with the answers they have.
* **Periods** are whole days in the counter's local time (``Europe/Amsterdam``);
  a response belongs to the period of its corrected start.
* **Comparison** per aspect only when both periods asked it in one and the same
  series (same wording): else "not compared: wording changed".
* **Small groups** follow :class:`central.stats.SmallGroups`: fewer than
  ``min_shown`` answers show no figure anywhere, fewer than ``min_tested`` are
  indicative and never tested.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from central.codebook import WEEKDAYS
from central.errors import CentralError
from central.models import Answer, Questionnaire as QuestionnaireRow, Response
from central.stats import (
    DEFAULT_ALPHA,
    Aggregate,
    DEFAULT_CONFIDENCE,
    DEFAULT_TARGET,
    Comparison,
    Driver,
    Interval,
    SeriesBreak,
    SmallGroups,
    Summary,
    compare,
    key_drivers,
    series_breaks,
    series_numbers,
    summarise,
    weekday_part_of_day,
    wilson_interval,
)
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Questionnaire, parse_questionnaire

DEFAULT_TIMEZONE = "Europe/Amsterdam"
OVERALL = "totaal"
PARTS = ("morning", "afternoon", "evening")
PART_NL = {"morning": "ochtend", "afternoon": "middag", "evening": "avond"}
ASPECT_NL = {"totaal": "Totaaloordeel", "wachttijd": "Wachttijd",
             "vriendelijkheid": "Vriendelijkheid", "deskundigheid": "Deskundigheid",
             "duidelijkheid": "Duidelijkheid", "afhandeling": "Afhandeling",
             "wachtruimte": "Wachtruimte", "verwachting": "Verwachting vooraf"}
MONTHS_NL = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")

_r = Response.__table__
_a = Answer.__table__
_q = QuestionnaireRow.__table__


class EmptyPeriod(CentralError):
    """No usable response was started in the period (not worth retrying with the same dates)."""


def aspect_label(aspect: str) -> str:
    """The Dutch name of an aspect for people (``wachttijd`` -> ``Wachttijd``)."""
    return ASPECT_NL.get(aspect, aspect.replace("-", " ").replace("_", " ").capitalize())


# ---------------------------------------------------------------------------- periods

@dataclass(frozen=True)
class Period:
    """``[start, end)`` in Unix seconds, from whole local days ``first`` to ``last`` inclusive."""

    first: date
    last: date
    start: float
    end: float
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def from_dates(cls, first: date, last: date, timezone: str = DEFAULT_TIMEZONE) -> "Period":
        if last < first:
            raise CentralError(f"the period ends ({last}) before it starts ({first})")
        tz = ZoneInfo(timezone)
        start = datetime(first.year, first.month, first.day, tzinfo=tz).timestamp()
        after = last + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz).timestamp()
        return cls(first, last, start, end, timezone)

    @property
    def label(self) -> str:
        """``1-1-2025 t/m 31-12-2025``."""
        return f"{_nl_date(self.first)} t/m {_nl_date(self.last)}"


def _nl_date(day: date) -> str:
    return f"{day.day}-{day.month}-{day.year}"


# ---------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class QuestionInfo:
    type: str
    aspect: str
    texts: Mapping[str, str]
    faces: int | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PeriodData:
    """One period's usable responses: ``responses`` maps id -> (start, (questionnaire, version),
    {question id: value}); ``suspect``: left out; ``unknown``: responses of unknown versions."""

    period: Period
    responses: dict[str, tuple[float, tuple[str, int], dict[str, int | str]]]
    suspect: int = 0
    idle: int = 0
    unknown: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)


def read_questionnaires(conn: Connection) -> dict[tuple[str, int], Questionnaire]:
    """Every published questionnaire version central knows, parsed (one text per id + version)."""
    out: dict[tuple[str, int], Questionnaire] = {}
    for qid, version, text in conn.execute(
            select(_q.c.questionnaire_id, _q.c.version, _q.c.toml).order_by(_q.c.published_at)):
        if (qid, version) in out:
            continue
        try:
            out[(qid, version)] = parse_questionnaire(text, f"{qid} v{version}")
        except QuestionnaireError:
            continue  # published by an older release under other rules: treated as unknown
    return out


def read_period(conn: Connection, period: Period) -> PeriodData:
    """The responses started in ``period`` with their answers (one query, streamed)."""
    query = (select(_r.c.id, _r.c.started_at, _r.c.questionnaire_id, _r.c.questionnaire_version,
                    _r.c.suspect, _r.c.end_reason, _a.c.question_id, _a.c.value_num,
                    _a.c.value_text)
             .select_from(_r.outerjoin(_a, _a.c.response_id == _r.c.id))
             .where(_r.c.started_at >= period.start, _r.c.started_at < period.end)
             .order_by(_r.c.started_at, _r.c.id, _a.c.ordinal))
    data = PeriodData(period, {})
    suspect_ids: set[str] = set()
    for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query):
        if row.suspect:
            suspect_ids.add(row.id)
            continue
        entry = data.responses.get(row.id)
        if entry is None:
            key = (row.questionnaire_id, int(row.questionnaire_version))
            entry = data.responses[row.id] = (row.started_at, key, {})
            data.versions[key] += 1
            data.first_seen.setdefault(key, row.started_at)
            if row.end_reason == "idle":
                data.idle += 1
        if row.question_id is not None:
            entry[2][row.question_id] = (row.value_num if row.value_num is not None
                                         else row.value_text)
    data.suspect = len(suspect_ids)
    return data


def question_info(questionnaires: Mapping[tuple[str, int], Questionnaire]
                  ) -> dict[tuple[str, int], dict[str, QuestionInfo]]:
    """(questionnaire, version) -> question id -> type, aspect, texts, faces, option labels."""
    out = {}
    for key, q in questionnaires.items():
        out[key] = {question.id: QuestionInfo(
            question.type, question.aspect, dict(question.text), question.faces,
            {o.value: o.label_for("nl") for o in question.options}) for question in q.questions}
    return out


# ---------------------------------------------------------------------------- tables

@dataclass(frozen=True)
class ScoreRow:
    """One aspect of the scorecard; ``comparison`` None when not compared (``note`` says why)."""

    aspect: str
    summary: Summary
    previous: Summary | None = None
    comparison: Comparison | None = None
    note: str = ""
    distribution: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SmileyRow:
    """A smiley question: share of the two happiest faces (Wilson interval); None when suppressed."""

    aspect: str
    faces: int
    n: int
    top_share: float | None
    top_ci: Interval | None
    indicative: bool


@dataclass(frozen=True)
class OtherRow:
    """An imported study figure (another channel, an earlier study) against this period's counter.

    ``comparison``: this period's summary (current) against the imported ``Aggregate``.
    """

    study: str
    period: str
    channel: str
    aspect: str
    aggregate: Aggregate
    comparison: Comparison


@dataclass(frozen=True)
class TrendPoint:
    month: date
    summary: Summary


@dataclass(frozen=True)
class TrendSeries:
    """One aspect's months within one series (one wording); lines are never joined across series."""

    aspect: str
    series: int
    label: str
    points: tuple[TrendPoint, ...]


@dataclass(frozen=True)
class VersionNote:
    questionnaire_id: str
    version: int
    responses: int
    first_seen: float
    known: bool


@dataclass(frozen=True)
class MethodNote:
    period: Period
    compare_period: Period | None
    responses: int
    compare_responses: int | None
    suspect: int
    idle: int
    target: float
    alpha: float
    confidence: float
    thresholds: SmallGroups
    versions: tuple[VersionNote, ...]
    breaks: tuple[tuple[str, SeriesBreak, str, str], ...]  # (questionnaire, break, old, new text)
    unknown_responses: int
    timezone: str


@dataclass(frozen=True)
class Report:
    """Everything the report prints; the renderers only lay it out."""

    title: str
    period: Period
    compare_period: Period | None
    target: float
    alpha: float
    confidence: float
    thresholds: SmallGroups
    scorecard: tuple[ScoreRow, ...]
    smileys: tuple[SmileyRow, ...]
    trends: tuple[TrendSeries, ...]
    services: tuple[tuple[str, str], ...]                   # (value, label), most answers first
    service_grid: Mapping[tuple[str, str], Summary]          # (service value, aspect) -> Summary
    heatmap_aspect: str
    heatmap: Mapping[tuple[int, str], Summary]               # (ISO weekday, part) -> Summary
    drivers: Mapping[str, Driver | None]
    method: MethodNote
    others: tuple[OtherRow, ...] = ()

    @property
    def aspects(self) -> tuple[str, ...]:
        return tuple(row.aspect for row in self.scorecard)


def build_report(engine: Engine, period: Period, *, compare_with: Period | None = None,
                 target: float = DEFAULT_TARGET, alpha: float = DEFAULT_ALPHA,
                 confidence: float = DEFAULT_CONFIDENCE,
                 thresholds: SmallGroups = SmallGroups(),
                 title: str = "Klanttevredenheid publieksbalie") -> Report:
    """Read the period (and the comparison period) in one snapshot and build every table.

    Raises :class:`EmptyPeriod` when the period has no usable response, or no
    answer to a grade question of a version central knows.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn = conn.execution_options(sqlite_begin="DEFERRED")
        questionnaires = read_questionnaires(conn)
        current = read_period(conn, period)
        previous = read_period(conn, compare_with) if compare_with is not None else None
        conn.rollback()
    imported = _imported(engine)
    if not current.responses:
        raise EmptyPeriod(f"no responses in {period.label} (after leaving out {current.suspect} "
                          "suspect one(s)): nothing to report; check --from/--to")
    if compare_with is not None and not previous.responses:
        raise EmptyPeriod(f"no responses in the comparison period {compare_with.label}: "
                          "check --compare-from/--compare-to")
    info = question_info(questionnaires)
    series = _series(questionnaires)
    cur = _Grouped(current, info, series, period.timezone)
    if not cur.grades:
        raise EmptyPeriod(f"no answers to grade questions in {period.label} (of questionnaire "
                          "versions central knows): nothing to put on the thermometer")
    prev = _Grouped(previous, info, series, period.timezone) if previous is not None else None

    aspects = _aspect_order(cur.grades, questionnaires)
    scorecard = []
    for aspect in aspects:
        values = [v for v, _ in cur.grades[aspect]]
        summary = summarise(values, target=target, confidence=confidence, thresholds=thresholds)
        row = dict(aspect=aspect, summary=summary,
                   distribution=dict(Counter(values)) if summary.mean is not None else {})
        if prev is not None:
            prev_values = [v for v, _ in prev.grades.get(aspect, ())]
            if not prev_values:
                row["note"] = "niet gevraagd in de vergelijkingsperiode"
            else:
                row["previous"] = summarise(prev_values, target=target, confidence=confidence,
                                            thresholds=thresholds)
                cur_series = {s for _, s in cur.grades[aspect]}
                prev_series = {s for _, s in prev.grades[aspect]}
                if len(cur_series | prev_series) > 1:
                    row["note"] = "niet getoetst: vraagtekst gewijzigd (nieuwe reeks)"
                else:
                    row["comparison"] = compare(summary, row["previous"], alpha=alpha,
                                                thresholds=thresholds)
        scorecard.append(ScoreRow(**row))

    smileys = []
    for aspect, (faces, values) in cur.smileys.items():
        n = len(values)
        if n < thresholds.min_shown:
            smileys.append(SmileyRow(aspect, faces, n, None, None, False))
            continue
        top = sum(1 for v in values if v >= faces - 1)
        smileys.append(SmileyRow(aspect, faces, n, top / n, wilson_interval(top, n, confidence),
                                 n < thresholds.min_tested))

    trends = []
    for aspect in aspects:
        by_series: dict[tuple, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
        for (value, key), moment in zip(cur.grades[aspect], cur.grade_times[aspect]):
            by_series[key][_month(moment, period.timezone)].append(value)
        for number, (key, months) in enumerate(sorted(by_series.items(), key=lambda kv: min(kv[1])),
                                               start=1):
            points = tuple(TrendPoint(month, summarise(v, target=target, confidence=confidence,
                                                       thresholds=thresholds))
                           for month, v in sorted(months.items()))
            trends.append(TrendSeries(aspect, number, f"{key[0]} reeks {key[2]}", points))

    service_counts = Counter(service for service in cur.service_of.values() if service)
    labels = {}
    for questions in info.values():
        for q in questions.values():
            if q.type == "choice" and q.aspect == "dienst":
                labels.update(q.options)
    services = tuple((s, labels.get(s, s)) for s, _ in service_counts.most_common())
    grid = {}
    for aspect in aspects:
        groups: dict[str, list[int]] = defaultdict(list)
        for (value, _), rid in zip(cur.grades[aspect], cur.grade_ids[aspect]):
            service = cur.service_of.get(rid)
            if service:
                groups[service].append(value)
        for service, values in groups.items():
            grid[(service, aspect)] = summarise(values, target=target, confidence=confidence,
                                                thresholds=thresholds)

    heat_aspect = OVERALL if OVERALL in cur.grades else aspects[0]
    cells: dict[tuple[int, str], list[int]] = defaultdict(list)
    for (value, _), moment in zip(cur.grades[heat_aspect], cur.grade_times[heat_aspect]):
        local = datetime.fromtimestamp(moment, ZoneInfo(period.timezone))
        cells[weekday_part_of_day(local)].append(value)
    heatmap = {cell: summarise(values, target=target, confidence=confidence, thresholds=thresholds)
               for cell, values in cells.items()}

    drivers: dict[str, Driver | None] = {}
    if OVERALL in cur.grades and len(cur.driver_rows) > 0:
        drivers = key_drivers(cur.driver_rows, overall=OVERALL, confidence=confidence)

    others = []
    by_aspect = {row.aspect: row.summary for row in scorecard}
    for (study, when, channel, aspect), aggregate in sorted(
            ((key, value) for key, value in imported.items() if key[3] in by_aspect),
            key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], aspects.index(kv[0][3]))):
        others.append(OtherRow(study, when, channel, aspect, aggregate,
                               compare(by_aspect[aspect], aggregate, alpha=alpha,
                                       thresholds=thresholds)))

    method = MethodNote(
        period=period, compare_period=compare_with, responses=len(current.responses),
        compare_responses=len(previous.responses) if previous is not None else None,
        suspect=current.suspect, idle=current.idle, target=target, alpha=alpha,
        confidence=confidence, thresholds=thresholds,
        versions=tuple(VersionNote(k[0], k[1], n, current.first_seen[k], k in questionnaires)
                       for k, n in sorted(current.versions.items())),
        breaks=_breaks_in(questionnaires, set(current.versions) | set(
            previous.versions if previous is not None else ())),
        unknown_responses=sum(n for k, n in current.versions.items() if k not in questionnaires),
        timezone=period.timezone)
    return Report(title=title, period=period, compare_period=compare_with, target=target,
                  alpha=alpha, confidence=confidence, thresholds=thresholds,
                  scorecard=tuple(scorecard), smileys=tuple(smileys), trends=tuple(trends),
                  services=services, service_grid=grid, heatmap_aspect=heat_aspect,
                  heatmap=heatmap, drivers=drivers, method=method, others=tuple(others))


def _imported(engine: Engine) -> dict:
    """The research bureau's imported figures (``central.study_results``), if that module is there."""
    try:
        from central.study_results import aggregates
    except ImportError:
        return {}
    return {tuple(key): value for key, value in aggregates(engine).items()}


class _Grouped:
    """A period's answers grouped by aspect: grades with their series, smileys, services."""

    def __init__(self, data: PeriodData, info, series, timezone: str):
        self.grades: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        self.grade_times: dict[str, list[float]] = defaultdict(list)
        self.grade_ids: dict[str, list[str]] = defaultdict(list)
        self.smileys: dict[str, tuple[int, list[int]]] = {}
        self.service_of: dict[str, str | None] = {}
        self.driver_rows: list[dict[str, float]] = []
        for rid, (started, key, answers) in data.responses.items():
            questions = info.get(key)
            if questions is None:
                continue
            row: dict[str, float] = {}
            for qid, value in answers.items():
                q = questions.get(qid)
                if q is None or isinstance(value, str):
                    if q is not None and q.type == "choice" and q.aspect == "dienst":
                        self.service_of[rid] = value
                    continue
                if q.type == "grade" and 1 <= value <= 10:
                    self.grades[q.aspect].append((value, (key[0], qid, series[(key[0], qid,
                                                                              key[1])])))
                    self.grade_times[q.aspect].append(started)
                    self.grade_ids[q.aspect].append(rid)
                    row[q.aspect] = value
                elif q.type == "smiley" and q.faces and 1 <= value <= q.faces:
                    self.smileys.setdefault(q.aspect, (q.faces, []))[1].append(value)
                    row[q.aspect] = value
            if row:
                self.driver_rows.append(row)


def _series(questionnaires) -> dict[tuple[str, str, int], int]:
    """(questionnaire id, question id, version) -> series number (central.stats.series_numbers)."""
    by_id: dict[str, dict[int, dict[str, dict[str, str]]]] = defaultdict(dict)
    for (qid, version), q in questionnaires.items():
        by_id[qid][version] = {question.id: dict(question.text) for question in q.questions}
    out = {}
    for qid, versions in by_id.items():
        for (question, version), number in series_numbers(versions).items():
            out[(qid, question, version)] = number
    return out


def _breaks_in(questionnaires, keys: set[tuple[str, int]]):
    """Series breaks of the questionnaires in ``keys``, at versions in or before those seen."""
    out = []
    by_id: dict[str, dict[int, Questionnaire]] = defaultdict(dict)
    for (qid, version), q in questionnaires.items():
        by_id[qid][version] = q
    for qid in sorted({k[0] for k in keys}):
        seen = {v for q, v in keys if q == qid}
        versions = {v: {question.id: dict(question.text) for question in q.questions}
                    for v, q in by_id.get(qid, {}).items() if v <= max(seen)}
        if not versions:
            continue
        for brk in series_breaks(versions):
            if brk.version in seen:
                old = versions[brk.previous_version][brk.question_id]["nl"]
                new = versions[brk.version][brk.question_id]["nl"]
                out.append((qid, brk, old, new))
    return tuple(out)


def _aspect_order(grades: Mapping[str, list], questionnaires) -> list[str]:
    order: list[str] = []
    for key in sorted(questionnaires, key=lambda k: -k[1]):
        for question in questionnaires[key].questions:
            if question.type == "grade" and question.aspect not in order:
                order.append(question.aspect)
    ordered = [a for a in order if a in grades] + sorted(a for a in grades if a not in order)
    if OVERALL in ordered:
        ordered.remove(OVERALL)
        ordered.insert(0, OVERALL)
    return ordered


def _month(moment: float, timezone: str) -> date:
    local = datetime.fromtimestamp(moment, ZoneInfo(timezone))
    return date(local.year, local.month, 1)


def month_label(month: date) -> str:
    return f"{MONTHS_NL[month.month - 1]} {month.year}"


def weekday_label(day: int) -> str:
    return WEEKDAYS[day]


def iter_cells(report: Report) -> Iterable[tuple[int, str, Summary | None]]:
    """The heat map's cells, Monday morning first; None where nobody answered."""
    days = sorted({d for d, _ in report.heatmap})
    for day in days:
        for part in PARTS:
            yield day, part, report.heatmap.get((day, part))
