"""scripts/install-kiosk and scripts/install-central: valid bash, and a dry run that lists every step.

They cannot be run for real here (no systemd as PID 1, no Raspberry Pi); the
dry run prints each command the real run would execute, and changes nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("install-kiosk", "install-central")


def dry_run(name: str) -> str:
    result = subprocess.run(["bash", str(ROOT / "scripts" / name), "--dry-run"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_script_is_valid_bash_and_executable(name):
    path = ROOT / "scripts" / name
    assert path.stat().st_mode & 0o111
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.parametrize("name", SCRIPTS)
def test_an_unknown_option_is_refused_with_a_hint(name):
    result = subprocess.run(["bash", str(ROOT / "scripts" / name), "--frobnicate"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr


def test_the_terminal_install_sets_up_user_groups_program_data_and_service():
    out = dry_run("install-kiosk")
    assert "usermod --append --groups video,render,input balie" in out
    assert "python3 -m venv /opt/balie/venv" in out or "/opt/balie/venv/bin/python" in out
    assert "install -d -o balie -g balie -m 0700 /var/lib/balie" in out
    assert "systemctl enable systemd-time-wait-sync.service" in out
    assert f"install -m 0644 {ROOT}/systemd/balie-kiosk.service" in out
    assert "systemctl enable balie-kiosk.service" in out
    assert "balie-kiosk enroll" in out and "set-pin" in out


def test_the_central_install_sets_up_database_settings_schema_and_service():
    out = dry_run("install-central")
    assert 'CREATE ROLE "balie-central" LOGIN' in out
    assert 'CREATE DATABASE balie OWNER "balie-central"' in out
    assert "balie-central db upgrade --config /etc/balie/central.toml" in out
    assert "systemctl enable --now balie-central.service" in out


def test_the_central_settings_the_install_writes_point_at_the_local_socket(tmp_path):
    """The sed in install-central, applied to the shipped file, gives a valid settings file."""
    from central.settings import load_settings

    script = (ROOT / "scripts" / "install-central").read_text()
    expression = next(line.strip() for line in script.splitlines()
                      if line.strip().startswith('sed "s|^# database_url'))
    expression = expression.split('"', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    expression = expression.replace("$USER_NAME", "balie-central").replace("$DATABASE", "balie")
    target = tmp_path / "central.toml"
    with open(target, "w") as out:
        subprocess.run(["sed", expression, str(ROOT / "config" / "central.toml")], stdout=out,
                       check=True)
    url = load_settings(target).database_url
    assert url.startswith("postgresql+psycopg://balie-central@/balie")
    assert "host=%2Fvar%2Frun%2Fpostgresql" in url
