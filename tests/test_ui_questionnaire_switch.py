"""A new questionnaire from central on the real Kivy window: it switches between visitors, never during one.

The terminal is enrolled with a ScriptedCentral on a loopback port; sync
rounds run on APScheduler's own worker thread (``sync.trigger_now()``), as on
the device, and the new questionnaire reaches the UI through the Kivy clock.
Visitors tap the real widgets.
"""

from __future__ import annotations

import sqlite3

import pytest

from kiosk.paths import config_dir
from kiosk.questionnaire_store import CentralCopy
from kiosk.state import DeviceState
from sync.protocol import QuestionnaireDocument, QuestionnaireRef
from tests.kivy_driver import sync_round
from tests.sync_test_server import ScriptedCentral

pytestmark = pytest.mark.ui

TOKEN = "secret-token-1"
SHIPPED = (config_dir() / "questionnaires" / "standaard.toml").read_text(encoding="utf-8")
OLD_FIRST = "Welk rapportcijfer geeft u ons vandaag?"
NEW_FIRST = "Welk cijfer geeft u de balie vandaag?"
OLD_FOLLOW_UPS = ("wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid", "verwachting",
                  "dienst")


def version_2(*, faces: int = 5) -> QuestionnaireDocument:
    """The shipped questionnaire as version 2: another first wording, without 'duidelijkheid'."""
    blocks = SHIPPED.split("[[questions]]")
    kept = [b for b in blocks if 'id = "duidelijkheid"' not in b]
    assert len(kept) == len(blocks) - 1
    text = "[[questions]]".join(kept).replace("version = 1", "version = 2", 1)
    text = text.replace(OLD_FIRST, NEW_FIRST, 1).replace("faces = 5", f"faces = {faces}", 1)
    return QuestionnaireDocument(id="balie-standaard", version=2, toml=text)


@pytest.fixture
def central():
    with ScriptedCentral(token=TOKEN) as c:
        yield c


@pytest.fixture
def terminal(tmp_path, central):
    """The real app, enrolled with ``central``, every screen made and sync started."""
    from tests.kivy_driver import start_app

    state = DeviceState(central_url=central.url, device_id="dev-1", token=TOKEN)
    driver = start_app(tmp_path, device_state=state, frames=0)
    try:
        driver.until_ready()
        yield driver
    finally:
        driver.close()


def texts(screen) -> set[str]:
    return {w.text for w in screen.walk() if hasattr(w, "text")}


def versions(driver) -> list[tuple]:
    with sqlite3.connect(driver.buffer_path) as db:
        return db.execute("SELECT seq, questionnaire_id, questionnaire_version, end_reason "
                          "FROM responses ORDER BY seq").fetchall()


def answered(driver, seq: int) -> list[str]:
    with sqlite3.connect(driver.buffer_path) as db:
        return [row[0] for row in db.execute(
            "SELECT a.question_id FROM answers a JOIN responses r ON r.id = a.response_id "
            "WHERE r.seq = ? ORDER BY a.rowid", (seq,))]


def test_a_visitor_mid_flow_keeps_the_old_questions_and_the_next_one_gets_the_new(
        terminal, central):
    welcome = terminal.current_screen()
    assert OLD_FIRST in texts(welcome)
    terminal.tap(terminal.button_for("totaal", 8))  # a visit starts on version 1
    assert terminal.screen == "question"

    central.questionnaire = version_2()
    sync_round(terminal)
    terminal.frames(3)  # the hand-over from the sync thread runs on the Kivy clock

    switcher = terminal.app.switcher
    assert switcher.pending is not None and switcher.pending.version == 2
    assert terminal.app.questionnaire.version == 1  # the visitor on the way keeps version 1
    assert CentralCopy(terminal.buffer_path.parent).load().questionnaire.version == 2
    for position, question_id in enumerate(OLD_FOLLOW_UPS, start=2):
        screen = terminal.current_screen()
        assert (screen.question.id, screen.position, screen.total) == (question_id, position, 8)
        terminal.tap(screen.ids.skip if question_id != "duidelijkheid"
                     else terminal.button_for("duidelijkheid", 4))
    assert terminal.screen == "comment"
    terminal.tap(terminal.current_screen().ids.skip)
    assert terminal.screen == "thanks"
    assert terminal.app.questionnaire.version == 1  # still: the thank-you screen is the visit's

    terminal.advance(5.5)  # the thank-you screen ends: back to welcome, and the switch
    assert terminal.screen == "welcome"
    assert terminal.app.questionnaire.version == 2 and switcher.pending is None
    assert NEW_FIRST in texts(welcome) and OLD_FIRST not in texts(welcome)

    terminal.tap(terminal.button_for("totaal", 6))  # the next visitor: version 2
    screen = terminal.current_screen()
    assert (screen.question.id, screen.position, screen.total) == ("wachttijd", 2, 7)
    terminal.tap(terminal.button_for("wachttijd", 5))
    assert versions(terminal) == [(1, "balie-standaard", 1, "completed"),
                                  (2, "balie-standaard", 2, None)]
    assert answered(terminal, 1) == ["totaal", "duidelijkheid"]
    assert answered(terminal, 2) == ["totaal", "wachttijd"]

    sync_round(terminal)  # the heartbeat names the version now asked
    assert central.heartbeats[-1].questionnaire == QuestionnaireRef(id="balie-standaard",
                                                                    version=2)
    assert central.heartbeats[-1].questionnaire_error is None


def test_on_an_idle_welcome_screen_the_new_version_goes_up_at_once(terminal, central):
    welcome = terminal.current_screen()
    old_panels = terminal.navigator.panels.built()

    central.questionnaire = version_2()
    sync_round(terminal)
    terminal.frames(3)

    assert terminal.app.questionnaire.version == 2
    assert NEW_FIRST in texts(welcome)
    new_panel = terminal.panel("totaal")
    assert new_panel is not old_panels["totaal"] and new_panel.parent is not None
    assert all(panel.parent is None for panel in old_panels.values())  # released
    terminal.navigator.switch_language("en")  # the old panels no longer follow the language
    assert {panel.lang for panel in old_panels.values()} == {"nl"} and new_panel.lang == "en"
    terminal.navigator.switch_language("nl")
    terminal.frames(8)  # the follow-up panels are made one per frame
    assert set(terminal.navigator.panels.built()) == {
        "totaal", "wachttijd", "vriendelijkheid", "deskundigheid", "verwachting", "dienst"}

    terminal.tap(terminal.button_for("totaal", 9))
    assert versions(terminal) == [(1, "balie-standaard", 2, None)]


def test_a_visitor_who_walks_away_is_reset_and_then_the_switch_happens(terminal, central):
    terminal.tap(terminal.button_for("totaal", 3))
    central.questionnaire = version_2()
    sync_round(terminal)
    terminal.frames(3)
    assert terminal.app.questionnaire.version == 1

    terminal.advance(30.5)  # idle warning
    assert terminal.app.questionnaire.version == 1
    terminal.advance(10.5)  # no answer: the visit ends as idle, back to welcome

    assert terminal.screen == "welcome"
    assert terminal.app.questionnaire.version == 2
    assert NEW_FIRST in texts(terminal.current_screen())
    assert versions(terminal) == [(1, "balie-standaard", 1, "idle")]


def test_a_bad_questionnaire_from_central_is_never_shown(terminal, central):
    welcome = terminal.current_screen()
    central.questionnaire = version_2(faces=4)  # a smiley with 4 faces: invalid

    sync_round(terminal)
    terminal.frames(3)

    assert terminal.app.switcher.pending is None
    assert terminal.app.questionnaire.version == 1
    assert OLD_FIRST in texts(welcome) and NEW_FIRST not in texts(welcome)
    assert not (terminal.buffer_path.parent / "questionnaire-central.toml").exists()
    beat = central.heartbeats[-1]
    assert beat.questionnaire == QuestionnaireRef(id="balie-standaard", version=1)
    assert "must be 3 or 5, got 4" in beat.questionnaire_error
    terminal.tap(terminal.button_for("totaal", 7))
    screen = terminal.current_screen()
    assert (screen.question.id, screen.total) == ("wachttijd", 8)
    assert versions(terminal) == [(1, "balie-standaard", 1, None)]
