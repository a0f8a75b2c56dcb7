"""Questionnaires from central: publish (validated, immutable), list, retire, per-location override,
the device's conditional GET (ETag / 304 / 404), answers to older versions, heartbeat fields.

SQLite and PostgreSQL, a fresh database per test; the CLI in-process; the API over real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import event, insert
from sqlalchemy.exc import IntegrityError

from central.cli import main
from central.devices import device_statuses, revoke
from central.errors import QuestionnaireConflict
from central.models import Questionnaire as QuestionnaireRow
from central.questionnaires import (
    current_for_location,
    list_published,
    parse_text,
    publish,
    read_questionnaire_file,
)
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import load_questionnaire, parse_questionnaire
from sync.protocol import (
    BATCHES_PATH,
    HEARTBEAT_PATH,
    QUESTIONNAIRE_PATH,
    ErrorBody,
    QuestionnaireDocument,
)
from tests.central_fixtures import (
    central_settings,
    cli,
    enrol_device,
    make_batch,
    make_heartbeat,
    make_record,
    questionnaire_file,
    run_central,
)

QID = "balie-standaard"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- publish


def test_publish_stores_the_file_text_as_published_with_its_sha256(database, engine, capsys,
                                                                     tmp_path):
    path = questionnaire_file(tmp_path, 1)
    status, out, err = cli(capsys, "questionnaire", "publish", path)
    assert status == 0, err
    assert f"published {QID} v1 for every location (sha256 {sha256_file(path)[:12]})" in out
    [row] = list_published(engine)
    assert (row.questionnaire_id, row.version, row.location, row.state) == (QID, 1, None, "current")
    assert row.toml == path.read_text(encoding="utf-8")
    assert row.sha256 == sha256_file(path)
    assert row.retired_at is None and row.published_at == pytest.approx(time.time(), abs=60)


BAD_FILES = {
    "smiley-faces": 'id = "x"\nversion = 1\n[[questions]]\nid = "q"\ntype = "smiley"\n'
                    'aspect = "a"\nfaces = 4\ntext.nl = "Hoe?"\n',
    "no-dutch": 'id = "x"\nversion = 1\n[[questions]]\nid = "q"\ntype = "grade"\n'
                'aspect = "a"\ntext.en = "How?"\n',
    "toml-syntax": 'id = "x"\nversion = \n',
    "no-questions": 'id = "x"\nversion = 0\n',
    "not-utf8": b'id = "\xff"\n',
}


@pytest.mark.parametrize("content", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_bad_file_gets_the_terminals_own_error_exit_2_and_nothing_is_stored(
        database, engine, capsys, tmp_path, content):
    path = tmp_path / "vragen.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(QuestionnaireError) as on_the_device:
        load_questionnaire(path)
    status, out, err = cli(capsys, "questionnaire", "publish", path)
    assert status == 2 and out == ""
    assert err == str(on_the_device.value) + "\n"          # the very same words, unchanged
    assert str(path) in err and "Traceback" not in err
    assert list_published(engine) == []


def test_a_missing_file_is_a_clear_error(database, capsys, tmp_path):
    status, _, err = cli(capsys, "questionnaire", "publish", tmp_path / "nope.toml")
    assert status == 2
    assert err == f"{tmp_path / 'nope.toml'}: invalid questionnaire\n  - file not found\n"


def test_the_error_names_the_question_and_the_field(database, capsys, tmp_path):
    path = tmp_path / "vragen.toml"
    path.write_text(BAD_FILES["smiley-faces"], encoding="utf-8")
    _, _, err = cli(capsys, "questionnaire", "publish", path)
    assert "question 'q' (#1), field 'faces': must be 3 or 5, got 4" in err


def test_a_file_the_terminal_loads_but_the_wire_cannot_carry_is_refused(tmp_path):
    long_id = "a" * 65
    text = (f'id = "x"\nversion = {2 ** 31}\n[[questions]]\nid = "{long_id}"\ntype = "grade"\n'
            'aspect = "totaal"\ntext.nl = "Cijfer?"\n')
    parse_questionnaire(text)                                   # the terminal would take it
    with pytest.raises(QuestionnaireError) as caught:
        parse_text(text, "vragen.toml")
    message = str(caught.value)
    assert "field 'version': must be at most 2147483647, got 2147483648" in message
    assert f"question '{long_id}' (#1), field 'id': at most 64 characters, got 65" in message


def test_the_same_id_and_version_with_other_content_is_refused_and_the_stored_text_kept(
        database, engine, capsys, tmp_path):
    first = questionnaire_file(tmp_path, 2)
    assert cli(capsys, "questionnaire", "publish", first)[0] == 0
    changed = questionnaire_file(tmp_path, 2, title="Hoe ging het?")
    status, out, err = cli(capsys, "questionnaire", "publish", changed)
    assert status == 2 and out == ""
    assert f"{QID} v2 is already published for every location with other content" in err
    assert "raise 'version'" in err and "Traceback" not in err
    [row] = list_published(engine)
    assert row.toml == first.read_text(encoding="utf-8")
    # also for another location: one id and version has one wording everywhere
    status, _, err = cli(capsys, "questionnaire", "publish", changed, "--location", "stadhuis")
    assert status == 2 and "with other content" in err
    assert len(list_published(engine)) == 1


def test_publishing_the_same_file_again_is_harmless_and_says_so(database, engine, capsys,
                                                                 tmp_path):
    path = questionnaire_file(tmp_path, 1)
    cli(capsys, "questionnaire", "publish", path)
    before = list_published(engine)
    status, out, _ = cli(capsys, "questionnaire", "publish", path)
    assert status == 0
    assert f"{QID} v1 for every location was already published with this content" in out
    assert "nothing changed" in out
    assert list_published(engine) == before
    # the same text for a location of its own is a new publication, not a conflict
    status, out, _ = cli(capsys, "questionnaire", "publish", path, "--location", "stadhuis")
    assert status == 0 and f"published {QID} v1 for location stadhuis" in out
    assert [(r.location, r.sha256) for r in list_published(engine)] == [
        (None, sha256_file(path)), ("stadhuis", sha256_file(path))]


def test_list_shows_current_superseded_and_retired(database, capsys, tmp_path):
    assert cli(capsys, "questionnaire", "list")[1].startswith("nothing published")
    for version in (1, 2, 3):
        cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, version))
    cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, 4, title="Stadhuis"),
        "--location", "stadhuis")
    cli(capsys, "questionnaire", "retire", QID, 3)
    status, out, _ = cli(capsys, "questionnaire", "list", "--json")
    shown = [(r["version"], r["location"], r["state"]) for r in json.loads(out)]
    assert shown == [(1, None, "superseded"), (2, None, "current"), (3, None, "retired"),
                     (4, "stadhuis", "current")]
    assert all("toml" not in r and len(r["sha256"]) == 64 for r in json.loads(out))
    status, out, _ = cli(capsys, "questionnaire", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "LOCATION", "PUBLISHED", "(UTC)", "STATE",
                                "SHA256"]
    assert lines[2].split()[:3] == [QID, "2", "(every)"] and "current" in lines[2]
    assert "retired 20" in lines[3]
    assert lines[4].split()[:3] == [QID, "4", "stadhuis"]


def test_retire_falls_back_to_the_previous_version_and_unknown_ones_are_a_clear_error(
        database, engine, capsys, tmp_path):
    for version in (1, 2):
        cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, version))
    status, out, _ = cli(capsys, "questionnaire", "retire", QID, 2)
    assert status == 0
    assert out.splitlines() == [f"{QID} v2 for every location: retired",
                                f"terminals at locations without a questionnaire of their own "
                                f"now get {QID} v1 (every location)"]
    assert current_for_location(engine, "stadhuis").version == 1
    status, out, _ = cli(capsys, "questionnaire", "retire", QID, 2)
    assert status == 0 and "was already retired" in out
    status, out, _ = cli(capsys, "questionnaire", "retire", QID, 1)
    assert "nothing else is published for them" in out
    assert current_for_location(engine, "stadhuis") is None
    status, _, err = cli(capsys, "questionnaire", "retire", QID, 7)
    assert status == 2 and f"{QID} v7 is not published for every location" in err
    cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, 5), "--location", "wijk")
    status, _, err = cli(capsys, "questionnaire", "retire", QID, 5)
    assert status == 2 and "it is published for: wijk (use --location)" in err
    assert "Traceback" not in err


def test_a_retired_version_is_not_published_again(database, capsys, tmp_path):
    path = questionnaire_file(tmp_path, 1)
    cli(capsys, "questionnaire", "publish", path)
    cli(capsys, "questionnaire", "retire", QID, 1)
    status, _, err = cli(capsys, "questionnaire", "publish", path)
    assert status == 2 and "was retired" in err and "new version" in err


def test_a_location_of_its_own_wins_over_the_one_for_every_location(database, engine, capsys,
                                                                    tmp_path):
    cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, 1))
    status, out, err = cli(capsys, "questionnaire", "publish",
                           questionnaire_file(tmp_path, 2, title="Welkom op het stadhuis"),
                           "--location", "stadhuis")
    assert status == 0 and "terminals at stadhuis get it at their next sync" in out
    assert "no terminal is enrolled at location 'stadhuis'" in err      # a typo shows
    cli(capsys, "questionnaire", "publish", questionnaire_file(tmp_path, 3))
    assert current_for_location(engine, "stadhuis").version == 2        # its own, though older
    assert current_for_location(engine, "bibliotheek").version == 3
    assert current_for_location(engine, None).version == 3
    cli(capsys, "questionnaire", "retire", QID, 2, "--location", "stadhuis")
    assert current_for_location(engine, "stadhuis").version == 3


def test_the_most_recently_published_is_current(database, engine, tmp_path):
    for when, (qid, version) in enumerate([(QID, 1), ("kort", 1), (QID, 2)]):
        text, parsed = read_questionnaire_file(questionnaire_file(tmp_path, version, qid=qid))
        publish(engine, text, parsed, location=None, now=1_800_000_000.0 + when)
    assert (current_for_location(engine, "x").questionnaire_id,
            current_for_location(engine, "x").version) == (QID, 2)


def test_the_database_keeps_one_row_per_id_version_and_location_also_for_every_location(engine):
    row = dict(questionnaire_id=QID, version=1, toml="x", sha256="0" * 64, published_at=1.0)
    table = QuestionnaireRow.__table__
    for location in (None, "stadhuis"):
        with engine.begin() as conn:
            conn.execute(insert(table).values(location=location, **row))
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(insert(table).values(location=location, **row))


def test_two_publishers_of_one_version_with_other_content_cannot_both_win(engine, tmp_path):
    """Each publisher checks, then inserts; a hook holds the first insert until the other
    publisher has checked too (or 2 s passed: it is kept waiting by the lock, as it should)."""
    texts = [read_questionnaire_file(questionnaire_file(tmp_path, 9, title=t))
             for t in ("Eerste", "Tweede")]
    both_checked = threading.Barrier(2)

    def hold_insert(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO QUESTIONNAIRES"):
            try:
                both_checked.wait(timeout=2)
            except threading.BrokenBarrierError:
                pass

    event.listen(engine, "before_cursor_execute", hold_insert)
    outcomes = []

    def run(index):
        try:
            publish(engine, *texts[index], location=f"plek-{index}", now=time.time())
            outcomes.append("published")
        except QuestionnaireConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    event.remove(engine, "before_cursor_execute", hold_insert)
    assert sorted(outcomes) == ["conflict", "published"]
    assert len({row.sha256 for row in list_published(engine)}) == 1


# ----------------------------------------------------------------------------- the device's GET


@pytest.fixture
def served(database):
    """A running central on the test's database; yields (base_url, settings)."""
    settings = central_settings(database)
    with run_central(settings, migrate_first=False, watch_fleet=False) as base_url:
        yield base_url, settings


def device_session(settings, location="stadhuis"):
    device_id, token = enrol_device(settings, location=location)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return device_id, session


def fetch(base_url, session, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    return session.get(base_url + QUESTIONNAIRE_PATH, headers=headers, timeout=(5, 30))


def test_a_device_gets_the_published_text_with_an_etag_and_then_304(served, engine, tmp_path):
    base_url, settings = served
    _, session = device_session(settings)
    path = questionnaire_file(tmp_path, 1)
    publish(engine, *read_questionnaire_file(path), location=None, now=time.time())
    reply = fetch(base_url, session)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["etag"] == f'"{sha256_file(path)}"'
    assert "no-cache" in reply.headers["cache-control"]
    document = QuestionnaireDocument.model_validate_json(reply.content)
    assert (document.id, document.version) == (QID, 1)
    assert document.toml == path.read_text(encoding="utf-8")
    assert parse_questionnaire(document.toml) == load_questionnaire(path)   # loads on the device
    etag = reply.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = fetch(base_url, session, header)
        assert again.status_code == 304, header
        assert again.content == b"" and again.headers["etag"] == etag
    assert fetch(base_url, session, '"something-else"').status_code == 200


def test_a_newer_version_changes_the_etag_and_a_location_override_and_retire_are_followed(
        served, engine, tmp_path):
    base_url, settings = served
    _, at_town_hall = device_session(settings, "stadhuis")
    _, at_library = device_session(settings, "bibliotheek")
    publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 1)), location=None,
            now=time.time())
    old = fetch(base_url, at_town_hall).headers["etag"]
    publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 2)), location=None,
            now=time.time())
    reply = fetch(base_url, at_town_hall, old)
    assert reply.status_code == 200 and reply.json()["version"] == 2
    assert reply.headers["etag"] != old
    publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 3, title="Stadhuis")),
            location="stadhuis", now=time.time())
    assert fetch(base_url, at_town_hall).json()["version"] == 3
    assert fetch(base_url, at_library).json()["version"] == 2
    assert main(["questionnaire", "retire", QID, "3", "--location", "stadhuis"]) == 0
    assert fetch(base_url, at_town_hall).json()["version"] == 2


def test_nothing_published_is_404_no_questionnaire(served):
    base_url, settings = served
    _, session = device_session(settings)
    reply = fetch(base_url, session)
    assert reply.status_code == 404
    body = ErrorBody.model_validate_json(reply.content)
    assert body.error == "no_questionnaire" and "stadhuis" in body.detail
    assert fetch(base_url, session, "*").status_code == 404


def test_the_questionnaire_needs_a_valid_token_that_is_not_revoked(served, engine, tmp_path):
    base_url, settings = served
    publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 1)), location=None,
            now=time.time())
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        reply = requests.get(base_url + QUESTIONNAIRE_PATH, headers=headers, timeout=(5, 30))
        assert reply.status_code == 401 and reply.json()["error"] == "unauthorized"
        assert reply.headers["www-authenticate"] == "Bearer"
    device_id, session = device_session(settings)
    assert fetch(base_url, session).status_code == 200
    revoke(engine, device_id, now=time.time())
    reply = fetch(base_url, session)
    assert reply.status_code == 403 and reply.json()["error"] == "revoked"


def test_the_questionnaire_route_is_in_the_openapi_description(served):
    base_url, _ = served
    spec = requests.get(base_url + "/openapi.json", timeout=(5, 30)).json()
    operation = spec["paths"][QUESTIONNAIRE_PATH]["get"]
    assert set(operation["responses"]) == {"200", "304", "401", "403", "404", "503"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/QuestionnaireDocument"}
    assert operation["security"] == [{"deviceToken": []}]
    assert [p["name"] for p in operation["parameters"]] == ["If-None-Match"]


def test_answers_to_older_and_retired_versions_are_still_accepted(served, engine, tmp_path):
    base_url, settings = served
    device_id, session = device_session(settings)
    for version in (1, 2, 3):
        publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, version)),
                location=None, now=time.time())
    assert main(["questionnaire", "retire", QID, "1"]) == 0
    records = [make_record(seq, questionnaire=(QID, version))
               for seq, version in ((1, 1), (2, 2), (3, 3))]
    reply = session.post(base_url + BATCHES_PATH, json=make_batch(device_id, records),
                         timeout=(5, 30))
    assert reply.status_code == 200, reply.text
    assert [r["status"] for r in reply.json()["results"]] == ["accepted"] * 3


# ----------------------------------------------------------------------------- heartbeat fields


def test_the_heartbeat_questionnaire_and_opening_time_fields_are_stored_and_listed(
        served, engine, capsys):
    base_url, settings = served
    device_id, session = device_session(settings)
    beat = make_heartbeat(device_id, questionnaire={"id": QID, "version": 2},
                          questionnaire_error="download failed: timed out", open_now=True,
                          quiet_open_s=125.5)
    assert session.post(base_url + HEARTBEAT_PATH, json=beat, timeout=(5, 30)).status_code == 200
    [status] = [s for s in device_statuses(engine) if s.id == device_id]
    assert (status.questionnaire, status.questionnaire_error, status.open_now,
            status.quiet_open_s) == (f"{QID} v2", "download failed: timed out", True, 125.5)
    code, out, _ = cli(capsys, "device", "list")
    assert code == 0 and f"{QID} v2 (!)" in out
    assert f"{device_id}: questionnaire: download failed: timed out" in out
    shown = json.loads(cli(capsys, "device", "list", "--json")[1])[0]
    assert (shown["questionnaire"], shown["open_now"], shown["quiet_open_s"]) == (
        f"{QID} v2", True, 125.5)
    # an older terminal leaves the fields out: nothing stale stays
    older = make_heartbeat(device_id)
    assert session.post(base_url + HEARTBEAT_PATH, json=older, timeout=(5, 30)).status_code == 200
    [status] = [s for s in device_statuses(engine) if s.id == device_id]
    assert (status.questionnaire, status.questionnaire_error, status.open_now,
            status.quiet_open_s) == (None, None, None, None)


def test_a_nul_in_the_questionnaire_error_is_refused(served):
    base_url, settings = served
    device_id, session = device_session(settings)
    reply = session.post(base_url + HEARTBEAT_PATH, timeout=(5, 30),
                         data=json.dumps(make_heartbeat(device_id, questionnaire_error="a\u0000b")),
                         headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and reply.json()["error"] == "invalid"
