"""Importing the bureau's study results (other channels, earlier studies): validation naming row and
column, storage, re-import replacing a study, --list, and the figures as central.stats.Aggregate.

SQLite and PostgreSQL, a fresh database per test; the CLI in-process.
"""

from __future__ import annotations

import json

import pytest

from central.stats import Aggregate, compare, summarise
from central.study_results import ResultKey, aggregates, list_results, parse_results
from tests.central_fixtures import cli

GOOD = """study,year,channel,aspect,mean,sd,n,share_low,share_high
KTO 2023,2023,balie,totaal,7.4,1.3,412,0.08,0.55
KTO 2023,2023,telefoon,totaal,6.9,1.6,380,14%,41%
KTO 2023,2023,web,wachttijd,6.5,1.9,97,,
"""


def write(tmp_path, text, name="kto-2023.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_a_good_file_is_imported_listed_and_given_as_aggregates(database, engine, capsys,
                                                                 tmp_path):
    status, out, err = cli(capsys, "import-results", write(tmp_path, GOOD))
    assert status == 0, err
    assert out == "KTO 2023: imported 3 row(s) from kto-2023.csv\n"
    found = aggregates(engine)
    phone = found[ResultKey("KTO 2023", "2023", "telefoon", "totaal")]
    assert phone == Aggregate(mean=6.9, sd=1.6, n=380, low_share=0.14, high_share=0.41,
                              label="KTO 2023 2023 telefoon totaal")
    web = found[ResultKey("KTO 2023", "2023", "web", "wachttijd")]
    assert (web.low_share, web.high_share, web.n) == (None, None, 97)
    # The report can put the counter next to it.
    assert compare(summarise([8, 7, 9, 6, 8, 7, 7, 8, 9, 5] * 5), phone).alpha == 0.05
    assert set(aggregates(engine, channel="balie")) == {ResultKey("KTO 2023", "2023", "balie",
                                                                  "totaal")}
    status, out, _ = cli(capsys, "import-results", "--list")
    assert status == 0
    assert "KTO 2023  2023    telefoon  totaal     6.90  1.60  380  14%  41%" in out
    status, out, _ = cli(capsys, "import-results", "--list", "--json")
    assert [r["channel"] for r in json.loads(out)] == ["balie", "telefoon", "web"]


def test_importing_a_study_again_replaces_it_and_says_so_other_studies_stay(
        database, engine, capsys, tmp_path):
    assert cli(capsys, "import-results", write(tmp_path, GOOD))[0] == 0
    other = "study;period;channel;aspect;mean;sd;n\nKTO 2021;2021;balie;totaal;7,1;1,4;350\n"
    assert cli(capsys, "import-results", write(tmp_path, other, "kto-2021.csv"))[0] == 0
    fixed = "study,period,channel,aspect,mean,sd,n\nKTO 2023,2023,balie,totaal,7.5,1.3,412\n"
    status, out, _ = cli(capsys, "import-results", write(tmp_path, fixed, "kto-2023-fixed.csv"))
    assert status == 0
    assert out == "KTO 2023: replaced its 3 stored row(s) with 1 row(s) from kto-2023-fixed.csv\n"
    rows = list_results(engine)
    assert [(r.key.study, r.key.channel, r.mean) for r in rows] == [
        ("KTO 2021", "balie", 7.1), ("KTO 2023", "balie", 7.5)]
    assert rows[0].source == "kto-2021.csv"


BAD = {
    "not-a-grade": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,75,1,10\n",
                    "row 2, column mean: must be a grade from 1 to 10, got '75'"),
    "missing-column": ("study,period,channel,aspect,mean,n\nK,2023,web,totaal,7,10\n",
                       "row 1: missing column(s) sd"),
    "unknown-column": ("study,period,channel,aspect,mean,sd,n,remark\nK,2023,web,totaal,7,1,10,x\n",
                       "row 1: unknown column(s) remark"),
    "thousands-n": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,7,1,1.234\n",
                    "row 2, column n: '1.234' is not a whole number of answers"),
    "negative-sd": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,7,-1,10\n",
                    "row 2, column sd: must be at least 0, got '-1'"),
    "share": ("study,period,channel,aspect,mean,sd,n,share_low\nK,2023,web,totaal,7,1,10,12\n",
              "row 2, column share_low: '12' is not a share"),
    "decimal-comma-with-comma-separator": (
        'study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,"7,1",1,10\n',
        "row 2, column mean: '7,1' is not a number (use ';' as separator for a decimal comma)"),
    "aspect": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,Wacht tijd,7,1,10\n",
               "row 2, column aspect: 'Wacht tijd' is not an aspect"),
    "duplicate": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,7,1,10\n"
                  "K,2023,web,totaal,8,1,10\n", "row 3: study, period, channel and aspect repeat "
                                               "row 2"),
    "short-row": ("study,period,channel,aspect,mean,sd,n\nK,2023,web,totaal,7,1\n",
                  "row 2: 6 field(s), the header has 7"),
    "empty": ("", "the file is empty"),
    "header-only": ("study,period,channel,aspect,mean,sd,n\n", "no data rows under the header"),
}


@pytest.mark.parametrize("text,expected", list(BAD.values()), ids=list(BAD))
def test_a_bad_file_names_row_and_column_exits_2_and_stores_nothing(
        database, engine, capsys, tmp_path, text, expected):
    status, out, err = cli(capsys, "import-results", write(tmp_path, text))
    assert status == 2 and out == ""
    assert "nothing imported" in err and expected in err
    assert list_results(engine) == []


def test_every_problem_is_listed_at_once():
    text = ("study,period,channel,aspect,mean,sd,n\n"
            "K,2023,web,totaal,0,1,10\n"
            ",2023,web,totaal,7,1,0\n")
    with pytest.raises(Exception) as caught:
        parse_results(text, "x.csv")
    assert caught.value.problems == [
        "row 2, column mean: must be a grade from 1 to 10, got '0' (a percentage or a 1-5 scale?)",
        "row 3, column study: empty",
        "row 3, column n: must be at least 1, got 0",
    ]


def test_excel_csv_with_bom_and_semicolons_is_read(tmp_path):
    text = "\ufeffStudy;Year;Channel;Aspect;Mean;SD;N;Share_low\r\nKTO;2022;e-mail;totaal;6,8;1,7;120;9%\r\n;;;;;;;\r\n"
    [row] = parse_results(text)
    assert (row.key, row.mean, row.sd, row.n, row.low_share) == (
        ResultKey("KTO", "2022", "e-mail", "totaal"), 6.8, 1.7, 120, 0.09)


def test_import_results_needs_a_file_or_list(database, capsys):
    status, _, err = cli(capsys, "import-results")
    assert status == 2 and "give a results FILE to import, or --list" in err
    status, _, err = cli(capsys, "import-results", "nope.csv")
    assert status == 2 and "nope.csv: nothing imported:\n  file not found" in err
