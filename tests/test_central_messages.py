"""The message to visitors on central: set / clear / show on the CLI, validation, the device's
conditional GET (ETag / 304 / 404 / auth) and the overall grade only from the minimum number of answers.

SQLite and PostgreSQL, a fresh database per test; the CLI in-process; the API over real HTTP.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests

from central.devices import revoke
from central.ingest import ingest_batch
from central.messages import (
    MessageInvalid,
    VisitorMessage,
    clear_message,
    current_for_location,
    overall_grade,
    set_message,
)
from central.stats import summarise
from sync.protocol import MESSAGE_PATH, Batch, ErrorBody, MessageDocument
from tests.central_fixtures import (
    cli,
    FakeClock,
    central_settings,
    enrol_device,
    make_batch,
    make_record,
    run_central,
)

NL = "Wij bellen u binnen 2 werkdagen terug."
EN = "We call you back within 2 working days."
NOW = 1_800_000_000.0
DAY = 86400.0


_seqs: dict[str, itertools.count] = {}


def add_grades(engine, device_id, grades, *, received_at=NOW, suspect=False):
    """Store one response per grade (the overall question first); started ~1.15 days before
    ``received_at`` (make_record's clocks)."""
    seqs = _seqs.setdefault(device_id + str(engine.url), itertools.count(1))
    records = [make_record(next(seqs), values=(g, 7), suspect=suspect) for g in grades]
    for start in range(0, len(records), 200):
        batch = Batch.model_validate(make_batch(device_id, records[start:start + 200]))
        results = ingest_batch(engine, device_id, batch, received_at=received_at)
        assert {r.status for r in results} == {"accepted"}


# ----------------------------------------------------------------------------- the CLI


def test_set_show_and_clear_on_the_command_line(database, engine, capsys):
    status, out, err = cli(capsys, "message", "set", "--nl", f"  {NL} ", "--en", EN,
                           "--where", "thanks")
    assert status == 0, err
    assert "message for every location set (thanks screen)" in out
    stored = current_for_location(engine, "stadhuis")
    assert stored.message == VisitorMessage(nl=NL, en=EN, where="thanks", show_grade=False)
    status, out, _ = cli(capsys, "message", "show")
    assert status == 0 and f"nl: {NL}" in out and f"en: {EN}" in out and "thanks screen" in out
    status, out, err = cli(capsys, "message", "set", "--nl", "Nieuw", "--show-grade")
    assert status == 0 and "replaced (welcome screen, with the overall grade)" in out
    assert "may sway it; --where thanks" in err
    status, out, _ = cli(capsys, "message", "show", "--json")
    [row] = json.loads(out)
    assert (row["nl"], row["en"], row["where"], row["show_grade"], row["location"], row["grade"]) \
        == ("Nieuw", None, "welcome", True, None, None)
    status, out, _ = cli(capsys, "message", "clear")
    assert status == 0 and "cleared" in out
    assert current_for_location(engine, "stadhuis") is None
    status, out, _ = cli(capsys, "message", "clear")
    assert status == 0 and "there was no message for every location: nothing changed" in out
    assert cli(capsys, "message", "show")[1].startswith("no message set")


def test_a_location_of_its_own_wins_and_clearing_it_falls_back(database, engine, capsys):
    assert cli(capsys, "message", "set", "--nl", "Voor iedereen")[0] == 0
    status, _, err = cli(capsys, "message", "set", "--nl", "Alleen stadhuis", "--location",
                         "stadhuis")
    assert status == 0 and "no terminal is enrolled at location 'stadhuis'" in err
    assert current_for_location(engine, "stadhuis").message.nl == "Alleen stadhuis"
    assert current_for_location(engine, "bibliotheek").message.nl == "Voor iedereen"
    assert cli(capsys, "message", "clear", "--location", "stadhuis")[0] == 0
    assert current_for_location(engine, "stadhuis").message.nl == "Voor iedereen"


BAD_TEXTS = {
    "empty": ("   ", "--nl: must not be empty"),
    "too-long": ("x" * 201, "--nl: at most 200 characters, got 201"),
    "html": ("Zie <b>hier</b>", "--nl: character 5 is '<': no markup"),
    "kivy-markup": ("[b]Let op[/b]", "--nl: character 1 is '[': no markup"),
    "line-break": ("Regel 1\nRegel 2", "--nl: character 8 is a line break"),
    "nul": ("a\x00b", "--nl: character 2 is a NUL character"),
}


@pytest.mark.parametrize("text,expected", list(BAD_TEXTS.values()), ids=list(BAD_TEXTS))
def test_a_bad_text_is_refused_with_exit_2_and_nothing_is_stored(database, engine, capsys,
                                                                   text, expected):
    status, out, err = cli(capsys, "message", "set", "--nl", text)
    assert status == 2 and out == ""
    assert expected in err
    assert current_for_location(engine, None) is None


def test_the_english_text_is_checked_too_and_both_problems_are_named():
    with pytest.raises(MessageInvalid) as caught:
        VisitorMessage.build(nl="", en="<i>x</i>")
    assert str(caught.value) == ("--nl: must not be empty; --en: character 1 is '<': no markup "
                                 "(HTML or [b]-style tags); a message is plain text")
    assert VisitorMessage.build(nl="Tot 200 tekens: " + "é" * 184).nl.endswith("é")


# ----------------------------------------------------------------------------- the grade


def test_the_grade_is_the_mean_of_the_overall_question_only_from_the_minimum(engine, database):
    settings = central_settings(database)
    town_hall, _ = enrol_device(settings, location="stadhuis")
    library, _ = enrol_device(settings, location="bibliotheek")
    grades = [8, 7, 9, 6, 8, 7, 7, 8, 9, 5] * 10            # 100 answers, mean 7.4
    add_grades(engine, town_hall, grades[:99])
    assert overall_grade(engine, "stadhuis", now=NOW, days=90, min_n=100) is None
    add_grades(engine, town_hall, grades[99:])
    grade = overall_grade(engine, "stadhuis", now=NOW, days=90, min_n=100)
    assert (grade.mean, grade.n, grade.days) == (round(summarise(grades).mean, 1), 100, 90)
    assert grade.mean == 7.4
    # Another location's answers never count, and a small location gets nothing.
    add_grades(engine, library, [10] * 40)
    assert overall_grade(engine, "bibliotheek", now=NOW, days=90, min_n=100) is None
    assert overall_grade(engine, "stadhuis", now=NOW, days=90, min_n=100).n == 100
    assert overall_grade(engine, None, now=NOW, days=90, min_n=100).n == 140


def test_the_grade_counts_only_the_last_days_and_leaves_suspect_responses_out(engine, database):
    settings = central_settings(database)
    device, _ = enrol_device(settings)
    add_grades(engine, device, [10] * 100, received_at=NOW - 100 * DAY)    # too long ago
    add_grades(engine, device, [1] * 100, suspect=True)                    # rapid repeats
    add_grades(engine, device, [6] * 100)
    grade = overall_grade(engine, "stadhuis", now=NOW, days=90, min_n=100)
    assert (grade.mean, grade.n) == (6.0, 100)
    assert overall_grade(engine, "stadhuis", now=NOW, days=1, min_n=100) is None  # ~1.15 days ago


# ----------------------------------------------------------------------------- the device's GET


@pytest.fixture
def served(database):
    """A running central (clock NOW, no grade cache) on the test's database; yields (url, settings)."""
    settings = central_settings(database, message={"grade_cache_s": 0})
    with run_central(settings, migrate_first=False, watch_fleet=False,
                     clock=FakeClock(NOW)) as base_url:
        yield base_url, settings


def device_session(settings, location="stadhuis"):
    device_id, token = enrol_device(settings, location=location)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return device_id, session


def fetch(base_url, session, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    return session.get(base_url + MESSAGE_PATH, headers=headers, timeout=(5, 30))


def test_a_device_gets_the_message_with_an_etag_then_304_and_404_once_cleared(served, engine):
    base_url, settings = served
    _, session = device_session(settings)
    reply = fetch(base_url, session)
    assert reply.status_code == 404
    body = ErrorBody.model_validate_json(reply.content)
    assert body.error == "no_message" and "stadhuis" in body.detail
    set_message(engine, VisitorMessage.build(nl=NL, en=EN, where="thanks"), location=None, now=NOW)
    reply = fetch(base_url, session)
    assert reply.status_code == 200, reply.text
    assert "no-cache" in reply.headers["cache-control"]
    document = MessageDocument.model_validate_json(reply.content)
    assert document == MessageDocument(nl=NL, en=EN, where="thanks")
    etag = reply.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}'):
        again = fetch(base_url, session, header)
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    set_message(engine, VisitorMessage.build(nl="Anders"), location=None, now=NOW)
    changed = fetch(base_url, session, etag)
    assert changed.status_code == 200 and changed.json() == {"nl": "Anders", "where": "welcome"}
    assert changed.headers["etag"] != etag
    clear_message(engine, location=None)
    assert fetch(base_url, session, changed.headers["etag"]).status_code == 404


def test_the_grade_goes_with_the_message_only_from_the_minimum(served, engine):
    base_url, settings = served
    device_id, session = device_session(settings)
    set_message(engine, VisitorMessage.build(nl=NL, show_grade=True), location=None, now=NOW)
    add_grades(engine, device_id, [8] * 99)
    assert "grade" not in fetch(base_url, session).json()
    add_grades(engine, device_id, [6])
    reply = fetch(base_url, session)
    assert reply.json()["grade"] == {"mean": 8.0, "n": 100, "days": 90}  # 7.98 rounded
    assert fetch(base_url, session, reply.headers["etag"]).status_code == 304
    set_message(engine, VisitorMessage.build(nl=NL, show_grade=False), location=None, now=NOW)
    assert "grade" not in fetch(base_url, session).json()


def test_the_message_needs_a_valid_token_that_is_not_revoked(served, engine):
    base_url, settings = served
    set_message(engine, VisitorMessage.build(nl=NL), location=None, now=NOW)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        reply = requests.get(base_url + MESSAGE_PATH, headers=headers, timeout=(5, 30))
        assert reply.status_code == 401 and reply.json()["error"] == "unauthorized"
    device_id, session = device_session(settings)
    assert fetch(base_url, session).status_code == 200
    revoke(engine, device_id, now=time.time())
    reply = fetch(base_url, session)
    assert reply.status_code == 403 and reply.json()["error"] == "revoked"


def test_the_message_route_is_in_the_openapi_description(served):
    base_url, _ = served
    spec = requests.get(base_url + "/openapi.json", timeout=(5, 30)).json()
    operation = spec["paths"][MESSAGE_PATH]["get"]
    assert set(operation["responses"]) == {"200", "304", "401", "403", "404", "503"}
    assert operation["security"] == [{"deviceToken": []}]
