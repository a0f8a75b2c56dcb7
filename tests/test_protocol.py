"""The wire models: a normal batch and heartbeat pass; values no database can hold are refused.

Bounds (sync/protocol.py): sequence numbers, questionnaire versions and counts
at most 2**31-1, a numeric answer within ±10**9, free-disk bytes at most
2**63-1, no NUL character in any text. Each bound is tested at the limit
(accepted) and one past it (refused), on the device's way in (constructing
the model) and central's (``model_validate_json`` of the bytes).
"""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from sync.protocol import (
    INT32_MAX,
    INT64_MAX,
    MAX_ANSWER_VALUE,
    Batch,
    Heartbeat,
    ResponseRecord,
)
from tests.central_fixtures import clock, make_batch, make_record


def normal_batch() -> dict:
    return make_batch("dev-1", [make_record(1, values=(8, 7)),
                                make_record(2, values=(3, "Vriendelijk geholpen, snel klaar."),
                                            suspect=True, suspect_reason="rapid sessions")])


def normal_heartbeat() -> dict:
    return {"device_id": "dev-1", "app_version": "0.1.0", "backlog": 12, "quarantined": 1,
            "last_error": "heartbeat: ConnectTimeout", "disk_free_bytes": 64 * 2 ** 30,
            "clock": clock(1_700_000_500.0, 77.0), "clock_synced": True}


def both_ways(model, data: dict):
    """``data`` through the model as the device builds it and as central reads it; must agree."""
    built = model.model_validate(data)
    read = model.model_validate_json(json.dumps(data).encode())
    assert built == read
    return read


def refused(model, data: dict, where: str) -> None:
    """``data`` is refused both ways, with an error located at ``where``."""
    for attempt in (lambda: model.model_validate(data),
                    lambda: model.model_validate_json(json.dumps(data).encode())):
        with pytest.raises(ValidationError) as info:
            attempt()
        locations = [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]
        assert any(loc.startswith(where) for loc in locations), locations


def edited(data: dict, path: str, value) -> dict:
    """A deep copy of ``data`` with ``path`` (dotted; digits index lists) set to ``value``."""
    data = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    return data


def test_a_normal_batch_and_heartbeat_are_accepted():
    batch = both_ways(Batch, normal_batch())
    assert [r.seq for r in batch.responses] == [1, 2]
    assert batch.responses[1].answers[1].value == "Vriendelijk geholpen, snel klaar."
    beat = both_ways(Heartbeat, normal_heartbeat())
    assert beat.disk_free_bytes == 64 * 2 ** 30       # above 2**31: bytes are not a count


def test_text_with_newlines_tabs_and_non_ascii_is_still_accepted():
    text = "Eén\tregel\nen nog één — ☺ 😀"
    batch = both_ways(Batch, edited(normal_batch(), "responses.1.answers.1.value", text))
    assert batch.responses[1].answers[1].value == text


INT_BOUNDS = [
    # (model, path, largest accepted)
    (Batch, "responses.0.seq", INT32_MAX),
    (Batch, "responses.0.questionnaire.version", INT32_MAX),
    (Batch, "responses.0.answers.0.value", MAX_ANSWER_VALUE),
    (Heartbeat, "backlog", INT32_MAX),
    (Heartbeat, "quarantined", INT32_MAX),
    (Heartbeat, "disk_free_bytes", INT64_MAX),
]


@pytest.mark.parametrize("model,path,limit", INT_BOUNDS, ids=[b[1] for b in INT_BOUNDS])
def test_integers_are_accepted_up_to_their_bound_and_refused_past_it(model, path, limit):
    data = normal_batch() if model is Batch else normal_heartbeat()
    both_ways(model, edited(data, path, limit))
    for too_big in (limit + 1, 2 ** 63, 2 ** 64, 10 ** 30, 10 ** 300):
        refused(model, edited(data, path, too_big), path)


def test_a_numeric_answer_is_bounded_below_too():
    data = normal_batch()
    both_ways(Batch, edited(data, "responses.0.answers.0.value", -MAX_ANSWER_VALUE))
    for too_small in (-MAX_ANSWER_VALUE - 1, -(2 ** 63) - 1, -(10 ** 30)):
        refused(Batch, edited(data, "responses.0.answers.0.value", too_small),
                "responses.0.answers.0.value")


def test_the_lower_bounds_still_hold():
    refused(Batch, edited(normal_batch(), "responses.0.seq", 0), "responses.0.seq")
    refused(Batch, edited(normal_batch(), "responses.0.questionnaire.version", 0),
            "responses.0.questionnaire.version")
    refused(Heartbeat, edited(normal_heartbeat(), "backlog", -1), "backlog")


TEXT_FIELDS = [
    (Batch, "app_version"),
    (Batch, "sent.boot_id"),
    (Batch, "responses.0.started.boot_id"),
    (Batch, "responses.0.suspect_reason"),
    (Batch, "responses.0.answers.0.value"),
    (Batch, "responses.0.answers.0.at.boot_id"),
    (Heartbeat, "app_version"),
    (Heartbeat, "last_error"),
    (Heartbeat, "clock.boot_id"),
    # fields with a character pattern refused NUL before this change; kept refusing it
    (Batch, "device_id"),
    (Batch, "responses.0.location_id"),
    (Batch, "responses.0.questionnaire.id"),
    (Batch, "responses.0.answers.0.question_id"),
]


@pytest.mark.parametrize("model,path", TEXT_FIELDS,
                         ids=[f"{m.__name__}.{p}" for m, p in TEXT_FIELDS])
@pytest.mark.parametrize("text", ["a\x00b", "\x00", "boot\x00"], ids=["middle", "alone", "end"])
def test_a_nul_character_in_any_text_is_refused(model, path, text):
    data = normal_batch() if model is Batch else normal_heartbeat()
    refused(model, edited(data, path, text), path)


def test_the_device_cannot_even_build_a_record_central_would_refuse():
    record = make_record(1)
    with pytest.raises(ValidationError):
        ResponseRecord(**{**record, "seq": INT32_MAX + 1})
    with pytest.raises(ValidationError):
        ResponseRecord.model_validate(edited(record, "answers.0.value", "geen\x00tekst"))


def test_the_json_schema_states_the_bounds_so_the_openapi_description_does():
    schema = Batch.model_json_schema()
    defs = schema["$defs"]
    assert defs["ResponseRecord"]["properties"]["seq"]["maximum"] == INT32_MAX
    assert defs["QuestionnaireRef"]["properties"]["version"]["maximum"] == INT32_MAX
    value = defs["AnswerRecord"]["properties"]["value"]["anyOf"]
    assert (value[0]["minimum"], value[0]["maximum"]) == (-MAX_ANSWER_VALUE, MAX_ANSWER_VALUE)
    assert "pattern" in value[1] and "pattern" in defs["ClockReading"]["properties"]["boot_id"]
    beat = Heartbeat.model_json_schema()["properties"]
    assert beat["backlog"]["maximum"] == beat["quarantined"]["maximum"] == INT32_MAX
