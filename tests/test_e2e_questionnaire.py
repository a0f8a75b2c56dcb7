"""A questionnaire from publication on central to the terminal, through both command lines.

Real central on a loopback port (SQLite and PostgreSQL); the terminal side is
``balie-kiosk enroll / sync / status`` on a real data folder. Publish version 2
→ the terminal's sync stores it and ``status`` says it starts with it; the next
sync gets 304; version 3 replaces it; a retired version is no longer served;
central's device list shows what the terminal asks.
"""

from __future__ import annotations

import json

import pytest

from central.cli import main as central_main
from kiosk.cli import main as kiosk_main
from tests.central_fixtures import central_on_backend, enrol_device, questionnaire_file

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory):
    with central_on_backend(request, tmp_path_factory) as running:
        yield running


def central_config(settings, folder):
    path = folder / "central.toml"
    path.write_text(f'database_url = "{settings.database_url}"\n', encoding="utf-8")
    return str(path)


def kiosk(capsys, *args):
    code = kiosk_main(list(args))
    out = capsys.readouterr().out
    return code, out


def test_a_published_questionnaire_reaches_the_terminal_once_and_a_newer_one_replaces_it(
        central, tmp_path, capsys):
    settings, base_url, _engine = central
    config = central_config(settings, tmp_path)
    location = f"loc-{tmp_path.name[-12:]}"
    device_id, token = enrol_device(settings, location=location)
    data = str(tmp_path / "terminal")
    assert kiosk(capsys, "enroll", base_url, f"{device_id}:{token}", "--data-dir", data)[0] == 0

    v2 = questionnaire_file(tmp_path, 2, title="Hoe was uw bezoek vandaag?")
    assert central_main(["questionnaire", "publish", str(v2), "--location", location,
                         "--config", config]) == 0
    capsys.readouterr()

    code, out = kiosk(capsys, "sync", "--data-dir", data)
    assert code == 0, out
    assert "Questionnaire:" in out and "version 2" in out
    code, out = kiosk(capsys, "status", "--json", "--data-dir", data)
    status = json.loads(out)
    assert status["questionnaire"]["version"] == 2
    assert status["questionnaire"]["source"] == "central"

    code, out = kiosk(capsys, "sync", "--data-dir", data)  # nothing new: 304
    assert code == 0 and "version 2, unchanged" in out, out

    v3 = questionnaire_file(tmp_path, 3, title="Hoe was uw bezoek aan de balie?")
    assert central_main(["questionnaire", "publish", str(v3), "--location", location,
                         "--config", config]) == 0
    kiosk(capsys, "sync", "--data-dir", data)
    status = json.loads(kiosk(capsys, "status", "--json", "--data-dir", data)[1])
    assert status["questionnaire"]["version"] == 3

    assert central_main(["device", "list", "--config", config]) == 0
    listing = capsys.readouterr().out
    assert device_id in listing and "balie-standaard" in listing


def test_a_questionnaire_central_refuses_never_reaches_a_terminal(central, tmp_path, capsys):
    settings, base_url, _engine = central
    config = central_config(settings, tmp_path)
    location = f"bad-{tmp_path.name[-12:]}"
    device_id, token = enrol_device(settings, location=location)
    data = str(tmp_path / "terminal")
    kiosk(capsys, "enroll", base_url, f"{device_id}:{token}", "--data-dir", data)
    broken = tmp_path / "broken.toml"
    broken.write_text(questionnaire_file(tmp_path, 4).read_text(encoding="utf-8")
                      .replace("faces = 5", "faces = 4", 1), encoding="utf-8")
    assert central_main(["questionnaire", "publish", str(broken), "--location", location,
                         "--config", config]) == 2
    err = capsys.readouterr().err
    assert "faces" in err and "must be 3 or 5" in err
    kiosk(capsys, "sync", "--data-dir", data)
    status = json.loads(kiosk(capsys, "status", "--json", "--data-dir", data)[1])
    assert status["questionnaire"]["source"] == "config"
    assert status["questionnaire"]["version"] == 1
