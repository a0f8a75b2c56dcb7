"""``balie-central``: db upgrade, serve, device add/list/revoke, export — and clear errors, no tracebacks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from central.cli import main
from central.db import make_engine
from central.models import Device
from sync.protocol import BATCHES_PATH, HEALTH_PATH, HEARTBEAT_PATH
from tests.central_fixtures import central_settings, clock, make_batch, make_record, run_central

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def database(tmp_path, monkeypatch):
    """A fresh SQLite file named through BALIE_DATABASE_URL, as an operator would."""
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    monkeypatch.setenv("BALIE_DATABASE_URL", url)
    monkeypatch.delenv("BALIE_CENTRAL_CONFIG", raising=False)
    return url


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def add_device(capsys, name="Balie 1", location="stadhuis"):
    status, out, _ = run(capsys, "device", "add", "--name", name, "--location", location)
    assert status == 0
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    return lines["device id"].strip(), lines["token"].strip()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def central_cli(*argv, env_url, timeout=30):
    env = {**os.environ, "BALIE_DATABASE_URL": env_url}
    env.pop("BALIE_CENTRAL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "central", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_device_add_prints_the_token_once_and_stores_only_its_hash(database, capsys):
    assert run(capsys, "db", "upgrade")[0] == 0
    device_id, token = add_device(capsys)
    assert device_id.startswith("dev-") and len(device_id) == 12
    assert len(token) >= 43
    engine = make_engine(database)
    with engine.connect() as conn:
        row = conn.execute(select(Device.__table__)).one()
    engine.dispose()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in [str(value) for value in row]
    status, out, _ = run(capsys, "device", "list", "--json")
    assert token not in out and row.token_hash not in out


def test_device_list_shows_heartbeat_sequence_gaps_and_clock(database, capsys):
    run(capsys, "db", "upgrade")
    device_id, token = add_device(capsys)
    settings = central_settings(database)
    headers = {"Authorization": f"Bearer {token}"}
    with run_central(settings) as base_url:
        records = [make_record(seq) for seq in (1, 2, 5, 9)]
        assert requests.post(base_url + BATCHES_PATH, json=make_batch(device_id, records),
                             headers=headers, timeout=10).status_code == 200
        beat = {"device_id": device_id, "app_version": "0.2.0", "backlog": 40, "quarantined": 2,
                "last_error": "central unreachable", "disk_free_bytes": 5_000_000,
                "clock": clock(time.time() - 3600, 12.0), "clock_synced": True}
        assert requests.post(base_url + HEARTBEAT_PATH, json=beat, headers=headers,
                             timeout=10).status_code == 200
    status, out, _ = run(capsys, "device", "list", "--json")
    [shown] = json.loads(out)
    assert shown["id"] == device_id and shown["app_version"] == "0.2.0"
    assert (shown["backlog"], shown["quarantined"], shown["last_error"]) == (40, 2, "central unreachable")
    assert (shown["highest_seq"], shown["sequence_gaps"]) == (9, 5)  # 3, 4, 6, 7, 8 missing
    assert shown["clock"] == "synced"
    assert shown["clock_skew_s"] == pytest.approx(-3600, abs=5)
    assert shown["revoked"] is False and shown["last_seen_at"] is not None
    status, out, _ = run(capsys, "device", "list")
    assert status == 0 and device_id in out and "synced (-3600" in out and "active" in out


def test_device_revoke_marks_it_revoked_and_unknown_ids_are_a_clear_error(database, capsys):
    run(capsys, "db", "upgrade")
    device_id, _ = add_device(capsys)
    assert run(capsys, "device", "revoke", device_id)[:2] == (0, f"{device_id}: revoked\n")
    assert json.loads(run(capsys, "device", "list", "--json")[1])[0]["revoked"] is True
    status, out, err = run(capsys, "device", "revoke", "dev-00000000")
    assert status == 2 and "no device 'dev-00000000' is enrolled" in err and "Traceback" not in err


def test_export_writes_one_row_per_answer_rounded_down_to_the_hour(database, capsys, tmp_path):
    run(capsys, "db", "upgrade")
    device_id, token = add_device(capsys)
    days = {"2024-03-04T23:59:58": 1, "2024-03-05T10:37:12": 2, "2024-03-06T00:00:00": 3}
    records = [make_record(seq, values=(8, "prima"), at=clock(utc(moment), 10.0, "boot-then"),
                           suspect=(seq == 2), end_reason="idle" if seq == 3 else "completed")
               for moment, seq in days.items()]
    with run_central(central_settings(database)) as base_url:
        reply = requests.post(base_url + BATCHES_PATH, timeout=10,
                              json=make_batch(device_id, records, sent=clock(1.0, 5.0, "boot-now")),
                              headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200
    out_file = tmp_path / "answers.csv"
    status, _, err = run(capsys, "export", "--format", "csv", "--out", str(out_file))
    assert status == 0 and "wrote 6 answer row(s)" in err
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["response_id", "device_id", "location_id", "questionnaire_id",
                             "questionnaire_version", "question_id", "aspect", "value", "language",
                             "time", "time_verified", "suspect", "end_reason"]
    second = [r for r in rows if r["response_id"] == records[1]["id"]]
    assert [(r["question_id"], r["value"], r["time"]) for r in second] == [
        ("q1", "8", "2024-03-05T10:00:00Z"), ("q2", "prima", "2024-03-05T10:00:00Z")]
    assert second[0]["device_id"] == device_id
    assert (second[0]["location_id"], second[0]["questionnaire_id"], second[0]["questionnaire_version"],
            second[0]["aspect"], second[0]["language"]) == ("balie-1", "standaard", "1", "totaal", "nl")
    assert (second[0]["time_verified"], second[0]["suspect"], second[0]["end_reason"]) == (
        "false", "true", "completed")

    status, _, _ = run(capsys, "export", "--out", str(out_file), "--from", "2024-03-05",
                       "--to", "2024-03-05", "--exact-time")
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert {r["response_id"] for r in rows} == {records[1]["id"]}
    assert [r["time"] for r in rows] == ["2024-03-05T10:37:12.000Z", "2024-03-05T10:37:13.000Z"]

    status, _, _ = run(capsys, "export", "--out", str(out_file), "--from", "2024-03-06")
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert {r["response_id"] for r in rows} == {records[2]["id"]}
    assert rows[0]["end_reason"] == "idle"


def test_db_upgrade_then_serve_answers_healthz(database, tmp_path):
    assert central_cli("db", "upgrade", env_url=database).returncode == 0
    again = central_cli("db", "upgrade", env_url=database)
    assert again.returncode == 0 and "already at revision" in again.stdout
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "BALIE_DATABASE_URL": database}
    server = subprocess.Popen([sys.executable, "-m", "central", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=1)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        assert reply.status_code == 200 and reply.json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=10)


SERVE_GC_PROBE = """
import gc, sys, weakref
import uvicorn
from central.app import GC_YOUNG_THRESHOLD
from central.cli import main

def probe(app, **kwargs):   # instead of serving: the collector's state at that moment
    class Node:
        pass
    a, b = Node(), Node()
    a.other, b.other = b, a                 # a cycle only the collector can free
    collected = []
    weakref.finalize(a, collected.append, True)
    del a, b
    keep = [[] for _ in range(3 * GC_YOUNG_THRESHOLD)]   # new objects, as serving makes
    print(gc.get_threshold()[0] == GC_YOUNG_THRESHOLD, gc.get_freeze_count() > 10_000,
          collected == [True], len(keep) > 0)

uvicorn.run = probe
sys.exit(main(["serve", "--port", "1"]))
"""


def test_serve_settles_the_heap_and_cycles_are_still_collected(database):
    assert central_cli("db", "upgrade", env_url=database).returncode == 0
    done = subprocess.run([sys.executable, "-c", SERVE_GC_PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "BALIE_DATABASE_URL": database})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True"]


def test_serve_on_an_unmigrated_database_is_refused_with_the_fix(database):
    done = central_cli("serve", "--port", "1", env_url=database)
    assert done.returncode == 2
    assert "run balie-central db upgrade" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_errors_are_clear_and_without_traceback(tmp_path, database, capsys):
    bad = tmp_path / "central.toml"
    bad.write_text("[limits]\nmax_records = 0\n[server]\nprot = 1\n", encoding="utf-8")
    status, _, err = run(capsys, "--config", str(bad), "device", "list")
    assert status == 2
    assert "limits.max_records: must be at least 1, got 0" in err
    assert "server.prot: unknown field" in err
    status, _, err = run(capsys, "device", "list")  # not migrated
    assert status == 2 and "run balie-central db upgrade" in err
    unreachable = central_cli("device", "list",
                              env_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 2
    assert "cannot reach the database" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    missing = central_cli("--config", str(tmp_path / "nope.toml"), "device", "list", env_url=database)
    assert missing.returncode == 2 and "file not found" in missing.stderr
    assert "Traceback" not in missing.stderr
