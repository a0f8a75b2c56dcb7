"""Central's decoder for device batches: the :mod:`sync.protocol` schema, read with msgspec.

Use::

    batch = decode_batch(raw)            # BatchRefused(400 | 422) with the reason when bad
    batch.responses[0].answers[0].at.boot_id
    canonical_bytes(batch.responses[0])  # what central.ingest hashes

Why a second reading of one schema: :class:`sync.protocol.Batch` (pydantic) is
the protocol's definition. The device builds it, and central's OpenAPI
description is made from it. But it builds two Python objects per answer, and
at thousands of answers per batch that was the largest cost in central (about
4 µs per answer, plus the garbage collector's passes over them). These msgspec
structs have the same fields, limits, patterns and defaults. They decode the
same JSON 2-4× faster, are not tracked by the garbage collector (``gc=False``),
and encode their canonical JSON in C. ``tests/test_central_wire.py`` derives
every limit from the pydantic schema and checks that both accept and refuse
the same input. A field added to the protocol fails the import-time check below
until it is added here.

Where the two differ (stricter here, for input no terminal sends): a boolean
must be ``true``/``false`` (pydantic also takes ``1``/``"yes"``), a number must be a
JSON number (pydantic also takes ``"1.5"``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, Struct
from pydantic_core import from_json

from sync import protocol as p


def _whole(pattern: str) -> str:
    """A pydantic (Rust regex) pattern for Python's ``re``: ``$`` also matches before a
    final newline there, ``\\Z`` only at the end."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"pattern {pattern!r} is not anchored")
    return pattern[:-1] + r"\Z"


_NO_NUL = _whole(p.NO_NUL)
Id = Annotated[str, Meta(min_length=1, max_length=p.MAX_ID, pattern=_whole(p.ID_PATTERN))]
Slug = Annotated[str, Meta(min_length=1, max_length=p.MAX_ID, pattern=_whole(p.SLUG_PATTERN))]
Lang = Annotated[str, Meta(pattern=_whole(p.LANG_PATTERN))]
Uuid = Annotated[str, Meta(pattern=_whole(p.UUID_PATTERN))]
Wall = Annotated[float, Meta(ge=0, le=p.MAX_WALL)]
Mono = Annotated[float, Meta(ge=0, le=p.MAX_MONO)]
Positive32 = Annotated[int, Meta(ge=1, le=p.INT32_MAX)]


class _Wire(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    pass


class ClockReading(_Wire):
    wall: Wall
    boot_id: Annotated[str, Meta(min_length=1, max_length=p.MAX_BOOT_ID, pattern=_NO_NUL)]
    mono: Mono


class AnswerRecord(_Wire):
    id: Uuid
    ordinal: Annotated[int, Meta(ge=1, le=p.MAX_ANSWERS_PER_RECORD)]
    question_id: Slug
    value: Union[Annotated[int, Meta(ge=-p.MAX_ANSWER_VALUE, le=p.MAX_ANSWER_VALUE)],
                 Annotated[str, Meta(max_length=p.MAX_TEXT, pattern=_NO_NUL)]]
    at: ClockReading
    aspect: Union[Slug, None] = None


class QuestionnaireRef(_Wire):
    id: Slug
    version: Positive32


class ResponseRecord(_Wire):
    id: Uuid
    seq: Positive32
    questionnaire: QuestionnaireRef
    location_id: Id
    language: Lang
    started: ClockReading
    closed_wall: Wall
    end_reason: Literal["completed", "idle", "abandoned", "interrupted"]
    answers: Annotated[list[AnswerRecord], Meta(min_length=1, max_length=p.MAX_ANSWERS_PER_RECORD)]
    suspect: bool = False
    suspect_reason: Union[Annotated[str, Meta(max_length=p.MAX_SUSPECT_REASON, pattern=_NO_NUL)],
                          None] = None

    def __post_init__(self):
        # As sync.protocol.ResponseRecord._answers_belong_together.
        answers = self.answers
        if len({a.ordinal for a in answers}) != len(answers):
            raise ValueError("answer ordinals must be unique within a response")
        if len({a.id for a in answers}) != len(answers):
            raise ValueError("answer ids must be unique within a response")


class Batch(_Wire):
    device_id: Id
    app_version: Annotated[str, Meta(max_length=p.MAX_APP_VERSION, pattern=_NO_NUL)]
    sent: ClockReading
    # The record limit is checked after decoding (central.app: 413, not 422).
    responses: list[ResponseRecord]


# Every field of the pydantic models, in both; a new protocol field fails here until added.
for _ours, _theirs in ((ClockReading, p.ClockReading), (AnswerRecord, p.AnswerRecord),
                       (QuestionnaireRef, p.QuestionnaireRef), (ResponseRecord, p.ResponseRecord),
                       (Batch, p.Batch)):
    assert set(_ours.__struct_fields__) == set(_theirs.model_fields), f"sync.protocol.{_theirs.__name__} changed"


class BatchRefused(ValueError):
    """The body is not a valid batch: ``status`` 400 (not JSON), 413 (more than
    ``max_records`` responses) or 422 (JSON, but not a batch)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


_decoder = msgspec.json.Decoder(Batch)


def decode_batch(raw: bytes, *, max_records: int = p.MAX_RECORDS) -> Batch:
    """The batch in ``raw`` (JSON bytes), validated as :class:`sync.protocol.Batch` would be.

    The typed decoder never nests deeper than the schema, so a deeply nested
    body fails at its first wrong type. Only when it fails is the body read a
    second time, by pydantic's JSON parser (recursion limit, UTF-8 checks), to
    tell malformed JSON (400) from too many records (413) and a wrong batch (422).
    """
    try:
        batch = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:   # ValidationError is a DecodeError
        reason = str(exc)
    else:
        if len(batch.responses) > max_records:
            raise _too_many(max_records)
        return batch
    try:
        document = from_json(raw)
    except ValueError as exc:
        raise BatchRefused(400, f"malformed JSON: {exc}") from None
    responses = document.get("responses") if isinstance(document, dict) else None
    if isinstance(responses, list) and len(responses) > max_records:
        raise _too_many(max_records)   # what the device must act on, whatever else is wrong
    raise BatchRefused(422, reason)


def _too_many(max_records: int) -> BatchRefused:
    return BatchRefused(413, f"at most {max_records} responses per batch; "
                             "send fewer records per batch")


def from_model(batch: p.Batch) -> Batch:
    """The same batch from the pydantic model (scripts and tests that build batches in Python)."""
    return decode_batch(batch.model_dump_json().encode())


_canonical = msgspec.json.Encoder(order="sorted")
#: A number (right after a key) below 1e-4 as msgspec writes it: 0.00001, 1e-7, 1.5e-05.
_TINY = re.compile(rb'":-?(?:0\.0000|[0-9.]+e-)')


def canonical_bytes(record: ResponseRecord) -> bytes | None:
    """The record's canonical JSON (``central.ingest.canonical_json``) as UTF-8, or ``None``
    where msgspec would write it differently.

    The two writers agree on key order, string escapes, integers and floats from
    1e-4 up to 1e16 (the protocol's clocks stop at 1e11). Below 1e-4 Python writes
    ``1e-05``, msgspec ``0.00001`` or ``1e-7``: output with such a number is not
    trusted. (Text holding ``\":0.0000`` or the like is not trusted either; it only
    costs the slower writer.)
    """
    out = _canonical.encode(record)
    if _TINY.search(out) is not None:
        return None
    return out
