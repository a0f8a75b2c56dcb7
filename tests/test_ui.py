"""The visitor's flow on the real Kivy window under Xvfb, driven by touches on the real widgets."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = pytest.mark.ui

FOLLOW_UPS = ("wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid", "verwachting", "dienst")


def rows(driver, sql, *params):
    with sqlite3.connect(driver.buffer_path) as db:
        return db.execute(sql, params).fetchall()


def answers(driver):
    return dict(rows(driver, "SELECT question_id, coalesce(value_num, value_text) FROM answers"))


def responses(driver):
    return rows(driver, "SELECT seq, end_reason, suspect, suspect_reason, language FROM responses ORDER BY seq")


def type_on_keyboard(driver, text):
    keyboard = driver.current_screen().ids.keyboard
    keys = {key.text.lower(): key for row in ("row0", "row1", "row2", "row3")
            for key in keyboard.ids[row].children}
    for char in text:
        if char == " ":
            driver.tap(keyboard.ids.space)
        else:
            driver.tap(keys[char])


def test_one_tap_on_the_welcome_screen_is_a_stored_rating(kiosk):
    assert kiosk.screen == "welcome"
    kiosk.tap(kiosk.button_for("totaal", 8))
    assert kiosk.screen == "question"
    assert kiosk.current_screen().question.id == "wachttijd"
    assert answers(kiosk) == {"totaal": 8}
    assert rows(kiosk, "SELECT questionnaire_id, questionnaire_version FROM responses") == [
        ("balie-standaard", 1)]


def test_full_flow_stores_every_answer_and_ends_on_thanks_then_welcome(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 7))
    choices = {"wachttijd": 4, "vriendelijkheid": 5, "deskundigheid": 3, "duidelijkheid": 2,
               "verwachting": "no", "dienst": "rijbewijs"}
    for position, question_id in enumerate(FOLLOW_UPS, start=2):
        screen = kiosk.current_screen()
        assert (screen.question.id, screen.position, screen.total) == (question_id, position, 8)
        kiosk.tap(kiosk.button_for(question_id, choices[question_id]))
    assert kiosk.screen == "comment"
    type_on_keyboard(kiosk, "snel geholpen")
    kiosk.tap(kiosk.current_screen().ids.send)
    assert kiosk.screen == "thanks"
    stored = answers(kiosk)
    assert stored == {"totaal": 7, **choices, "opmerking": "Snel geholpen"}
    assert responses(kiosk) == [(1, "completed", 0, None, "nl")]
    kiosk.advance(5.5)
    assert kiosk.screen == "welcome"


def test_skipping_follow_ups_stores_nothing_for_them(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 9))
    for _ in FOLLOW_UPS:
        kiosk.tap(kiosk.current_screen().ids.skip)
    assert kiosk.screen == "comment"
    kiosk.tap(kiosk.current_screen().ids.skip)
    assert kiosk.screen == "thanks"
    assert answers(kiosk) == {"totaal": 9}
    assert responses(kiosk)[0][1] == "completed"


def test_language_switch_changes_every_text_at_once_and_resets_for_the_next_visitor(kiosk):
    welcome = kiosk.current_screen()
    first = kiosk.app.questionnaire.first
    english = [b for b in welcome.ids.languages.children if b.text == "English"][0]
    kiosk.tap(english)
    texts = {w.text for w in welcome.walk() if hasattr(w, "text")}
    assert first.text_for("en") in texts
    assert "Tap a grade from 1 to 10" in texts
    assert first.text_for("nl") not in texts
    kiosk.tap(kiosk.button_for("totaal", 6))
    question = kiosk.current_screen()
    texts = {w.text for w in question.walk() if hasattr(w, "text")}
    assert "Question 2 of 8" in texts
    assert "Skip this question" in texts
    wachttijd = kiosk.panel("wachttijd")
    assert [b.label for b in wachttijd.buttons] == wachttijd.question.labels_for("en")
    assert responses(kiosk)[0][4] == "en"
    kiosk.tap(question.ids.skip)
    kiosk.navigator.to_welcome()
    kiosk.frames()
    texts = {w.text for w in kiosk.current_screen().walk() if hasattr(w, "text")}
    assert first.text_for("nl") in texts


def test_idle_visitor_gets_a_warning_and_can_carry_on(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 5))
    kiosk.advance(29)
    assert kiosk.navigator.idle_warning.parent is None
    kiosk.advance(2)
    warning = kiosk.navigator.idle_warning
    assert warning.parent is not None, "the idle warning should be open"
    kiosk.tap(warning.ids.still_here)
    assert warning.parent is None
    assert kiosk.screen == "question"
    assert responses(kiosk)[0][1] is None  # still open: the visit goes on


def test_idle_reset_keeps_partial_answers_and_returns_to_welcome(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 4))
    kiosk.tap(kiosk.button_for("wachttijd", 2))
    kiosk.advance(30.5)
    warning = kiosk.navigator.idle_warning
    assert warning.parent is not None
    assert warning.seconds_left == 10
    kiosk.advance(11)
    assert warning.parent is None
    assert kiosk.screen == "welcome"
    assert answers(kiosk) == {"totaal": 4, "wachttijd": 2}
    assert responses(kiosk)[0][1] == "idle"



def test_the_idle_warning_binds_nothing_more_each_time_it_opens(kiosk):
    # Kivy's ModalView.open binds center and size anew on every opening and never
    # unbinds them: one warning kept for the terminal's life grew by two observers per
    # visitor who walked away (bench/memory.py: ~0.2 MiB per 1000 visitors).
    warning = kiosk.navigator.idle_warning
    props = ("center", "size", "pos", "seconds_left")

    def observers():
        return {p: len(warning.get_property_observers(p)) for p in props}

    def walk_away():
        kiosk.tap(kiosk.button_for("totaal", 6))
        kiosk.advance(30.5, step=1.0)
        assert warning.parent is not None, "the idle warning should be open"
        assert warning.center == pytest.approx(kiosk.app.root.get_root_window().center)
        kiosk.advance(16, step=1.0)
        assert warning.parent is None and kiosk.screen == "welcome"

    walk_away()
    after_one = observers()
    for _ in range(3):
        walk_away()
    assert observers() == after_one

def test_comment_typed_on_the_keyboard_is_scrubbed_before_it_is_stored(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 8))
    for _ in FOLLOW_UPS:
        kiosk.tap(kiosk.current_screen().ids.skip)
    texts = {w.text for w in kiosk.current_screen().walk() if hasattr(w, "text")}
    assert "Typ geen naam, telefoonnummer of e-mailadres." in texts
    type_on_keyboard(kiosk, "bel me 0612345678 of bsn 111222333")
    kiosk.tap(kiosk.current_screen().ids.send)
    stored = answers(kiosk)["opmerking"]
    assert stored == "Bel me [telefoon] of bsn [BSN]"
    raw = b"".join(p.read_bytes() for p in kiosk.buffer_path.parent.glob("buffer.sqlite3*"))
    assert b"0612345678" not in raw and b"111222333" not in raw


def test_rapid_repeat_visits_are_flagged_not_dropped(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 10))
    kiosk.navigator.to_welcome()  # the visitor walks away; the next one starts at once
    kiosk.frames()
    kiosk.advance(3)
    kiosk.tap(kiosk.button_for("totaal", 10))
    first, second = responses(kiosk)
    assert first[2] == 0
    assert second[2] == 1 and "previous visit" in second[3]


def test_a_visit_after_a_calm_pause_is_not_suspect(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 7))
    kiosk.navigator.to_welcome()
    kiosk.advance(25)
    kiosk.tap(kiosk.button_for("totaal", 8))
    assert [r[2] for r in responses(kiosk)] == [0, 0]


@pytest.mark.parametrize("key, name", [(27, "Esc"), (282, "F1"), (1073741885, "F4")])
def test_escape_f1_and_alt_f4_keys_do_nothing(kiosk, key, name):
    from kivy.base import EventLoop
    from kivy.core.window import Window

    kiosk.tap(kiosk.button_for("totaal", 6))
    Window.dispatch("on_key_down", key, 0, "", ["alt"] if name == "F4" else [])
    Window.dispatch("on_keyboard", key, 0, "", ["alt"] if name == "F4" else [])
    kiosk.frames()
    assert EventLoop.status != "closed"
    assert kiosk.app.root.get_root_window() is Window
    assert kiosk.screen == "question"
    assert kiosk.app._app_settings is None, "the settings panel must not have been built"


def test_window_close_request_is_refused_in_kiosk_mode(kiosk):
    from kivy.base import EventLoop
    from kivy.core.window import Window

    assert Window.dispatch("on_request_close") is True
    kiosk.frames()
    assert EventLoop.status != "closed"
    assert kiosk.app.root.get_root_window() is Window


def _buttons(widget):
    from kivy.uix.behaviors import ButtonBehavior

    return [w for w in widget.walk(restrict=True) if isinstance(w, ButtonBehavior)]


def test_every_touch_target_is_at_least_48_dp_and_rating_targets_bigger(kiosk):
    from kivy.metrics import dp

    seen = {}
    kiosk.tap(kiosk.button_for("totaal", 8))
    for question_id in FOLLOW_UPS:
        seen[question_id] = kiosk.current_screen()
        for button in _buttons(kiosk.current_screen()):
            assert min(button.size) >= dp(48), (question_id, button, button.size)
        for button in kiosk.panel(question_id).buttons:
            assert min(button.size) >= dp(72), (question_id, button.text, button.size)
        kiosk.tap(kiosk.current_screen().ids.skip)
    for button in _buttons(kiosk.current_screen()):  # the comment screen and its keyboard
        assert min(button.size) >= dp(48), ("comment", button.text, button.size)
    kiosk.navigator.to_welcome()
    kiosk.frames()
    for button in kiosk.panel("totaal").buttons:
        assert min(button.size) >= dp(96) or button.height >= dp(96), button.size


def test_smileys_always_carry_a_text_label(kiosk):
    for question in kiosk.app.questionnaire.questions:
        if question.type == "smiley":
            labels = [b.label.strip() for b in kiosk.panel(question.id).buttons]
            assert len(labels) == question.faces and all(labels), (question.id, labels)


def test_the_comment_field_forgets_what_was_typed_after_sending(kiosk):
    kiosk.tap(kiosk.button_for("totaal", 8))
    for _ in FOLLOW_UPS:
        kiosk.tap(kiosk.current_screen().ids.skip)
    comment = kiosk.current_screen()
    type_on_keyboard(kiosk, "bel 0612345678")
    assert comment.ids.text._undo, "typing should have made undo history"
    kiosk.tap(comment.ids.send)
    assert comment.ids.text.text == ""
    assert comment.ids.text._undo == [] and comment.ids.text._redo == []


@pytest.fixture
def fresh_app(tmp_path):
    """A started app of which no frame has been drawn yet (``fresh_app(device_state=...)``)."""
    from tests.kivy_driver import start_app

    drivers = []

    def start(**kwargs):
        folder = tmp_path / f"app{len(drivers)}"
        folder.mkdir()
        driver = start_app(folder, frames=0, **kwargs)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.close()


def test_only_the_welcome_screen_is_made_before_the_first_frame_the_rest_follow(fresh_app):
    driver = fresh_app()
    navigator = driver.navigator
    assert set(navigator.screens.built()) == {"welcome"}
    assert set(navigator.panels.built()) == {"totaal"}
    assert driver.app.is_ready is False
    frames = driver.until_ready()
    assert set(navigator.screens.built()) == {"welcome", "question", "comment", "thanks",
                                              "out_of_order"}
    assert set(navigator.panels.built()) == {"totaal", *FOLLOW_UPS}
    assert sorted(driver.app.root.screen_names) == ["comment", "out_of_order", "question",
                                                    "thanks", "welcome"]
    # one step per frame after the first: the buffer's SQLAlchemy, 4 screens, 6 panels
    assert frames >= 11
    assert driver.app.sync is None  # not enrolled


def test_a_tap_before_the_other_screens_are_made_still_works(fresh_app):
    driver = fresh_app()
    driver.frames(1)  # the first frame only: nothing else has been made yet
    assert set(driver.navigator.screens.built()) == {"welcome"}
    x, y = driver.button_for("totaal", 9).to_window(*driver.button_for("totaal", 9).center)
    driver.tap_at(x, y)
    assert driver.screen == "question"
    assert driver.current_screen().question.id == "wachttijd"
    assert answers(driver) == {"totaal": 9}


def test_an_enrolled_terminal_starts_sync_only_after_its_first_frame(fresh_app):
    from kiosk.state import DeviceState

    state = DeviceState(central_url="http://127.0.0.1:9", device_id="dev-00000000", token="t" * 43)
    driver = fresh_app(device_state=state)
    assert driver.app.sync is None  # requests and APScheduler wait for the first frame
    driver.until_ready()
    assert driver.app.sync is not None
    assert driver.app.sync.scheduler.running


def test_the_nightly_buffer_upkeep_is_scheduled_once_the_app_is_ready(fresh_app):
    driver = fresh_app()
    assert driver.app.upkeep is None
    driver.until_ready()
    job = driver.app.upkeep.job
    assert driver.app.upkeep.scheduler.running
    assert (job.next_run_time.hour, job.next_run_time.minute) >= (3, 30)  # 03:30 + jitter
