"""central.wire reads a batch exactly as sync.protocol.Batch (pydantic) would.

Every limit is taken from the pydantic model's JSON schema, not from central.wire,
so a limit changed in one place and not the other fails here.
"""

from __future__ import annotations

import copy
import json
import re
import uuid

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from central import wire
from central.ingest import canonical_json, content_hash
from sync.protocol import Batch

def _uuid(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def sample() -> dict:
    """A valid batch that uses every field (both kinds of value, an aspect, a suspect reason)."""
    clock = {"wall": 1_764_230_400.5, "boot_id": "boot-1", "mono": 3_600.25}
    return {
        "device_id": "dev-1", "app_version": "1.4.2", "sent": dict(clock),
        "responses": [{
            "id": _uuid(1), "seq": 7, "questionnaire": {"id": "standaard", "version": 3},
            "location_id": "stadhuis", "language": "nl", "started": dict(clock),
            "closed_wall": 1_764_230_460.0, "end_reason": "completed", "suspect": True,
            "suspect_reason": "te snel",
            "answers": [
                {"id": _uuid(2), "ordinal": 1, "question_id": "q1", "aspect": "totaal", "value": 8,
                 "at": dict(clock)},
                {"id": _uuid(3), "ordinal": 2, "question_id": "q2", "aspect": None, "value": "Prima",
                 "at": dict(clock)},
            ]}],
    }


def verdicts(data) -> tuple[bool, bool]:
    """(pydantic accepts, central.wire accepts) for ``data`` sent as JSON."""
    raw = json.dumps(data, ensure_ascii=False).encode()
    try:
        Batch.model_validate_json(raw)
        theirs = True
    except ValidationError:
        theirs = False
    try:
        wire.decode_batch(raw)
        ours = True
    except wire.BatchRefused:
        ours = False
    return theirs, ours


# ----------------------------------------------------------------- the schema's limits

SCHEMA = Batch.model_json_schema()


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def branches(schema: dict) -> list[dict]:
    schema = resolve(schema)
    if "anyOf" in schema:
        return [resolve(s) for s in schema["anyOf"]]
    return [schema]


def places(value, schema: dict, path: tuple = ()):
    """(path, schema) of every value in ``value`` and of ``value`` itself."""
    schema = resolve(schema)
    yield path, schema
    if isinstance(value, dict):
        props = next(b for b in branches(schema) if b.get("type") == "object")["properties"]
        for key, item in value.items():
            yield from places(item, props[key], path + (key,))
    elif isinstance(value, list):
        items = next(b for b in branches(schema) if b.get("type") == "array")["items"]
        for n, item in enumerate(value):
            yield from places(item, items, path + (n,))


def fitting(pattern: str | None, length: int) -> str | None:
    """A string of ``length`` characters that the pattern allows (None: none of ours does)."""
    for char in "a0x":
        text = char * length
        if pattern is None or re.fullmatch(pattern.strip("^$"), text):
            return text
    return None


def mutations(value, schema: dict):
    """(label, new value, lax): values around every limit the schema states for this place.
    ``lax``: pydantic's lax mode may take it where central.wire (strict) refuses."""
    for b in branches(schema):
        kind = b.get("type")
        if kind == "string":
            if "maxLength" in b:
                for n in (b["maxLength"], b["maxLength"] + 1):
                    text = fitting(b.get("pattern"), n)
                    if text is not None:
                        yield f"length {n}", text, False
            if b.get("minLength", 0) > 0:
                yield "empty", "", False
            if "pattern" in b and isinstance(value, str):
                for bad in (value + "\n", "\n" + value, value + " ", value.upper(), value + "é",
                            value + "\x00", value[:-1] + "/", value[:-1] + "Z", "\u0660" * len(value)):
                    yield f"pattern {bad!r}", bad, False
            if "enum" in b or "const" in b:
                yield "not an option", "bored", False
        elif kind in ("integer", "number"):
            for key, step in (("maximum", 1), ("minimum", -1)):
                if key in b:
                    yield f"{key}", b[key], False
                    yield f"beyond {key}", b[key] + step, False
                    if kind == "number":
                        yield f"just beyond {key}", b[key] + step * 1e-6, False
            if kind == "integer":
                yield "a float", 3.0, False
                yield "a string", "3", False
            else:
                yield "a whole number", 3, False
                yield "a string", "3.5", True
            yield "a boolean", True, kind == "number"     # pydantic's lax float takes true as 1.0
        elif kind == "boolean":
            yield "a number", 1, True
            yield "a string", "true", True
        elif kind == "object":
            yield "unknown field", {**value, "extra": 1}, False
            for key in b.get("required", []):
                yield f"without {key}", {k: v for k, v in value.items() if k != key}, False
            for key in set(b.get("properties", {})) - set(b.get("required", [])):
                yield f"without optional {key}", {k: v for k, v in value.items() if k != key}, False
        elif kind == "array":
            if b.get("minItems", 0) > 0:
                yield "empty", [], False
    kinds = {b.get("type") for b in branches(schema)}
    if "null" not in kinds:
        yield "null", None, False
    for other, label in (([], "a list"), ({}, "an object"), ("text", "a string")):
        if not any(isinstance(other, {"array": list, "object": dict, "string": str}.get(k, ()))
                   for k in kinds):
            yield label, other, False


def replaced(data: dict, path: tuple, new):
    data = copy.deepcopy(data)
    if not path:
        return new
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return data


def _at(data, path):
    for key in path:
        data = data[key]
    return data


CASES = [(path, label, new, lax)
         for path, schema in places(sample(), SCHEMA)
         for label, new, lax in mutations(_at(sample(), path), schema)]


def test_the_mutations_reach_every_field_and_limit():
    # The derivation above must not silently produce nothing.
    assert len(CASES) > 250
    paths = {path for path, *_ in CASES}
    for path in [("responses", 0, "answers", 1, "value"), ("responses", 0, "suspect_reason"),
                 ("responses", 0, "started", "boot_id"), ("sent", "mono"), ("app_version",),
                 ("responses", 0, "answers", 0, "aspect"), ("responses", 0, "questionnaire", "version")]:
        assert path in paths
    labels = {label for _, label, _, _ in CASES}
    assert {"length 65", "maximum", "beyond maximum", "unknown field", "not an option"} <= labels


@pytest.mark.parametrize("path,label,new,lax", CASES,
                         ids=[f"{'.'.join(map(str, p)) or 'batch'}:{label}" for p, label, _, _ in CASES])
def test_both_readers_take_and_refuse_the_same(path, label, new, lax):
    theirs, ours = verdicts(replaced(sample(), path, new))
    if lax:
        assert not ours, "central.wire is strict here"
    else:
        assert theirs == ours, f"pydantic {'accepts' if theirs else 'refuses'}, central.wire does not"


def test_the_sample_is_valid_for_both_and_reads_the_same():
    raw = json.dumps(sample()).encode()
    ours = wire.decode_batch(raw)
    theirs = Batch.model_validate_json(raw)
    assert msgspec.to_builtins(ours) == theirs.model_dump(mode="json")


def test_repeated_ordinals_or_answer_ids_are_refused_by_both():
    data = sample()
    data["responses"][0]["answers"][1]["ordinal"] = 1
    assert verdicts(data) == (False, False)
    data = sample()
    data["responses"][0]["answers"][1]["id"] = data["responses"][0]["answers"][0]["id"]
    assert verdicts(data) == (False, False)


def test_64_answers_are_taken_and_65_refused_by_both():
    data = sample()
    answer = data["responses"][0]["answers"][0]
    for count, expected in ((64, (True, True)), (65, (False, False))):
        data["responses"][0]["answers"] = [{**answer, "ordinal": n, "id": _uuid(100 + n)}
                                           for n in range(1, count + 1)]
        assert verdicts(data) == expected


@pytest.mark.parametrize("raw,status", [
    (b'{"device_id": ', 400), (b"", 400), (b'{"a": "\\ud800"}', 400), (b"\xff", 400),
    (b"[" * 100_000, 400), (b'{"device_id": "dev-1"}', 422), (b"[]", 422)])
def test_bad_bodies_get_the_status_pydantic_gave(raw, status):
    with pytest.raises(wire.BatchRefused) as refused:
        wire.decode_batch(raw)
    assert refused.value.status == status, refused.value.detail


def test_too_many_records_are_413_even_when_they_are_also_invalid():
    data = sample()
    data["responses"] = data["responses"] * 3       # repeated ids: not for the decoder to judge
    raw = json.dumps(data).encode()
    assert len(wire.decode_batch(raw, max_records=3).responses) == 3
    with pytest.raises(wire.BatchRefused) as refused:
        wire.decode_batch(raw, max_records=2)
    assert refused.value.status == 413
    data["responses"][2]["end_reason"] = "bored"
    with pytest.raises(wire.BatchRefused) as refused:
        wire.decode_batch(json.dumps(data).encode(), max_records=2)
    assert refused.value.status == 413


# ----------------------------------------------------------------- the same content hash

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
clocks = st.fixed_dictionaries({
    "wall": st.floats(0, 1e11) | st.integers(0, 10 ** 11) | st.sampled_from([0.0, 1e-7, 1e-5, 1e-4, -0.0]),
    "boot_id": texts.filter(bool).map(lambda t: t[:64]),
    "mono": st.floats(0, 1e10) | st.sampled_from([0.0, 1e-7, 0.00012, 5e-324])})


@st.composite
def records(draw):
    answers = []
    for ordinal in range(1, draw(st.integers(1, 5)) + 1):
        answers.append({
            "id": _uuid(draw(st.integers(0, 2 ** 120)) * 64 + ordinal), "ordinal": ordinal,
            "question_id": draw(st.from_regex(r"\A[a-z0-9_-]{1,10}\Z")),
            "aspect": draw(st.none() | st.sampled_from(["totaal", "dienst", "wacht-tijd_2"])),
            "value": draw(st.integers(-10 ** 9, 10 ** 9) | texts), "at": draw(clocks)})
    record = {"id": _uuid(draw(st.integers(0, 2 ** 122))), "seq": draw(st.integers(1, 2 ** 31 - 1)),
              "questionnaire": {"id": "standaard", "version": draw(st.integers(1, 2 ** 31 - 1))},
              "location_id": draw(st.from_regex(r"\A[A-Za-z0-9_.:-]{1,20}\Z")),
              "language": draw(st.sampled_from(["nl", "en", "tr"])), "started": draw(clocks),
              "closed_wall": draw(clocks)["wall"],
              "end_reason": draw(st.sampled_from(["completed", "idle", "abandoned", "interrupted"])),
              "answers": answers}
    if draw(st.booleans()):
        record["suspect"] = draw(st.booleans())
        record["suspect_reason"] = draw(st.none() | texts)
    return record


@settings(max_examples=400, deadline=None)
@given(records())
def test_valid_records_read_alike_and_hash_alike(record):
    data = {"device_id": "dev-1", "app_version": "1", "sent": record["started"], "responses": [record]}
    raw = json.dumps(data, ensure_ascii=False).encode()
    ours = wire.decode_batch(raw).responses[0]
    theirs = Batch.model_validate_json(raw).responses[0]
    assert msgspec.to_builtins(ours) == theirs.model_dump(mode="json")
    fast = wire.canonical_bytes(ours)
    if fast is not None:
        assert fast == canonical_json(theirs).encode()
    else:   # only a float below 1e-4 (or text that looks like one) takes the slower writer
        floats = [c[k] for c in [record["started"], *(a["at"] for a in record["answers"])]
                  for k in ("wall", "mono")] + [record["closed_wall"]]
        assert any(0 < x < 1e-4 for x in floats) or '":' in raw.decode()[raw.index(b'"responses"'):]
    assert content_hash(ours) == content_hash(theirs)


def test_small_floats_fall_back_to_the_python_writer():
    # msgspec writes 1e-05 as 0.00001 and 1e-07 as 1e-7; Python's repr differs: not trusted.
    data = sample()
    for tiny in (1e-5, 1e-7, 0.00001234):
        data["responses"][0]["answers"][0]["at"]["mono"] = tiny
        raw = json.dumps(data).encode()
        ours = wire.decode_batch(raw).responses[0]
        assert wire.canonical_bytes(ours) is None
        assert content_hash(ours) == content_hash(Batch.model_validate_json(raw).responses[0])


def test_the_fast_writer_is_the_one_used_for_ordinary_records():
    # Random UUIDs hold "e-" (…7e-4…) and must not send a record to the slower writer.
    data = sample()
    for _ in range(300):
        record = data["responses"][0]
        record["id"] = str(uuid.uuid4())
        for answer in record["answers"]:
            answer["id"] = str(uuid.uuid4())
        record["suspect_reason"] = "e-mail 0.00001 1e-7"     # text, not numbers
        ours = wire.decode_batch(json.dumps(data).encode()).responses[0]
        assert wire.canonical_bytes(ours) is not None, record
