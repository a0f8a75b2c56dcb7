"""Take a screenshot of every screen of the terminal into docs/screens/.

Run: ``.venv/bin/python scripts/screenshots.py`` (starts its own Xvfb when no
DISPLAY is set). Drives the real app with touches, as the UI tests do.
``scripts/screenshots.py out-of-order`` takes only the out-of-order screens (a
full disk on a small tmpfs: needs root, like the tests that make one).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest as harness  # noqa: E402  (sets Kivy's environment first)


def main() -> None:
    import os

    if not os.environ.get("DISPLAY"):
        harness._start_xvfb()
    from tests.kivy_driver import start_app

    out = ROOT / "docs" / "screens"
    out.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["out-of-order"]:
        for path in out_of_order_shots(out):
            print(f"wrote {path.relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = start_app(Path(tmp))
        shots = []

        def shot(name):
            shots.append(d.screenshot(out / f"{name}.png"))

        shot("01-welcome")
        from sync.protocol import MessageDocument, OverallGrade

        d.app.message_board.show(MessageDocument(
            nl="Wij bellen u binnen 2 werkdagen terug als u daarom vraagt.",
            grade=OverallGrade(mean=7.6, n=1234, days=90)))
        shot("welcome-message")
        d.app.message_board.show(None)
        d.tap(d.button_for("totaal", 8))
        shot("02-question-smiley")
        for question_id, value in (("wachttijd", 4), ("vriendelijkheid", 5),
                                   ("deskundigheid", 4), ("duidelijkheid", 3)):
            d.tap(d.button_for(question_id, value))
        shot("03-question-yesno")
        d.tap(d.button_for("verwachting", "yes"))
        shot("04-question-choice")
        d.tap(d.button_for("dienst", "paspoort-id"))
        screen = d.current_screen()
        screen.ids.text.text = "Fijn geholpen, bedankt"
        shot("05-comment-keyboard")
        d.tap(screen.ids.send)
        shot("06-thanks")
        d.advance(6)
        english = [b for b in d.current_screen().ids.languages.children if b.text == "English"][0]
        d.tap(english)
        shot("07-welcome-english")
        d.tap(d.button_for("totaal", 6))
        d.advance(d.app.settings.timeouts.idle_warning_s + 1)
        shot("08-idle-warning")
        d.close()
        # Outside opening hours (Friday evening): the closed screen.
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from kiosk.settings import OpeningHoursSettings
        from tests.kivy_driver import KivyWallClock, test_settings

        settings = test_settings().model_copy(
            update={"opening_hours": OpeningHoursSettings(enabled=True)})
        friday_evening = datetime(2026, 4, 3, 17, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
        d = start_app(Path(tmp) / "closed", settings=settings,
                      time_source=KivyWallClock(friday_evening))
        d.until_ready()
        shot("closed")
        d.close()
    shots += admin_shots(out)
    shots += out_of_order_shots(out)
    for path in shots:
        print(f"wrote {path.relative_to(ROOT)}")


def admin_shots(out: Path) -> list[Path]:
    """The PIN pad and the admin screen of a terminal enrolled with a local central."""
    import time

    from kiosk.pin import PinStore, hash_pin
    from kiosk.state import DeviceState
    from tests.central_fixtures import central_settings, enrol_device, run_central
    from tests.kivy_driver import start_app

    def until(d, condition):
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            d.frames(1)
            time.sleep(0.005)

    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = central_settings(Path(tmp) / "central.sqlite3")
        with run_central(settings) as base_url:
            device_id, token = enrol_device(settings)
            state = DeviceState(central_url=base_url, device_id=device_id, token=token)
            folder = Path(tmp) / "kiosk"
            folder.mkdir()
            PinStore(folder).save(hash_pin("4821"))
            d = start_app(folder, device_state=state)
            d.until_ready()
            for grade in (8, 6, 9):  # three visits waiting for sync
                d.tap(d.button_for("totaal", grade))
                d.navigator.to_welcome()
            from kivy.core.window import Window

            for _ in range(5):  # the hidden gesture: five taps in the top-left corner
                d.time.now += 0.3
                d.tap_at(20, Window.height - 20)
            pad = d.app.admin.screens["pin_pad"]
            until(d, lambda: not pad.checking)
            for digit in "48":
                d.tap(pad.ids[f"key_{digit}"])
            shots.append(d.screenshot(out / "pin_pad.png"))
            for digit in "21":
                d.tap(pad.ids[f"key_{digit}"])
            d.tap(pad.ids.ok)
            screen = d.app.admin.screens["admin"]
            until(d, lambda: d.screen == "admin" and screen.snapshot is not None)
            d.tap(screen.ids.test_connection)
            until(d, lambda: not screen.busy)
            shots.append(d.screenshot(out / "admin.png"))
            d.close()
    return shots


def out_of_order_shots(out: Path) -> list[Path]:
    """A full disk: the out-of-order screen a visitor sees, and the admin screen saying why."""
    import os

    if os.geteuid() != 0:
        print("out-of-order screens skipped: mounting a small tmpfs needs root", file=sys.stderr)
        return []
    from kiosk.pin import PinStore, hash_pin
    from tests.smallfs import fill, small_filesystem
    from tests.test_ui_admin import until
    from tests.test_ui_out_of_order import open_admin, start, until_a_commit_fails, whole_visit

    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        with small_filesystem(Path(tmp) / "fs", size_kib=4096) as folder:
            PinStore(folder).save(hash_pin("4821"))
            d = start(folder)
            try:
                for grade in (8, 6, 9):
                    whole_visit(d, grade)
                filler = fill(folder)
                until_a_commit_fails(d.buffer_path)
                d.tap(d.button_for("totaal", 7))  # cannot be stored: out of order
                d.advance(d.app.settings.timeouts.thanks_s + 1)
                shots.append(d.screenshot(out / "out_of_order.png"))
                screen = open_admin(d)
                # The next try (30 s on) fails too; its error is then the newest one shown.
                d.advance(31, step=1)
                until(d, lambda: "local buffer" in (screen.snapshot.last_error or ""),
                      what="the buffer's error on the admin screen")
                shots.append(d.screenshot(out / "admin_disk_full.png"))
                filler.unlink()
            finally:
                d.close()
    return shots


if __name__ == "__main__":
    main()
