"""The copy of central's questionnaire on disk: which questionnaire a terminal starts with, and what status and sync say."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from kiosk import cli
from kiosk.paths import config_dir
from kiosk.questionnaire import load_questionnaire, parse_questionnaire
from kiosk.questionnaire_store import CentralCopy, choose_questionnaire
from kiosk.settings import load_settings
from sync.protocol import QuestionnaireDocument
from tests.sync_test_server import ScriptedCentral, questionnaire_etag

TOKEN = "secret-token-1"
SHIPPED_PATH = config_dir() / "questionnaires" / "standaard.toml"
VERSION_2 = SHIPPED_PATH.read_text(encoding="utf-8").replace("version = 1", "version = 2", 1)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("BALIE_DATA_DIR", "BALIE_KIOSK_CONFIG", "BALIE_RESOURCE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config_questionnaire():
    return load_questionnaire(SHIPPED_PATH)


def store_version_2(folder) -> CentralCopy:
    copy = CentralCopy(folder)
    copy.save(VERSION_2, parse_questionnaire(VERSION_2), etag='"abc"', fetched_at=1.0)
    return copy


def test_a_valid_stored_copy_from_central_is_preferred_over_the_config_file(
        tmp_path, config_questionnaire):
    copy = store_version_2(tmp_path)

    in_use = choose_questionnaire(config_questionnaire, copy)

    assert (in_use.source, in_use.questionnaire.version) == ("central", 2)
    assert in_use.stored.etag == '"abc"'
    for path in (copy.path, copy.meta_path):  # no secrets in them; writable by the kiosk only
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_without_a_stored_copy_the_config_file_s_questionnaire_is_used(
        tmp_path, config_questionnaire):
    in_use = choose_questionnaire(config_questionnaire, CentralCopy(tmp_path))
    assert (in_use.source, in_use.questionnaire) == ("config", config_questionnaire)
    assert list(tmp_path.iterdir()) == []  # looking creates nothing


@pytest.mark.parametrize("damage", ["invalid", "not utf-8", "empty"])
def test_a_damaged_stored_copy_is_ignored_with_a_warning(
        tmp_path, config_questionnaire, caplog, damage):
    copy = store_version_2(tmp_path)
    copy.path.write_bytes({"invalid": VERSION_2.replace("faces = 5", "faces = 4", 1).encode(),
                           "not utf-8": b"\xff\xfe id = 1",
                           "empty": b""}[damage])

    with caplog.at_level(logging.WARNING, logger="kiosk.questionnaire_store"):
        in_use = choose_questionnaire(config_questionnaire, copy)

    assert (in_use.source, in_use.questionnaire) == ("config", config_questionnaire)
    assert str(copy.path) in caplog.text
    assert copy.path.exists()  # left for the next fetch to replace, never deleted


def test_a_damaged_meta_file_only_costs_the_etag(tmp_path, config_questionnaire):
    copy = store_version_2(tmp_path)
    copy.meta_path.write_text("{not json", encoding="utf-8")

    stored = copy.load()

    assert stored.questionnaire.version == 2 and stored.etag is None


def test_run_and_status_use_the_same_choice(tmp_path):
    settings = load_settings(None)
    assert cli._questionnaire_in_use(settings, tmp_path).source == "config"
    store_version_2(tmp_path)
    in_use = cli._questionnaire_in_use(settings, tmp_path)
    assert (in_use.source, in_use.questionnaire.version) == ("central", 2)


def test_status_says_which_questionnaire_is_in_use_and_where_it_came_from(tmp_path, capsys):
    assert cli.main(["status", "--data-dir", str(tmp_path)]) == 0
    assert "Questionnaire: balie-standaard version 1 (from config)" in capsys.readouterr().out

    store_version_2(tmp_path)

    assert cli.main(["status", "--data-dir", str(tmp_path)]) == 0
    assert "Questionnaire: balie-standaard version 2 (from central)" in capsys.readouterr().out
    assert cli.main(["status", "--json", "--data-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questionnaire"] == {"id": "balie-standaard", "version": 2, "source": "central"}


def test_status_with_a_damaged_stored_copy_reports_the_config_one(tmp_path, capsys):
    copy = store_version_2(tmp_path)
    copy.path.write_text("version = [", encoding="utf-8")

    assert cli.main(["status", "--json", "--data-dir", str(tmp_path)]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["questionnaire"]["source"] == "config"


def test_balie_kiosk_sync_fetches_and_stores_the_questionnaire(tmp_path, capsys):
    with ScriptedCentral(token=TOKEN) as central:
        cli.main(["enroll", central.url, TOKEN, "--device-id", "dev-1", "--data-dir", str(tmp_path)])
        central.questionnaire = QuestionnaireDocument(id="balie-standaard", version=2,
                                                      toml=VERSION_2)
        capsys.readouterr()

        assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert ("Questionnaire: balie-standaard version 2 fetched from central and stored"
                in out)
        assert central.heartbeats[-1].questionnaire.version == 1  # asked until the next start/visit
        assert CentralCopy(tmp_path).load().etag == questionnaire_etag(central.questionnaire)

        assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 0
        assert "Questionnaire: balie-standaard version 2, unchanged" in capsys.readouterr().out
        assert central.heartbeats[-1].questionnaire.version == 2  # what `run` starts with now
        assert cli.main(["status", "--data-dir", str(tmp_path)]) == 0
        assert "version 2 (from central)" in capsys.readouterr().out
