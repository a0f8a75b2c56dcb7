"""The wide export's codebook: one variable per fact of a response and per question, with codes.

Use::

    book = build_codebook(published, in_export, answered, round_to="hour")
    [v.name for v in book.variables]      # response_id, location_id, ..., totaal, wachttijd, ...
    book.row(response, {"totaal": 8, "dienst": "rijbewijs"})   # one value per variable
    book.table()                          # the codebook as rows of CODEBOOK_COLUMNS

``published``: the questionnaire texts central keeps, oldest publication first
(:class:`Published`); ``in_export``: responses per (questionnaire id, version)
in the export; ``answered``: which question ids those versions' answers name
(:class:`Answered`); ``text_values(question_ids)``: the distinct text answers
stored for those (choice) questions. Pure: no database, no clock.

Rules (docs/CENTRAL.md, "Export for the study"):

* **Variables.** The fixed ones (:data:`FIXED_NAMES`), then one per question
  id, in the order of the newest questionnaire version (questions only older
  versions asked are slotted in after their predecessor there), then question
  ids only versions unknown to central answered, by id. A question id asked as different
  types in different versions gets one variable per type (``<name>_<type>``).
* **Names** are the question id with ``-`` as ``_``; ``q_`` in front when it
  does not start with a letter or is an SPSS keyword; cut to 64 characters;
  ``_2``, ``_3`` … after a name already taken (an id that is a valid name as it
  stands is served first). The codebook's ``question_id`` column is the mapping.
* **Codes.** grade: 1–10 (scale); smiley: 1..faces (ordinal); yes/no: 1 = ja,
  0 = nee (nominal); choice: 1, 2, … in the option order of the questionnaires
  as published, oldest publication first, so a code never changes meaning
  between exports (a new option gets the next free code; an answer no
  published questionnaire lists gets a code after those, in alphabetical
  order); comment: the text (string). A question id no published questionnaire
  has: its numbers as they are (nominal), or its texts (string, treated as
  possibly free text).
* **Missing codes** (:data:`MISSING_LABELS`): -1 not answered (the version asks
  it), -2 not asked (the version does not ask it), -3 unknown (central does not
  know the version's questions), -4 an answer that does not fit the question
  (another type, or outside its values; the long CSV has it as stored). String
  variables use "-1", "-2", "-3".
* **Wording per version**: for every questionnaire version in the export, the
  question's text in each language with its answer labels, "not asked in this
  version", or "wording not known to central" for a version central never
  published (never guessed from another version). Equal wordings are grouped.
* **Comments** (and texts of unknown questions) are left out unless
  ``include_comments``: scrubbed on the device, they may still hold something
  personal.
* **Time** is the response's corrected start, rounded down in UTC like the
  long export; ``weekday`` and ``part_of_day`` are read from that rounded time
  in ``timezone`` (the counter's local time), as the reports' weighting cells.
  With rounding to the day there is no ``part_of_day``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timezone as _tz
from zoneinfo import ZoneInfo

from central.stats import weekday_part_of_day
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Question, Questionnaire, parse_questionnaire
from sync.protocol import ResponseRecord

#: Round-down steps of the exported times, in seconds (``none``: exact).
ROUNDING_S = {"hour": 3600, "day": 86400, "none": None}
#: The municipality's local time, for weekday and part of day (the terminals' default too).
DEFAULT_TIMEZONE = "Europe/Amsterdam"

NOT_ANSWERED, NOT_ASKED, UNKNOWN_IF_ASKED, DOES_NOT_FIT = -1, -2, -3, -4
MISSING_LABELS = {
    NOT_ANSWERED: "niet beantwoord",
    NOT_ASKED: "niet gevraagd in deze versie",
    UNKNOWN_IF_ASKED: "onbekend of gevraagd: versie niet bekend bij centraal",
    DOES_NOT_FIT: "antwoord past niet bij de vraag (zie de lange export)",
}
#: The codes a string variable can carry (SPSS allows three discrete string missing values).
STRING_MISSING = {str(code): MISSING_LABELS[code]
                  for code in (NOT_ANSWERED, NOT_ASKED, UNKNOWN_IF_ASKED)}
MISSING_RANGE = (DOES_NOT_FIT, NOT_ANSWERED)

LEVELS = {"grade": "scale", "smiley": "ordinal", "yesno": "nominal", "choice": "nominal",
          "comment": "nominal", "unknown": "nominal"}
YESNO_CODES = {"yes": 1, "no": 0}
YESNO_LABELS = {1: "ja", 0: "nee"}
WEEKDAYS = {1: "maandag", 2: "dinsdag", 3: "woensdag", 4: "donderdag", 5: "vrijdag",
            6: "zaterdag", 7: "zondag"}
PARTS_OF_DAY = {"morning": 1, "afternoon": 2, "evening": 3}
PART_LABELS = {1: "ochtend (voor 12 uur)", 2: "middag (12 tot 17 uur)", 3: "avond (vanaf 17 uur)"}
AFTERNOON_FROM, EVENING_FROM = 12, 17
FLAG_LABELS = {0: "nee", 1: "ja"}
END_REASONS = typing.get_args(ResponseRecord.model_fields["end_reason"].annotation)
_END_REASON_NL = {"completed": "afgerond", "idle": "gestopt door inactiviteit",
                  "abandoned": "afgebroken", "interrupted": "onderbroken door een storing"}
END_REASON_CODES = {reason: n for n, reason in enumerate(END_REASONS, start=1)}
END_REASON_LABELS = {code: f"{_END_REASON_NL.get(reason, reason)} ({reason})"
                     for reason, code in END_REASON_CODES.items()}

FIXED_NAMES = ("response_id", "location_id", "questionnaire_id", "questionnaire_version",
               "language", "time", "weekday", "part_of_day", "time_verified", "suspect",
               "end_reason")
CODEBOOK_COLUMNS = ("variable", "question_id", "label", "type", "level", "value_labels",
                    "missing_codes", "aspect", "question_type", "wording_per_version", "notes")
#: Words SPSS reserves; none can be a variable name.
SPSS_RESERVED = frozenset("ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH".split())
MAX_NAME_CHARS = 64
NOT_KNOWN = "wording not known to central"
NOT_ASKED_TEXT = "not asked in this version"


# ---------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class Published:
    """A questionnaire text central keeps (``central.questionnaires``), in publication order."""

    questionnaire_id: str
    version: int
    toml: str


@dataclass(frozen=True)
class Answered:
    """Answers in the export to ``question_id`` under one questionnaire version: how many numbers
    and how many texts."""

    questionnaire_id: str
    version: int
    question_id: str
    numbers: int
    texts: int


@dataclass(frozen=True)
class VersionInfo:
    """A questionnaire version in the export; ``questionnaire`` None: central does not know it."""

    questionnaire_id: str
    version: int
    responses: int
    questionnaire: Questionnaire | None
    unknown_because: str = ""

    @property
    def label(self) -> str:
        """``balie-standaard v2``."""
        return f"{self.questionnaire_id} v{self.version}"

    @property
    def known(self) -> bool:
        return self.questionnaire is not None


# ---------------------------------------------------------------------------- variables

@dataclass(frozen=True)
class Wording:
    """One wording of a question and the versions that asked it (or did not, or are unknown)."""

    versions: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return f"{', '.join(self.versions)}: {self.text}"


@dataclass(frozen=True)
class Variable:
    """One column of the wide export.

    ``storage``: ``numeric``, ``string`` or ``datetime``; ``level``: SPSS's measure
    (``nominal``/``ordinal``/``scale``); ``missing``: code → meaning; ``codes``:
    answer value → code for yes/no and choice; ``allowed``: the values a number
    may take (else :data:`DOES_NOT_FIT`); ``width``: display width in characters.
    """

    name: str
    label: str
    storage: str
    level: str
    value_labels: Mapping[int | str, str] = field(default_factory=dict)
    missing: Mapping[int | str, str] = field(default_factory=dict)
    question_id: str | None = None
    question_type: str | None = None
    aspect: str | None = None
    wordings: tuple[Wording, ...] = ()
    notes: str = ""
    codes: Mapping[str, int] = field(default_factory=dict)
    allowed: frozenset[int] | None = None
    width: int = 8
    spss_format: str | None = None

    def encode(self, value: int | str) -> int | str:
        """The cell for an answer ``value`` (an ``int`` or ``str`` as stored)."""
        if self.storage == "string":
            return str(value)
        if self.codes:
            return self.codes.get(value, DOES_NOT_FIT) if isinstance(value, str) else DOES_NOT_FIT
        if isinstance(value, bool) or not isinstance(value, int):
            return DOES_NOT_FIT
        if self.allowed is not None:
            return value if value in self.allowed else DOES_NOT_FIT
        return value if value >= 0 else DOES_NOT_FIT  # negative numbers would read as missing codes

    def missing_cell(self, code: int) -> int | str:
        return str(code) if self.storage == "string" else code


@dataclass(frozen=True)
class LeftOut:
    """A question left out of the export, and why."""

    question_id: str
    reason: str


@dataclass(frozen=True)
class Codebook:
    """The variables of one export and how a response becomes a row (:meth:`row`)."""

    variables: tuple[Variable, ...]
    versions: tuple[VersionInfo, ...]
    left_out: tuple[LeftOut, ...]
    round_to: str
    timezone: str
    include_comments: bool
    # (questionnaire id, version, question id) → column; question id → column. None: left out.
    _route: Mapping[tuple[str, int, str], int | None] = field(repr=False, default_factory=dict)
    _main: Mapping[str, int | None] = field(repr=False, default_factory=dict)
    _asked: Mapping[int, frozenset[tuple[str, int]]] = field(repr=False, default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def variable(self, name: str) -> Variable:
        """The variable called ``name`` (``KeyError`` when there is none)."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _known_versions(self) -> frozenset[tuple[str, int]]:
        return frozenset((v.questionnaire_id, v.version) for v in self.versions if v.known)

    @property
    def unknown_versions(self) -> tuple[VersionInfo, ...]:
        return tuple(v for v in self.versions if not v.known)

    def row(self, response, answers: Mapping[str, int | str]) -> list:
        """One value per variable for ``response`` (attributes as the ``responses`` table's
        columns) and its ``answers`` (question id → value; the last of repeated ids counts).

        ``time`` is a UTC ``datetime``; every other cell is an ``int`` or ``str``.
        """
        utc = datetime.fromtimestamp(round_down(response.started_at, self.round_to), _tz.utc)
        weekday, part = weekday_part_of_day(utc.astimezone(self._zone),
                                            afternoon_from=AFTERNOON_FROM,
                                            evening_from=EVENING_FROM)
        fixed = {
            "response_id": response.id, "location_id": response.location_id,
            "questionnaire_id": response.questionnaire_id,
            "questionnaire_version": response.questionnaire_version,
            "language": response.language, "time": utc, "weekday": weekday,
            "part_of_day": PARTS_OF_DAY[part], "time_verified": int(bool(response.time_verified)),
            "suspect": int(bool(response.suspect)),
            "end_reason": END_REASON_CODES.get(response.end_reason, DOES_NOT_FIT),
        }
        cells: list = [fixed[v.name] for v in self.variables if v.question_id is None]
        first = len(cells)
        cells.extend([None] * (len(self.variables) - first))
        qv = (response.questionnaire_id, response.questionnaire_version)
        for question_id, value in answers.items():
            column = self._route.get((*qv, question_id), self._main.get(question_id))
            if column is not None:
                cells[column] = self.variables[column].encode(value)
        known = qv in self._known_versions
        for column in range(first, len(cells)):
            if cells[column] is None:
                if not known:
                    code = UNKNOWN_IF_ASKED
                elif qv in self._asked.get(column, ()):
                    code = NOT_ANSWERED
                else:
                    code = NOT_ASKED
                cells[column] = self.variables[column].missing_cell(code)
        return cells

    def table(self) -> list[tuple[str, ...]]:
        """The codebook, one tuple of :data:`CODEBOOK_COLUMNS` per variable (no header)."""
        return [(
            v.name, v.question_id or "", v.label,
            v.storage + (" (UTC)" if v.storage == "datetime" else ""), v.level,
            _pairs({k: t for k, t in v.value_labels.items() if k not in v.missing}),
            _pairs(v.missing), v.aspect or "", v.question_type or "",
            "\n".join(str(w) for w in v.wordings), v.notes,
        ) for v in self.variables]


def _pairs(mapping: Mapping) -> str:
    return "; ".join(f"{code} = {text}" for code, text in mapping.items())


# ---------------------------------------------------------------------------- time

def round_down(seconds: float, round_to: str) -> float:
    """``seconds`` rounded down to a whole ``round_to`` (:data:`ROUNDING_S`) in UTC."""
    step = ROUNDING_S[round_to]
    return seconds if step is None else seconds // step * step


# ---------------------------------------------------------------------------- names

def spss_name(question_id: str, taken: set[str]) -> str:
    """An SPSS-safe variable name for ``question_id`` not in ``taken`` (upper case); adds it."""
    base = question_id.replace("-", "_")
    if not base[:1].isascii() or not base[:1].isalpha() or base.upper() in SPSS_RESERVED:
        base = "q_" + base
    base = base[:MAX_NAME_CHARS]
    name, n = base, 1
    while name.upper() in taken:
        n += 1
        suffix = f"_{n}"
        name = base[:MAX_NAME_CHARS - len(suffix)] + suffix
    taken.add(name.upper())
    return name


def _is_safe(name: str) -> bool:
    return (re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) is not None
            and name.upper() not in SPSS_RESERVED)


# ---------------------------------------------------------------------------- building

def build_codebook(published: Iterable[Published], in_export: Mapping[tuple[str, int], int],
                   answered: Iterable[Answered], *,
                   text_values: Callable[[Sequence[str]], Mapping[str, Iterable[str]]] = (
                       lambda ids: {}),
                   round_to: str = "hour", timezone: str = DEFAULT_TIMEZONE,
                   include_comments: bool = False) -> Codebook:
    """The codebook of an export (see the module's rules).

    Raises ``ValueError`` for an unknown ``round_to`` and ``ZoneInfoNotFoundError``
    for an unknown ``timezone``.
    """
    if round_to not in ROUNDING_S:
        raise ValueError(f"round_to must be one of {', '.join(ROUNDING_S)}")
    ZoneInfo(timezone)
    texts: dict[tuple[str, int], Questionnaire | str] = {}
    for pub in published:  # one text per id + version (immutable); parse each once
        key = (pub.questionnaire_id, pub.version)
        if key not in texts:
            try:
                texts[key] = parse_questionnaire(pub.toml, f"{pub.questionnaire_id} v{pub.version}")
            except QuestionnaireError as err:  # a later release's loader is stricter
                texts[key] = f"its published text does not load any more ({err})"
    rank = {key: n for n, key in enumerate(texts)}
    parsed = {key: q for key, q in texts.items() if isinstance(q, Questionnaire)}

    versions = tuple(VersionInfo(
        qid, version, count, parsed.get((qid, version)),
        "" if (qid, version) in parsed
        else texts.get((qid, version), "this version was never published on central"))
        for (qid, version), count in sorted(in_export.items()))
    known = [v for v in versions if v.known]
    newest_first = sorted(known, key=lambda v: rank[(v.questionnaire_id, v.version)], reverse=True)
    answered = list(answered)

    # Slots: (question id, type), in question order.
    order: list[tuple[str, str]] = []
    for info in newest_first:
        previous = None
        for q in info.questionnaire.questions:
            slot = (q.id, q.type)
            if slot not in order:
                order.insert(order.index(previous) + 1 if previous else 0, slot)
            previous = slot
    main_type = {}
    for slot in order:  # the newest version's type of each question id
        main_type.setdefault(slot[0], slot[1])
    extra_notes: dict[tuple[str, str], str] = {}
    for qid in sorted({a.question_id for a in answered} - set(main_type)):
        elsewhere = _newest_with(parsed, rank, qid)
        if elsewhere is not None:
            pkey, question = elsewhere
            main_type[qid] = question.type
            extra_notes[(qid, question.type)] = (
                f"type and codes from {pkey[0]} v{pkey[1]}, which is not in this export")
        else:
            texts_seen = any(a.texts for a in answered if a.question_id == qid)
            main_type[qid] = "unknown"
            extra_notes[(qid, "unknown")] = (
                "no questionnaire central knows has this question; "
                + ("its answers are texts" if texts_seen else "its answers are numbers, as stored"))
        order.append((qid, main_type[qid]))
    string_unknown = {qid for qid, t in main_type.items()
                      if t == "unknown" and any(a.texts for a in answered if a.question_id == qid)}

    # Choice codes: option order of every publication, oldest first; then unknown answers.
    choice_ids = sorted({qid for qid, qtype in order if qtype == "choice"})
    extra_values = {qid: set(values) for qid, values in text_values(choice_ids).items()} \
        if choice_ids else {}

    types_of: dict[str, list[str]] = {}
    for qid, qtype in order:
        types_of.setdefault(qid, []).append(qtype)
    taken = {name.upper() for name in FIXED_NAMES}
    bases = {slot: slot[0] if len(types_of[slot[0]]) == 1 else f"{slot[0]}-{slot[1]}"
             for slot in order}
    names: dict[tuple[str, str], str] = {}
    for slot in [s for s in order if _is_safe(bases[s])] + [s for s in order
                                                              if not _is_safe(bases[s])]:
        names[slot] = spss_name(bases[slot], taken)

    variables = list(_fixed_variables(round_to, timezone))
    route: dict[tuple[str, int, str], int | None] = {}
    main: dict[str, int | None] = {}
    asked: dict[int, frozenset[tuple[str, int]]] = {}
    left_out: list[LeftOut] = []
    for slot in order:
        qid, qtype = slot
        asking = [(info, _question(info.questionnaire, qid, qtype)) for info in versions]
        asking = [(info, q) for info, q in asking if q is not None]
        if qtype == "comment" or qid in string_unknown:
            column = None
            if include_comments:
                column = len(variables)
                variables.append(_question_variable(
                    names[slot], slot, asking, versions, parsed, rank, extra_values,
                    extra_notes.get(slot, ""), string=True))
            else:
                left_out.append(LeftOut(qid, "free text (comment)" if qtype == "comment" else
                                        "texts of a question central knows no wording for"))
        else:
            column = len(variables)
            variables.append(_question_variable(
                names[slot], slot, asking, versions, parsed, rank, extra_values,
                extra_notes.get(slot, ""), string=False))
        if column is not None:
            asked[column] = frozenset((info.questionnaire_id, info.version) for info, _ in asking)
        for info, _ in asking:
            route[(info.questionnaire_id, info.version, qid)] = column
        if main_type[qid] == qtype:
            main[qid] = column
    return Codebook(tuple(variables), versions, tuple(left_out), round_to, timezone,
                    include_comments, route, main, asked)


def _question(questionnaire: Questionnaire | None, qid: str, qtype: str) -> Question | None:
    if questionnaire is None:
        return None
    return next((q for q in questionnaire.questions if q.id == qid and q.type == qtype), None)


def _newest_with(parsed: Mapping[tuple[str, int], Questionnaire], rank: Mapping, qid: str):
    found = None
    for key, questionnaire in parsed.items():
        q = next((q for q in questionnaire.questions if q.id == qid), None)
        if q is not None and (found is None or rank[key] > rank[found[0]]):
            found = (key, q)
    return found


def _choice_codes(parsed, rank, qid: str, extra: Iterable[str]) -> tuple[dict[str, int], set[str]]:
    codes: dict[str, int] = {}
    for key in sorted(parsed, key=rank.__getitem__):
        q = _question(parsed[key], qid, "choice")
        for option in q.options if q else ():
            codes.setdefault(option.value, len(codes) + 1)
    unknown = sorted(set(extra) - set(codes))
    for value in unknown:
        codes[value] = len(codes) + 1
    return codes, set(unknown)


def _question_variable(name, slot, asking, versions, parsed, rank, extra_values, note,
                       *, string: bool) -> Variable:
    qid, qtype = slot
    if asking:
        source = max(asking, key=lambda pair: rank[(pair[0].questionnaire_id, pair[0].version)])[1]
    else:
        found = _newest_with(parsed, rank, qid)
        source = found[1] if found and found[1].type == qtype else None
    notes = [note] if note else []
    codes: dict[str, int] = {}
    value_labels: dict[int | str, str] = {}
    allowed = None
    if qtype == "choice":
        codes, unknown = _choice_codes(parsed, rank, qid, extra_values.get(qid, ()))
        labels = {}
        for key in sorted(parsed, key=rank.__getitem__):  # the newest label of each option
            q = _question(parsed[key], qid, "choice")
            labels.update({o.value: o.label["nl"] for o in (q.options if q else ())})
        value_labels = {code: labels.get(value, f"{value} (optie niet bekend bij centraal)")
                        for value, code in codes.items()}
        if unknown:
            first = min(codes[v] for v in unknown)
            span = f"code {first}" if first == len(codes) else f"codes {first}–{len(codes)}"
            notes.append(f"{span}: answers no questionnaire central knows lists")
    elif qtype == "yesno":
        codes, value_labels = dict(YESNO_CODES), dict(YESNO_LABELS)
    elif qtype == "grade":
        allowed = frozenset(range(1, 11))
        if source is not None and source.low_label:
            value_labels[1] = source.low_label["nl"]
        if source is not None and source.high_label:
            value_labels[10] = source.high_label["nl"]
    elif qtype == "smiley":
        faces = max([q.faces for _, q in asking] or [source.faces if source else 5])
        allowed = frozenset(range(1, faces + 1))
        if source is not None and source.labels:
            value_labels = dict(enumerate(source.labels["nl"], start=1))
    missing = dict(STRING_MISSING) if string else dict(MISSING_LABELS)
    value_labels.update(missing)

    wordings: dict[str, list[str]] = {}
    asked_by = {(info.questionnaire_id, info.version): q for info, q in asking}
    for info in versions:
        q = asked_by.get((info.questionnaire_id, info.version))
        if q is not None:
            text = _wording(q, codes)
        elif info.known:
            text = NOT_ASKED_TEXT
        else:
            text = f"{NOT_KNOWN} ({info.unknown_because})"
        wordings.setdefault(text, []).append(info.label)
    distinct = [t for t in wordings if t != NOT_ASKED_TEXT and not t.startswith(NOT_KNOWN)]
    if source is not None:
        label = source.text["nl"]
        if len(distinct) > 1:
            label += " (verschilt per versie)"
            notes.append("the wording or the answers differ between versions: see "
                         "wording_per_version")
    else:
        label = f"{qid} (tekst niet bekend bij centraal)"
    aspects = sorted({q.aspect for _, q in asking})
    if len(aspects) > 1:
        notes.append(f"aspect differs between versions: {', '.join(aspects)}")
    level = LEVELS[qtype]
    storage = "string" if string else "numeric"
    width = 40 if string else max(8, min(len(name) + 1, 20))
    return Variable(
        name=name, label=label, storage=storage, level=level, value_labels=value_labels,
        missing=missing, question_id=qid, question_type=qtype,
        aspect=source.aspect if source else (aspects[0] if aspects else None),
        wordings=tuple(Wording(tuple(labels), text) for text, labels in wordings.items()),
        notes="; ".join(notes), codes=codes, allowed=allowed, width=width,
        spss_format=None if string else ("F11.0" if qtype == "unknown" else "F4.0"))


def _wording(q: Question, codes: Mapping[str, int]) -> str:
    """``nl: "Wat vond u van de wachttijd?" [1 Heel slecht · … · 5 Heel goed] | en: …``."""
    parts = []
    for lang in ["nl"] + sorted(set(q.text) - {"nl"}):
        answers = _answer_labels(q, lang, codes)
        parts.append(f'{lang}: "{q.text_for(lang)}"' + (f" [{answers}]" if answers else ""))
    return " | ".join(parts)


def _answer_labels(q: Question, lang: str, codes: Mapping[str, int]) -> str:
    if q.type == "grade":
        low, high = q.low_label_for(lang), q.high_label_for(lang)
        return f"1{f' {low}' if low else ''} … 10{f' {high}' if high else ''}"
    if q.type == "smiley":
        labels = q.labels_for(lang)
        if not labels:
            return f"{q.faces} faces without words"
        return " · ".join(f"{n} {text}" for n, text in enumerate(labels, start=1))
    if q.type == "choice":
        return " · ".join(f"{codes[o.value]} {o.label_for(lang)}" for o in q.options)
    if q.type == "comment":
        return f"free text, at most {q.max_length} characters"
    return ""


def _fixed_variables(round_to: str, timezone: str) -> Iterable[Variable]:
    rounded = {"hour": "afgerond op het uur", "day": "afgerond op de dag",
               "none": "niet afgerond"}[round_to]
    rounded_en = {"hour": "rounded down to the hour", "day": "rounded down to the day",
                  "none": "exact (milliseconds)"}[round_to]
    yield Variable("response_id", "Respons-id (één bezoeker)", "string", "nominal", width=36,
                   notes="the terminal's UUID of the response; the long CSV's response_id")
    yield Variable("location_id", "Locatie", "string", "nominal", width=14,
                   notes="the location the terminal sends (its [location] setting)")
    yield Variable("questionnaire_id", "Vragenlijst", "string", "nominal", width=18)
    yield Variable("questionnaire_version", "Versie van de vragenlijst", "numeric", "nominal",
                   width=10, spss_format="F10.0",
                   notes="with questionnaire_id: which wording was asked (wording_per_version)")
    yield Variable("language", "Taal van de bezoeker", "string", "nominal", width=8,
                   notes="the language the questions were shown in (nl, en, ...)")
    yield Variable("time", f"Tijdstip van de start (UTC), {rounded}", "datetime", "scale",
                   width=20, spss_format="DATETIME23.3" if round_to == "none" else "DATETIME20",
                   notes=f"the response's corrected start time in UTC, {rounded_en} "
                         "([export] round_time_to; --exact-time: exact)")
    yield Variable("weekday", "Dag van de week", "numeric", "nominal", dict(WEEKDAYS), width=8,
                   spss_format="F1.0", notes=f"ISO weekday of the rounded time in {timezone}")
    if round_to != "day":
        yield Variable("part_of_day", "Dagdeel", "numeric", "ordinal", dict(PART_LABELS),
                       width=10, spss_format="F1.0",
                       notes=f"of the rounded time in {timezone}: before {AFTERNOON_FROM}:00, "
                             f"{AFTERNOON_FROM}:00-{EVENING_FROM}:00, from {EVENING_FROM}:00 "
                             "(left out when times are rounded to the day)")
    yield Variable("time_verified", "Tijdstip geverifieerd", "numeric", "nominal",
                   dict(FLAG_LABELS), width=8, spss_format="F1.0",
                   notes="1: the time is derived from the terminal's running clock since the "
                         "response; 0: the terminal's wall clock as it was (restarted in between)")
    yield Variable("suspect", "Verdacht (snel herhaalde sessies)", "numeric", "nominal",
                   dict(FLAG_LABELS), width=8, spss_format="F1.0",
                   notes="flagged by the terminal (rapid repeated sessions); kept, not dropped")
    yield Variable("end_reason", "Hoe het invullen eindigde", "numeric", "nominal",
                   {**END_REASON_LABELS, DOES_NOT_FIT: "onbekende reden"},
                   {DOES_NOT_FIT: "onbekende reden"}, width=10, spss_format="F2.0",
                   notes="how the visit ended on the terminal; -4 cannot occur today (the wire "
                         "allows only these four)")
