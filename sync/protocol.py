"""The wire protocol between a terminal and central: one schema, used by both ends.

Use (device)::

    batch = Batch(device_id=device_id, app_version=__version__, sent=ClockReading(...),
                  responses=[ResponseRecord(...), ...])
    body = batch.model_dump_json().encode()          # POST {central}/api/v1/batches

Use (central)::

    batch = central.wire.decode_batch(body)          # this schema, read by msgspec; 400/413/422
    BatchResult(results=[RecordResult(id=r.id, status="accepted"), ...])

(``central/wire.py`` mirrors the batch models below with the same limits; a field
added here fails its import-time check until added there, and
``tests/test_central_wire.py`` checks both readers take and refuse the same bodies.)

Rules (../shared/DESIGN.md, "Protocol rules"):

* A response is identified by its client UUID (``id``) and carries the device's
  sequence number (``seq``); central tracks which sequence numbers it has, so
  gaps are visible.
* Re-sending a response is harmless: central answers ``duplicate``, which counts
  as success. The same ``id`` with other content is ``rejected`` (a conflict) and
  the stored data stays untouched. ``rejected`` records go to the device's
  quarantine, never retried.
* Batches are bounded: at most :data:`MAX_RECORDS` responses and
  :data:`MAX_BODY_BYTES` bytes after gzip decompression (413 otherwise: the
  device halves its batch).
* Values fit any database central runs on: integers (sequence numbers,
  versions, counts) are at most :data:`INT32_MAX`, a numeric answer is within
  ±:data:`MAX_ANSWER_VALUE`, free-disk bytes at most 2**63-1, and no text holds
  a NUL character (PostgreSQL cannot store it). A record outside these cannot
  be built on the device (it stays in the local quarantine) and makes central
  refuse the whole batch with 422.
* Time: each record carries wall clock + boot id + monotonic time as taken on
  the device; each batch carries the device's clock reading at the moment of
  sending (set anew at every attempt). Central computes
  ``received_at - (sent.mono - record.mono)`` for records of the sending boot
  and marks the others as unverified.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

#: Protocol version; the URL prefix ``/api/v1`` follows it.
PROTOCOL_VERSION = 1
BATCHES_PATH = "/api/v1/batches"
HEARTBEAT_PATH = "/api/v1/heartbeat"
QUESTIONNAIRE_PATH = "/api/v1/questionnaire"
MESSAGE_PATH = "/api/v1/message"
HEALTH_PATH = "/healthz"

# The limits (MAX_RECORDS, MAX_BODY_BYTES, INT32_MAX, ...) live in sync/limits.py so the
# terminal's settings can read them without building these models; re-exported here.
from sync.limits import (  # noqa: E402,F401
    INT32_MAX,
    INT64_MAX,
    MAX_ANSWER_VALUE,
    MAX_ANSWERS_PER_RECORD,
    MAX_BODY_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_RECORDS,
    MAX_TEXT,
)
#: Text on the wire: any characters but NUL (which PostgreSQL text cannot hold).
NO_NUL = r"^[^\x00]*$"
# The patterns, written once: central.wire (central's fast batch decoder) anchors the same
# expressions for Python's re, where "$" would also match before a final newline.
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
SLUG_PATTERN = r"^[a-z0-9_-]+$"
LANG_PATTERN = r"^[a-z]{2}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: Numbers on the wire: wall clock (Unix seconds) and monotonic seconds since boot.
MAX_WALL, MAX_MONO = 1e11, 1e10
#: Longest ids and slugs, boot id, app version and suspect reason on the wire.
MAX_ID, MAX_BOOT_ID, MAX_APP_VERSION, MAX_SUSPECT_REASON = 64, 64, 32, 500

Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
Slug = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID, pattern=SLUG_PATTERN)]
Lang = Annotated[StrictStr, Field(pattern=LANG_PATTERN)]
Uuid = Annotated[StrictStr, Field(pattern=UUID_PATTERN)]
Count = Annotated[StrictInt, Field(ge=0, le=INT32_MAX)]
Wall = Annotated[float, Field(ge=0, le=MAX_WALL, allow_inf_nan=False)]
Mono = Annotated[float, Field(ge=0, le=MAX_MONO, allow_inf_nan=False)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockReading(_Wire):
    """The device's clocks at one moment: wall (Unix seconds), boot id, monotonic seconds since boot."""

    wall: Wall
    boot_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_BOOT_ID, pattern=NO_NUL)]
    mono: Mono


class AnswerRecord(_Wire):
    """One answer as stored on the device."""

    id: Uuid
    ordinal: Annotated[StrictInt, Field(ge=1, le=MAX_ANSWERS_PER_RECORD)]
    question_id: Slug
    aspect: Slug | None = None
    value: (Annotated[StrictInt, Field(ge=-MAX_ANSWER_VALUE, le=MAX_ANSWER_VALUE)]
            | Annotated[StrictStr, Field(max_length=MAX_TEXT, pattern=NO_NUL)])
    at: ClockReading


class QuestionnaireRef(_Wire):
    """Which questionnaire (and so which wording) was asked."""

    id: Slug
    version: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]


class ResponseRecord(_Wire):
    """One visitor's closed response with its answers."""

    id: Uuid
    seq: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]
    questionnaire: QuestionnaireRef
    location_id: Id
    language: Lang
    started: ClockReading
    closed_wall: Wall
    end_reason: Literal["completed", "idle", "abandoned", "interrupted"]
    suspect: bool = False
    suspect_reason: Annotated[StrictStr, Field(max_length=MAX_SUSPECT_REASON,
                                               pattern=NO_NUL)] | None = None
    answers: Annotated[list[AnswerRecord], Field(min_length=1, max_length=MAX_ANSWERS_PER_RECORD)]

    @model_validator(mode="after")
    def _answers_belong_together(self) -> "ResponseRecord":
        ordinals = [a.ordinal for a in self.answers]
        if len(set(ordinals)) != len(ordinals):
            raise ValueError("answer ordinals must be unique within a response")
        ids = [a.id for a in self.answers]
        if len(set(ids)) != len(ids):
            raise ValueError("answer ids must be unique within a response")
        return self


class Batch(_Wire):
    """What a device POSTs to :data:`BATCHES_PATH`."""

    device_id: Id
    app_version: Annotated[StrictStr, Field(max_length=MAX_APP_VERSION, pattern=NO_NUL)]
    sent: ClockReading
    responses: Annotated[list[ResponseRecord], Field(max_length=MAX_RECORDS)]


Status = Literal["accepted", "duplicate", "rejected"]


class RecordResult(_Wire):
    """Central's verdict on one response. ``duplicate`` counts as success."""

    id: StrictStr
    status: Status
    reason: StrictStr | None = None


class BatchResult(_Wire):
    """Central's reply to a batch: one result per response, in the order sent."""

    received_at: Wall
    results: list[RecordResult]


class Heartbeat(_Wire):
    """What a device POSTs to :data:`HEARTBEAT_PATH` on every sync round."""

    device_id: Id
    app_version: Annotated[StrictStr, Field(max_length=MAX_APP_VERSION, pattern=NO_NUL)]
    backlog: Count
    quarantined: Count
    last_error: Annotated[StrictStr, Field(max_length=1000, pattern=NO_NUL)] | None = None
    disk_free_bytes: Annotated[StrictInt, Field(ge=0, le=INT64_MAX)] | None = None
    clock: ClockReading
    clock_synced: bool | None = None
    # Added for the admin issue (optional: older terminals leave them out).
    #: The questionnaire the terminal asks now.
    questionnaire: QuestionnaireRef | None = None
    #: Why the last questionnaire download or check failed (the last good one stays in use).
    questionnaire_error: Annotated[StrictStr, Field(max_length=1000, pattern=NO_NUL)] | None = None
    #: Whether the terminal is inside its opening hours now (``None``: no opening hours set).
    open_now: bool | None = None
    #: Seconds of opening time since the last recorded response (or since the terminal
    #: started, when it has recorded none since): central's "no ratings" signal.
    quiet_open_s: Annotated[float, Field(ge=0, le=1e10, allow_inf_nan=False)] | None = None
    #: Why the terminal shows its out-of-order screen now (its buffer cannot take answers:
    #: a full disk, a read-only file system); ``None`` while it takes answers.
    out_of_order: Annotated[StrictStr, Field(min_length=1, max_length=300,
                                             pattern=NO_NUL)] | None = None


class QuestionnaireDocument(_Wire):
    """``GET`` :data:`QUESTIONNAIRE_PATH`: the questionnaire central publishes for this device.

    The body is JSON: the id and version central stored, and the TOML text as
    published (the device validates it with the same loader as a local file).
    Central sends an ``ETag`` header (a quoted sha256 of ``toml``); a request
    with a matching ``If-None-Match`` gets ``304 Not Modified`` and no body.
    ``404`` with :class:`ErrorBody` ``error="no_questionnaire"``: nothing is
    published for this device's location, keep the local one.
    """

    id: Slug
    version: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]
    toml: Annotated[StrictStr, Field(min_length=1, max_length=MAX_BODY_BYTES, pattern=NO_NUL)]


class OverallGrade(_Wire):
    """The current overall grade central computed: the mean of the overall question
    (aspect ``totaal``) over the last ``days`` days, from ``n`` answers."""

    mean: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)]
    n: Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]
    days: Annotated[StrictInt, Field(ge=1, le=3660)]


class MessageDocument(_Wire):
    """``GET`` :data:`MESSAGE_PATH`: the message central shows visitors at this device's location.

    Added for the thermometer issue; every field is optional, so a later
    central may add more. ``nl``/``en``: the text per language (plain text, one
    line, no markup); ``where``: the screen it belongs on (``welcome`` or
    ``thanks``); ``grade``: the current overall grade, only when central has
    enough answers for it. Conditional like the questionnaire: ``ETag`` (a
    quoted sha256 of the body), ``If-None-Match`` gets ``304``. ``404`` with
    ``error="no_message"``: no message for this location; show none.
    """

    nl: Annotated[StrictStr, Field(min_length=1, max_length=MAX_MESSAGE_CHARS,
                                   pattern=NO_NUL)] | None = None
    en: Annotated[StrictStr, Field(min_length=1, max_length=MAX_MESSAGE_CHARS,
                                   pattern=NO_NUL)] | None = None
    where: Literal["welcome", "thanks"] = "welcome"
    grade: OverallGrade | None = None


class HeartbeatAck(_Wire):
    """Central's reply to a heartbeat."""

    received_at: Wall


class ErrorBody(_Wire):
    """The JSON body of every 4xx/5xx answer from central."""

    error: StrictStr
    detail: StrictStr | None = None
