"""Fetching central's questionnaire against a real HTTP server on a loopback port.

The server is tests/sync_test_server.py's ScriptedCentral: it serves a
QuestionnaireDocument with an ETag, answers 304 to a matching If-None-Match,
404 ``no_questionnaire`` when nothing is published, and scripted faults.
"""

from __future__ import annotations

import errno
import json
import os
import random

import pytest

import kiosk.questionnaire_store as store_module
import sync.questionnaire_fetch as fetch_module
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.paths import config_dir
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import load_questionnaire
from kiosk.questionnaire_store import META_FILE, TOML_FILE, CentralCopy
from kiosk.settings import SyncSettings
from kiosk.state import DeviceState
from sync.protocol import QUESTIONNAIRE_PATH, QuestionnaireDocument, QuestionnaireRef
from sync.questionnaire_fetch import QuestionnaireFetcher, attach_fetcher
from sync.uploader import Uploader, make_session
from tests.sync_test_server import (FakeTime, Reply, ScriptedCentral, Sleep, fill_buffer,
                                    questionnaire_etag)

TOKEN = "secret-token-1"
SHIPPED_PATH = config_dir() / "questionnaires" / "standaard.toml"
SHIPPED = SHIPPED_PATH.read_text(encoding="utf-8")
FIRST_TEXT = 'text.nl = "Welk rapportcijfer geeft u ons vandaag?"'


def toml(version: int, *, wording: str | None = None, qid: str = "balie-standaard") -> str:
    """The shipped questionnaire as ``version`` (and ``id``), optionally with another first wording."""
    text = SHIPPED.replace("version = 1", f"version = {version}", 1)
    text = text.replace('id = "balie-standaard"', f'id = "{qid}"', 1)
    if wording is not None:
        assert FIRST_TEXT in text
        text = text.replace(FIRST_TEXT, f'text.nl = "{wording}"', 1)
    return text


def document(version: int, text: str | None = None, *, qid: str = "balie-standaard",
             **kwargs) -> QuestionnaireDocument:
    return QuestionnaireDocument(id=qid, version=version,
                                 toml=text if text is not None else toml(version, qid=qid, **kwargs))


@pytest.fixture
def central():
    with ScriptedCentral(token=TOKEN) as c:
        yield c


@pytest.fixture
def copy(tmp_path):
    return CentralCopy(tmp_path / "data")


class Fetch:
    """A fetcher on a fresh Session with short timeouts, recording what it hands over."""

    def __init__(self, central, copy, *, in_use=None, token=TOKEN, read_timeout_s=2.0):
        self.handed: list = []
        self.settings = SyncSettings(connect_timeout_s=2.0, read_timeout_s=read_timeout_s)
        state = DeviceState(central_url=central.url, device_id="dev-1", token=token)
        self.fetcher = QuestionnaireFetcher(make_session(), self.settings, state, copy,
                                            in_use=in_use or (lambda: None),
                                            on_new=self.handed.append, wall=lambda: 1_700_000_000.0)

    def __call__(self):
        return self.fetcher.fetch()


@pytest.fixture
def fetch(central, copy):
    return Fetch(central, copy)


def files(copy: CentralCopy) -> tuple[bytes, bytes]:
    return copy.path.read_bytes(), copy.meta_path.read_bytes()


# --------------------------------------------------------------------------- ETag and storing


def test_the_first_fetch_stores_the_document_with_its_etag_and_hands_it_over(central, copy, fetch):
    central.questionnaire = document(2, wording="Welk cijfer geeft u ons?")

    outcome = fetch()

    assert outcome.status == "stored"
    assert (outcome.questionnaire.id, outcome.questionnaire.version) == ("balie-standaard", 2)
    assert "If-None-Match" not in central.questionnaire_requests[0].headers
    assert central.questionnaire_requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert copy.path.read_text(encoding="utf-8") == central.questionnaire.toml  # as published
    meta = json.loads(copy.meta_path.read_text())
    assert meta["etag"] == questionnaire_etag(central.questionnaire)
    assert (meta["id"], meta["version"], meta["fetched_at"]) == ("balie-standaard", 2, 1_700_000_000.0)
    stored = copy.load()
    assert stored.questionnaire == outcome.questionnaire
    assert stored.questionnaire.first.text_for("nl") == "Welk cijfer geeft u ons?"
    assert stored.etag == meta["etag"]
    assert fetch.handed == [outcome.questionnaire]
    assert fetch.fetcher.last_error is None


def test_the_second_fetch_sends_if_none_match_and_a_304_rewrites_nothing(central, copy, fetch):
    central.questionnaire = document(2)
    fetch()
    before = os.stat(copy.path), os.stat(copy.meta_path)

    outcome = fetch()

    assert outcome.status == "not_modified"
    request = central.questionnaire_requests[1]
    assert request.headers["If-None-Match"] == questionnaire_etag(central.questionnaire)
    after = os.stat(copy.path), os.stat(copy.meta_path)
    assert [(s.st_ino, s.st_mtime_ns) for s in after] == [(s.st_ino, s.st_mtime_ns) for s in before]
    assert len(fetch.handed) == 1  # nothing new handed over


def test_after_a_restart_the_stored_etag_is_sent_and_304_keeps_the_copy(central, copy, fetch):
    central.questionnaire = document(2)
    fetch()

    again = Fetch(central, copy)  # a new terminal process: the ETag comes from disk
    assert again().status == "not_modified"
    assert central.questionnaire_requests[-1].headers["If-None-Match"] == questionnaire_etag(
        central.questionnaire)
    assert again.handed == []


def test_a_new_version_replaces_the_stored_copy(central, copy, fetch):
    central.questionnaire = document(2)
    fetch()
    central.questionnaire = document(3, wording="Hoe tevreden bent u?")

    outcome = fetch()

    assert outcome.status == "stored"
    assert copy.load().questionnaire.version == 3
    assert json.loads(copy.meta_path.read_text())["etag"] == questionnaire_etag(central.questionnaire)
    assert [q.version for q in fetch.handed] == [2, 3]
    assert fetch().status == "not_modified"


def test_an_etag_that_cannot_go_back_in_a_header_is_not_kept(central, copy, fetch):
    central.questionnaire = document(2)
    central.questionnaire_script.append(
        Reply(200, {"ETag": '"' + "x" * 300 + '"'}, document(2).model_dump_json().encode()))

    assert fetch().status == "stored"
    assert copy.load().etag is None

    assert fetch().status == "stored"  # asked without If-None-Match: the whole document again
    assert "If-None-Match" not in central.questionnaire_requests[-1].headers
    assert copy.load().etag == questionnaire_etag(document(2))
    assert fetch().status == "not_modified"


def test_404_no_questionnaire_keeps_the_local_one_and_is_no_error(central, copy, fetch):
    central.questionnaire_script.append(Reply(500, body=b'{"error": "internal"}'))
    assert fetch().status == "failed"

    outcome = fetch()  # central.questionnaire is None: nothing published for this location

    assert outcome.status == "none_published"
    assert fetch.fetcher.last_error is None  # the earlier failure is cleared too
    assert not copy.path.exists()
    assert fetch.fetcher.heartbeat_fields()["questionnaire_error"] is None


# --------------------------------------------------------------------------- bad downloads


def bad_toml_syntax():
    return document(2, text=toml(2).replace('type = "grade"', 'type = "grade', 1))


def bad_schema():
    return document(2, text=toml(2).replace("faces = 5", "faces = 4", 1))


def id_mismatch():
    return document(2, text=toml(2, qid="andere-lijst"))


def version_mismatch():
    return document(2, text=toml(7))


BAD_DOCUMENTS = {
    "invalid TOML": (bad_toml_syntax, ["invalid questionnaire", "line "]),
    "schema error": (bad_schema, ["invalid questionnaire", "faces", "must be 3 or 5, got 4"]),
    "id mismatch": (id_mismatch, ["its TOML says id 'andere-lijst' version 2"]),
    "version mismatch": (version_mismatch, ["its TOML says id 'balie-standaard' version 7"]),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_a_bad_questionnaire_from_central_is_kept_out_and_reported(central, copy, fetch, case):
    make, expected = BAD_DOCUMENTS[case]
    central.questionnaire = document(2)
    fetch()
    good = files(copy)
    central.questionnaire = make()

    outcome = fetch()

    assert outcome.status == "failed"
    for text in expected:
        assert text in outcome.error
    assert fetch.fetcher.last_error == outcome.error
    assert fetch.fetcher.heartbeat_fields()["questionnaire_error"] == outcome.error
    assert files(copy) == good
    assert copy.load().questionnaire.version == 2
    assert [q.version for q in fetch.handed] == [2]  # the bad one never reaches the screen
    # the If-None-Match still names the good copy
    assert central.questionnaire_requests[-1].headers["If-None-Match"] == questionnaire_etag(
        document(2))


FAULTS = {
    "500": (Reply(500, body=b'{"error": "internal", "detail": "db down"}'),
            "download failed: HTTP 500: internal (db down)"),
    "truncated JSON": (Reply(200, {"ETag": '"x"'}, b'{"id": "balie-standaard", "vers'),
                       "not a questionnaire document"),
    "not JSON": (Reply(200, {}, b"<html>proxy error</html>"), "not a questionnaire document"),
    "cut off mid-body": ("truncate", "download failed"),
    "connection dropped": ("drop", "download failed"),
    "timeout": (Sleep(1.5), "ReadTimeout"),
    "401": (Reply(401, body=b'{"error": "unauthorized"}'),
            "central refused this terminal (HTTP 401: unauthorized)"),
    "403": (Reply(403, body=b'{"error": "revoked"}'), "central refused this terminal (HTTP 403"),
    "404 without no_questionnaire": (Reply(404, body=b'{"detail": "Not Found"}'),
                                     "download failed: HTTP 404"),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_a_failed_download_keeps_the_last_good_copy_and_sets_the_error(central, copy, case):
    action, expected = FAULTS[case]
    fetch = Fetch(central, copy, read_timeout_s=0.5)
    central.questionnaire = document(2)
    fetch()
    good = files(copy)
    central.questionnaire = document(3)  # a new version is published, but the download fails
    central.questionnaire_script.append(action)

    outcome = fetch()

    assert outcome.status == "failed"
    assert expected in outcome.error
    assert files(copy) == good
    assert [q.version for q in fetch.handed] == [2]
    # the next round gets it
    assert fetch().status == "stored"
    assert fetch.fetcher.last_error is None
    assert copy.load().questionnaire.version == 3


def test_a_reply_over_the_byte_cap_is_refused(central, copy, fetch, monkeypatch):
    central.questionnaire = document(2)
    monkeypatch.setattr(fetch_module, "MAX_DOCUMENT_BYTES", 1000)

    outcome = fetch()

    assert outcome.status == "failed"
    assert "reply larger than 1000 bytes" in outcome.error
    assert not copy.path.exists()


def test_other_content_under_a_version_already_known_is_refused(central, copy):
    in_use = load_questionnaire(SHIPPED_PATH)  # balie-standaard version 1 from the config file
    fetch = Fetch(central, copy, in_use=lambda: in_use)
    central.questionnaire = document(1, wording="Een andere vraag onder hetzelfde nummer")

    outcome = fetch()

    assert outcome.status == "failed"
    assert "must not change" in outcome.error
    assert not copy.path.exists() and fetch.handed == []
    # the same content under the same version is fine (central publishing the shipped file)
    central.questionnaire = document(1)
    assert fetch().status == "stored"


# --------------------------------------------------------------------------- atomic storage


def test_a_crash_mid_write_leaves_the_old_copy_intact(central, copy, fetch, monkeypatch):
    central.questionnaire = document(2)
    fetch()
    good = files(copy)
    central.questionnaire = document(3)

    def no_rename(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", no_rename)
    outcome = fetch()
    monkeypatch.undo()

    assert outcome.status == "failed"
    assert "cannot store" in outcome.error and "No space left on device" in outcome.error
    assert files(copy) == good
    assert sorted(p.name for p in copy.folder.iterdir()) == sorted([TOML_FILE, META_FILE])
    assert fetch.fetcher.stored.questionnaire.version == 2
    assert fetch().status == "stored"  # room again: the next round stores it
    assert copy.load().questionnaire.version == 3


def test_a_crash_between_the_two_files_makes_the_next_fetch_download_again(
        central, copy, fetch, monkeypatch):
    central.questionnaire = document(2)
    fetch()
    central.questionnaire = document(3)
    real_replace = os.replace
    calls = []

    def toml_only(src, dst):  # the TOML is renamed into place, the power fails before the JSON
        calls.append(dst)
        if len(calls) > 1:
            raise OSError(errno.EIO, "power cut")
        real_replace(src, dst)

    monkeypatch.setattr(store_module.os, "replace", toml_only)
    fetch()
    monkeypatch.undo()

    stored = copy.load()
    assert stored.questionnaire.version == 3  # the new TOML is complete and valid
    assert stored.etag is None  # the JSON still describes version 2: its ETag is not trusted
    again = Fetch(central, copy)
    assert again().status == "stored"
    assert "If-None-Match" not in central.questionnaire_requests[-1].headers
    assert copy.load().etag == questionnaire_etag(document(3))


def test_a_damaged_stored_copy_is_downloaded_again(central, copy, fetch):
    central.questionnaire = document(2)
    fetch()
    copy.path.write_text("this is = not [ a questionnaire", encoding="utf-8")

    again = Fetch(central, copy)

    assert again().status == "stored"
    assert "If-None-Match" not in central.questionnaire_requests[-1].headers
    assert copy.load().questionnaire.version == 2


# --------------------------------------------------------------------------- a real sync round


@pytest.fixture
def buf(tmp_path):
    clock = FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")
    b = Buffer.open(tmp_path / "buffer.sqlite3", time_source=clock)
    yield b
    b.close()


def make_uploader(buf, central):
    state = DeviceState(central_url=central.url, device_id="dev-1", token=TOKEN)
    fake = FakeTime()
    settings = SyncSettings(connect_timeout_s=2.0, read_timeout_s=2.0, deadline_s=60.0)
    return Uploader(settings, buf, state, clock=FakeTimeSource(wall=1_700_000_100.0, mono=200.0,
                                                               boot_id="boot-a"),
                    sleep=fake.sleep, monotonic=fake.monotonic, rng=random.Random(1),
                    clock_synced=lambda: True)


def test_every_round_fetches_and_its_heartbeat_carries_the_questionnaire_and_error(
        central, buf, tmp_path):
    fill_buffer(buf, 2)
    uploader = make_uploader(buf, central)
    in_use = [load_questionnaire(SHIPPED_PATH)]
    copy = CentralCopy(tmp_path)
    handed = []
    fetcher = attach_fetcher(uploader, copy, in_use=lambda: in_use[0], on_new=handed.append)
    central.questionnaire = document(2, text=toml(2).replace("faces = 5", "faces = 4", 1))

    report = uploader.run_once()

    assert report.ok and report.accepted == 2
    paths = [r.path for r in central.received]
    assert paths.index(QUESTIONNAIRE_PATH) < paths.index("/api/v1/heartbeat")
    beat = central.heartbeats[-1]
    assert beat.questionnaire == QuestionnaireRef(id="balie-standaard", version=1)
    assert "must be 3 or 5, got 4" in beat.questionnaire_error
    assert report.last_error is None  # the questionnaire's trouble is its own field
    assert handed == [] and not copy.path.exists()

    central.questionnaire = document(2)  # fixed on central
    uploader.run_once()
    assert [q.version for q in handed] == [2]
    beat = central.heartbeats[-1]
    assert beat.questionnaire_error is None
    assert beat.questionnaire.version == 1  # still asking version 1 until the UI switches
    in_use[0] = handed[0]
    uploader.run_once()
    assert central.heartbeats[-1].questionnaire == QuestionnaireRef(id="balie-standaard", version=2)
    assert central.questionnaire_requests[-1].headers["If-None-Match"] == questionnaire_etag(
        document(2))
    assert fetcher.last_outcome.status == "not_modified"


def test_a_round_refused_by_central_does_not_fetch(central, buf, tmp_path):
    fill_buffer(buf, 1)
    state = DeviceState(central_url=central.url, device_id="dev-1", token="wrong-token-9")
    uploader = Uploader(SyncSettings(), buf, state, clock_synced=lambda: True)
    attach_fetcher(uploader, CentralCopy(tmp_path))
    central.questionnaire = document(2)

    assert uploader.run_once().stopped_reason == "auth"
    assert central.questionnaire_requests == []


def test_central_s_questionnaire_gets_the_same_errors_as_a_local_file(central, copy, tmp_path):
    text = toml(2).replace("faces = 5", "faces = 4", 1)
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QuestionnaireError) as local:
        load_questionnaire(path)
    central.questionnaire = document(2, text=text)

    error = Fetch(central, copy)().error

    assert error.splitlines()[1:] == str(local.value).splitlines()[1:]  # same problems, other name
    assert error.splitlines()[0] == "central questionnaire 'balie-standaard' version 2: invalid questionnaire"


def test_a_round_that_central_failed_until_its_deadline_leaves_the_time_to_the_heartbeat(
        central, buf, tmp_path):
    fill_buffer(buf, 1)
    uploader = make_uploader(buf, central)
    fetcher = attach_fetcher(uploader, CentralCopy(tmp_path))
    central.questionnaire = document(2)
    central.script.extend([Reply(500, body=b'{"error": "internal"}')] * 200)

    report = uploader.run_once(deadline=30.0)

    assert report.stopped_reason == "deadline" and "HTTP 500" in report.last_error
    assert central.questionnaire_requests == []
    assert report.heartbeat_sent
    assert fetcher.describe_last().startswith("not fetched this round")
    central.script.clear()
    uploader.run_once()  # central answers again: the fetch is back
    assert fetcher.last_outcome.status == "stored"
