"""``balie-kiosk enroll`` and ``balie-kiosk sync``: files, output and exit codes."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.buffer import Buffer
from kiosk.state import DeviceStateStore
from tests.sync_test_server import Reply, ScriptedCentral, fill_buffer

TOKEN = "secret-token-1"
CONSOLE_SCRIPT = Path(sys.executable).parent / "balie-kiosk"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("BALIE_DATA_DIR", "BALIE_KIOSK_CONFIG", "BALIE_RESOURCE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def central():
    with ScriptedCentral(token=TOKEN) as c:
        yield c


def with_answers(data_dir: Path, n: int) -> list[str]:
    with Buffer.open(data_dir / cli.BUFFER_FILE) as buf:
        return fill_buffer(buf, n)


def test_enroll_with_device_id_writes_a_0600_state_file(tmp_path, capsys):
    code = cli.main(["enroll", "https://balie.example.nl", TOKEN, "--device-id", "dev-1",
                     "--data-dir", str(tmp_path)])
    assert code == 0
    path = tmp_path / "device-state.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state = DeviceStateStore(tmp_path).load()
    assert (state.central_url, state.device_id, state.token) == (
        "https://balie.example.nl", "dev-1", TOKEN)
    out = capsys.readouterr().out
    assert "dev-1" in out and TOKEN not in out


def test_enroll_accepts_id_colon_token_as_printed_by_central(tmp_path):
    assert cli.main(["enroll", "http://10.0.0.5:8000", f"dev-7:{TOKEN}",
                     "--data-dir", str(tmp_path)]) == 0
    state = DeviceStateStore(tmp_path).load()
    assert (state.device_id, state.token) == ("dev-7", TOKEN)


def test_enroll_reads_the_token_from_stdin_when_given_a_dash(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"dev-8:{TOKEN}\n"))
    assert cli.main(["enroll", "https://x.example", "-", "--data-dir", str(tmp_path)]) == 0
    assert DeviceStateStore(tmp_path).load().device_id == "dev-8"


def test_enroll_without_a_device_id_is_a_clear_config_error(tmp_path, capsys):
    assert cli.main(["enroll", "https://x.example", TOKEN, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--device-id" in err and "Traceback" not in err and TOKEN not in err
    assert not (tmp_path / "device-state.json").exists()


def test_sync_sends_and_prints_what_happened_exit_0(tmp_path, central, capsys):
    with_answers(tmp_path, 3)
    cli.main(["enroll", central.url, TOKEN, "--device-id", "dev-1", "--data-dir", str(tmp_path)])
    capsys.readouterr()
    assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Accepted:      3" in out and "Duplicate:     0" in out and "Rejected:      0" in out
    assert "Batches:       1" in out and "Stopped:       done" in out
    assert "Still to send: 0" in out and "Last error:    none" in out
    assert len(central.stored) == 3 and len(central.heartbeats) == 1


def test_sync_refused_by_central_prints_the_error_and_exits_1(tmp_path, central, capsys):
    with_answers(tmp_path, 2)
    cli.main(["enroll", central.url, "wrong-token-99", "--device-id", "dev-1",
              "--data-dir", str(tmp_path)])
    capsys.readouterr()
    assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Stopped:       auth" in out and "HTTP 401" in out and "Still to send: 2" in out
    assert "wrong-token-99" not in out


def test_sync_with_central_unreachable_exits_1_without_a_traceback(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with_answers(tmp_path, 1)
    env = dict(os.environ, BALIE_DATA_DIR=str(tmp_path))
    subprocess.run([str(CONSOLE_SCRIPT), "enroll", f"http://127.0.0.1:{port}", TOKEN,
                    "--device-id", "dev-1"], env=env, check=True, capture_output=True)
    done = subprocess.run([str(CONSOLE_SCRIPT), "sync", "--deadline", "2"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "ConnectionError" in done.stdout and "Still to send: 1" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_sync_on_a_terminal_never_enrolled_is_a_config_error_exit_2(tmp_path, capsys):
    assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not enrolled" in err and "balie-kiosk enroll" in err


def test_sync_with_a_damaged_state_file_exits_2(tmp_path, capsys):
    (tmp_path / "device-state.json").write_text("{oops")
    assert cli.main(["sync", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err


def test_sync_with_a_broken_config_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text("[sync]\ninterval_s = -1\n")
    assert cli.main(["sync", "--config", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "sync.interval_s" in capsys.readouterr().err


def test_a_server_error_that_lasts_the_whole_round_exits_1(tmp_path, central, capsys):
    with_answers(tmp_path, 1)
    central.script.extend([Reply(500)] * 100)
    cli.main(["enroll", central.url, TOKEN, "--device-id", "dev-1", "--data-dir", str(tmp_path)])
    assert cli.main(["sync", "--data-dir", str(tmp_path), "--deadline", "1"]) == 1
    out = capsys.readouterr().out
    assert "HTTP 500" in out and "Still to send: 1" in out
