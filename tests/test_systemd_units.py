"""The systemd units: hardening measured by systemd-analyze, and the settings the terminal relies on."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
#: Overall exposure (systemd-analyze's 0.0–10.0 scale) each unit must stay at or under.
MAX_EXPOSURE = {"balie-central.service": 2.0, "balie-kiosk.service": 2.0}


def analyze(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing (Debian package systemd)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_exposure_is_within_the_threshold(name):
    limit = MAX_EXPOSURE[name]
    result = analyze("security", "--offline=true", f"--threshold={int(limit * 10)}",
                     "--no-pager", str(UNITS / name))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= limit, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_units_verify_apart_from_the_install_path(name):
    result = analyze("verify", "--man=no", str(UNITS / name))
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "is not executable" not in line]
    assert problems == []


def test_the_terminal_unit_is_watched_restarted_and_on_the_console():
    service = unit("balie-kiosk.service")["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always"
    assert service["User"] == "balie"
    assert set(service["SupplementaryGroups"].split()) == {"video", "render", "input"}
    assert service["CapabilityBoundingSet"] == "" and service["NoNewPrivileges"] == "yes"
    assert "BALIE_DATA_DIR=/var/lib/balie" in service["Environment"]
    assert "balie-kiosk run" in service["ExecStart"] and "--windowed" not in service["ExecStart"]


def test_the_central_unit_runs_unprivileged_after_migrating():
    service = unit("balie-central.service")["Service"]
    assert service["User"] == "balie-central"
    assert "balie-central db upgrade" in service["ExecStartPre"]
    assert "balie-central serve" in service["ExecStart"]
    assert service["CapabilityBoundingSet"] == "" and service["PrivateUsers"] == "yes"


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_every_setting_says_why_on_the_line_above(name):
    lines = (UNITS / name).read_text().splitlines()
    unexplained = [line for before, line in zip([""] + lines, lines)
                   if re.match(r"^[A-Za-z]+=", line) and not before.startswith("#")]
    assert unexplained == []
