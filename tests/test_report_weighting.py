"""Post-stratified scorecard (balie-central report --visitors): the file, the weights, the note."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from central.cli import main
from central.db import make_engine
from central.models import Answer, Response
from central.report import Period, build_report
from central.report_render import method_lines, render_html
from central.stats import post_stratification_weights, summarise, weekday_part_of_day
from central.visitors import VisitorCountsError, parse_visitor_counts, read_visitor_counts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_study_data  # noqa: E402

AMS = ZoneInfo("Europe/Amsterdam")
FIRST_WEEK = Period.from_dates(date(2025, 3, 3), date(2025, 3, 9))
SECOND_WEEK = Period.from_dates(date(2025, 3, 10), date(2025, 3, 16))
DAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
#: Visitors per part of the day, a busy morning; the weekend has visitors but no answers.
MIX = {"ochtend": 900, "middag": 500, "avond": 120}
VISITORS_CSV = "weekdag;dagdeel;bezoekers\n" + "".join(
    f"{day};{part};{count + 40 * i}\n" for i, day in enumerate(DAYS) for part, count in MIX.items())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('weights') / 'study.sqlite3'}"
    generate_study_data.generate(url, start=date(2025, 3, 3), days=14, seed=5)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def test_the_file_reads_dutch_and_english_headers_names_and_numbers():
    counts = parse_visitor_counts(VISITORS_CSV)
    assert counts[(1, "morning")] == 900 and counts[(7, "evening")] == 360
    assert len(counts) == 21
    english = parse_visitor_counts("weekday,part,visitors\n1,morning,10\nThu,evening,\"2,5\"\n")
    assert english == {(1, "morning"): 10.0, (4, "evening"): 2.5}


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("dag;deel;aantal\nma;ochtend;3\n", "no column 'part'"),
    ("weekdag;dagdeel;bezoekers\nmaan;ochtend;3\n", "row 2, weekday: 'maan' is not a weekday"),
    ("weekdag;dagdeel;bezoekers\n8;ochtend;3\n", "row 2, weekday: '8'"),
    ("weekdag;dagdeel;bezoekers\nma;nacht;3\n", "row 2, part: 'nacht' is not a part of the day"),
    ("weekdag;dagdeel;bezoekers\nma;ochtend;-3\n", "row 2, visitors: '-3' is not a number"),
    ("weekdag;dagdeel;bezoekers\nma;ochtend;veel\n", "row 2, visitors: 'veel'"),
    ("weekdag;dagdeel;bezoekers\nma;ochtend;3\nmaandag;ochtend;4\n", "row 3: weekday 1 morning "
     "is listed twice"),
    ("weekdag;dagdeel;bezoekers\nma;ochtend;0\n", "no visitors in any cell"),
])
def test_every_problem_in_the_file_is_named(text, message):
    with pytest.raises(VisitorCountsError) as exc:
        parse_visitor_counts(text, "bezoekers.csv")
    assert message in str(exc.value) and str(exc.value).startswith("bezoekers.csv: ")


def test_all_problems_at_once_and_files_that_cannot_be_read(tmp_path):
    with pytest.raises(VisitorCountsError) as exc:
        parse_visitor_counts("weekdag;dagdeel;bezoekers\nxx;ochtend;1\nma;yy;2\n")
    assert "row 2, weekday" in str(exc.value) and "row 3, part" in str(exc.value)
    with pytest.raises(VisitorCountsError, match="cannot read the visitor counts"):
        read_visitor_counts(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("weekdag;dagdeel;bezoekers\nma;ochtend;3 é\n".encode("latin-1"))
    with pytest.raises(VisitorCountsError, match="not UTF-8"):
        read_visitor_counts(latin)


def grades_with_cells(engine, period, aspect):
    r, a = Response.__table__, Answer.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.c.started_at, a.c.value_num).select_from(a.join(r, a.c.response_id == r.c.id))
            .where(r.c.started_at >= period.start, r.c.started_at < period.end,
                   r.c.suspect.is_(False), a.c.question_id == aspect,
                   a.c.value_num.isnot(None))).all()
    return ([v for _, v in rows],
            [weekday_part_of_day(datetime.fromtimestamp(t, AMS)) for t, _ in rows])


def test_the_scorecard_is_summarise_with_post_stratification_weights(study):
    visitors = parse_visitor_counts(VISITORS_CSV)
    report = build_report(study[1], SECOND_WEEK, compare_with=FIRST_WEEK, visitors=visitors,
                          visitors_source="bezoekers.csv")
    plain = build_report(study[1], SECOND_WEEK, compare_with=FIRST_WEEK)
    for row, unweighted in zip(report.scorecard, plain.scorecard):
        for period, got in ((SECOND_WEEK, row.summary), (FIRST_WEEK, row.previous)):
            values, cells = grades_with_cells(study[1], period, row.aspect)
            counts = defaultdict(int)
            for cell in cells:
                counts[cell] += 1
            ps = post_stratification_weights(counts, visitors)
            expected = summarise(values, weights=ps.weights_for(cells))
            assert got.weighted and got.n == expected.n
            assert got.mean == pytest.approx(expected.mean, abs=1e-12)
            assert got.n_eff == pytest.approx(expected.n_eff, rel=1e-12)
            assert got.ci.low == pytest.approx(expected.ci.low, abs=1e-12)
            assert got.low_share == pytest.approx(expected.low_share, abs=1e-12)
            assert got.status == expected.status
        assert row.summary.n == unweighted.summary.n
        assert row.summary.n_eff < unweighted.summary.n       # weighting costs precision
        assert row.distribution == unweighted.distribution   # the distribution stays a count
    # the weekend (and what the counter does not open) is named in the note
    note = report.method.weighting
    assert note.source == "bezoekers.csv" and note.cells == 21
    assert (6, "morning") in note.empty_cells and (7, "evening") in note.empty_cells
    assert 0 < note.coverage["totaal"] < 1 and note.design_effect["totaal"] > 1
    text = " ".join(method_lines(report))
    assert "Gewogen (poststratificatie)" in text and "zaterdag ochtend" in text.lower()
    assert "Gewogen naar het aantal bezoekers" in render_html(report)


def test_answers_in_a_cell_without_visitors_are_refused_by_name(study):
    visitors = {cell: n for cell, n in parse_visitor_counts(VISITORS_CSV).items()
                if cell != (1, "morning")}
    with pytest.raises(VisitorCountsError) as exc:
        build_report(study[1], SECOND_WEEK, visitors=visitors, visitors_source="bezoekers.csv")
    assert "bezoekers.csv: cannot weight Totaaloordeel in the current period" in str(exc.value)
    assert "(1, 'morning')" in str(exc.value)


def test_the_cli_weights_with_a_file_and_refuses_a_bad_one(study, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.setenv("BALIE_DATABASE_URL", study[0])
    good = tmp_path / "bezoekers.csv"
    good.write_text(VISITORS_CSV, encoding="utf-8")
    out = tmp_path / "rapport.html"
    assert main(["report", "--from", "2025-03-10", "--to", "2025-03-16", "--visitors", str(good),
                 "--out", str(out)]) == 0
    assert "Gewogen (poststratificatie)" in out.read_text(encoding="utf-8")
    bad = tmp_path / "kapot.csv"
    bad.write_text("weekdag;dagdeel\nma;ochtend\n", encoding="utf-8")
    out2 = tmp_path / "rapport2.html"
    assert main(["report", "--from", "2025-03-10", "--to", "2025-03-16", "--visitors", str(bad),
                 "--out", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "kapot.csv: the header has no column 'visitors'" in err and "Traceback" not in err
    assert not out2.exists()
