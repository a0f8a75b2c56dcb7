"""The message to visitors ("what you can expect from us", "you told us, we changed") and the overall grade that may go with it.

Use::

    message = VisitorMessage.build(nl="Wij bellen u binnen 2 werkdagen terug.", en=None,
                                   where="welcome", show_grade=True)   # MessageInvalid
    set_message(engine, message, location=None, now=time.time())
    current_for_location(engine, "stadhuis")     # a StoredMessage (its own, else every
                                                 # location's), or None
    clear_message(engine, location=None)         # False: there was none
    overall_grade(engine, "stadhuis", now=time.time(), days=90, min_n=100)
    document_for(engine, "stadhuis", settings.message, now=time.time())  # a MessageDocument

Rules:

* One message per location; ``location`` None is every location without one
  of its own (stored as ``''``). Setting replaces, clearing deletes; terminals
  follow at their next sync.
* Texts follow :func:`sync.message_text.text_problem` (1 to 200 characters after
  trimming, one line, no markup, no NUL); Dutch is required, English optional.
* The grade: the mean of the answers to the overall question (aspect
  ``totaal``, whole numbers 1-10) in responses started in the last ``days``
  days at terminals enrolled at the location (for every location: all of them),
  suspect responses left out, computed with :func:`central.stats.summarise`.
  Privacy: below ``min_n`` answers there is no grade at all, not even a count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Engine, and_, delete, insert, select

from central.errors import CentralError
from central.models import OVERALL_ASPECT, Answer, Device, Message, Response
from sync.message_text import clean_text, text_problem
from sync.protocol import MessageDocument, OverallGrade

_table = Message.__table__
#: The aspect of the overall question ("Welk rapportcijfer geeft u ons vandaag?").
PLACES = ("welcome", "thanks")
_EVERY = ""


class MessageInvalid(CentralError):
    """A message text or option is not acceptable. Not safe to retry: fix the text."""


@dataclass(frozen=True)
class VisitorMessage:
    """A message as the municipality writes it: validated texts, where, and whether to add the grade."""

    nl: str
    en: str | None = None
    where: str = "welcome"
    show_grade: bool = False

    @classmethod
    def build(cls, *, nl: str, en: str | None = None, where: str = "welcome",
              show_grade: bool = False) -> "VisitorMessage":
        """Validated and trimmed; raises :class:`MessageInvalid` naming the option and the problem."""
        problems = []
        for option, text in (("--nl", nl), ("--en", en)):
            if text is None and option == "--en":
                continue
            problem = text_problem(text)
            if problem:
                problems.append(f"{option}: {problem}")
        if where not in PLACES:
            problems.append(f"--where: must be one of {', '.join(PLACES)}, got {where!r}")
        if problems:
            raise MessageInvalid("; ".join(problems))
        return cls(nl=clean_text(nl), en=clean_text(en) if en is not None else None,
                   where=where, show_grade=bool(show_grade))


@dataclass(frozen=True)
class StoredMessage:
    """A stored message: for ``location`` (None: every location), set at ``set_at`` (Unix seconds)."""

    message: VisitorMessage
    location: str | None
    set_at: float

    @property
    def where_label(self) -> str:
        """``every location`` or ``location stadhuis``, for messages."""
        return "every location" if self.location is None else f"location {self.location}"

    def as_dict(self) -> dict:
        """Plain values for JSON."""
        return {**asdict(self.message), "location": self.location, "set_at": self.set_at}


def _stored(row) -> StoredMessage:
    return StoredMessage(VisitorMessage(nl=row.text_nl, en=row.text_en, where=row.placement,
                                        show_grade=row.show_grade),
                         None if row.location == _EVERY else row.location, row.set_at)


def _key(location: str | None) -> str:
    return _EVERY if location is None else location


def _read(engine: Engine):
    return engine.connect().execution_options(sqlite_begin="DEFERRED")


def set_message(engine: Engine, message: VisitorMessage, *, location: str | None,
                now: float) -> StoredMessage | None:
    """Store ``message`` for ``location``, replacing what was there; returns the replaced one."""
    key = _key(location)
    values = dict(text_nl=message.nl, text_en=message.en, placement=message.where,
                  show_grade=message.show_grade, set_at=now)
    with engine.begin() as conn:
        old = conn.execute(select(_table).where(_table.c.location == key)
                           .with_for_update()).first()
        if old is None:
            conn.execute(insert(_table).values(location=key, **values))
        else:
            conn.execute(_table.update().where(_table.c.location == key).values(**values))
    return _stored(old) if old is not None else None


def clear_message(engine: Engine, *, location: str | None) -> bool:
    """Delete the message for ``location``; ``False`` when there was none."""
    with engine.begin() as conn:
        return conn.execute(delete(_table).where(_table.c.location == _key(location))).rowcount > 0


def list_messages(engine: Engine) -> list[StoredMessage]:
    """Every stored message, every location's first, then by location."""
    with _read(engine) as conn:
        rows = conn.execute(select(_table).order_by(_table.c.location)).all()
    return [_stored(row) for row in rows]


def current_for_location(engine: Engine, location: str | None) -> StoredMessage | None:
    """The message terminals at ``location`` show: its own, else every location's; None: none."""
    keys = [_EVERY] if location is None else [location, _EVERY]
    with _read(engine) as conn:
        rows = {row.location: row for row in conn.execute(
            select(_table).where(_table.c.location.in_(keys)))}
    for key in keys:
        if key in rows:
            return _stored(rows[key])
    return None


def overall_grade(engine: Engine, location: str | None, *, now: float, days: int,
                  min_n: int) -> OverallGrade | None:
    """The mean overall grade at ``location`` (None: everywhere) over the last ``days`` days,
    or None when fewer than ``min_n`` answers back it."""
    from central.stats import summarise  # scipy, imported on first use

    answers, responses, devices = Answer.__table__, Response.__table__, Device.__table__
    query = (select(answers.c.value_num)
             .select_from(answers.join(responses, answers.c.response_id == responses.c.id))
             .where(answers.c.aspect == OVERALL_ASPECT,
                    answers.c.value_num.between(1, 10),
                    responses.c.started_at >= now - days * 86400.0,
                    responses.c.started_at <= now,
                    responses.c.suspect.is_(False)))
    if location is not None:
        query = query.join(devices, and_(responses.c.device_id == devices.c.id,
                                         devices.c.location == location))
    with _read(engine) as conn:
        values = [row[0] for row in conn.execute(query)]
    if len(values) < min_n or not values:
        return None
    summary = summarise(values)
    return OverallGrade(mean=round(summary.mean, 1), n=summary.n, days=days)


def document_for(engine: Engine, location: str | None, settings, *, now: float,
                 grade=overall_grade) -> MessageDocument | None:
    """What a terminal at ``location`` gets (``settings``: the ``[message]`` section); None: 404.

    ``grade``: the function computing the grade (the app passes a cached one).
    """
    stored = current_for_location(engine, location)
    if stored is None:
        return None
    message = stored.message
    figure = None
    if message.show_grade:
        figure = grade(engine, location, now=now, days=settings.grade_days,
                       min_n=settings.grade_min_n)
    return MessageDocument(nl=message.nl, en=message.en, where=message.where, grade=figure)
