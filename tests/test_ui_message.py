"""The message to visitors on the real Kivy window, from a real central on a loopback port.

The terminal is enrolled with central; sync rounds run on APScheduler's worker
thread (``sync.trigger_now()``) as on the device, and the message reaches the
screens through the Kivy clock. Also takes docs/screens/welcome-message.png.
"""

from __future__ import annotations

import itertools
import time
import pytest

from central.ingest import ingest_batch
from central.messages import VisitorMessage, clear_message, set_message
from kiosk.message_store import MessageStore
from kiosk.state import DeviceState
from sync.protocol import Batch
from tests.central_fixtures import enrolled_central, make_batch, make_record
from tests.kivy_driver import sync_round

pytestmark = pytest.mark.ui

NL = "Wij bellen u binnen 2 werkdagen terug als u daarom vraagt."
EN = "We call you back within 2 working days when you ask us to."


@pytest.fixture
def central(tmp_path):
    """A real central with one device at 'stadhuis'; yields (base_url, engine, device_id, token)."""
    with enrolled_central(tmp_path / "central.sqlite3") as central:
        yield central


def start(tmp_path, central=None):
    from tests.kivy_driver import start_app

    state = None
    if central is not None:
        base_url, _, device_id, token = central
        state = DeviceState(central_url=base_url, device_id=device_id, token=token)
    driver = start_app(tmp_path / "terminal", device_state=state, frames=0)
    driver.until_ready()
    return driver


def band(screen):
    """The screen's message band: (message, grade line, shown on screen)."""
    [found] = [w for w in screen.walk() if type(w).__name__ == "MessageBand"]
    shown = found.opacity > 0 and found.height > 0 and found.get_root_window() is not None
    return found.ids.message.text, found.ids.grade.text, shown


def add_grades(engine, device_id, count):
    """``count`` responses whose overall grade averages 7.6 (pattern 8, 7, 8, 8, 7)."""
    grades = [g for g, _ in zip(itertools.cycle([8, 7, 8, 8, 7]), range(count))]
    seqs = itertools.count(1)
    records = [make_record(next(seqs), values=(g, 7)) for g in grades]
    for start in range(0, len(records), 250):
        batch = Batch.model_validate(make_batch(device_id, records[start:start + 250]))
        ingest_batch(engine, device_id, batch, received_at=time.time())


def test_a_welcome_message_with_the_grade_shows_under_the_question_in_the_visitors_language(
        tmp_path, central):
    _, engine, device_id, _ = central
    add_grades(engine, device_id, 1234)
    set_message(engine, VisitorMessage.build(nl=NL, en=EN, show_grade=True), location=None,
                now=time.time())
    driver = start(tmp_path, central)
    try:
        welcome = driver.app.navigator.screens["welcome"]
        sync_round(driver, frames=3)
        assert driver.screen == "welcome"
        assert band(welcome) == (NL, "Uw gemiddelde cijfer: 7,6 (1.234 beoordelingen)", True)
        driver.frames(3)
        # Under the question and its answer buttons, above the privacy line, on screen.
        message = [w for w in welcome.walk() if type(w).__name__ == "MessageBand"][0]
        panel = welcome.ids.panel_holder
        assert message.top <= panel.y and message.y >= 0 and message.width < welcome.width
        # What docs/screens/welcome-message.png shows (scripts/screenshots.py): the band is drawn.
        from kivy.core.image import Image as CoreImage

        shot = CoreImage(str(driver.screenshot(tmp_path / "welcome-message.png")), keep_data=True)
        x, y = message.to_window(message.x + 8, message.center_y)
        assert shot.read_pixel(x, shot.height - y)[:3] == pytest.approx(
            list(driver.app.theme.surface)[:3], abs=0.02)
        assert band(driver.app.navigator.screens["thanks"])[2] is False

        english = [b for b in welcome.ids.languages.children if b.text == "English"][0]
        driver.tap(english)
        assert band(welcome) == (EN, "Your average grade: 7.6 (1,234 ratings)", True)
    finally:
        driver.close()


def test_a_thanks_message_shows_only_there_survives_a_restart_offline_and_goes_when_cleared(
        tmp_path, central):
    _, engine, _, _ = central
    set_message(engine, VisitorMessage.build(nl=NL, where="thanks", show_grade=True),
                location=None, now=time.time())
    driver = start(tmp_path, central)
    try:
        navigator = driver.app.navigator
        sync_round(driver, frames=3)
        assert band(navigator.screens["welcome"])[2] is False
        navigator.manager.current = "thanks"
        driver.frames(3)
        # Too few answers for a grade: the message alone, no figure at all.
        assert band(navigator.screens["thanks"]) == (NL, "", True)
        # A visitor in another language reads the Dutch text when there is no English one.
        driver.app.tr.switch("en")
        driver.frames(2)
        assert band(navigator.screens["thanks"])[0] == NL
    finally:
        driver.close()
    assert MessageStore(tmp_path / "terminal").load().document.nl == NL

    offline = start(tmp_path)  # not enrolled: no sync at all, only the kept copy
    try:
        offline.app.navigator.manager.current = "thanks"
        offline.frames(3)
        assert band(offline.app.navigator.screens["thanks"]) == (NL, "", True)
    finally:
        offline.close()

    clear_message(engine, location=None)
    driver = start(tmp_path, central)
    try:
        navigator = driver.app.navigator
        navigator.manager.current = "thanks"
        driver.frames(3)
        sync_round(driver, frames=3)
        assert band(navigator.screens["thanks"]) == ("", "", False)
        assert band(navigator.screens["welcome"]) == ("", "", False)
        assert MessageStore(tmp_path / "terminal").load() is None
    finally:
        driver.close()
