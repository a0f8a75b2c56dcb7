"""Questionnaire files: the shipped one loads, and every kind of mistake gets a clear message."""

from __future__ import annotations

import textwrap

import pytest

from kiosk.errors import QuestionnaireError
from kiosk.paths import config_dir
from kiosk.questionnaire import Option, Question, Questionnaire, load_questionnaire, parse_questionnaire

SHIPPED = config_dir() / "questionnaires" / "standaard.toml"

HEADER = 'id = "test"\nversion = 1\n'
GRADE = '[[questions]]\nid = "totaal"\ntype = "grade"\naspect = "totaal"\ntext.nl = "Cijfer?"\n'
YESNO = '[[questions]]\nid = "vooraf"\ntype = "yesno"\naspect = "verwachting"\ntext.nl = "Wist u het?"\n'
COMMENT = ('[[questions]]\nid = "opmerking"\ntype = "comment"\naspect = "opmerking"\n'
           'text.nl = "Nog iets?"\n')


def smiley(qid="wachttijd", extra='faces = 5\n'):
    return (f'[[questions]]\nid = "{qid}"\ntype = "smiley"\naspect = "wachttijd"\n'
            f'text.nl = "Wachttijd?"\n{extra}')


def problems_of(text: str, source: str = "bad.toml") -> list[str]:
    """Parse ``text``; it must fail. Return the problems, after checking the error is clean."""
    with pytest.raises(QuestionnaireError) as caught:
        parse_questionnaire(textwrap.dedent(text), source=source)
    message = str(caught.value)
    assert message.startswith(f"{source}: invalid questionnaire")
    for leak in ("pydantic", "Traceback", "Input should", "errors.pydantic.dev", "Value error"):
        assert leak not in message
    return caught.value.problems


def only_problem(text: str) -> str:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped questionnaire -------------------------------------------------------------

def test_shipped_questionnaire_loads_with_eight_questions_in_order():
    q = load_questionnaire(SHIPPED)
    assert (q.id, q.version) == ("balie-standaard", 1)
    assert [x.id for x in q.questions] == [
        "totaal", "wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid",
        "verwachting", "dienst", "opmerking"]
    assert [x.type for x in q.questions] == [
        "grade", "smiley", "smiley", "smiley", "smiley", "yesno", "choice", "comment"]
    assert q.first.aspect == "totaal"
    assert q.follow_ups == q.questions[1:]


def test_shipped_questionnaire_has_english_for_every_text():
    q = load_questionnaire(SHIPPED)
    assert q.title_for("en")
    for question in q.questions:
        assert "en" in question.text, question.id
        if question.labels:
            assert question.labels_for("en") != question.labels_for("nl")
        for option in question.options:
            assert "en" in option.label, option.value


def test_shipped_comment_question_is_the_optional_last_question():
    # The warning against typing personal details is on the comment screen itself
    # (see tests/test_ui.py), so it shows whatever the questionnaire says.
    comment = load_questionnaire(SHIPPED).questions[-1]
    assert comment.type == "comment" and comment.max_length == 500


def test_shipped_service_choice_offers_something_else():
    dienst = load_questionnaire(SHIPPED).questions[6]
    assert 6 <= len(dienst.options) <= 12
    assert dienst.options[-1].value == "iets-anders"
    assert isinstance(dienst.options[0], Option)


# --- the API other code uses -----------------------------------------------------------------

def test_texts_fall_back_to_dutch_for_a_missing_language():
    q = load_questionnaire(SHIPPED)
    grade = q.first
    assert isinstance(q, Questionnaire) and isinstance(grade, Question)
    assert grade.text_for("tr") == grade.text_for("nl") == "Welk rapportcijfer geeft u ons vandaag?"
    assert grade.low_label_for("tr") == "heel slecht"
    assert grade.high_label_for("en") == "excellent"
    assert q.questions[1].labels_for("de") == q.questions[1].labels_for("nl")
    assert q.questions[6].options[0].label_for("fy") == "Paspoort of ID-kaart"


def test_optional_texts_are_none_when_not_given():
    q = parse_questionnaire(HEADER + GRADE + smiley())
    assert q.title_for("nl") is None
    assert q.first.low_label_for("nl") is None and q.first.high_label_for("en") is None
    assert q.questions[1].labels_for("nl") is None
    assert q.first.faces is None and q.first.options == () and q.first.max_length is None


def test_allowed_values_per_type():
    q = load_questionnaire(SHIPPED)
    by_id = {x.id: x for x in q.questions}
    assert by_id["totaal"].allowed_values() == tuple(range(1, 11))
    assert by_id["wachttijd"].allowed_values() == (1, 2, 3, 4, 5)
    assert by_id["verwachting"].allowed_values() == ("yes", "no")
    assert by_id["dienst"].allowed_values()[0] == "paspoort-id"
    assert by_id["opmerking"].allowed_values() == ()


@pytest.mark.parametrize("qid, value", [
    ("totaal", 0), ("totaal", 11), ("totaal", True), ("totaal", 7.0), ("totaal", "7"),
    ("wachttijd", 6), ("verwachting", "ja"), ("dienst", "hondenbelasting"),
    ("opmerking", "x" * 501), ("opmerking", 5),
])
def test_check_value_refuses_an_answer_that_is_not_allowed(qid, value):
    question = {x.id: x for x in load_questionnaire(SHIPPED).questions}[qid]
    with pytest.raises(ValueError, match=qid):
        question.check_value(value)


@pytest.mark.parametrize("qid, value", [
    ("totaal", 1), ("totaal", 10), ("wachttijd", 5), ("verwachting", "no"),
    ("dienst", "rijbewijs"), ("opmerking", ""), ("opmerking", "x" * 500),
])
def test_check_value_accepts_an_allowed_answer(qid, value):
    question = {x.id: x for x in load_questionnaire(SHIPPED).questions}[qid]
    question.check_value(value)


def test_comment_max_length_defaults_to_500_and_can_be_set():
    q = parse_questionnaire(HEADER + GRADE + COMMENT)
    assert q.questions[-1].max_length == 500
    q = parse_questionnaire(HEADER + GRADE + COMMENT + "max_length = 80\n")
    assert q.questions[-1].max_length == 80


def test_models_are_hashable_and_equal_by_content():
    a, b = load_questionnaire(SHIPPED), load_questionnaire(SHIPPED)
    assert a == b and hash(a) == hash(b)
    assert len({a.first, b.first, a.questions[1]}) == 2


def test_models_are_frozen():
    q = load_questionnaire(SHIPPED)
    with pytest.raises(Exception):
        q.version = 2
    with pytest.raises(Exception):
        q.first.type = "smiley"


# --- broken files: file-level problems -----------------------------------------------------

def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "weg.toml"
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(path)
    assert str(path) in str(caught.value)
    assert caught.value.problems == ["file not found"]


def test_a_folder_instead_of_a_file_is_refused(tmp_path):
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(tmp_path)
    assert caught.value.problems == ["this is a folder, not a file"]


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "kapot.toml"
    path.write_text(HEADER + GRADE + 'aspect "totaal"\n', encoding="utf-8")
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(path)
    assert str(caught.value).startswith(f"{path}: invalid questionnaire")
    [problem] = caught.value.problems
    assert problem.startswith("line 8, column 8: ")
    assert "(at line" not in problem


def test_toml_syntax_error_in_parsed_text_uses_the_source_name():
    assert only_problem('id = "x"\nversion = \n').startswith("line 2, column 11: ")


def test_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('id = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(path)
    assert "not UTF-8" in caught.value.problems[0]


def test_version_zero_is_refused():
    assert only_problem('id = "x"\nversion = 0\n' + GRADE) == "field 'version': must be at least 1, got 0"


def test_version_must_be_a_whole_number_not_text():
    assert only_problem('id = "x"\nversion = "1"\n' + GRADE) == (
        "field 'version': must be a whole number, got '1'")


def test_questionnaire_id_must_be_a_slug():
    problem = only_problem('id = "Balie Standaard"\nversion = 1\n' + GRADE)
    assert problem.startswith("field 'id': must be a short code of lowercase letters")
    assert "'Balie Standaard'" in problem


def test_missing_id_is_named():
    assert only_problem("version = 1\n" + GRADE) == "field 'id': is required"


def test_no_questions_is_refused():
    assert only_problem(HEADER) == (
        "field 'questions': at least one question is needed; add a [[questions]] table")


def test_misspelt_top_level_key_is_refused():
    problem = only_problem(HEADER + 'titel.nl = "Hoi"\n' + GRADE)
    assert problem.startswith("field 'titel': unknown field; check the spelling")
    assert "title" in problem


def test_title_without_dutch_is_refused():
    assert only_problem(HEADER + '[title]\nen = "Hi"\n' + GRADE) == (
        "field 'title': Dutch text ('nl') is required")


# --- broken files: question-level problems -------------------------------------------------

def test_unknown_type_lists_the_known_types():
    text = HEADER + GRADE + YESNO + GRADE.replace('"totaal"\ntype = "grade"', '"sterren"\ntype = "stars"')
    assert only_problem(text) == (
        "question 'sterren' (#3), field 'type': unknown type 'stars'; "
        "use one of grade, smiley, choice, yesno, comment")


def test_duplicate_question_id_names_both_questions():
    assert only_problem(HEADER + GRADE + YESNO + GRADE) == (
        "question 'totaal' (#3): id 'totaal' is already used by question #1")


def test_missing_dutch_text_is_named():
    text = HEADER + GRADE + YESNO.replace("text.nl", "text.en")
    assert only_problem(text) == "question 'vooraf' (#2), field 'text': Dutch text ('nl') is required"


def test_empty_text_is_refused():
    text = HEADER + GRADE + YESNO.replace('"Wist u het?"', '"   "')
    assert only_problem(text) == "question 'vooraf' (#2), field 'text.nl': text must not be empty"


def test_language_key_must_be_a_lowercase_two_letter_code():
    text = HEADER + GRADE + YESNO + 'text.EN = "Did you know?"\n'
    assert only_problem(text) == (
        "question 'vooraf' (#2), field 'text': language 'EN' is not a lowercase "
        "2-letter code (like 'nl' or 'en')")


def test_missing_question_text_is_named():
    text = HEADER + GRADE.replace('text.nl = "Cijfer?"\n', "")
    assert only_problem(text) == "question 'totaal' (#1), field 'text': is required"


def test_question_without_id_is_named_by_its_number():
    text = HEADER + GRADE + YESNO.replace('id = "vooraf"\n', "")
    assert only_problem(text) == "question #2, field 'id': is required"


def test_smiley_with_four_faces_is_refused():
    text = HEADER + GRADE + smiley(extra="faces = 4\n")
    assert only_problem(text) == "question 'wachttijd' (#2), field 'faces': must be 3 or 5, got 4"


def test_smiley_without_faces_is_refused():
    text = HEADER + GRADE + smiley(extra="")
    assert only_problem(text) == (
        "question 'wachttijd' (#2), field 'faces': is required for a smiley question: 3 or 5")


def test_smiley_label_count_must_match_faces():
    labels = 'labels.nl = ["Slecht", "Gaat wel", "Goed"]\nlabels.en = ["Bad", "Okay", "Good", "Great"]\n'
    text = HEADER + GRADE + smiley(extra="faces = 3\n" + labels)
    assert only_problem(text) == (
        "question 'wachttijd' (#2), field 'labels.en': needs one label per face: 3, got 4")


def test_smiley_labels_need_dutch():
    text = HEADER + GRADE + smiley(extra='faces = 3\nlabels.en = ["Bad", "Okay", "Good"]\n')
    assert only_problem(text) == (
        "question 'wachttijd' (#2), field 'labels': Dutch text ('nl') is required")


def test_empty_smiley_label_names_the_entry():
    text = HEADER + GRADE + smiley(extra='faces = 3\nlabels.nl = ["Slecht", "", "Goed"]\n')
    assert only_problem(text) == (
        "question 'wachttijd' (#2), field 'labels.nl', entry #2: text must not be empty")


def test_faces_on_a_grade_question_is_refused():
    assert only_problem(HEADER + GRADE + "faces = 5\n") == (
        "question 'totaal' (#1), field 'faces': does not belong to a grade question; remove it")


def test_options_on_a_yesno_question_are_refused():
    text = HEADER + GRADE + YESNO + '[[questions.options]]\nvalue = "ja"\nlabel.nl = "Ja"\n'
    assert only_problem(text) == (
        "question 'vooraf' (#2), field 'options': does not belong to a yesno question; remove it")


def test_anchor_labels_on_a_smiley_question_are_refused():
    text = HEADER + GRADE + smiley(extra='faces = 5\nlow_label.nl = "slecht"\n')
    assert only_problem(text) == (
        "question 'wachttijd' (#2), field 'low_label': does not belong to a smiley question; remove it")


def test_misspelt_question_key_is_refused_and_known_keys_listed():
    problem = only_problem(HEADER + GRADE + smiley(extra="faecs = 5\n"))
    assert problem.startswith("question 'wachttijd' (#2), field 'faecs': unknown field; check the spelling")
    assert "faces" in problem


def test_comment_as_first_question_is_refused():
    assert only_problem(HEADER + COMMENT + GRADE) == (
        "question 'opmerking' (#1): the first question cannot be a comment; "
        "it is answered with one tap on the welcome screen")


def test_comment_must_be_the_last_question():
    assert only_problem(HEADER + GRADE + COMMENT + YESNO) == (
        "question 'opmerking' (#2): the comment question must be the last question")


def test_two_comment_questions_are_refused():
    second = COMMENT.replace('id = "opmerking"', 'id = "nog-iets"')
    assert only_problem(HEADER + GRADE + COMMENT + second) == (
        "question 'nog-iets' (#3): only one comment question is allowed (#2 is one)")


def test_comment_max_length_out_of_range_is_refused():
    assert only_problem(HEADER + GRADE + COMMENT + "max_length = 5000\n") == (
        "question 'opmerking' (#2), field 'max_length': must be between 1 and 2000, got 5000")


CHOICE = ('[[questions]]\nid = "dienst"\ntype = "choice"\naspect = "dienst"\n'
          'text.nl = "Waarvoor kwam u?"\n')


def option(value, label="Iets"):
    return f'[[questions.options]]\nvalue = "{value}"\nlabel.nl = "{label}"\n'


def test_choice_with_one_option_is_refused():
    assert only_problem(HEADER + GRADE + CHOICE + option("rijbewijs")) == (
        "question 'dienst' (#2), field 'options': a choice question needs 2 to 12 options, got 1")


def test_choice_without_options_is_refused():
    assert only_problem(HEADER + GRADE + CHOICE) == (
        "question 'dienst' (#2), field 'options': a choice question needs 2 to 12 options, got 0")


def test_choice_with_duplicate_option_values_is_refused():
    text = HEADER + GRADE + CHOICE + option("rijbewijs") + option("rijbewijs")
    assert only_problem(text) == (
        "question 'dienst' (#2), field 'options': option value 'rijbewijs' is used twice")


def test_bad_option_names_question_option_and_field():
    text = HEADER + GRADE + CHOICE + option("rijbewijs") + option("paspoort", label="")
    assert only_problem(text) == (
        "question 'dienst' (#2), option 'paspoort' (#2), field 'label.nl': text must not be empty")


def test_every_problem_in_a_file_is_reported_not_just_the_first():
    text = 'id = "x"\nversion = 0\n' + GRADE + smiley(extra="faces = 4\n") + YESNO + "faces = 3\n"
    problems = problems_of(text)
    assert problems == [
        "field 'version': must be at least 1, got 0",
        "question 'wachttijd' (#2), field 'faces': must be 3 or 5, got 4",
        "question 'vooraf' (#3), field 'faces': does not belong to a yesno question; remove it",
    ]


def test_wrong_kind_of_value_is_explained_in_toml_terms():
    text = HEADER + '[[questions]]\nid = "totaal"\ntype = "grade"\naspect = "totaal"\ntext = "Cijfer?"\n'
    assert only_problem(text).startswith("question 'totaal' (#1), field 'text': must be a table")


def test_load_error_names_the_file_path(tmp_path):
    path = tmp_path / "vragen.toml"
    path.write_text(HEADER + GRADE + "faces = 5\n", encoding="utf-8")
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaire(path)
    assert caught.value.path == str(path)
    assert str(caught.value).splitlines()[1] == (
        "  - question 'totaal' (#1), field 'faces': does not belong to a grade question; remove it")
