"""``balie-kiosk status``: counts from a real buffer file, config errors, a running terminal."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.flow import VisitorFlow
from kiosk.questionnaire import load_questionnaire
from kiosk.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
WALL = 1_700_000_000.0
WALL_ISO = "2023-11-14T22:13:20+00:00"
# The console script installed next to the interpreter that runs the tests (the venv's).
CONSOLE_SCRIPT = Path(sys.executable).parent / "balie-kiosk"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No data folder or config from the developer's shell leaks into a test."""
    for name in ("BALIE_DATA_DIR", "BALIE_KIOSK_CONFIG", "BALIE_RESOURCE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def shipped():
    return load_questionnaire(load_settings(None).questionnaire_path)


def fill(data_dir: Path, questionnaire, *, completed: int = 1, open_: int = 0,
         wall: float = WALL) -> Buffer:
    """A buffer in ``data_dir`` with ``completed`` visits of 3 answers and ``open_`` one-tap visits.

    Returns the buffer still open (the caller closes it).
    """
    clock = FakeTimeSource(wall=wall, mono=100.0)
    buf = Buffer.open(data_dir / cli.BUFFER_FILE, time_source=clock)
    flow = VisitorFlow(questionnaire, buf, location_id="balie-1", language="nl",
                       rapid_repeat_s=20, monotonic=lambda: clock.mono)
    for _ in range(completed):
        clock.advance(60)
        flow.answer(8)
        flow.answer(4)
        flow.answer(5)
        flow.abandon("idle")
    for _ in range(open_):
        clock.advance(60)
        flow.answer(6)
        flow = VisitorFlow(questionnaire, buf, location_id="balie-1", language="nl",
                           rapid_repeat_s=20, monotonic=lambda: clock.mono)
    return buf


def status_json(capsys, *args: str) -> dict:
    assert cli.main(["status", "--json", *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def run_cli(args: list[str], env: dict[str, str] | None = None, *, module: bool = False):
    base = {k: v for k, v in os.environ.items()
            if k not in ("BALIE_DATA_DIR", "BALIE_KIOSK_CONFIG", "BALIE_RESOURCE_DIR")}
    command = [sys.executable, "-m", "kiosk"] if module else [str(CONSOLE_SCRIPT)]
    return subprocess.run(command + args, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def fingerprint(db: Path) -> dict[str, str]:
    """Hashes of the database file and its WAL: any write by status would change one."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (db, Path(f"{db}-wal")) if p.exists()}


# --------------------------------------------------------------------------- counts


def test_status_json_reports_the_counts_questionnaire_and_buffer_path(tmp_path, shipped, capsys):
    data = tmp_path / "data"
    fill(data, shipped, completed=2, open_=1).close()

    report = status_json(capsys, "--data-dir", str(data))

    assert report["responses"] == {"total": 3, "unsent": 3, "sent": 0, "quarantined": 0,
                                   "open": 1}
    assert report["answers"] == {"total": 2 * 3 + 1}
    assert report["questionnaire"] == {"id": shipped.id, "version": shipped.version,
                                       "source": "config"}
    assert report["buffer"]["path"] == str(data / "buffer.sqlite3")
    assert report["location"] == {"id": "balie-1", "name": "Balie 1"}
    assert report["last_response_at"] == "2023-11-14T22:16:20+00:00"  # third visit: 3 min on
    assert report["note"] is None


def test_status_text_output_is_readable(tmp_path, shipped, capsys):
    data = tmp_path / "data"
    fill(data, shipped, completed=1, open_=1).close()

    assert cli.main(["status", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out.splitlines()

    assert out == [
        f"Buffer:        {data / 'buffer.sqlite3'}",
        "Location:      Balie 1 (balie-1)",
        "Questionnaire: balie-standaard version 1 (from config)",
        "Responses:     2 total, 2 unsent, 0 sent, 0 quarantined, 1 in progress",
        "Answers:       4",
        "Last response: 2023-11-14T22:15:20+00:00",
        "Opening hours: not set (always open)",
        "Admin PIN:     not set: the admin screen cannot be opened (set one with "
        "`balie-kiosk set-pin`)",
    ]


def test_the_console_script_prints_status_json(tmp_path, shipped):
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} missing: install the package (pip install -e .)"
    data = tmp_path / "data"
    fill(data, shipped, completed=1).close()

    result = run_cli(["status", "--json", "--data-dir", str(data)])

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["responses"]["total"], report["answers"]["total"]) == (1, 3)
    assert report["questionnaire"]["id"] == "balie-standaard"


def test_python_dash_m_kiosk_runs_the_same_command_line(tmp_path, shipped):
    data = tmp_path / "data"
    fill(data, shipped, completed=1).close()

    result = run_cli(["status", "--json"], {"BALIE_DATA_DIR": str(data)}, module=True)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["buffer"]["path"] == str(data / "buffer.sqlite3")


# --------------------------------------------------------------------------- where the buffer is


def test_status_reads_the_buffer_in_BALIE_DATA_DIR(tmp_path, shipped, capsys, monkeypatch):
    data = tmp_path / "from-env"
    fill(data, shipped, completed=2).close()
    monkeypatch.setenv("BALIE_DATA_DIR", str(data))

    report = status_json(capsys)

    assert report["buffer"]["path"] == str(data / "buffer.sqlite3")
    assert report["responses"]["total"] == 2


def test_data_dir_option_wins_over_BALIE_DATA_DIR(tmp_path, shipped, capsys, monkeypatch):
    fill(tmp_path / "env", shipped, completed=2).close()
    fill(tmp_path / "flag", shipped, completed=1).close()
    monkeypatch.setenv("BALIE_DATA_DIR", str(tmp_path / "env"))

    report = status_json(capsys, "--data-dir", str(tmp_path / "flag"))

    assert report["buffer"]["path"] == str(tmp_path / "flag" / "buffer.sqlite3")
    assert report["responses"]["total"] == 1


def test_status_uses_the_config_files_location_and_data_dir(tmp_path, shipped, capsys):
    fill(tmp_path / "configured", shipped, completed=1).close()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'questionnaire = "{load_settings(None).questionnaire_path}"\n'
        '[location]\nid = "stadhuis-2"\nname = "Stadhuis balie 2"\n'
        '[buffer]\ndata_dir = "configured"\n', encoding="utf-8")

    report = status_json(capsys, "--config", str(config))

    assert report["location"] == {"id": "stadhuis-2", "name": "Stadhuis balie 2"}
    assert report["buffer"]["path"] == str(tmp_path / "configured" / "buffer.sqlite3")
    assert report["responses"]["total"] == 1


# --------------------------------------------------------------------------- no buffer yet


def test_status_on_a_data_dir_without_a_buffer_reports_zero_and_says_so(tmp_path, capsys):
    data = tmp_path / "fresh"

    report = status_json(capsys, "--data-dir", str(data))

    assert report["responses"] == {"total": 0, "unsent": 0, "sent": 0, "quarantined": 0,
                                   "open": 0}
    assert report["answers"] == {"total": 0}
    assert report["last_response_at"] is None
    assert report["buffer"]["path"] == str(data / "buffer.sqlite3")
    assert "no buffer yet" in report["note"]
    assert not data.exists()  # status looks, it creates nothing


def test_status_text_without_a_buffer_exits_0_with_a_note(tmp_path, capsys):
    data = tmp_path / "empty"
    data.mkdir()

    assert cli.main(["status", "--data-dir", str(data)]) == 0
    captured = capsys.readouterr()

    assert "Responses:     0 total" in captured.out
    assert "Note:          no buffer yet" in captured.out
    assert captured.err == ""
    assert list(data.iterdir()) == []


# --------------------------------------------------------------------------- broken config


def test_a_config_with_a_syntax_error_is_named_with_exit_code_2(tmp_path, capsys):
    config = tmp_path / "kiosk.toml"
    config.write_text("[location\nid = 'x'\n", encoding="utf-8")

    code = cli.main(["status", "--config", str(config), "--data-dir", str(tmp_path)])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert f"balie-kiosk: {config}: invalid configuration" in captured.err
    assert "line 1" in captured.err


def test_a_config_with_a_bad_value_from_the_environment_is_named_without_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[timeouts]\nidle_reset_s = 1\n", encoding="utf-8")

    result = run_cli(["status", "--data-dir", str(tmp_path)], {"BALIE_KIOSK_CONFIG": str(config)})

    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "idle_reset_s" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.toml"

    result = run_cli(["status", "--config", str(missing), "--data-dir", str(tmp_path)])

    assert result.returncode == 2
    assert f"{missing}: invalid configuration" in result.stderr
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- a running terminal


def test_status_next_to_a_running_terminal_leaves_its_open_response_open(
        tmp_path, shipped, capsys):
    data = tmp_path / "data"
    db = data / "buffer.sqlite3"
    clock = FakeTimeSource(wall=WALL, mono=100.0)
    terminal = Buffer.open(db, time_source=clock)
    try:
        flow = VisitorFlow(shipped, terminal, location_id="balie-1", language="nl",
                           rapid_repeat_s=20, monotonic=lambda: clock.mono)
        flow.answer(9)  # a visitor is mid-way
        before = fingerprint(db)
        assert f"{db.name}-wal" in before

        in_process = status_json(capsys, "--data-dir", str(data))
        separate = run_cli(["status", "--json", "--data-dir", str(data)])

        assert separate.returncode == 0, separate.stderr
        for report in (in_process, json.loads(separate.stdout)):
            assert report["responses"]["open"] == 1
            assert report["responses"]["total"] == 1
            assert report["answers"]["total"] == 1
        # nothing written, nothing repaired, the lock still the terminal's
        assert fingerprint(db) == before
        assert terminal.is_owner
        con = sqlite3.connect(str(db))
        try:
            assert con.execute("SELECT closed_at, end_reason FROM responses").fetchall() == [
                (None, None)]
            assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
        finally:
            con.close()
        # and the visitor carries on in the same response
        flow.answer(4)
        flow.abandon("idle")
        stats = terminal.stats()
        assert (stats.responses_total, stats.responses_open, stats.answers_total) == (1, 0, 2)
    finally:
        terminal.close()
