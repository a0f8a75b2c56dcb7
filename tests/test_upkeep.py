"""Nightly upkeep: backup copies (VACUUM INTO) with rotation, pruning of long-sent responses."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import datetime, timedelta

import pytest

from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.settings import MaintenanceSettings
from kiosk.upkeep import DAY_S, Upkeep, UpkeepSchedule
from tests.smallfs import fill, small_filesystem

DRAFT = dict(questionnaire_id="q", questionnaire_version=1, location_id="loc", language="nl")
T0 = 1_800_000_000.0


@pytest.fixture
def clock():
    return FakeTimeSource(wall=T0)


@pytest.fixture
def buf(tmp_path, clock):
    with Buffer.open(tmp_path / "data" / "buffer.sqlite3", time_source=clock) as b:
        yield b


def add_responses(buf, n, *, close=True):
    ids = []
    for k in range(n):
        d = buf.new_draft(**DRAFT)
        buf.record_answer(d, question_id="totaal", aspect="totaal", value=k % 10 + 1)
        buf.record_answer(d, question_id="dienst", aspect=None, value="paspoort")
        if close:
            buf.close_response(d)
        ids.append(d.id)
    return ids


def rows(path, sql):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class Wall:
    def __init__(self, start=T0):
        self.t = start

    def __call__(self):
        return self.t


def test_a_backup_is_a_sound_copy_readable_by_its_owner_only(buf, tmp_path):
    add_responses(buf, 5)
    upkeep = Upkeep(buf, MaintenanceSettings(), now=Wall())
    report = upkeep.backup()
    assert report.ok and report.backup is not None
    assert report.backup.parent == buf.path.parent / "backups"
    assert report.backup.name == "buffer-20270115T080000Z.sqlite3"
    assert stat.S_IMODE(report.backup.stat().st_mode) == 0o600
    assert rows(report.backup, "PRAGMA integrity_check") == [("ok",)]
    assert rows(report.backup, "SELECT count(*) FROM answers") == [(10,)]
    assert not list(report.backup.parent.glob("*.tmp"))


def test_only_the_newest_copies_are_kept(buf, tmp_path):
    add_responses(buf, 1)
    wall = Wall()
    upkeep = Upkeep(buf, MaintenanceSettings(backup_keep=3), now=wall)
    made = []
    for night in range(5):
        wall.t = T0 + night * DAY_S
        made.append(upkeep.backup().backup)
    assert upkeep.backups() == made[:1:-1]  # the last three, newest first
    assert not made[0].exists() and not made[1].exists()


def test_a_failed_backup_keeps_the_old_copies_and_says_why(buf, tmp_path):
    add_responses(buf, 2)
    wall = Wall()
    upkeep = Upkeep(buf, MaintenanceSettings(), now=wall)
    first = upkeep.backup().backup
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    broken = Upkeep(buf, MaintenanceSettings(), backup_dir=blocker / "backups", now=wall)
    report = broken.run()
    assert not report.ok and report.backup is None
    assert "not-a-folder" in report.errors[0] and "backup folder" in report.errors[0]
    assert first.exists()
    assert buf.stats().answers_total == 4


def test_a_full_disk_during_the_backup_leaves_no_half_file_and_the_buffer_untouched(
        buf, tmp_path):
    add_responses(buf, 200)
    with small_filesystem(tmp_path / "small", size_kib=256) as folder:
        fill(folder, leave_bytes=16 * 1024)
        upkeep = Upkeep(buf, MaintenanceSettings(), backup_dir=folder / "backups", now=Wall())
        report = upkeep.backup()
        assert report.backup is None
        assert "disk is full" in report.errors[0] or "No space" in report.errors[0]
        assert list((folder / "backups").iterdir()) == []
    assert rows(buf.path, "PRAGMA integrity_check") == [("ok",)]
    assert buf.stats().answers_total == 400


def test_pruning_deletes_only_responses_sent_long_ago(buf, clock):
    old_sent = add_responses(buf, 3)
    buf.mark_sent(old_sent)
    clock.advance(40 * DAY_S)
    new_sent = add_responses(buf, 2)
    buf.mark_sent(new_sent)
    unsent = add_responses(buf, 2)
    quarantined = add_responses(buf, 1)
    buf.quarantine({quarantined[0]: "rejected by central"})
    open_ = add_responses(buf, 1, close=False)
    upkeep = Upkeep(buf, MaintenanceSettings(retention_days=30), now=lambda: clock.now().wall)
    report = upkeep.prune()
    assert report.pruned == 3
    left = {r[0] for r in rows(buf.path, "SELECT id FROM responses")}
    assert left == set(new_sent + unsent + quarantined + open_)
    assert rows(buf.path, "SELECT count(*) FROM answers WHERE response_id NOT IN "
                          "(SELECT id FROM responses)") == [(0,)]
    assert any(e.kind == "responses_pruned" for e in buf.events())
    d = buf.new_draft(**DRAFT)  # numbering carries on after the deleted ones
    assert buf.record_answer(d, question_id="totaal", aspect=None, value=7).seq == 10


def test_a_run_backs_up_before_it_prunes(buf, clock):
    sent = add_responses(buf, 2)
    buf.mark_sent(sent)
    clock.advance(31 * DAY_S)
    report = Upkeep(buf, MaintenanceSettings(), now=lambda: clock.now().wall).run()
    assert report.ok and report.pruned == 2
    assert rows(report.backup, "SELECT count(*) FROM responses") == [(2,)]
    assert buf.stats().responses_total == 0


def test_the_nightly_job_is_planned_at_the_set_time_and_runs_on_its_own_thread(buf):
    settings = MaintenanceSettings(backup_time="02:15", jitter_s=0)
    upkeep = Upkeep(buf, settings)
    done = threading.Event()
    real_run = upkeep.run

    def run():
        report = real_run()
        done.set()
        return report

    upkeep.run = run  # before the schedule binds it
    schedule = UpkeepSchedule(upkeep, settings)
    schedule.start()
    try:
        planned = schedule.job.next_run_time
        assert (planned.hour, planned.minute) == (2, 15)
        assert planned - datetime.now(planned.tzinfo) <= timedelta(days=1)
        assert schedule.job.misfire_grace_time == 3600 and schedule.job.coalesce
        schedule.job.modify(next_run_time=datetime.now(planned.tzinfo))
        schedule.scheduler.wakeup()
        assert done.wait(10), "the upkeep job did not run"
    finally:
        schedule.shutdown()
    assert Upkeep(buf, settings).backups()


def test_backup_settings_are_validated():
    with pytest.raises(ValueError, match="HH:MM"):
        MaintenanceSettings(backup_time="3.30")
    with pytest.raises(ValueError):
        MaintenanceSettings(backup_keep=0)


def test_balie_kiosk_backup_copies_prunes_and_reports(tmp_path, capsys):
    from kiosk.cli import main

    data = tmp_path / "data"
    with Buffer.open(data / "buffer.sqlite3") as b:
        add_responses(b, 3)
    assert main(["backup", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    copies = list((data / "backups").glob("buffer-*.sqlite3"))
    assert len(copies) == 1 and f"backup: {copies[0]}" in out
    assert "pruned: 0 response(s)" in out
    assert rows(copies[0], "SELECT count(*) FROM responses") == [(3,)]


def test_balie_kiosk_backup_fails_clearly_when_it_cannot_write(tmp_path, capsys):
    from kiosk.cli import main

    data = tmp_path / "data"
    Buffer.open(data / "buffer.sqlite3").close()
    config = tmp_path / "kiosk.toml"
    (tmp_path / "blocked").write_text("a file, not a folder")
    from kiosk.paths import config_dir

    shipped = config_dir() / "questionnaires" / "standaard.toml"
    config.write_text(f'questionnaire = "{shipped}"\n\n[maintenance]\nbackup_dir = "blocked/backups"\n')
    assert main(["backup", "--config", str(config), "--data-dir", str(data), "--no-prune"]) == 1
    err = capsys.readouterr().err
    assert "cannot create the backup folder" in err and "blocked" in err
