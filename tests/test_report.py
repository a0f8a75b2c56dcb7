"""The thermometer report (central.report*, balie-central report) on a generated small data set."""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from central.cli import main
from central.db import make_engine
from central.models import Answer, Response
from central.report import Period, build_report
from central.report_charts import nl
from central.report_render import HIDDEN, pages, render_html, render_pdf
from central.stats import SmallGroups, compare, key_drivers, summarise

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_study_data  # noqa: E402

START = date(2025, 3, 3)                 # a Monday
CHANGE = date(2025, 3, 13)               # version 2 from the second week's Thursday
FIRST_WEEK = Period.from_dates(date(2025, 3, 3), date(2025, 3, 9))
SECOND_WEEK = Period.from_dates(date(2025, 3, 10), date(2025, 3, 16))
GRADES = ("totaal", "wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid",
          "afhandeling")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two weeks of the busy counter, the waiting-time question reworded in the second."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'study.sqlite3'}"
    generate_study_data.generate(url, start=START, days=14, version_change=CHANGE, seed=7)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def report(study):
    return build_report(study[1], SECOND_WEEK, compare_with=FIRST_WEEK)


@pytest.fixture(scope="module")
def html_text(report):
    return render_html(report)


def grades_of(engine, period: Period) -> dict[str, list[tuple[str, int, int, str]]]:
    """Independently of central.report: aspect -> (response id, version, grade, service)."""
    r, a = Response.__table__, Answer.__table__
    rows = defaultdict(dict)
    versions = {}
    with engine.connect() as conn:
        for row in conn.execute(
                select(r.c.id, r.c.questionnaire_version, a.c.question_id, a.c.value_num,
                       a.c.value_text)
                .select_from(a.join(r, a.c.response_id == r.c.id))
                .where(r.c.started_at >= period.start, r.c.started_at < period.end,
                       r.c.suspect.is_(False))):
            rows[row.id][row.question_id] = (row.value_num if row.value_num is not None
                                             else row.value_text)
            versions[row.id] = row.questionnaire_version
    out = defaultdict(list)
    for rid, answers in rows.items():
        for aspect in GRADES:
            if aspect in answers:
                out[aspect].append((rid, versions[rid], answers[aspect], answers.get("dienst")))
    return out, rows


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html_text: str) -> list[list[list[str]]]:
    parser = Tables()
    parser.feed(html_text)
    return parser.tables


def test_the_scorecard_is_central_stats_on_the_same_grades(study, report):
    current, _ = grades_of(study[1], SECOND_WEEK)
    previous, _ = grades_of(study[1], FIRST_WEEK)
    assert report.aspects == GRADES
    for row in report.scorecard:
        values = [g for _, _, g, _ in current[row.aspect]]
        assert row.summary == summarise(values, target=7.5)
        assert row.previous == summarise([g for _, _, g, _ in previous[row.aspect]], target=7.5)
        assert row.distribution == dict(Counter(values))
        if row.aspect == "wachttijd":       # two wordings: never tested against each other
            assert row.comparison is None and "vraagtekst gewijzigd" in row.note
        else:
            assert row.comparison == compare(row.summary, row.previous, alpha=0.05)


def test_smiley_answers_never_count_as_grades(report):
    assert "wachtruimte" not in report.aspects
    assert [s.aspect for s in report.smileys] == ["wachtruimte"]
    assert all(s.faces == 5 for s in report.smileys)


def test_key_drivers_are_central_stats_on_the_same_responses(study, report):
    _, responses = grades_of(study[1], SECOND_WEEK)
    rows = []
    for answers in responses.values():
        row = {k: v for k, v in answers.items()
               if k in GRADES + ("wachtruimte",) and isinstance(v, int)}
        if row:
            rows.append(row)
    expected = key_drivers(rows, overall="totaal")
    # in the scorecard's order, then the smiley aspects (not in the database's hash order)
    assert list(report.drivers) == [a for a in report.aspects if a != "totaal"] + ["wachtruimte"]
    assert set(report.drivers) == set(expected)
    for aspect, driver in expected.items():
        got = report.drivers[aspect]
        assert (got is None) == (driver is None)
        if driver is not None:
            assert got.n == driver.n
            assert got.r == pytest.approx(driver.r, abs=1e-12)
            assert got.ci.low == pytest.approx(driver.ci.low, abs=1e-12)


def test_service_and_time_cells_are_summarised_per_group(study, report):
    current, _ = grades_of(study[1], SECOND_WEEK)
    by_service = defaultdict(list)
    for _, _, grade, service in current["vriendelijkheid"]:
        if service:
            by_service[service].append(grade)
    for service, values in by_service.items():
        assert report.service_grid[(service, "vriendelijkheid")] == summarise(values)
    assert sum(s.n for s in report.heatmap.values()) == len(current["totaal"])


def test_a_suppressed_group_shows_no_mean_anywhere_in_the_html(report, html_text):
    suppressed = [(service, aspect) for (service, aspect), s in report.service_grid.items()
                  if s.mean is None]
    assert suppressed, "the small data set should have services with fewer than 10 answers"
    labels = dict(report.services)
    tables = tables_of(html_text)
    service_table = next(t for t in tables if t[0][0] == "Dienst")
    header = service_table[0]
    for service, aspect in suppressed:
        row = next(r for r in service_table if r[0] == labels[service])
        cell = row[header.index({"totaal": "Totaaloordeel"}.get(aspect, aspect.capitalize()))]
        assert cell == HIDDEN
    for s in report.service_grid.values():
        assert (s.mean is None) == (s.status == "suppressed")
    # the time cells: every hidden cell of the heat map is "< 10" in its table too
    heat = next(t for t in tables if t[0][0] == "Weekdag")
    for (day, part), s in report.heatmap.items():
        if s.mean is None:
            from central.report import PARTS, weekday_label
            row = next(r for r in heat if r[0] == weekday_label(day))
            assert row[1 + PARTS.index(part)] == HIDDEN


def test_indicative_groups_are_marked_and_not_tested(report):
    small = SmallGroups()
    for s in list(report.service_grid.values()) + list(report.heatmap.values()):
        if small.min_shown <= s.n < small.min_tested:
            assert s.status == "not_tested" and s.mean is not None


def test_the_version_change_is_a_trend_break_in_the_method_note(report, html_text):
    wait = [t for t in report.trends if t.aspect == "wachttijd"]
    assert [t.series for t in wait] == [1, 2]
    (qid, brk, old, new), = report.method.breaks
    assert (qid, brk.question_id, brk.version, brk.previous_version) == (
        "balie-onderzoek", "wachttijd", 2, 1)
    assert old == generate_study_data.WAITING_V1 and new == generate_study_data.WAITING_V2
    method = tables_of(html_text)  # the note is a list, not a table
    assert method
    note = html_text.split("<h2>Verantwoording</h2>", 1)[1]
    assert "Trendbreuk: vraag &#x27;wachttijd&#x27;" in note
    assert "versie 2" in note


def test_the_html_is_self_contained(html_text):
    assert not re.search(r"https?://", html_text)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html_text)
    assert "<script" not in html_text and "<link" not in html_text
    assert "@import" not in html_text and "url(" not in html_text
    assert html_text.count('src="data:image/png;base64,') == 6


def test_the_alpha_is_printed_with_every_table(html_text):
    after = html_text.split("<h2>Verantwoording</h2>")[0]
    tables = after.count("<table>")
    # the scorecard, share changes, services and time cells are followed by the alpha line
    assert after.count('class="alpha"') >= tables - 2  # smileys and drivers carry no test
    assert "Alfa = 0,05" in html_text


def test_the_pdf_has_a4_pages(report, tmp_path):
    out = tmp_path / "rapport.pdf"
    count = render_pdf(report, out)
    data = out.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert len(boxes) == count == len(pages(report)) == 6
    for width, height in boxes:   # A4: 210 x 297 mm = 595.3 x 841.9 pt
        assert float(width) == pytest.approx(595.3, abs=1.0)
        assert float(height) == pytest.approx(841.9, abs=1.0)
    assert not out.with_name("rapport.pdf.partial").exists()


def test_dutch_numbers():
    assert nl(7.5) == "7,5" and nl(7.254, 2) == "7,25"


def test_the_cli_writes_html_and_pdf(study, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BALIE_DATABASE_URL", study[0])
    out = tmp_path / "rapport.html"
    assert main(["report", "--from", "2025-03-10", "--to", "2025-03-16", "--compare-from",
                 "2025-03-03", "--compare-to", "2025-03-09", "--out", str(out)]) == 0
    assert "<h1>Klanttevredenheid publieksbalie</h1>" in out.read_text(encoding="utf-8")
    pdf = tmp_path / "rapport.pdf"
    assert main(["report", "--from", "2025-03-10", "--to", "2025-03-16", "--out", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("argv, message", [
    (["--from", "2031-01-01", "--to", "2031-12-31"], "no responses in 1-1-2031 t/m 31-12-2031"),
    (["--from", "2025-03-16", "--to", "2025-03-10"], "ends (2025-03-10) before it starts"),
    (["--from", "2025-03-10", "--to", "2025-03-16", "--compare-from", "2025-03-03"],
     "--compare-from and --compare-to go together"),
    (["--from", "2025-03-10", "--to", "2025-03-16", "--compare-from", "2031-01-01",
      "--compare-to", "2031-01-31"], "no responses in the comparison period"),
    (["--from", "2025-03-10", "--to", "2025-03-16", "--target", "75"], "grade from 1 to 10"),
])
def test_cli_errors_are_clear_and_exit_2(study, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("BALIE_DATABASE_URL", study[0])
    out = tmp_path / "rapport.html"
    assert main(["report", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_a_bad_date_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--from", "2025-02-30", "--to", "2025-03-01", "--out", "x.html"])
    assert exc.value.code == 2
    assert "'2025-02-30' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_the_generator_is_seeded_and_publishes_both_versions(study):
    from central.questionnaires import list_published

    published = {(p.questionnaire_id, p.version) for p in list_published(study[1])}
    assert published == {("balie-onderzoek", 1), ("balie-onderzoek", 2)}
    with study[1].connect() as conn:
        per_day = Counter(datetime.fromtimestamp(t, ZoneInfo("Europe/Amsterdam")).date()
                          for (t,) in conn.execute(select(Response.__table__.c.started_at)))
    assert all(d.isoweekday() <= 5 for d in per_day)
    assert all(25 <= n <= 110 for n in per_day.values())     # Friday is a half day
    assert 40 <= sum(per_day.values()) / len(per_day) <= 80


def test_the_report_reads_postgresql_the_same(pg_url, report):
    url = pg_url
    generate_study_data.generate(url, start=START, days=14, version_change=CHANGE, seed=7)
    engine = make_engine(url)
    try:
        on_pg = build_report(engine, SECOND_WEEK, compare_with=FIRST_WEEK)
    finally:
        engine.dispose()
    assert [r.summary for r in on_pg.scorecard] == [r.summary for r in report.scorecard]
    assert on_pg.method.breaks == report.method.breaks


def test_imported_study_figures_are_compared_with_welch(tmp_path):
    from central.stats import Aggregate
    from central.study_results import import_results, parse_results

    url = f"sqlite:///{tmp_path / 'small.sqlite3'}"
    generate_study_data.generate(url, start=START, days=7, seed=3)
    engine = make_engine(url)
    try:
        rows = parse_results("study,year,channel,aspect,mean,sd,n\n"
                             "KTO 2023,2023,balie,totaal,7.4,1.3,412\n"
                             "KTO 2023,2023,telefoon,wachttijd,6.5,1.9,97\n"
                             "KTO 2023,2023,web,onbekend,6.5,1.9,97\n")
        import_results(engine, rows, source="kto.csv", now=0.0)
        report = build_report(engine, FIRST_WEEK)
    finally:
        engine.dispose()
    assert [(o.channel, o.aspect) for o in report.others] == [("balie", "totaal"),
                                                              ("telefoon", "wachttijd")]
    for other in report.others:
        summary = next(r.summary for r in report.scorecard if r.aspect == other.aspect)
        expected = compare(summary, Aggregate(other.aggregate.mean, other.aggregate.sd,
                                              other.aggregate.n, label=other.aggregate.label))
        assert other.comparison == expected
    html_text = render_html(report)
    assert "<h2>Andere kanalen en eerdere studies</h2>" in html_text
    assert [name for name, _ in pages(report)][2] == "andere-kanalen"


def test_the_latest_imported_counter_study_is_a_hollow_square_on_the_thermometer(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from central.report import earlier_study
    from central.report_charts import thermometer
    from central.study_results import import_results, parse_results

    url = f"sqlite:///{tmp_path / 'small.sqlite3'}"
    generate_study_data.generate(url, start=START, days=7, seed=3)
    engine = make_engine(url)
    try:
        import_results(engine, parse_results(
            "study,year,channel,aspect,mean,sd,n\n"
            "KTO 2021,2021,balie,totaal,6.9,1.4,380\n"
            "KTO 2023,2023,balie,totaal,7.4,1.3,412\n"
            "KTO 2023,2023,balie,wachttijd,6.1,1.8,405\n"
            "KTO 2023,2023,telefoon,totaal,6.5,1.9,97\n"), source="kto.csv", now=0.0)
        report = build_report(engine, FIRST_WEEK)
    finally:
        engine.dispose()
    label, means = earlier_study(report)
    assert label == "KTO 2023 (2023)"
    assert {a: m.mean for a, m in means.items()} == {"totaal": 7.4, "wachttijd": 6.1}
    fig = plt.figure()
    ax = fig.add_subplot()
    thermometer(ax, report)
    squares = {line.get_xdata()[0] for line in ax.get_lines()
               if line.get_marker() == "s" and line.get_markerfacecolor() == "white"}
    plt.close(fig)
    assert squares == {7.4, 6.1}
    assert "eerdere studie: KTO 2023 (2023)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_no_imported_counter_study_means_no_square(report):
    from central.report import earlier_study
    assert earlier_study(report) is None
