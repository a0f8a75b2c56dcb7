"""``balie-central export`` wide: SPSS, XLSX, CSV with a codebook, read back (SQLite, PostgreSQL)."""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyreadstat
import pytest
from openpyxl import load_workbook

from central import cli
from central import export as export_module
from central.cli import main
from central.codebook import (
    Answered,
    Published,
    build_codebook,
    spss_name,
)
from central.devices import enrol
from central.export_formats import fit_bytes, wrap_bytes, write_xlsx
from central.ingest import ingest_batch
from central.questionnaires import publish, read_questionnaire_file
from sync.protocol import Batch
from tests.central_fixtures import STANDAARD, clock
from tests.central_fixtures import cli as run

QID = "balie-standaard"
V1_WACHTTIJD = "Wat vond u van de wachttijd?"
V2_WACHTTIJD = "Hoe lang vond u het wachten?"
COMMENT = "Fijn geholpen, dank je wel!"
#: Amsterdam is UTC+1 in early March 2024 (summer time starts on the 31st).
VISITS = {
    # name: (UTC start, questionnaire version, answers in order, other record fields)
    "r1": ("2024-03-04T09:37:12", 1, [("totaal", 8), ("wachttijd", 4), ("vriendelijkheid", 5),
                                      ("duidelijkheid", 3), ("verwachting", "yes"),
                                      ("dienst", "rijbewijs"), ("opmerking", COMMENT)], {}),
    "r2": ("2024-03-05T12:05:00", 1, [("totaal", 6)],
           {"end_reason": "idle", "suspect": True}),
    "r3": ("2024-03-06T16:30:00", 2, [("totaal", 9), ("wachttijd", 2), ("dienst", "parkeren")],
           {"language": "en"}),
    "r4": ("2024-03-07T08:00:00", 3, [("totaal", 7), ("wachttijd", 5), ("dienst", "zwemdiploma"),
                                      ("nieuw", 3)], {}),
    "r5": ("2024-03-08T10:59:59", 1, [("totaal", 11), ("verwachting", "misschien")], {}),
}
VERIFIED = "r1"  # recorded in the boot of the batch's `sent`: its time is verified
UNKNOWN_V3 = ("balie-standaard v3: wording not known to central (this version was never "
              "published on central)")


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# ----------------------------------------------------------------------------- data

def version_2(folder: Path) -> Path:
    """The shipped questionnaire as v2: wachttijd reworded, verwachting dropped, an option added."""
    text = STANDAARD.read_text(encoding="utf-8")
    text = text.replace("version = 1\n", "version = 2\n", 1)
    text = text.replace(f'text.nl = "{V1_WACHTTIJD}"', f'text.nl = "{V2_WACHTTIJD}"', 1)
    start = text.index("[[questions]]\nid = \"verwachting\"")
    text = text[:start] + text[text.index("[[questions]]", start + 5):]
    moving = '[[questions.options]]\nvalue = "verhuizing"'
    text = text.replace(moving, '[[questions.options]]\nvalue = "parkeren"\nlabel.nl = '
                                '"Parkeervergunning"\nlabel.en = "Parking permit"\n\n' + moving, 1)
    path = folder / "standaard-v2.toml"
    path.write_text(text, encoding="utf-8")
    return path


def publish_file(engine, path: Path, now: float) -> None:
    text, questionnaire = read_questionnaire_file(path)
    assert publish(engine, text, questionnaire, location=None, now=now).created


def record(name: str) -> dict:
    moment, version, answers, fields = VISITS[name]
    boot = "boot-now" if name == VERIFIED else "boot-then"
    at = clock(utc(moment), 1_000.0, boot)
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "seq": int(name[1:]),
        "questionnaire": {"id": QID, "version": version}, "location_id": "stadhuis",
        "language": "nl", "started": at, "closed_wall": at["wall"] + 30,
        "end_reason": "completed",
        "answers": [{"id": str(uuid.uuid4()), "ordinal": n, "question_id": qid,
                     "aspect": qid, "value": value,
                     "at": {**at, "wall": at["wall"] + n, "mono": at["mono"] + n}}
                    for n, (qid, value) in enumerate(answers, start=1)],
        **fields,
    }


@pytest.fixture
def visits(engine, tmp_path) -> dict[str, str]:
    """v1 and v2 published, five responses stored (one on v3, never published); name → id."""
    publish_file(engine, STANDAARD, now=utc("2024-01-01T00:00:00"))
    publish_file(engine, version_2(tmp_path), now=utc("2024-03-06T00:00:00"))
    device_id, _ = enrol(engine, name="Balie 1", location="stadhuis",
                         now=utc("2024-01-01T00:00:00"))
    received_at = utc("2024-03-09T00:00:00")
    verified_started = utc(VISITS[VERIFIED][0])
    sent = clock(received_at - 1.0, 1_000.0 + (received_at - verified_started), "boot-now")
    batch = Batch.model_validate({"device_id": device_id, "app_version": "0.2.0", "sent": sent,
                                  "responses": [record(name) for name in VISITS]})
    results = ingest_batch(engine, device_id, batch, received_at=received_at)
    assert [r.status for r in results] == ["accepted"] * len(VISITS)
    return {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in VISITS}


def by_id(rows: list[dict], visits: dict[str, str], key="response_id") -> dict[str, dict]:
    names = {rid: name for name, rid in visits.items()}
    return {names[row[key]]: row for row in rows}


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


# ----------------------------------------------------------------------------- SPSS

def test_sav_carries_variable_labels_value_labels_missing_codes_and_levels(
        visits, tmp_path, capsys):
    out = tmp_path / "balie.sav"
    status, _, err = run(capsys, "export", "--format", "sav", "--out", out)
    assert status == 0, err
    assert "wrote 5 response row(s)" in err and "balie.codebook.csv" in err
    assert (tmp_path / "balie.codebook.csv").exists()
    assert not list(tmp_path.glob("*.partial"))

    data, meta = pyreadstat.read_sav(out, user_missing=True)
    assert meta.number_rows == 5 and len(data) == 5
    assert meta.column_names == [
        "response_id", "location_id", "questionnaire_id", "questionnaire_version", "language",
        "time", "weekday", "part_of_day", "time_verified", "suspect", "end_reason",
        "totaal", "wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid",
        "verwachting", "dienst", "nieuw"]
    labels = meta.column_names_to_labels
    assert labels["totaal"] == "Welk rapportcijfer geeft u ons vandaag?"
    assert labels["wachttijd"] == f"{V2_WACHTTIJD} (verschilt per versie)"
    assert labels["nieuw"] == "nieuw (tekst niet bekend bij centraal)"
    assert labels["part_of_day"] == "Dagdeel"

    values = meta.variable_value_labels
    missing = {-1.0: "niet beantwoord", -2.0: "niet gevraagd in deze versie",
               -3.0: "onbekend of gevraagd: versie niet bekend bij centraal",
               -4.0: "antwoord past niet bij de vraag (zie de lange export)"}
    assert values["totaal"] == {1.0: "heel slecht", 10.0: "uitstekend", **missing}
    assert values["wachttijd"] == {1.0: "Heel slecht", 2.0: "Slecht", 3.0: "Gaat wel",
                                   4.0: "Goed", 5.0: "Heel goed", **missing}
    assert values["verwachting"] == {1.0: "ja", 0.0: "nee", **missing}
    dienst = values["dienst"]
    assert (dienst[1.0], dienst[2.0], dienst[3.0], dienst[8.0]) == (
        "Paspoort of ID-kaart", "Rijbewijs", "Verhuizing of adreswijziging", "Iets anders")
    assert dienst[9.0] == "Parkeervergunning"  # new in v2: the next code, nothing renumbered
    assert dienst[10.0] == "zwemdiploma (optie niet bekend bij centraal)"
    assert values["weekday"][1.0] == "maandag" and values["part_of_day"][3.0].startswith("avond")
    assert values["suspect"] == {0.0: "nee", 1.0: "ja"}

    for name in ("totaal", "wachttijd", "verwachting", "dienst", "nieuw"):
        assert meta.missing_ranges[name] == [{"lo": -4.0, "hi": -1.0}], name
    assert meta.variable_measure["totaal"] == "scale"
    assert meta.variable_measure["wachttijd"] == "ordinal"
    assert meta.variable_measure["verwachting"] == "nominal"
    assert meta.variable_measure["dienst"] == "nominal"
    assert meta.variable_measure["part_of_day"] == "ordinal"
    assert meta.variable_measure["response_id"] == "nominal"
    assert meta.variable_measure["time"] == "scale"

    rows = by_id(data.to_dict("records"), visits)
    r1 = rows["r1"]
    assert (r1["totaal"], r1["wachttijd"], r1["verwachting"], r1["dienst"]) == (8, 4, 1, 2)
    assert r1["deskundigheid"] == -1  # skipped: asked, not answered
    assert r1["time"] == datetime(2024, 3, 4, 9, 0)  # UTC, rounded down to the hour
    assert (r1["weekday"], r1["part_of_day"], r1["time_verified"]) == (1, 1, 1)
    assert rows["r2"]["wachttijd"] == -1 and rows["r2"]["suspect"] == 1
    assert rows["r2"]["end_reason"] == 2 and values["end_reason"][2.0].endswith("(idle)")
    assert rows["r3"]["verwachting"] == -2  # v2 does not ask it
    assert (rows["r3"]["dienst"], rows["r3"]["language"]) == (9, "en")
    assert rows["r4"]["verwachting"] == -3  # v3: central does not know what it asks
    assert (rows["r4"]["dienst"], rows["r4"]["nieuw"]) == (10, 3)
    assert rows["r5"]["totaal"] == -4 and rows["r5"]["verwachting"] == -4  # 11, "misschien"
    assert rows["r1"]["nieuw"] == -2 and rows["r4"]["questionnaire_version"] == 3

    plain, _ = pyreadstat.read_sav(out)  # without user_missing the codes read as missing
    assert math.isnan(by_id(plain.to_dict("records"), visits)["r1"]["deskundigheid"])

    notes = "\n".join(meta.notes)
    assert all(len(line.encode()) <= 80 for line in meta.notes)
    assert "wording not known to central" in notes
    assert "comments: left out" in notes


# ----------------------------------------------------------------------------- XLSX

def test_xlsx_has_a_data_sheet_and_a_codebook_sheet_with_frozen_headers(visits, tmp_path, capsys):
    out = tmp_path / "balie.xlsx"
    status, _, err = run(capsys, "export", "--format", "xlsx", "--out", out)
    assert status == 0, err
    workbook = load_workbook(out)
    assert workbook.sheetnames[:2] == ["data", "codebook"]
    data, book = workbook["data"], workbook["codebook"]
    assert data.freeze_panes == "A2" and book.freeze_panes == "A2"
    header = [c.value for c in data[1]]
    rows = by_id([dict(zip(header, [c.value for c in row])) for row in data.iter_rows(min_row=2)],
                 visits)
    assert len(rows) == 5
    assert rows["r1"]["totaal"] == 8 and rows["r1"]["deskundigheid"] == -1
    assert rows["r1"]["time"] == datetime(2024, 3, 4, 9, 0)
    assert rows["r3"]["verwachting"] == -2 and rows["r4"]["verwachting"] == -3
    assert data.column_dimensions["A"].width >= 36  # a response id fits

    codebook_header = [c.value for c in book[1]]
    assert codebook_header == ["variable", "question_id", "label", "type", "level",
                               "value_labels", "missing_codes", "aspect", "question_type",
                               "wording_per_version", "notes"]
    entries = {row[0]: dict(zip(codebook_header, row))
               for row in book.iter_rows(min_row=2, values_only=True)}
    assert list(entries) == header
    assert entries["totaal"]["level"] == "scale" and entries["totaal"]["type"] == "numeric"
    assert entries["totaal"]["value_labels"] == "1 = heel slecht; 10 = uitstekend"
    assert entries["totaal"]["missing_codes"].startswith("-1 = niet beantwoord; -2 = ")
    assert entries["wachttijd"]["level"] == "ordinal"
    assert entries["time"]["type"] == "datetime (UTC)"
    wachttijd = entries["wachttijd"]["wording_per_version"]
    assert f'balie-standaard v1: nl: "{V1_WACHTTIJD}"' in wachttijd
    assert f'balie-standaard v2: nl: "{V2_WACHTTIJD}"' in wachttijd
    assert workbook["export"]["A1"].value == "about"


# ----------------------------------------------------------------------------- CSV

def test_wide_csv_has_one_row_per_response_and_a_codebook_file_next_to_it(
        visits, tmp_path, capsys):
    out = tmp_path / "wide.csv"
    status, _, err = run(capsys, "export", "--format", "csv", "--layout", "wide", "--out", out)
    assert status == 0, err
    rows = by_id(read_csv(out), visits)
    assert len(rows) == 5
    assert rows["r1"]["time"] == "2024-03-04T09:00:00Z"
    assert (rows["r1"]["totaal"], rows["r1"]["deskundigheid"], rows["r3"]["verwachting"]) == (
        "8", "-1", "-2")
    assert rows["r2"]["part_of_day"] == "2" and rows["r3"]["part_of_day"] == "3"  # 13:05, 17:30
    codebook = {row["variable"]: row for row in read_csv(tmp_path / "wide.codebook.csv")}
    assert list(codebook) == list(rows["r1"])
    assert codebook["dienst"]["question_type"] == "choice"
    assert "2 = Rijbewijs" in codebook["dienst"]["value_labels"]
    assert codebook["verwachting"]["value_labels"] == "1 = ja; 0 = nee"


def test_the_long_csv_stays_the_default_with_one_row_per_answer(visits, tmp_path, capsys):
    out = tmp_path / "long.csv"
    status, _, err = run(capsys, "export", "--format", "csv", "--out", out)
    assert status == 0 and "answer row(s)" in err
    rows = read_csv(out)
    assert list(rows[0]) == list(export_module.COLUMNS)
    assert len(rows) == sum(len(v[2]) for v in VISITS.values())
    assert not (tmp_path / "long.codebook.csv").exists()


# ----------------------------------------------------------------------------- wording

def test_a_changed_wording_is_listed_with_its_versions_and_unpublished_ones_are_not_guessed(
        visits, tmp_path, capsys):
    out = tmp_path / "wide.csv"
    status, _, err = run(capsys, "export", "--layout", "wide", "--out", out)
    assert status == 0
    assert ("note: balie-standaard v3 (1 response(s)): wording not known to central "
            "(this version was never published on central)") in err
    codebook = {row["variable"]: row for row in read_csv(tmp_path / "wide.codebook.csv")}
    lines = codebook["wachttijd"]["wording_per_version"].splitlines()
    assert lines == [
        f'balie-standaard v1: nl: "{V1_WACHTTIJD}" [1 Heel slecht · 2 Slecht · 3 Gaat wel · '
        '4 Goed · 5 Heel goed] | en: "How did you find the waiting time?" [1 Very poor · '
        '2 Poor · 3 Okay · 4 Good · 5 Very good]',
        f'balie-standaard v2: nl: "{V2_WACHTTIJD}" [1 Heel slecht · 2 Slecht · 3 Gaat wel · '
        '4 Goed · 5 Heel goed] | en: "How did you find the waiting time?" [1 Very poor · '
        '2 Poor · 3 Okay · 4 Good · 5 Very good]',
        UNKNOWN_V3,
    ]
    assert "wording or the answers differ between versions" in codebook["wachttijd"]["notes"]
    same = codebook["vriendelijkheid"]["wording_per_version"].splitlines()
    assert same[0].startswith('balie-standaard v1, balie-standaard v2: nl: "Hoe vriendelijk')
    assert codebook["vriendelijkheid"]["label"] == "Hoe vriendelijk was de medewerker?"
    assert codebook["verwachting"]["wording_per_version"].splitlines()[1] == (
        "balie-standaard v2: not asked in this version")
    assert codebook["nieuw"]["wording_per_version"] == (
        "balie-standaard v1, balie-standaard v2: not asked in this version\n" + UNKNOWN_V3)
    assert codebook["nieuw"]["question_type"] == "unknown"
    dienst = codebook["dienst"]["wording_per_version"]
    assert "3 Verhuizing of adreswijziging" in dienst and "9 Parkeervergunning" in dienst
    assert "code 10: answers no questionnaire central knows lists" in codebook["dienst"]["notes"]


# ----------------------------------------------------------------------------- privacy

def test_comments_are_left_out_unless_asked_for(visits, tmp_path, capsys):
    for fmt in ("sav", "xlsx", "csv"):
        out = tmp_path / f"without.{fmt}"
        status, _, err = run(capsys, "export", "--format", fmt, "--layout", "wide", "--out", out)
        assert status == 0 and "left out: opmerking" in err
        assert b"Fijn geholpen" not in out.read_bytes()
        if fmt != "xlsx":
            codebook = read_csv(tmp_path / "without.codebook.csv")
            assert "opmerking" not in {row["variable"] for row in codebook}
    out = tmp_path / "with.sav"
    status, _, err = run(capsys, "export", "--format", "sav", "--include-comments", "--out", out)
    assert status == 0 and "left out" not in err
    data, meta = pyreadstat.read_sav(out, user_missing=True)
    rows = by_id(data.to_dict("records"), visits)
    assert (rows["r1"]["opmerking"], rows["r2"]["opmerking"], rows["r4"]["opmerking"]) == (
        COMMENT, "-1", "-3")
    assert meta.readstat_variable_types["opmerking"] == "string"
    assert meta.missing_ranges["opmerking"] == [{"lo": "-1", "hi": "-1"}, {"lo": "-2", "hi": "-2"},
                                                {"lo": "-3", "hi": "-3"}]
    assert meta.variable_measure["opmerking"] == "nominal"


def test_times_are_rounded_as_configured_and_weekday_and_part_of_day_are_local(
        visits, tmp_path, capsys):
    config = tmp_path / "central.toml"
    config.write_text('[export]\nround_time_to = "day"\n', encoding="utf-8")
    out = tmp_path / "days.csv"
    status, _, err = run(capsys, "--config", config, "export", "--layout", "wide", "--out", out)
    assert status == 0, err
    rows = by_id(read_csv(out), visits)
    assert rows["r1"]["time"] == "2024-03-04T00:00:00Z" and rows["r1"]["weekday"] == "1"
    assert "part_of_day" not in rows["r1"]  # no part of day in a day

    status, _, _ = run(capsys, "export", "--layout", "wide", "--exact-time", "--out", out)
    rows = by_id(read_csv(out), visits)
    assert rows["r1"]["time"] == "2024-03-04T09:37:12.000Z"
    # 10:59:59 UTC is 11:59:59 in Amsterdam: still morning; in UTC+2 it would be afternoon
    assert rows["r5"]["part_of_day"] == "1"
    status, _, _ = run(capsys, "export", "--layout", "wide", "--exact-time", "--timezone",
                       "Europe/Helsinki", "--out", out)
    assert by_id(read_csv(out), visits)["r5"]["part_of_day"] == "2"

    status, _, _ = run(capsys, "export", "--layout", "wide", "--from", "2024-03-05", "--to",
                       "2024-03-06", "--out", out)
    assert set(by_id(read_csv(out), visits)) == {"r2", "r3"}


def test_an_empty_period_gives_valid_files_with_zero_rows(visits, tmp_path, capsys):
    for fmt in ("sav", "xlsx", "csv"):
        out = tmp_path / f"empty.{fmt}"
        status, _, err = run(capsys, "export", "--format", fmt, "--layout", "wide",
                             "--from", "2030-01-01", "--out", out)
        assert status == 0 and "wrote 0 response row(s)" in err
    data, meta = pyreadstat.read_sav(tmp_path / "empty.sav", user_missing=True)
    assert len(data) == 0 and meta.column_names[0] == "response_id"
    assert meta.column_names_to_labels["time"].startswith("Tijdstip")
    workbook = load_workbook(tmp_path / "empty.xlsx")
    assert workbook["data"].max_row == 1 and workbook["codebook"].max_row > 1
    assert read_csv(tmp_path / "empty.csv") == []
    assert (tmp_path / "empty.csv").read_text(encoding="utf-8").startswith("response_id,")


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("argv, message", [
    (["--format", "sav", "--layout", "long", "--out", "x.sav"], "--layout long is only for"),
    (["--format", "sav", "--out", "x.csv"], "must end in .sav"),
    (["--format", "xlsx", "--out", "-"], "--out -: standard output is only for the long CSV"),
    (["--include-comments", "--out", "x.csv"], "--include-comments is for the wide exports"),
    (["--layout", "wide", "--timezone", "Mars/Olympus", "--out", "x.csv"],
     "--timezone 'Mars/Olympus' is not a known time zone"),
    (["--layout", "wide", "--from", "2024-03-06", "--to", "2024-03-05", "--out", "x.csv"],
     "is not before --to"),
])
def test_bad_export_arguments_are_clear_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BALIE_DATABASE_URL", f"sqlite:///{tmp_path / 'central.sqlite3'}")
    monkeypatch.delenv("BALIE_CENTRAL_CONFIG", raising=False)
    status, _, err = run(capsys, "export", *argv)
    assert status == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a database


def test_an_unknown_format_and_an_unwritable_file_are_clear_errors(database, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--format", "pdf", "--out", str(tmp_path / "x.pdf")])
    assert exit_.value.code == 2 and "invalid choice: 'pdf'" in capsys.readouterr().err
    out = tmp_path / "missing" / "x.sav"
    status, _, err = run(capsys, "export", "--format", "sav", "--out", out)
    assert status == 2 and f"cannot write {out}" in err and "Traceback" not in err
    assert not (tmp_path / "missing").exists()


# ----------------------------------------------------------------------------- codebook rules

def test_variable_names_are_spss_safe_unique_and_at_most_64_characters():
    taken = {"TIME"}
    assert spss_name("wachttijd", taken) == "wachttijd"
    assert spss_name("1e-indruk", taken) == "q_1e_indruk"
    assert spss_name("to", taken) == "q_to"
    assert spss_name("time", taken) == "time_2"
    assert spss_name("a-b", taken) == "a_b" and spss_name("a_b", taken) == "a_b_2"
    long = spss_name("x" * 64, taken), spss_name("x" * 70, taken), spss_name("x" * 63 + "-", taken)
    assert long == ("x" * 64, "x" * 62 + "_2", "x" * 63 + "_")


def test_a_valid_id_keeps_its_name_when_another_id_maps_onto_it():
    toml = STANDAARD.read_text(encoding="utf-8").replace(
        'id = "wachttijd"', 'id = "wacht-tijd"').replace(
        'id = "vriendelijkheid"', 'id = "wacht_tijd"')
    book = build_codebook([Published(QID, 1, toml)], {(QID, 1): 1}, [])
    names = {v.question_id: v.name for v in book.variables if v.question_id}
    assert (names["wacht_tijd"], names["wacht-tijd"]) == ("wacht_tijd", "wacht_tijd_2")


def test_a_question_asked_as_another_type_gets_a_variable_per_type():
    v1 = STANDAARD.read_text(encoding="utf-8")
    v2 = v1.replace("version = 1\n", "version = 2\n").replace(
        'id = "totaal"\ntype = "grade"', 'id = "totaal"\ntype = "smiley"\nfaces = 3').replace(
        'low_label.nl = "heel slecht"\nlow_label.en = "very poor"\n'
        'high_label.nl = "uitstekend"\nhigh_label.en = "excellent"\n', "")
    book = build_codebook([Published(QID, 1, v1), Published(QID, 2, v2)],
                          {(QID, 1): 1, (QID, 2): 1},
                          [Answered(QID, 1, "totaal", 1, 0), Answered(QID, 2, "totaal", 1, 0)])
    split = {v.name: v for v in book.variables if v.question_id == "totaal"}
    assert set(split) == {"totaal_grade", "totaal_smiley"}
    assert (split["totaal_grade"].level, split["totaal_smiley"].level) == ("scale", "ordinal")

    class Response:
        id, location_id, questionnaire_id, language = "r", "stadhuis", QID, "nl"
        started_at, time_verified, suspect, end_reason = 1_700_000_000.0, True, False, "completed"

    def cells(version, value):
        Response.questionnaire_version = version
        row = dict(zip(book.names, book.row(Response, {"totaal": value})))
        return row["totaal_grade"], row["totaal_smiley"]

    assert cells(1, 9) == (9, -2) and cells(2, 3) == (-2, 3) and cells(2, 4) == (-2, -4)


def commented(response_id: str, comment: str):
    """A codebook with comments and one idle response of it with only ``comment``: (book, row)."""
    book = build_codebook([Published(QID, 1, STANDAARD.read_text(encoding="utf-8"))],
                          {(QID, 1): 1}, [Answered(QID, 1, "opmerking", 0, 1)],
                          include_comments=True)

    class Response:
        id, location_id, questionnaire_id, questionnaire_version, language = (
            response_id, "stadhuis", QID, 1, "nl")
        started_at, time_verified, suspect, end_reason = 1_700_000_000.0, False, False, "idle"

    return book, book.row(Response, {"opmerking": comment})


def test_xlsx_text_cells_are_never_formulas(tmp_path):
    book, row = commented("=1+1", '=HYPERLINK("http://x","klik")\x07')
    write_xlsx(tmp_path / "x.xlsx", book, [row], [("about", "test")])
    sheet = load_workbook(tmp_path / "x.xlsx")["data"]
    cells = {head.value: cell for head, cell in zip(sheet[1], sheet[2])}
    assert cells["opmerking"].data_type == "s"
    assert cells["opmerking"].value == '=HYPERLINK("http://x","klik")\ufffd'
    assert (cells["response_id"].data_type, cells["response_id"].value) == ("s", "=1+1")
    assert cells["end_reason"].value == 2 and cells["totaal"].value == -1


def test_spss_texts_are_cut_on_character_boundaries():
    assert fit_bytes("é" * 200, 120).encode() == ("é" * 58 + "…").encode()
    lines = wrap_bytes("wachttijd - " + "ééé " * 40 + "x" * 100, 80)
    assert all(len(line.encode()) <= 80 for line in lines)
    assert "".join(lines).replace(" ", "") == ("wachttijd-" + "ééé" * 40 + "x" * 100)


def test_the_cli_offers_the_formats_the_export_writes():
    assert cli.FORMATS == export_module.FORMATS


def test_csv_texts_that_a_spreadsheet_would_run_get_a_quote(tmp_path):
    from central.export_formats import spreadsheet_safe, write_csv

    assert [spreadsheet_safe(v) for v in ('=1+1', '+31 6', '-2+3+cmd|x', '@SUM(A1)', '\tx',
                                          '\r=1', 'gewoon', '-1', '-3', '+31', '2,5', 7, None)] == [
        "'=1+1", "'+31 6", "'-2+3+cmd|x", "'@SUM(A1)", "'\tx", "'\r=1", 'gewoon', '-1', '-3',
        '+31', '2,5', 7, None]
    book, row = commented("r1", '=HYPERLINK("http://x","klik")')
    write_csv(tmp_path / "x.csv", book, [row])
    [written] = read_csv(tmp_path / "x.csv")
    assert written["opmerking"] == '\'=HYPERLINK("http://x","klik")'
    assert written["totaal"] == "-1"                      # a missing code stays a number
