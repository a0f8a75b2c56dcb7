"""Out of order: the real app with its buffer on a small tmpfs that fills up or is read-only.

Real touches on the real Kivy window (Xvfb), the buffer on a size-limited
tmpfs of its own (tests/smallfs.py: mounting needs root; CI runs as root).

Disk full: a freshly made buffer appends to its WAL, so the first commit
after :func:`tests.smallfs.fill` normally fails already; a WAL that was
checkpointed and restarted would take commits for a while longer
(tests/test_buffer_full.py). So after filling, the test commits a no-op
update on its own connection until SQLite really answers SQLITE_FULL, and
only then lets a visitor tap.

Read-only: ``mount -o remount,ro`` fails with EBUSY while a file on the
mount is open for writing, so the buffer is made and closed first, the
mount is made read-only, and only then does the terminal start (as after a
reboot onto a file system the kernel mounted read-only).
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.buffer import Buffer, read_only_connection
from kiosk.errors import BufferUnavailable
from kiosk.clock import FakeTimeSource
from kiosk.pin import PinStore, hash_pin
from tests.smallfs import fill, small_filesystem
from tests.test_ui_admin import CHEAP, FOLLOW_UPS, PIN, admin_screen, enter, open_pad, until

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parent.parent
SORRY_NL = "Sorry, dit scherm werkt nu even niet."
SORRY_EN = "Sorry, this screen is not working at the moment."


# --------------------------------------------------------------------------- helpers


def start(folder: Path, **options):
    """The app on ``folder`` with an admin PIN set, every screen made."""
    from tests.kivy_driver import start_app

    if not (folder / "admin-pin").exists():
        PinStore(folder).save(hash_pin(PIN, **CHEAP))
    driver = start_app(folder, **options)
    driver.until_ready()
    driver.app.admin.lockout.clock = FakeTimeSource(mono=1000.0)
    return driver


def whole_visit(driver, grade: int) -> None:
    """A visitor gives ``grade`` on the welcome screen and skips the rest."""
    driver.tap(driver.button_for("totaal", grade))
    for _ in FOLLOW_UPS:
        driver.tap(driver.current_screen().ids.skip)
    driver.tap(driver.current_screen().ids.skip)  # the comment
    assert driver.screen == "thanks"
    driver.advance(driver.app.settings.timeouts.thanks_s + 0.5)
    assert driver.screen == "welcome"


def until_a_commit_fails(path: Path, tries: int = 10_000) -> int:
    """Commit health-probe writes on a connection of our own until SQLite says the disk is full.

    The same row the terminal's health probe writes (``meta.health_probe_at``);
    an update that changes nothing would not reach the WAL. Returns how many
    still went through (room left in the WAL).
    """
    from kiosk.buffer import _PROBE_SQL

    con = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        for done in range(tries):
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute(_PROBE_SQL, (repr(time.time() + done),))
                con.execute("COMMIT")
            except sqlite3.OperationalError as err:
                assert err.sqlite_errorname == "SQLITE_FULL", err
                if con.in_transaction:
                    con.execute("ROLLBACK")
                return done
        raise AssertionError(f"{tries} commits went through on a full disk")
    finally:
        con.close()


def stored(path: Path) -> tuple[list, list]:
    con = read_only_connection(path)
    try:
        return (con.execute("SELECT id, seq, closed_at, end_reason FROM responses ORDER BY seq")
                .fetchall(),
                con.execute("SELECT response_id, ordinal, question_id, value_num FROM answers "
                            "ORDER BY wall, ordinal").fetchall())
    finally:
        con.close()


def integrity(path: Path) -> list:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def open_admin(driver):
    open_pad(driver)
    enter(driver, PIN)
    assert driver.screen == "admin"
    screen = admin_screen(driver)
    until(driver, lambda: screen.snapshot is not None, what="the first snapshot")
    driver.frames(2)
    return screen


def back_in_order(driver) -> None:
    """Let the watch try again (every 30 s on the Kivy clock; the try itself runs on a thread)."""
    driver.advance(31, step=1)
    until(driver, lambda: driver.screen == "welcome", what="the welcome screen to come back")


# --------------------------------------------------------------------------- disk full


def test_a_full_disk_puts_the_terminal_out_of_order_and_freeing_space_brings_it_back(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=4096) as folder:
        driver = start(folder)
        try:
            path = driver.buffer_path
            whole_visit(driver, 8)
            whole_visit(driver, 6)
            before = stored(path)
            assert [a[3] for a in before[1]] == [8, 6]

            filler = fill(folder)
            still_went_through = until_a_commit_fails(path)
            assert still_went_through < 50, still_went_through  # observed: 0 (the WAL grows)

            # The next visitor's tap cannot be stored: they are told, calmly, in Dutch.
            driver.tap(driver.button_for("totaal", 9))
            assert driver.screen == "out_of_order"
            screen = driver.current_screen()
            assert screen.ids.title.text == SORRY_NL
            assert screen.ids.body.text == "Wilt u uw mening later geven? Dank u wel."
            assert driver.navigator.out_of_order and not driver.navigator.flow.in_visit
            assert stored(path) == before

            # It keeps running and invites no ratings: taps anywhere change nothing.
            from kivy.core.window import Window

            driver.tap_at(Window.width / 2, Window.height / 2)
            driver.advance(driver.app.settings.timeouts.thanks_s + 1)
            assert driver.screen == "out_of_order"
            driver.advance(40, step=2)  # the watch tried again: still full
            until(driver, lambda: driver.app.storage_watch.tries >= 2, what="a second try")
            driver.frames(3)
            assert driver.screen == "out_of_order"
            assert driver.app.buffer.last_write_cause == "full"
            # what the next heartbeat tells central (central.fleet: "out of order")
            said = driver.app.storage_watch.heartbeat_fields()["out_of_order"]
            assert said.startswith("the buffer cannot take answers: ") and len(said) <= 300

            # Staff: the hidden gesture works here, and the admin screen says why.
            admin = open_admin(driver)
            assert admin.ids.value_buffer.text == (
                "NIET beschrijfbaar: de schijf is vol · buiten gebruik")
            assert admin.buffer_fault is True
            assert admin.ids.value_disk.text == "0 B"
            # the newest error: the buffer's, or the PIN lockout's file that could not be written
            last_error = admin.ids.value_last_error.text
            assert "the disk is full" in last_error or "No space left" in last_error, last_error
            assert admin.ids.value_backlog.text.startswith("2 reacties wachten")
            driver.tap(admin.ids.close)
            assert driver.screen == "out_of_order"

            # Space is back: within a check the terminal invites ratings again by itself.
            filler.unlink()
            back_in_order(driver)
            assert driver.navigator.out_of_order is False
            assert driver.app.storage_watch.heartbeat_fields() == {"out_of_order": None}
            whole_visit(driver, 10)
        finally:
            driver.close()
        responses, answers = stored(path)
        assert integrity(path) == [("ok",)]
        assert responses[:2] == before[0] and answers[:2] == before[1]
        assert [a[3] for a in answers] == [8, 6, 10]  # the 9 was never stored, nor half of it
        assert [r[3] for r in responses] == ["completed"] * 3


def test_a_write_that_fails_elsewhere_stops_the_invitation_before_a_visitor_taps(tmp_path):
    """The health probe (or the sync thread) finds the disk full: within a check (5 s) the
    welcome screen gives way, before any visitor's tap is lost."""
    with small_filesystem(tmp_path / "fs", size_kib=4096) as folder:
        driver = start(folder)
        try:
            filler = fill(folder)
            until_a_commit_fails(driver.buffer_path)
            with pytest.raises(BufferUnavailable):
                driver.app.buffer.probe_write()  # what the health probe does, on its thread
            assert driver.screen == "welcome"
            driver.advance(5.5)
            assert driver.screen == "out_of_order"
            filler.unlink()
            back_in_order(driver)
        finally:
            driver.close()


def test_a_visitor_halfway_is_told_in_their_language_and_their_visit_is_closed_later(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=4096) as folder:
        driver = start(folder)
        try:
            path = driver.buffer_path
            english = [b for b in driver.current_screen().ids.languages.children
                       if b.text == "English"][0]
            driver.tap(english)
            driver.tap(driver.button_for("totaal", 7))
            driver.tap(driver.button_for("wachttijd", 4))
            assert driver.screen == "question"
            filler = fill(folder)
            until_a_commit_fails(path)
            driver.tap(driver.button_for("vriendelijkheid", 5))  # cannot be stored
            assert driver.screen == "out_of_order"
            assert driver.current_screen().ids.title.text == SORRY_EN
            driver.advance(driver.app.settings.timeouts.thanks_s + 0.5)
            assert driver.screen == "out_of_order"
            assert driver.current_screen().ids.title.text == SORRY_NL  # the default language again
            responses, answers = stored(path)
            assert [a[3] for a in answers] == [7, 4]  # what was stored before stays
            assert responses[0][2] is None  # the visit could not be closed on the full disk
            filler.unlink()
            back_in_order(driver)
            responses, _answers = stored(path)
            assert responses[0][3] == "abandoned"  # closed once the buffer took writes again
        finally:
            driver.close()
        assert integrity(path) == [("ok",)]


# --------------------------------------------------------------------------- read-only


def test_a_read_only_buffer_at_start_gives_an_out_of_order_terminal_not_a_crash(tmp_path):
    with small_filesystem(tmp_path / "fs", size_kib=4096) as folder:
        PinStore(folder).save(hash_pin(PIN, **CHEAP))
        with Buffer.open(folder / "buffer.sqlite3") as buf:
            for grade in (8, 3):
                draft = buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                                      location_id="balie-1", language="nl")
                buf.record_answer(draft, question_id="totaal", aspect="totaal", value=grade)
                buf.close_response(draft)
        before = stored(folder / "buffer.sqlite3")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        driver = None
        try:
            driver = start(folder, read_only_fallback=True)
            assert driver.app.buffer.writable is False
            assert driver.screen == "out_of_order"
            admin = open_admin(driver)
            assert admin.ids.value_buffer.text == (
                "NIET beschrijfbaar: alleen-lezen (bestandssysteem of bestand) · "
                "bij het starten alleen-lezen geopend · buiten gebruik")
            assert admin.ids.value_backlog.text.startswith("2 reacties wachten")  # reads work
            assert "read-only file system" in admin.ids.value_last_error.text.lower()
            driver.tap(admin.ids.close)
            assert driver.screen == "out_of_order"
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        try:
            back_in_order(driver)
            assert driver.app.buffer.writable is True
            driver.tap(driver.button_for("totaal", 9))
            assert driver.screen == "question"
        finally:
            driver.close()
        responses, answers = stored(folder / "buffer.sqlite3")
        assert integrity(folder / "buffer.sqlite3") == [("ok",)]
        assert responses[:2] == before[0] and answers[:2] == before[1]
        assert [a[3] for a in answers] == [8, 3, 9]


def test_balie_kiosk_run_on_a_read_only_data_folder_stays_up_out_of_order_and_feeds_the_watchdog(
        tmp_path):
    """``balie-kiosk run`` under a stand-in for systemd, its data folder a read-only mount:
    it starts (no restart loop), says why in the log and in STATUS, and the watchdog is fed."""
    from tests.terminal_process import terminal_process
    from tests.test_watchdog_app import Systemd

    data = tmp_path / "data"
    with small_filesystem(data, size_kib=4096) as folder:
        with Buffer.open(folder / "buffer.sqlite3") as buf:
            draft = buf.new_draft(questionnaire_id="balie-standaard", questionnaire_version=1,
                                  location_id="balie-1", language="nl")
            buf.record_answer(draft, question_id="totaal", aspect="totaal", value=7)
            buf.close_response(draft)
        raw = (folder / "buffer.sqlite3").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        systemd = Systemd(tmp_path / "notify.sock")
        try:
            # TMPDIR: Kivy's home falls back to a temporary folder when the data folder is
            # read-only; here it is made (and removed) under tmp_path.
            env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "4000000",
                   "TMPDIR": str(tmp_path)}
            with terminal_process(tmp_path, "--windowed", env=env) as process:
                got = systemd.wait_for("READY=1", 90)
                got += systemd.wait_for("STATUS=out of order: buffer not writable", 15)
                got += systemd.messages(5)
                assert sum("WATCHDOG=1" in m for m in got) >= 2, got
                assert not any("unhealthy" in m for m in got), got
                assert process.poll() is None  # still running: no exit, no restart loop
            log = (tmp_path / "terminal.log").read_text()
            assert "starting out of order" in log and "read-only file system" in log
        finally:
            systemd.sock.close()
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        assert (folder / "buffer.sqlite3").read_bytes() == raw
