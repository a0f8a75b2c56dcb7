"""Questionnaire models and the loader that turns a TOML file into them (or a clear error).

Use::

    q = load_questionnaire(Path("config/questionnaires/standaard.toml"))
    q.first.text_for("en")                 # the question on the welcome screen
    for question in q.follow_ups:
        question.check_value(answer)       # ValueError when the answer is not allowed

A bad file raises :class:`~kiosk.errors.QuestionnaireError`; each of its problems names
the place (``question 'wachttijd' (#2), field 'faces'``) and says what is wrong.
Reading the file and wording the errors is :mod:`kiosk.configfile`'s job.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Callable

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from kiosk.configfile import describe, explain_validation_error, problem, read_toml, toml_problem
from kiosk.errors import QuestionnaireError

QUESTION_TYPES = ("grade", "smiley", "choice", "yesno", "comment")
DEFAULT_MAX_LENGTH = 500
_SLUG = re.compile(r"[a-z0-9_-]+")
_LANG = re.compile(r"[a-z]{2}")
# Fields that only some question types may carry.
_TYPE_FIELDS = {
    "grade": {"low_label", "high_label"},
    "smiley": {"faces", "labels"},
    "choice": {"options"},
    "yesno": set(),
    "comment": {"max_length"},
}
_ALL_TYPE_FIELDS = set().union(*_TYPE_FIELDS.values())


# --- small validated types -------------------------------------------------------------

def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise problem(
            f"must be a short code of lowercase letters, digits, '-' or '_' "
            f"(like 'wachttijd'), got {describe(value)}"
        )
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise problem("text must not be empty")
    return value


def _lang_map(value: dict) -> dict:
    bad = [key for key in value if not _LANG.fullmatch(key)]
    if bad:
        raise problem(
            f"language {describe(bad[0])} is not a lowercase 2-letter code (like 'nl' or 'en')"
        )
    if "nl" not in value:
        raise problem("Dutch text ('nl') is required")
    return value


Slug = Annotated[StrictStr, AfterValidator(_slug)]
Text = Annotated[StrictStr, AfterValidator(_text)]
LangText = Annotated[dict[StrictStr, Text], AfterValidator(_lang_map)]
LangTextList = Annotated[dict[StrictStr, list[Text]], AfterValidator(_lang_map)]


def _type_name(value: str) -> str:
    if value not in QUESTION_TYPES:
        raise problem(f"unknown type {describe(value)}; use one of {', '.join(QUESTION_TYPES)}")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __hash__(self) -> int:
        # the per-language dicts are not hashable; equal models give equal JSON
        return hash((type(self), self.model_dump_json()))


class Option(_Model):
    """One answer of a ``choice`` question: ``option.value``, ``option.label_for("en")``."""

    value: Slug
    label: LangText

    def label_for(self, lang: str) -> str:
        """The label in ``lang``, else the Dutch one."""
        return self.label.get(lang) or self.label["nl"]


class Question(_Model):
    """One question: ``question.text_for("en")``, ``question.check_value(4)``.

    ``faces``/``labels`` belong to smiley, ``options`` to choice, ``max_length`` to comment
    (default 500), ``low_label``/``high_label`` to grade; other types leave them ``None``/empty.
    """

    id: Slug
    type: Annotated[StrictStr, AfterValidator(_type_name)]
    aspect: Slug
    text: LangText
    low_label: LangText | None = None
    high_label: LangText | None = None
    faces: StrictInt | None = None
    labels: LangTextList | None = None
    options: tuple[Option, ...] = ()
    max_length: StrictInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_max_length(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") == "comment" and "max_length" not in data:
            data = {**data, "max_length": DEFAULT_MAX_LENGTH}
        return data

    @model_validator(mode="after")
    def _check_type_rules(self) -> "Question":
        problems = _type_problems(self)
        if problems:
            raise problem(problems[0][1], "balie_fields", problems=problems)
        return self

    def text_for(self, lang: str) -> str:
        """The question text in ``lang``, else the Dutch one."""
        return self.text.get(lang) or self.text["nl"]

    def labels_for(self, lang: str) -> list[str] | None:
        """The smiley face labels in ``lang`` (else Dutch), or ``None`` when not given."""
        if not self.labels:
            return None
        return list(self.labels.get(lang) or self.labels["nl"])

    def low_label_for(self, lang: str) -> str | None:
        """The grade anchor under 1 in ``lang`` (else Dutch), or ``None``."""
        return _pick(self.low_label, lang)

    def high_label_for(self, lang: str) -> str | None:
        """The grade anchor under 10 in ``lang`` (else Dutch), or ``None``."""
        return _pick(self.high_label, lang)

    def allowed_values(self) -> tuple:
        """The answers a tap can give: grade 1..10, smiley 1..faces, yes/no, option values.

        A comment has no fixed set: ``()`` (any text up to ``max_length``).
        """
        if self.type == "grade":
            return tuple(range(1, 11))
        if self.type == "smiley":
            return tuple(range(1, self.faces + 1))
        if self.type == "yesno":
            return ("yes", "no")
        if self.type == "choice":
            return tuple(option.value for option in self.options)
        return ()

    def check_value(self, value: Any) -> None:
        """Raise ``ValueError`` when ``value`` is not a valid answer to this question."""
        if self.type == "comment":
            if not isinstance(value, str):
                raise ValueError(f"question {self.id!r}: a comment must be text, got {value!r}")
            if len(value) > self.max_length:
                raise ValueError(
                    f"question {self.id!r}: comment is {len(value)} characters long; "
                    f"at most {self.max_length} are allowed"
                )
            return
        allowed = self.allowed_values()
        # bool is an int in Python; True must not pass as grade 1.
        if isinstance(value, bool) or value not in allowed or type(value) is not type(allowed[0]):
            raise ValueError(
                f"question {self.id!r}: {value!r} is not allowed; "
                f"use one of {', '.join(map(str, allowed))}"
            )


def _pick(mapping: dict[str, str] | None, lang: str) -> str | None:
    if not mapping:
        return None
    return mapping.get(lang) or mapping["nl"]


def _type_problems(q: Question) -> list[tuple[str, str]]:
    """The (field, message) pairs that break the per-type rules of question ``q``."""
    problems = []
    allowed = _TYPE_FIELDS[q.type]
    for field in sorted((q.model_fields_set & _ALL_TYPE_FIELDS) - allowed):
        problems.append((field, f"does not belong to a {q.type} question; remove it"))
    if q.type == "smiley":
        if q.faces is None:
            problems.append(("faces", "is required for a smiley question: 3 or 5"))
        elif q.faces not in (3, 5):
            problems.append(("faces", f"must be 3 or 5, got {q.faces}"))
        elif q.labels:
            for lang, labels in q.labels.items():
                if len(labels) != q.faces:
                    problems.append((
                        f"labels.{lang}",
                        f"needs one label per face: {q.faces}, got {len(labels)}",
                    ))
    if q.type == "choice":
        if not 2 <= len(q.options) <= 12:
            problems.append(("options", f"a choice question needs 2 to 12 options, got {len(q.options)}"))
        seen = set()
        for option in q.options:
            if option.value in seen:
                problems.append(("options", f"option value {option.value!r} is used twice"))
            seen.add(option.value)
    if q.type == "comment" and not 1 <= q.max_length <= 2000:
        problems.append(("max_length", f"must be between 1 and 2000, got {q.max_length}"))
    return problems


def _not_empty(questions: tuple) -> tuple:
    if not questions:
        raise problem("at least one question is needed; add a [[questions]] table")
    return questions


class Questionnaire(_Model):
    """A validated questionnaire: ``q.first`` goes on the welcome screen, then ``q.follow_ups``."""

    id: Slug
    version: Annotated[StrictInt, Field(ge=1)]
    title: LangText | None = None
    questions: Annotated[
        tuple[Question, ...], AfterValidator(_not_empty), Field(validate_default=True)
    ] = ()

    @model_validator(mode="after")
    def _check_order(self) -> "Questionnaire":
        problems = _order_problems(self.questions)
        if problems:
            raise problem(problems[0], "balie_list", problems=problems)
        return self

    @property
    def first(self) -> Question:
        """The question answered with one tap on the welcome screen."""
        return self.questions[0]

    @property
    def follow_ups(self) -> tuple[Question, ...]:
        """The questions after the first one."""
        return self.questions[1:]

    def title_for(self, lang: str) -> str | None:
        """The title in ``lang`` (else Dutch), or ``None`` when the file has none."""
        return _pick(self.title, lang)


def _order_problems(questions: tuple[Question, ...]) -> list[str]:
    problems = []
    first_seen: dict[str, int] = {}
    for n, q in enumerate(questions, start=1):
        if q.id in first_seen:
            problems.append(
                f"{question_place(n - 1, q.id)}: id {q.id!r} is already used by question #{first_seen[q.id]}"
            )
        first_seen.setdefault(q.id, n)
    comments = [n for n, q in enumerate(questions, start=1) if q.type == "comment"]
    for n in comments:
        place = question_place(n - 1, questions[n - 1].id)
        if n == 1:
            problems.append(
                f"{place}: the first question cannot be a comment; "
                "it is answered with one tap on the welcome screen"
            )
        elif len(comments) > 1 and n != comments[0]:
            problems.append(f"{place}: only one comment question is allowed (#{comments[0]} is one)")
        elif len(comments) == 1 and n != len(questions):
            problems.append(f"{place}: the comment question must be the last question")
    return problems


# --- loading --------------------------------------------------------------------------

def load_questionnaire(path: str | Path) -> Questionnaire:
    """Read and validate a questionnaire file; raise ``QuestionnaireError`` when it is bad."""
    data = read_toml(path, QuestionnaireError)
    return _validate(data, str(path))


def parse_questionnaire(text: str, source: str = "<questionnaire>") -> Questionnaire:
    """Validate questionnaire TOML ``text``; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QuestionnaireError(source, [toml_problem(exc)]) from None
    return _validate(data, source)


def _validate(data: dict, source: str) -> Questionnaire:
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as exc:
        problems = explain_validation_error(exc, Questionnaire, _questionnaire_place(data))
        raise QuestionnaireError(source, problems) from None


def question_place(index: int, qid: Any) -> str:
    """``question 'wachttijd' (#2)`` for index 1, or ``question #2`` without a usable id."""
    if isinstance(qid, str) and qid:
        return f"question {qid!r} (#{index + 1})"
    return f"question #{index + 1}"


def _questionnaire_place(data: dict) -> Callable[[tuple], tuple[str, tuple]]:
    """Map a pydantic loc to (place text, field path) for messages."""
    questions = data.get("questions")

    def place(loc: tuple) -> tuple[str, tuple]:
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            raw = questions[loc[1]] if isinstance(questions, list) else None
            qid = raw.get("id") if isinstance(raw, dict) else None
            text, rest = question_place(loc[1], qid), loc[2:]
            if len(rest) >= 2 and rest[0] == "options" and isinstance(rest[1], int):
                raw_opts = raw.get("options") if isinstance(raw, dict) else None
                opt = raw_opts[rest[1]] if isinstance(raw_opts, list) else None
                value = opt.get("value") if isinstance(opt, dict) else None
                label = f" {value!r}" if isinstance(value, str) else ""
                text, rest = f"{text}, option{label} (#{rest[1] + 1})", rest[2:]
            return text, rest
        return "", loc

    return place
