"""A visitor's way through the questionnaire: every tap stored in a real buffer file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.flow import VisitorFlow
from kiosk.questionnaire import load_questionnaire, parse_questionnaire
from kiosk.settings import load_settings

SMALL = """
id = "klein"
version = 3

[[questions]]
id = "cijfer"
type = "grade"
aspect = "totaal"
text.nl = "Welk cijfer?"

[[questions]]
id = "snel"
type = "yesno"
aspect = "wachttijd"
text.nl = "Was het snel?"

[[questions]]
id = "opmerking"
type = "comment"
aspect = "opmerking"
text.nl = "Nog iets?"
"""

ONE_QUESTION = """
id = "kort"
version = 1

[[questions]]
id = "gezicht"
type = "smiley"
aspect = "totaal"
faces = 3
text.nl = "Hoe was het?"
"""


class MonotonicClock:
    """The flow's monotonic clock, moved by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "data" / "buffer.sqlite3"


@pytest.fixture
def buf(db_path, clock):
    b = Buffer.open(db_path, time_source=clock)
    yield b
    b.close()


@pytest.fixture(scope="module")
def shipped():
    return load_questionnaire(load_settings(None).questionnaire_path)


@pytest.fixture
def small():
    return parse_questionnaire(SMALL, "small.toml")


@pytest.fixture
def mono():
    return MonotonicClock()


def make_flow(questionnaire, buf, mono, **kw) -> VisitorFlow:
    kw.setdefault("location_id", "stadhuis")
    kw.setdefault("language", "nl")
    kw.setdefault("rapid_repeat_s", 20)
    return VisitorFlow(questionnaire, buf, monotonic=mono, **kw)


def rows(path: Path, sql: str, *params) -> list[tuple]:
    """Read the file through a separate connection, as another process would."""
    con = sqlite3.connect(str(path))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def responses(path: Path) -> list[tuple]:
    return rows(path, "SELECT id, questionnaire_id, questionnaire_version, location_id, language, "
                      "closed_at IS NOT NULL, end_reason, suspect, suspect_reason "
                      "FROM responses ORDER BY seq")


def answers(path: Path) -> list[tuple]:
    return rows(path, "SELECT response_id, ordinal, question_id, aspect, value_num, value_text "
                      "FROM answers ORDER BY response_id, ordinal")


# --------------------------------------------------------------------------- one tap


def test_one_tap_on_the_welcome_question_stores_a_response_with_that_answer(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono, location_id="stadhuis", language="nl")
    assert flow.current().kind == "welcome"
    assert flow.current().question.id == "totaal"

    step = flow.answer(8)

    assert step.kind == "question"
    assert step.question.id == "wachttijd"
    assert (step.position, step.total) == (2, len(shipped.questions))
    stats = buf.stats()
    assert (stats.responses_total, stats.responses_open, stats.answers_total) == (1, 1, 1)
    [response] = responses(db_path)
    assert response[1:6] == ("balie-standaard", 1, "stadhuis", "nl", 0)  # still open
    assert answers(db_path) == [(flow.draft.id, 1, "totaal", "totaal", 8, None)]


def test_the_stored_response_carries_the_questionnaire_id_version_location_and_language(
        small, buf, db_path, mono):
    flow = make_flow(small, buf, mono, location_id="balie-3", language="en")
    flow.answer(4)
    [response] = responses(db_path)
    assert response[1:5] == ("klein", 3, "balie-3", "en")


# --------------------------------------------------------------------------- whole visit


def test_answering_every_question_in_order_ends_on_thanks_and_closes_the_response_completed(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    kinds = []
    step = flow.answer(7)
    kinds.append(step.kind)
    for value in (5, 4, 3, 2, "yes", "rijbewijs"):
        step = flow.answer(value)
        kinds.append(step.kind)
    step = flow.submit_comment("Prima geholpen")

    assert kinds == ["question"] * 6 + ["comment"]
    assert step.kind == "thanks"
    assert not flow.in_visit
    [response] = responses(db_path)
    assert response[5:7] == (1, "completed")
    stored = [(a[2], a[4] if a[4] is not None else a[5]) for a in answers(db_path)]
    assert stored == [("totaal", 7), ("wachttijd", 5), ("vriendelijkheid", 4),
                      ("deskundigheid", 3), ("duidelijkheid", 2), ("verwachting", "yes"),
                      ("dienst", "rijbewijs"), ("opmerking", "Prima geholpen")]
    assert [a[1] for a in answers(db_path)] == list(range(1, 9))
    assert buf.stats().responses_open == 0
    # the next visitor starts on the welcome screen again
    assert flow.current().kind == "welcome"


def test_a_questionnaire_of_one_question_is_done_after_one_tap(buf, db_path, mono):
    flow = make_flow(parse_questionnaire(ONE_QUESTION), buf, mono)
    assert flow.answer(3).kind == "thanks"
    [response] = responses(db_path)
    assert response[5:7] == (1, "completed")


def test_a_skipped_question_leaves_no_answer_row(small, buf, db_path, mono):
    flow = make_flow(small, buf, mono)
    flow.answer(6)
    step = flow.skip()
    assert step.kind == "comment"
    assert flow.skip().kind == "thanks"

    assert [a[2] for a in answers(db_path)] == ["cijfer"]
    [response] = responses(db_path)
    assert response[5:7] == (1, "completed")


def test_the_welcome_question_cannot_be_skipped(small, buf, db_path, mono):
    flow = make_flow(small, buf, mono)
    with pytest.raises(RuntimeError, match="cannot be skipped"):
        flow.skip()
    assert flow.current().kind == "welcome"
    assert buf.stats().responses_total == 0


# --------------------------------------------------------------------------- invalid answers


def test_a_grade_of_11_is_refused_and_nothing_is_stored(shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    with pytest.raises(ValueError, match="11 is not allowed"):
        flow.answer(11)
    assert buf.stats().responses_total == 0
    assert rows(db_path, "SELECT count(*) FROM responses") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM answers") == [(0,)]


def test_a_refused_first_tap_does_not_start_a_visit(shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    with pytest.raises(ValueError):
        flow.answer(11)
    # still on the welcome screen: not in a visit, and the welcome question is still unskippable
    assert not flow.in_visit
    assert flow.current().kind == "welcome"
    with pytest.raises(RuntimeError):
        flow.skip()
    # the refused tap did not count as a visit start for the rapid-repeat check
    mono.now += 1
    flow.answer(8)
    [response] = responses(db_path)
    assert response[7:9] == (0, None)


def test_a_refused_follow_up_answer_stores_nothing_and_stays_on_the_question(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    flow.answer(8)
    with pytest.raises(ValueError):
        flow.answer(6)  # a 5-face smiley
    with pytest.raises(ValueError):
        flow.answer(True)  # bool is not a grade or a face
    assert flow.current().question.id == "wachttijd"
    assert buf.stats().answers_total == 1


# --------------------------------------------------------------------------- comments


PERSONAL = "Mail me op jan.jansen@example.nl of bel 06-87654321, mijn BSN is 111222333."
RAW_PIECES = ("jan.jansen@example.nl", "jansen", "87654321", "111222333")


def file_bytes(db_path: Path) -> dict[str, bytes]:
    found = {}
    for suffix in ("", "-wal"):
        p = Path(f"{db_path}{suffix}")
        if p.exists():
            found[p.name] = p.read_bytes()
    return found


def test_a_comment_is_scrubbed_before_it_is_stored(small, buf, db_path, mono):
    flow = make_flow(small, buf, mono)
    flow.answer(9)
    flow.answer("yes")
    assert flow.submit_comment(PERSONAL).kind == "thanks"

    [(text,)] = rows(db_path, "SELECT value_text FROM answers WHERE question_id = 'opmerking'")
    assert text == "Mail me op [e-mail] of bel [telefoon], mijn BSN is [BSN]."

    # Neither the database file nor its write-ahead log holds the raw text.
    written = file_bytes(db_path)
    assert f"{db_path.name}-wal" in written  # the buffer is still open: the taps sit in the WAL
    for name, data in written.items():
        for piece in RAW_PIECES:
            assert piece.encode() not in data, f"{piece!r} found in {name}"
    assert b"[telefoon]" in b"".join(written.values())

    buf.close()  # checkpoints the WAL into the database file
    for name, data in file_bytes(db_path).items():
        for piece in RAW_PIECES:
            assert piece.encode() not in data, f"{piece!r} found in {name} after checkpoint"


def test_a_comment_given_through_answer_is_scrubbed_too(small, buf, db_path, mono):
    flow = make_flow(small, buf, mono)
    flow.answer(9)
    flow.skip()
    assert flow.answer("bel 06-87654321").kind == "thanks"
    assert rows(db_path, "SELECT value_text FROM answers WHERE question_id = 'opmerking'") == [
        ("bel [telefoon]",)]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_comment_stores_nothing_and_completes_the_visit(small, buf, db_path, mono, text):
    flow = make_flow(small, buf, mono)
    flow.answer(9)
    flow.answer("no")
    assert flow.submit_comment(text).kind == "thanks"
    assert [a[2] for a in answers(db_path)] == ["cijfer", "snel"]
    [response] = responses(db_path)
    assert response[5:7] == (1, "completed")


def test_a_comment_cannot_be_submitted_on_a_rating_question(small, buf, db_path, mono):
    flow = make_flow(small, buf, mono)
    flow.answer(9)
    with pytest.raises(RuntimeError, match="not a comment question"):
        flow.submit_comment("hallo")
    assert buf.stats().answers_total == 1


def test_a_comment_longer_than_max_length_is_refused(buf, db_path, mono):
    q = parse_questionnaire(SMALL.replace('text.nl = "Nog iets?"',
                                          'text.nl = "Nog iets?"\nmax_length = 10'))
    flow = make_flow(q, buf, mono)
    flow.answer(9)
    flow.skip()
    with pytest.raises(ValueError, match="at most 10"):
        flow.submit_comment("dit is veel te lang")
    assert buf.stats().answers_total == 1
    assert flow.current().kind == "comment"


# --------------------------------------------------------------------------- walking away


def test_abandon_idle_keeps_the_answers_given_and_closes_with_end_reason_idle(
        shipped, buf, db_path, clock, mono):
    flow = make_flow(shipped, buf, mono)
    flow.answer(6)
    flow.answer(4)
    clock.advance(45)
    flow.abandon("idle")

    assert not flow.in_visit
    assert flow.current().kind == "welcome"
    [response] = responses(db_path)
    assert response[5:7] == (1, "idle")
    assert [a[2] for a in answers(db_path)] == ["totaal", "wachttijd"]
    [(closed_at,)] = rows(db_path, "SELECT closed_at FROM responses")
    assert closed_at == clock.wall


def test_abandon_before_any_tap_stores_nothing(shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    flow.abandon("idle")
    assert buf.stats().responses_total == 0


def test_the_next_visit_after_an_abandoned_one_is_a_new_response(shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    flow.answer(6)
    flow.abandon("abandoned")
    mono.now += 120
    flow.answer(9)
    first, second = responses(db_path)
    assert first[0] != second[0]
    assert (first[6], second[5]) == ("abandoned", 0)


# --------------------------------------------------------------------------- rapid repeats


def test_a_visit_starting_soon_after_the_previous_one_is_kept_and_flagged_suspect(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono, rapid_repeat_s=20)
    flow.answer(10)
    flow.abandon("abandoned")
    mono.now += 3
    flow.answer(1)
    flow.abandon("abandoned")

    first, second = responses(db_path)
    assert first[7:9] == (0, None)
    assert second[7] == 1
    assert second[8] == "started 3.0 s after the previous visit"
    assert buf.stats().responses_total == 2  # flagged, never dropped


def test_a_second_visitor_arriving_after_the_rapid_repeat_window_is_not_suspect(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono, rapid_repeat_s=20)
    flow.answer(8)
    flow.abandon("idle")
    mono.now += 20.0  # exactly the window: no longer a rapid repeat
    flow.answer(7)
    flow.abandon("idle")
    mono.now += 95
    flow.answer(6)

    assert [(r[7], r[8]) for r in responses(db_path)] == [(0, None)] * 3


def test_the_rapid_repeat_window_counts_from_the_start_of_the_previous_visit(
        small, buf, db_path, mono):
    flow = make_flow(small, buf, mono, rapid_repeat_s=20)
    flow.answer(8)
    mono.now += 15
    flow.answer("yes")
    flow.skip()  # completed 15 s after it started
    mono.now += 10  # 25 s after the previous start, 10 s after its end
    flow.answer(5)
    assert [r[7] for r in responses(db_path)] == [0, 0]


# --------------------------------------------------------------------------- language


def test_switching_language_during_a_visit_updates_the_stored_response(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono, language="nl")
    flow.answer(8)
    assert responses(db_path)[0][4] == "nl"
    flow.set_language("en")
    assert responses(db_path)[0][4] == "en"
    assert flow.draft.language == "en"
    flow.answer(4)
    flow.abandon("idle")
    assert responses(db_path)[0][4] == "en"


def test_a_language_chosen_before_the_first_tap_is_the_responses_language(
        shipped, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono, language="nl")
    flow.set_language("en")
    assert buf.stats().responses_total == 0  # choosing a language stores nothing by itself
    flow.answer(8)
    assert responses(db_path)[0][4] == "en"


# --------------------------------------------------------------------------- a new questionnaire


def test_a_new_questionnaire_is_refused_during_a_visit_and_used_from_the_next_one(
        shipped, small, buf, db_path, mono):
    flow = make_flow(shipped, buf, mono)
    flow.answer(8)
    with pytest.raises(RuntimeError, match="middle of a visit"):
        flow.use_questionnaire(small)
    assert flow.questionnaire is shipped and flow.current().question.id == "wachttijd"
    flow.abandon("abandoned")

    flow.use_questionnaire(small)

    assert flow.current().question.id == "cijfer" and flow.current().total == 3
    flow.answer(7)
    assert [(r[1], r[2]) for r in responses(db_path)] == [("balie-standaard", 1), ("klein", 3)]
