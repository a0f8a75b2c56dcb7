"""Published questionnaires: publish a validated file (immutable), list, retire, and the one a device gets.

Use::

    text, questionnaire = read_questionnaire_file(Path("standaard.toml"))   # QuestionnaireError
    result = publish(engine, text, questionnaire, location=None, now=time.time())
    result.created            # False: this text was published before; nothing changed
    for row in list_published(engine): print(row.questionnaire_id, row.version, row.state)
    retire(engine, "balie-standaard", 2, location=None, now=time.time())
    current_for_location(engine, "stadhuis")          # a Published, or None

Rules:

* A file is validated with the terminal's own loader (:mod:`kiosk.questionnaire`):
  central publishes only what a terminal can load, and its errors are the
  terminal's, naming the file, the question and the field. On top of that the
  wire protocol's limits (:func:`wire_problems`): answers to a questionnaire a
  terminal could load but not send would sit in its quarantine.
* Immutable: an id and version has one text, wherever it is published. The same
  id and version with other content is refused (:class:`QuestionnaireConflict`),
  also for another location, so an answer's id and version always tell which
  wording was asked. The same text again is harmless (``created`` False).
  "Same" is byte for byte (sha256 of the UTF-8 text, which is also the ETag).
* ``location`` None publishes for every location; a location's own publication
  wins over it. Current for a location: its most recently published non-retired
  questionnaire, else the most recently published non-retired all-locations one.
* Retired stays retired: publishing the same text again is refused; publish a
  new version instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy import Connection, Engine, case, insert, select, text, update

from central.errors import QuestionnaireConflict, UnknownQuestionnaire
from central.models import Questionnaire as QuestionnaireRow
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Questionnaire, parse_questionnaire, question_place
from sync.protocol import INT32_MAX, MAX_ANSWERS_PER_RECORD

_table = QuestionnaireRow.__table__
#: A questionnaire file is at most this big (a real one is a few KiB).
MAX_TOML_BYTES = 256 * 1024
#: Ids, question ids, aspects and locations: at most this many characters (the wire's limit).
MAX_ID_CHARS = 64


def sha256_of(toml_text: str) -> str:
    """Hex sha256 of the UTF-8 text: how publications are compared, and the ETag."""
    return hashlib.sha256(toml_text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- reading a file

def read_questionnaire_file(path: str | Path) -> tuple[str, Questionnaire]:
    """The file's text and the validated questionnaire; raises ``QuestionnaireError``.

    The error's text is the terminal's (file, question, field, what is wrong),
    plus :func:`wire_problems`.
    """
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise QuestionnaireError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise QuestionnaireError(source, ["this is a folder, not a file"]) from None
    except OSError as exc:
        raise QuestionnaireError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_TOML_BYTES:
        raise QuestionnaireError(source, [f"the file is larger than {MAX_TOML_BYTES // 1024} KiB; "
                                          "a questionnaire is a few KiB"])
    try:
        toml_text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionnaireError(source, [f"the file is not UTF-8 text (byte {exc.start})"]) from None
    return toml_text, parse_text(toml_text, source)


def parse_text(toml_text: str, source: str = "<questionnaire>") -> Questionnaire:
    """Validate TOML text as the terminal does, plus :func:`wire_problems`."""
    questionnaire = parse_questionnaire(toml_text, source)
    problems = wire_problems(questionnaire)
    if problems:
        raise QuestionnaireError(source, problems)
    return questionnaire


def wire_problems(questionnaire: Questionnaire) -> list[str]:
    """What a terminal would load but could not send answers for (``sync.protocol`` limits)."""
    problems = []
    if len(questionnaire.id) > MAX_ID_CHARS:
        problems.append(f"field 'id': at most {MAX_ID_CHARS} characters, got "
                        f"{len(questionnaire.id)}")
    if questionnaire.version > INT32_MAX:
        problems.append(f"field 'version': must be at most {INT32_MAX}, got {questionnaire.version}")
    if len(questionnaire.questions) > MAX_ANSWERS_PER_RECORD:
        problems.append(f"field 'questions': at most {MAX_ANSWERS_PER_RECORD} questions, got "
                        f"{len(questionnaire.questions)}")
    for index, question in enumerate(questionnaire.questions):
        for field in ("id", "aspect"):
            value = getattr(question, field)
            if len(value) > MAX_ID_CHARS:
                problems.append(f"{question_place(index, question.id)}, field '{field}': at most "
                                f"{MAX_ID_CHARS} characters, got {len(value)}")
    return problems


# ---------------------------------------------------------------------------- stored rows

@dataclass(frozen=True)
class Published:
    """One published questionnaire version.

    ``location`` None: every location. ``state`` (from :func:`list_published`):
    ``current`` (served to the terminals of its location), ``superseded`` (a later
    one is served; it comes back if that is retired) or ``retired``.
    """

    questionnaire_id: str
    version: int
    location: str | None
    sha256: str
    published_at: float
    retired_at: float | None
    toml: str
    state: str = ""

    @property
    def where(self) -> str:
        """``every location`` or ``location stadhuis``, for messages."""
        return "every location" if self.location is None else f"location {self.location}"

    @property
    def label(self) -> str:
        """``balie-standaard v2``."""
        return f"{self.questionnaire_id} v{self.version}"

    def as_dict(self) -> dict:
        """Plain values for JSON, without the TOML text."""
        data = asdict(self)
        data.pop("toml")
        return data


def _published(row) -> Published:
    return Published(questionnaire_id=row.questionnaire_id, version=row.version,
                     location=row.location, sha256=row.sha256, published_at=row.published_at,
                     retired_at=row.retired_at, toml=row.toml)


def _same_location(location: str | None):
    return _table.c.location.is_(None) if location is None else _table.c.location == location


def _newest_first():
    return (_table.c.published_at.desc(), _table.c.pk.desc())


def _current(conn: Connection, location: str | None, *, exact: bool) -> Published | None:
    """Current for ``location``; ``exact``: only its own publications (no all-locations fallback)."""
    query = select(_table).where(_table.c.retired_at.is_(None))
    if exact or location is None:
        query = query.where(_same_location(location)).order_by(*_newest_first())
    else:
        query = query.where((_table.c.location == location) | _table.c.location.is_(None)).order_by(
            case((_table.c.location.is_(None), 1), else_=0), *_newest_first())
    row = conn.execute(query.limit(1)).first()
    return _published(row) if row else None


def _read(engine: Engine):
    return engine.connect().execution_options(sqlite_begin="DEFERRED")


def current_for_location(engine: Engine, location: str | None) -> Published | None:
    """The questionnaire a terminal at ``location`` gets; ``None``: nothing published for it."""
    with _read(engine) as conn:
        return _current(conn, location, exact=False)


# ---------------------------------------------------------------------------- publish

@dataclass(frozen=True)
class PublishResult:
    """``created`` False: the same text was published there before (nothing changed).
    ``current``: what terminals at that location (or every location) get now."""

    published: Published
    created: bool
    current: Published | None


def publish(engine: Engine, toml_text: str, questionnaire: Questionnaire, *,
            location: str | None, now: float) -> PublishResult:
    """Store ``toml_text`` (already validated as ``questionnaire``) for ``location``.

    Raises :class:`QuestionnaireConflict` when this id and version is stored
    with other content (at any location), or was retired at this location.
    """
    digest = sha256_of(toml_text)
    qid, version = questionnaire.id, questionnaire.version
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Check-then-insert must not interleave with another publisher (SQLite's
            # BEGIN IMMEDIATE already serialises writers). Readers are not blocked.
            conn.execute(text("LOCK TABLE questionnaires IN SHARE ROW EXCLUSIVE MODE"))
        stored = [_published(r) for r in conn.execute(
            select(_table).where(_table.c.questionnaire_id == qid, _table.c.version == version)
            .order_by(_table.c.pk))]
        here = next((p for p in stored if p.location == location), None)
        if here is not None:
            if here.sha256 != digest:
                raise QuestionnaireConflict(
                    f"{here.label} is already published for {here.where} with other content "
                    f"(sha256 {here.sha256[:12]}…); a published version never changes: raise "
                    "'version' in the file and publish it again")
            if here.retired_at is not None:
                raise QuestionnaireConflict(
                    f"{here.label} for {here.where} was retired; a retired version is not "
                    "published again: raise 'version' in the file and publish it as a new version")
            return PublishResult(here, False, _current(conn, location, exact=False))
        other = next((p for p in stored if p.sha256 != digest), None)
        if other is not None:
            raise QuestionnaireConflict(
                f"{other.label} is already published for {other.where} with other content "
                f"(sha256 {other.sha256[:12]}…); one id and version has one wording everywhere, "
                "so answers always tell which wording was asked: raise 'version' in the file "
                "(or use another id) and publish it again")
        conn.execute(insert(_table).values(
            questionnaire_id=qid, version=version, location=location, toml=toml_text,
            sha256=digest, published_at=now, retired_at=None))
        published = Published(questionnaire_id=qid, version=version, location=location,
                              sha256=digest, published_at=now, retired_at=None, toml=toml_text)
        return PublishResult(published, True, _current(conn, location, exact=False))


# ---------------------------------------------------------------------------- list and retire

def list_published(engine: Engine) -> list[Published]:
    """Every publication with its ``state``: by id, then location (every location first), version."""
    with _read(engine) as conn:
        rows = [_published(r) for r in conn.execute(select(_table).order_by(
            _table.c.questionnaire_id, case((_table.c.location.is_(None), 0), else_=1),
            _table.c.location, _table.c.version, _table.c.pk))]
        current = {}
        for location in {r.location for r in rows}:
            served = _current(conn, location, exact=True)
            if served is not None:
                current[location] = (served.questionnaire_id, served.version)

    def state(row: Published) -> str:
        if row.retired_at is not None:
            return "retired"
        return "current" if current.get(row.location) == (row.questionnaire_id, row.version) \
            else "superseded"

    return [replace(row, state=state(row)) for row in rows]


@dataclass(frozen=True)
class RetireResult:
    """``changed`` False: it was retired already. ``current``: what that location gets now."""

    retired: Published
    changed: bool
    current: Published | None


def retire(engine: Engine, questionnaire_id: str, version: int, *, location: str | None,
           now: float) -> RetireResult:
    """Stop serving one publication; terminals fall back to the next current one (or keep theirs).

    Raises :class:`UnknownQuestionnaire` when it was never published there.
    """
    with engine.begin() as conn:
        found = conn.execute(select(_table).where(
            _table.c.questionnaire_id == questionnaire_id, _table.c.version == version,
            _same_location(location))).first()
        if found is None:
            elsewhere = sorted(
                "every location" if r.location is None else r.location
                for r in conn.execute(select(_table.c.location).where(
                    _table.c.questionnaire_id == questionnaire_id, _table.c.version == version)))
            where = "every location" if location is None else f"location {location}"
            hint = (f"; it is published for: {', '.join(elsewhere)} (use --location)" if elsewhere
                    else " (see balie-central questionnaire list)")
            raise UnknownQuestionnaire(f"{questionnaire_id} v{version} is not published for "
                                       f"{where}{hint}")
        row = _published(found)
        changed = row.retired_at is None
        if changed:
            conn.execute(update(_table).where(_table.c.pk == found.pk).values(retired_at=now))
            row = replace(row, retired_at=now)
        return RetireResult(row, changed, _current(conn, location, exact=False))
