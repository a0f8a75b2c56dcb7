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

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from central.codebook import WEEKDAYS
from central.errors import CentralError
from central.models import OVERALL_ASPECT, SERVICE_ASPECT
from central.models import Questionnaire as QuestionnaireRow
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
    key_drivers_from_sums,
    part_of_day,
    series_breaks,
    InvalidInput,
    post_stratification_weights,
    summarise_counts,
    summarise_weighted_counts,
    wilson_interval,
)
from central.report_query import (
    PeriodCounts,
    prepare_session,
    question_map,
    read_counts,
)
from central.visitors import VisitorCountsError
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Questionnaire, parse_questionnaire

DEFAULT_TIMEZONE = "Europe/Amsterdam"
OVERALL = OVERALL_ASPECT
PARTS = ("morning", "afternoon", "evening")
PART_NL = {"morning": "ochtend", "afternoon": "middag", "evening": "avond"}
ASPECT_NL = {"totaal": "Totaaloordeel", "wachttijd": "Wachttijd",
             "vriendelijkheid": "Vriendelijkheid", "deskundigheid": "Deskundigheid",
             "duidelijkheid": "Duidelijkheid", "afhandeling": "Afhandeling",
             "wachtruimte": "Wachtruimte", "verwachting": "Verwachting vooraf"}
MONTHS_NL = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")

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
    weighting: "WeightingNote | None" = None


@dataclass(frozen=True)
class WeightingNote:
    """How the scorecard was weighted: per aspect of the current period, coverage and design effect.

    ``coverage``: the share of visitors in cells with answers (the estimate speaks
    for those); ``empty_cells``: cells with visitors but no answer (any aspect).
    """

    source: str
    cells: int
    coverage: Mapping[str, float]
    design_effect: Mapping[str, float]
    empty_cells: tuple[tuple[int, str], ...]


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
                 title: str = "Klanttevredenheid publieksbalie",
                 visitors: Mapping[tuple[int, str], float] | None = None,
                 visitors_source: str = "") -> Report:
    """Read the period (and the comparison period) in one snapshot and build every table.

    ``visitors``: the municipality's visitor counts per (ISO weekday, part of
    day) (``central.visitors``): the scorecard is then post-stratified
    (``central.stats.post_stratification_weights``, per aspect, in both periods
    with the same visitor mix) and its intervals use the effective sample size.

    Raises :class:`EmptyPeriod` when the period has no usable response, or no
    answer to a grade question of a version central knows;
    :class:`central.visitors.VisitorCountsError` when answers fall in cells
    without visitors.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn = conn.execution_options(sqlite_begin="DEFERRED")
        prepare_session(conn)
        questionnaires = read_questionnaires(conn)
        questions = question_map(questionnaires)
        cur, prev = read_counts(conn, period, questions, compare_with)
        conn.rollback()
    imported = _imported(engine)
    if not cur.responses:
        raise EmptyPeriod(f"no responses in {period.label} (after leaving out {cur.suspect} "
                          "suspect one(s)): nothing to report; check --from/--to")
    if compare_with is not None and not prev.responses:
        raise EmptyPeriod(f"no responses in the comparison period {compare_with.label}: "
                          "check --compare-from/--compare-to")
    if not cur.grades:
        raise EmptyPeriod(f"no answers to grade questions in {period.label} (of questionnaire "
                          "versions central knows): nothing to put on the thermometer")

    def summary(counts: Mapping[int, int]) -> Summary:
        return summarise_counts(counts, target=target, confidence=confidence,
                                thresholds=thresholds)

    weighting = _Weighting(visitors, visitors_source, summary_args=dict(
        target=target, confidence=confidence, thresholds=thresholds)) if visitors else None

    def headline(counts: PeriodCounts, aspect: str, which: str) -> Summary:
        if weighting is None:
            return summary(_merged(counts.grades[aspect].values()))
        return weighting.summarise(counts.week_hours[aspect], aspect, which)

    aspects = _aspect_order(cur.grades, questionnaires)
    scorecard = []
    for aspect in aspects:
        counts = _merged(cur.grades[aspect].values())
        row = dict(aspect=aspect, summary=headline(cur, aspect, "current"))
        row["distribution"] = dict(counts) if row["summary"].mean is not None else {}
        if prev is not None:
            if not prev.grades.get(aspect):
                row["note"] = "niet gevraagd in de vergelijkingsperiode"
            else:
                row["previous"] = headline(prev, aspect, "comparison")
                if len(set(cur.grades[aspect]) | set(prev.grades[aspect])) > 1:
                    row["note"] = "niet getoetst: vraagtekst gewijzigd (nieuwe reeks)"
                else:
                    row["comparison"] = compare(row["summary"], row["previous"], alpha=alpha,
                                                thresholds=thresholds)
        scorecard.append(ScoreRow(**row))

    smileys = []
    for aspect, (faces, counts) in cur.smileys.items():
        n = sum(counts.values())
        if n < thresholds.min_shown:
            smileys.append(SmileyRow(aspect, faces, n, None, None, False))
            continue
        top = sum(c for v, c in counts.items() if v >= faces - 1)
        smileys.append(SmileyRow(aspect, faces, n, top / n, wilson_interval(top, n, confidence),
                                 n < thresholds.min_tested))

    trends = []
    for aspect in aspects:
        by_series = cur.months[aspect]
        for number, (key, months) in enumerate(sorted(by_series.items(), key=lambda kv: min(kv[1])),
                                               start=1):
            points = tuple(TrendPoint(month, summary(counts))
                           for month, counts in sorted(months.items()))
            trends.append(TrendSeries(aspect, number, f"{key[0]} reeks {key[2]}", points))

    labels = {}
    for q in questionnaires.values():
        for question in q.questions:
            if question.type == "choice" and question.aspect == SERVICE_ASPECT:
                labels.update({o.value: o.label_for("nl") for o in question.options})
    grid = {}
    for aspect in aspects:
        for service, counts in cur.services.get(aspect, {}).items():
            grid[(service, aspect)] = summary(counts)
    services = tuple((s, labels.get(s, s)) for s, _ in       # most answers first
                     sorted(cur.service_responses.items(), key=lambda kv: (-kv[1], kv[0])))

    heat_aspect = OVERALL if OVERALL in cur.grades else aspects[0]
    heatmap = {cell: summary(counts)
               for cell, counts in cell_counts(cur.week_hours[heat_aspect]).items()}

    drivers: dict[str, Driver | None] = {}
    if OVERALL in cur.grades and cur.drivers:
        drivers = key_drivers_from_sums(cur.drivers, overall=OVERALL, confidence=confidence)
        # the scorecard's order, then the smiley aspects by name (not the database's hash order)
        rank = {aspect: i for i, aspect in enumerate(aspects)}
        drivers = dict(sorted(drivers.items(),
                              key=lambda kv: (kv[0] not in rank, rank.get(kv[0], 0), kv[0])))

    others = []
    by_aspect = {row.aspect: row.summary for row in scorecard}
    for (study, when, channel, aspect), aggregate in sorted(
            ((key, value) for key, value in imported.items() if key[3] in by_aspect),
            key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], aspects.index(kv[0][3]))):
        others.append(OtherRow(study, when, channel, aspect, aggregate,
                               compare(by_aspect[aspect], aggregate, alpha=alpha,
                                       thresholds=thresholds)))

    method = MethodNote(
        period=period, compare_period=compare_with, responses=cur.responses,
        compare_responses=prev.responses if prev is not None else None,
        suspect=cur.suspect, idle=cur.idle, target=target, alpha=alpha,
        confidence=confidence, thresholds=thresholds,
        versions=tuple(VersionNote(k[0], k[1], n, cur.first_seen[k], k in questionnaires)
                       for k, n in sorted(cur.versions.items())),
        breaks=_breaks_in(questionnaires, set(cur.versions) | set(
            prev.versions if prev is not None else ())),
        unknown_responses=sum(n for k, n in cur.versions.items() if k not in questionnaires),
        timezone=period.timezone,
        weighting=weighting.note() if weighting is not None else None)
    return Report(title=title, period=period, compare_period=compare_with, target=target,
                  alpha=alpha, confidence=confidence, thresholds=thresholds,
                  scorecard=tuple(scorecard), smileys=tuple(smileys), trends=tuple(trends),
                  services=services, service_grid=grid, heatmap_aspect=heat_aspect,
                  heatmap=heatmap, drivers=drivers, method=method, others=tuple(others))


COUNTER_CHANNEL = "balie"


def earlier_study(report: Report, channel: str = COUNTER_CHANNEL
                  ) -> tuple[str, dict[str, Aggregate]] | None:
    """The latest imported study of the counter itself: (label, {aspect: Aggregate}), or None.

    "Latest": the highest ``period`` (as imported, e.g. ``2023``), then study
    name. The thermometer shows it as a hollow square next to this period.
    """
    rows = [o for o in report.others if o.channel == channel]
    if not rows:
        return None
    study, when = max((o.period, o.study) for o in rows)[::-1]
    return (f"{study} ({when})",
            {o.aspect: o.aggregate for o in rows if (o.study, o.period) == (study, when)})


class _Weighting:
    """Post-stratified summaries from counts per hour of the week, with what the method note needs."""

    def __init__(self, visitors: Mapping[tuple[int, str], float], source: str, summary_args):
        self.visitors = dict(visitors)
        self.source = source
        self.summary_args = summary_args
        self.coverage: dict[str, float] = {}
        self.design_effect: dict[str, float] = {}
        self.empty: set[tuple[int, str]] = set()

    def summarise(self, week_hours: Mapping[int, Mapping[int, int]], aspect: str,
                  which: str) -> Summary:
        cells = cell_counts(week_hours)
        sample = {cell: sum(counts.values()) for cell, counts in cells.items()}
        try:
            ps = post_stratification_weights(sample, self.visitors)
        except InvalidInput as err:
            raise VisitorCountsError(
                f"{self.source or 'visitor counts'}: cannot weight {aspect_label(aspect)} in the "
                f"{which} period: {err}") from None
        weighted: dict[tuple[int, float], int] = defaultdict(int)
        for cell, counts in cells.items():
            for value, count in counts.items():
                weighted[(value, ps.weights[cell])] += count
        if which == "current":
            self.coverage[aspect] = ps.coverage
            self.design_effect[aspect] = ps.design_effect
            self.empty.update(ps.empty_cells)
        return summarise_weighted_counts(weighted, **self.summary_args)

    def note(self) -> WeightingNote:
        return WeightingNote(self.source, sum(1 for v in self.visitors.values() if v > 0),
                             dict(self.coverage), dict(self.design_effect),
                             tuple(sorted(self.empty, key=lambda c: (c[0], PARTS.index(c[1])))))


def cell_counts(week_hours: Mapping[int, Mapping[int, int]]
                ) -> dict[tuple[int, str], dict[int, int]]:
    """{hour of the week (0 = Monday 00:00 local): {grade: count}} per (ISO weekday, part of day)."""
    cells: dict[tuple[int, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for hour, counts in week_hours.items():
        cell = (hour // 24 + 1, part_of_day(hour % 24))
        for value, count in counts.items():
            cells[cell][value] += count
    return cells


def _merged(tables: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for table in tables:
        for value, count in table.items():
            out[value] += count
    return dict(out)


def _imported(engine: Engine) -> dict:
    """The research bureau's imported figures (``central.study_results``), if that module is there."""
    try:
        from central.study_results import aggregates
    except ImportError:
        return {}
    return {tuple(key): value for key, value in aggregates(engine).items()}


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
