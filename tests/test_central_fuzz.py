"""Central fuzzed from its OpenAPI description over real HTTP: no 5xx, every error an ErrorBody.

schemathesis (4.x) reads ``/openapi.json`` from a real central (uvicorn on a
loopback port, :func:`tests.central_fixtures.run_central`) and generates
requests for every operation, both valid (``positive``: they must pass
validation and reach the database) and invalid (``negative``: they must get a
4xx). Runs are deterministic (hypothesis ``derandomize``, no example
database) and counted, so a fuzzer that silently stopped generating fails.

Runs (examples per operation and mode; numbers in :data:`RUNS`):

* SQLite, the device's real token: positive and negative for both device
  endpoints, positive for ``/healthz`` (it takes no input). Positive bodies
  are put the way a device writes them (:func:`as_the_device_sends`) so they
  get past validation and auth and are stored; at least half must be (200).
* SQLite without a valid token (none, unknown, Basic, empty Bearer): the two
  device endpoints, every answer a 401.
* The questionnaire GET (its one input is the ``If-None-Match`` header), with a
  questionnaire published: 200 or 304 with the token, 401 without.
* PostgreSQL (a fresh database on the session cluster): a smaller positive and
  negative run with the real token.

Checks on every answer: ``not_a_server_error``, ``response_schema_conformance``
and ``status_code_conformance`` (the status and body are documented ones), an
error (4xx/5xx) is a JSON :class:`~sync.protocol.ErrorBody`; on negative cases
also ``negative_data_rejection`` (a body against the schema gets a 4xx).
Each run asserts it sent at least :data:`MIN_SHARE` of its examples.

``BALIE_FUZZ_SCALE=N`` multiplies the example counts for a longer run by hand.

Below the fuzzer: hand-made bad inputs the generator does not make
(truncated / deeply nested JSON, invalid UTF-8, gzip with trailing bytes,
a body exactly at the byte cap and one byte over, ...).
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import uuid
from typing import NamedTuple

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from central.db import make_engine
from central.models import Response
from central.questionnaires import publish, read_questionnaire_file
from sync.protocol import (
    BATCHES_PATH,
    HEALTH_PATH,
    HEARTBEAT_PATH,
    MAX_BODY_BYTES,
    QUESTIONNAIRE_PATH,
    ErrorBody,
)
from tests.central_fixtures import (
    central_settings,
    enrol_device,
    make_batch,
    make_record,
    questionnaire_file,
    run_central,
)

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

#: Examples per operation and mode. A Batch body costs ~0.25 s to generate and send (deep,
#: large, regex-laden), a Heartbeat ~25 ms: these counts keep the module near 65 s on the
#: 2-core machine. ``BALIE_FUZZ_SCALE=10`` multiplies them all, for a longer run by hand.
SCALE = float(os.environ.get("BALIE_FUZZ_SCALE", "1"))
RUNS = {
    name: {path: max(1, round(n * SCALE)) for path, n in counts.items()}
    for name, counts in {
        "sqlite": {BATCHES_PATH: 60, HEARTBEAT_PATH: 150},
        "sqlite-no-auth": {BATCHES_PATH: 8, HEARTBEAT_PATH: 25},
        "postgres": {BATCHES_PATH: 25, HEARTBEAT_PATH: 60},
    }.items()
}
#: Below this share of generated cases actually sent, the run counts as not exercising.
MIN_SHARE = 0.8


# ----------------------------------------------------------------------------- helpers


def load_schema(base_url: str):
    """The OpenAPI description as served, with generation set up for a reproducible run."""
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": ["400", "401", "403", "413", "415", "422"]}}})
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=config)
    schema.config.generation.update(
        deterministic=True,
        allow_x00=True,                    # NUL characters in strings: stored text must refuse them
        with_security_parameters=False,    # the test sends the Authorization header itself
    )
    return schema


def assert_error_body(response) -> None:
    """A 4xx/5xx answer is JSON matching ``ErrorBody``."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", "")
    if isinstance(content_type, list):     # schemathesis' Response: header name -> values
        content_type = content_type[0] if content_type else ""
    assert content_type.startswith("application/json"), (response.status_code, response.text[:300])
    ErrorBody.model_validate_json(response.content)


def _ints_as_ints(value):
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {key: _ints_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_ints_as_ints(item) for item in value]
    return value


def as_the_device_sends(body: dict, device_id: str | None) -> dict:
    """A generated valid body as a device would write it.

    * Whole floats become integers: JSON Schema counts ``2.0`` as an integer and
      schemathesis sends both spellings, but the wire models are strict (a
      device's pydantic encoder never writes ``2.0`` for an int) and refuse
      ``2.0`` with a (documented) 422. That refusal is covered by the negative
      run and by :func:`test_a_whole_float_for_an_integer_is_refused_422`.
    * Answer ordinals are numbered 1, 2, ... within each response: "unique
      within a response" is a rule JSON Schema cannot state, so the generator
      mostly repeats them (a 422 that would hide the rest of the body).
    * ``device_id`` is the enrolled device's, so the body is stored, not refused 403.
    """
    body = _ints_as_ints(body)
    if device_id is not None and "device_id" in body:
        body["device_id"] = device_id
    for record in body.get("responses") or []:
        if isinstance(record, dict) and isinstance(record.get("answers"), list):
            for ordinal, answer in enumerate(record["answers"], start=1):
                if isinstance(answer, dict):
                    answer["ordinal"] = ordinal
    return body


def fuzz(schema, base_url: str, *, path: str, method: str, mode: GenerationMode,
         max_examples: int, headers: dict, device_id: str | None) -> collections.Counter:
    """Run ``max_examples`` generated cases of one operation; returns status code counts.

    ``device_id``: put into positive bodies so they are stored rather than refused 403.
    """
    operation = schema[path][method]
    statuses: collections.Counter = collections.Counter()
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    if mode is NEGATIVE:
        checks.append(negative_data_rejection)

    @hypothesis_settings(
        max_examples=max_examples, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck), print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        if mode is POSITIVE and isinstance(case.body, dict):
            case.body = as_the_device_sends(case.body, device_id)
        # A new connection per case: on run_central's socket (made with proto 0) asyncio does
        # not set TCP_NODELAY, so a keep-alive session waits ~40 ms (delayed ACK) per request.
        response = case.call(base_url=base_url, headers=headers, timeout=(5, 60))
        statuses[response.status_code] += 1
        try:
            assert_error_body(response)
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as exc:
            exc.add_note(f"{response.status_code} {response.text[:500]}\nreproduce: "
                         f"{case.as_curl_command(headers=headers)[:4000]}")
            raise

    run()
    return statuses


def check_exercised(statuses: collections.Counter, max_examples: int, what: str) -> None:
    sent = sum(statuses.values())
    assert sent >= MIN_SHARE * max_examples, (
        f"{what}: only {sent} of {max_examples} cases sent: {statuses}")
    assert not any(code >= 500 for code in statuses), f"{what}: {statuses}"


# ----------------------------------------------------------------------------- fixtures


class Central(NamedTuple):
    settings: object
    base_url: str
    device_id: str
    token: str
    schema: object

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    settings = central_settings(tmp_path_factory.mktemp("fuzz") / "central.sqlite3")
    with run_central(settings) as base_url:
        device_id, token = enrol_device(settings)
        yield Central(settings, base_url, device_id, token, load_schema(base_url))


# ----------------------------------------------------------------------------- the fuzzer

DEVICE_OPERATIONS = [(BATCHES_PATH, "POST"), (HEARTBEAT_PATH, "POST")]


def expect_stored(statuses: collections.Counter) -> None:
    """Valid bodies get past auth and validation: most are stored (200)."""
    assert statuses[200] >= 0.5 * sum(statuses.values()), statuses


@pytest.mark.parametrize("path,method", DEVICE_OPERATIONS, ids=["batches", "heartbeat"])
@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=["positive", "negative"])
def test_fuzz_with_the_device_token_on_sqlite(central, path, method, mode):
    n = RUNS["sqlite"][path]
    statuses = fuzz(central.schema, central.base_url, path=path, method=method, mode=mode,
                    max_examples=n, headers=central.auth, device_id=central.device_id)
    check_exercised(statuses, n, f"{method} {path} {mode.value}")
    if mode is POSITIVE:
        expect_stored(statuses)
    else:
        assert statuses[200] < 0.1 * sum(statuses.values()), statuses
    print(f"\nsqlite {method} {path} {mode.value}: {dict(sorted(statuses.items()))}")


def test_fuzz_healthz(central):
    statuses = fuzz(central.schema, central.base_url, path=HEALTH_PATH, method="GET",
                    mode=POSITIVE, max_examples=5, headers={}, device_id=None)
    assert set(statuses) == {200}, statuses


def test_fuzz_the_questionnaire_get(central, tmp_path):
    engine = make_engine(central.settings.database_url)
    try:
        publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 1)), location=None,
                now=1_800_000_000.0)
    finally:
        engine.dispose()
    n = 40
    statuses = fuzz(central.schema, central.base_url, path=QUESTIONNAIRE_PATH, method="GET",
                    mode=POSITIVE, max_examples=n, headers=central.auth, device_id=None)
    check_exercised(statuses, n, f"GET {QUESTIONNAIRE_PATH}")
    assert set(statuses) <= {200, 304} and statuses[200], statuses
    print(f"\nGET {QUESTIONNAIRE_PATH}: {dict(sorted(statuses.items()))}")
    for auth in AUTHS.values():
        statuses = fuzz(central.schema, central.base_url, path=QUESTIONNAIRE_PATH, method="GET",
                        mode=POSITIVE, max_examples=10, device_id=None,
                        headers={"Authorization": auth} if auth else {})
        assert set(statuses) == {401}, (auth, statuses)


AUTHS = {"none": None, "wrong": "Bearer not-a-token", "basic": "Basic YTpi", "empty": "Bearer "}


@pytest.mark.parametrize("path,method", DEVICE_OPERATIONS, ids=["batches", "heartbeat"])
@pytest.mark.parametrize("auth", list(AUTHS.values()), ids=list(AUTHS))
def test_fuzz_without_a_valid_token_is_always_401(central, path, method, auth):
    n = RUNS["sqlite-no-auth"][path]
    headers = {"Authorization": auth} if auth else {}
    statuses = fuzz(central.schema, central.base_url, path=path, method=method, mode=POSITIVE,
                    max_examples=n, headers=headers, device_id=central.device_id)
    check_exercised(statuses, n, f"{method} {path} auth={auth}")
    assert set(statuses) == {401}, statuses


@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=["positive", "negative"])
def test_fuzz_on_postgres(pg_url, mode):
    settings = central_settings(pg_url)
    with run_central(settings) as base_url:
        device_id, token = enrol_device(settings)
        schema = load_schema(base_url)
        for path, method in DEVICE_OPERATIONS:
            n = RUNS["postgres"][path]
            statuses = fuzz(schema, base_url, path=path, method=method, mode=mode, max_examples=n,
                            headers={"Authorization": f"Bearer {token}"}, device_id=device_id)
            check_exercised(statuses, n, f"postgres {method} {path} {mode.value}")
            if mode is POSITIVE:
                expect_stored(statuses)
            print(f"\npostgres {method} {path} {mode.value}: {dict(sorted(statuses.items()))}")
        if mode is POSITIVE:
            check_colliding_batches(settings, base_url, round(40 * SCALE))


# ----------------------------------------------------------------------------- hand-made bad input


@pytest.fixture
def device(central):
    """A fresh device on the module's central: ``(device_id, headers)``; its seq starts at 1."""
    device_id, token = enrol_device(central.settings, name="Fuzz")
    return device_id, {"Authorization": f"Bearer {token}"}


def post(central, headers, data, path=BATCHES_PATH, **kwargs):
    """POST on a new connection (see :func:`fuzz` on why not a keep-alive session)."""
    reply = requests.post(central.base_url + path, data=data, headers=headers, timeout=(5, 60),
                          **kwargs)
    assert reply.status_code < 500, (reply.status_code, reply.text[:500])
    assert_error_body(reply)
    return reply


def refused(reply, status, code=None) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert reply.status_code in statuses, (reply.status_code, reply.text[:500])
    if code:
        assert reply.json()["error"] == code, reply.text[:500]


def batch_bytes(device_id: str, records=None, **kwargs) -> bytes:
    records = records if records is not None else [make_record(1)]
    return json.dumps(make_batch(device_id, records, **kwargs)).encode()


def heartbeat(device_id: str, **fields) -> dict:
    return {"device_id": device_id, "app_version": "0.1.0", "backlog": 3, "quarantined": 0,
            "last_error": None, "disk_free_bytes": 10 ** 9,
            "clock": {"wall": 1_700_000_000.0, "boot_id": "boot-a", "mono": 50.0}, **fields}


def stored_responses(central, device_id: str) -> int:
    engine = make_engine(central.settings.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Response).where(
                Response.device_id == device_id)).scalar_one()
    finally:
        engine.dispose()


def test_truncated_json_is_refused_400_at_every_cut(central, device):
    device_id, headers = device
    for path, full in ((BATCHES_PATH, batch_bytes(device_id, [make_record(1), make_record(2)])),
                       (HEARTBEAT_PATH, json.dumps(heartbeat(device_id)).encode())):
        cuts = sorted({*range(1, len(full), max(1, len(full) // 150)), len(full) - 1})
        for cut in cuts:
            refused(post(central, headers, full[:cut], path), 400, "malformed_json")
        gzipped = gzip.compress(full)
        refused(post(central, {**headers, "Content-Encoding": "gzip"},
                     gzip.compress(full[:len(full) // 2]), path), 400, "malformed_json")
        refused(post(central, {**headers, "Content-Encoding": "gzip"},
                     gzipped[:len(gzipped) // 2], path), 400, "bad_gzip")
    assert stored_responses(central, device_id) == 0


def _with(data: dict, path: str, raw: str) -> bytes:
    """``data`` as JSON with the value at dotted ``path`` replaced by the JSON text ``raw``."""
    marker = "@@MARK@@"
    data = json.loads(json.dumps(data))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = data
    for part in parents:
        target = target[part]
    target[last] = marker
    return json.dumps(data).replace(f'"{marker}"', raw).encode()


HUGE = [
    # (path in the batch, JSON number text, expected statuses)
    ("responses.0.seq", str(2 ** 31), 422),
    ("responses.0.seq", str(2 ** 63), 422),
    ("responses.0.seq", "1" + "0" * 4000, 422),            # still parsed: a big int, out of range
    ("responses.0.seq", "1" + "0" * 5000, (400, 422)),     # past the parser's digit limit
    ("responses.0.seq", "-" + "9" * 100, 422),
    ("responses.0.seq", "1e400", 422),                     # a float (infinity), not an int
    ("responses.0.seq", "1.0", 422),                       # a whole float: strict ints only
    ("responses.0.questionnaire.version", str(2 ** 64), 422),
    ("responses.0.answers.0.value", str(10 ** 9 + 1), 422),
    ("responses.0.answers.0.value", str(-(2 ** 63) - 1), 422),
    ("responses.0.answers.0.value", "9" * 3000, 422),
    ("responses.0.answers.0.ordinal", str(2 ** 100), 422),
    ("responses.0.started.wall", "1e400", 422),            # infinity
    ("responses.0.started.wall", "-1e400", 422),
    ("responses.0.started.wall", "NaN", (400, 422)),
    ("responses.0.started.wall", "Infinity", (400, 422)),
    ("responses.0.started.wall", "9" * 400, 422),          # an int too big for a float
    ("responses.0.started.mono", "1" + "0" * 4299, 422),
    ("sent.mono", "1e308", 422),
    ("sent.wall", "1e-400", 200),                          # underflows to 0.0: a valid wall clock
]


@pytest.mark.parametrize("path,number,status", HUGE, ids=[f"{p}={n[:12]}" for p, n, _ in HUGE])
def test_huge_numbers_are_refused_4xx_never_5xx(central, device, path, number, status):
    device_id, headers = device
    data = _with(make_batch(device_id, [make_record(1)]), path, number)
    refused(post(central, headers, data), status)


BEAT_HUGE = [("backlog", str(2 ** 31)), ("quarantined", str(2 ** 63)), ("quarantined", "1e400"),
             ("disk_free_bytes", str(2 ** 63)), ("disk_free_bytes", "9" * 4000),
             ("clock.wall", "1e400"), ("clock.mono", "NaN"), ("backlog", "1" + "0" * 5000)]


@pytest.mark.parametrize("path,number", BEAT_HUGE, ids=[f"{p}={n[:12]}" for p, n in BEAT_HUGE])
def test_huge_numbers_in_a_heartbeat_are_refused_4xx(central, device, path, number):
    device_id, headers = device
    data = _with(heartbeat(device_id), path, number)
    refused(post(central, headers, data, HEARTBEAT_PATH), (400, 422))


def deep(levels: int, open_: str = "[", close: str = "]", closed: bool = True) -> bytes:
    return (open_ * levels + (close * levels if closed else "")).encode()


DEEP = {
    "lists-100k-open": deep(100_000, closed=False),
    "lists-100k-closed": deep(100_000),
    "objects-100k": deep(100_000, '{"a":', "}"),
    "in-a-field": b'{"device_id": ' + deep(100_000) + b"}",
    "in-a-record": b'{"device_id": "x", "app_version": "1", "sent": {"wall": 1, "boot_id": "b", '
                   b'"mono": 1}, "responses": [' + deep(100_000, '{"answers":', "}") + b"]}",
    "lists-1m-open": deep(1_000_000, closed=False),
}


@pytest.mark.parametrize("body", list(DEEP.values()), ids=list(DEEP))
@pytest.mark.parametrize("path", [BATCHES_PATH, HEARTBEAT_PATH], ids=["batches", "heartbeat"])
def test_deeply_nested_json_is_refused_400_not_a_recursion_error(central, device, body, path):
    _, headers = device
    refused(post(central, headers, body, path), 400, "malformed_json")
    refused(post(central, {**headers, "Content-Encoding": "gzip"}, gzip.compress(body),
                 path), 400, "malformed_json")


def test_deeply_nested_json_over_the_byte_cap_is_refused_413(central, device):
    _, headers = device
    body = deep(MAX_BODY_BYTES + 1, closed=False)
    refused(post(central, headers, body), 413, "payload_too_large")
    refused(post(central, {**headers, "Content-Encoding": "gzip"}, gzip.compress(body)),
            413, "payload_too_large")


INVALID_UTF8 = {
    "ff": b"\xff", "lone-continuation": b"\x80", "cut-sequence": b"\xc3", "c3-28": b"\xc3\x28",
    "overlong-slash": b"\xc0\xaf", "surrogate": b"\xed\xa0\x80",
    "past-u10ffff": b"\xf4\x90\x80\x80",
    "latin-1": "é".encode("latin-1"),
}


@pytest.mark.parametrize("raw", list(INVALID_UTF8.values()), ids=list(INVALID_UTF8))
def test_invalid_utf8_is_refused_400(central, device, raw):
    device_id, headers = device
    text = batch_bytes(device_id, [make_record(1, values=(8, "PLACE"))])
    refused(post(central, headers, text.replace(b"PLACE", b"ok" + raw + b"ok")),
            400, "malformed_json")
    # in a key, and before the JSON starts
    refused(post(central, headers, text.replace(b'"device_id"', b'"device' + raw + b'"')),
            400, "malformed_json")
    refused(post(central, headers, raw + text), 400, "malformed_json")
    beat = json.dumps(heartbeat(device_id, last_error="PLACE")).encode()
    refused(post(central, headers, beat.replace(b"PLACE", raw), HEARTBEAT_PATH),
            400, "malformed_json")
    assert stored_responses(central, device_id) == 0


def test_a_byte_order_mark_and_other_non_json_are_refused_4xx(central, device):
    device_id, headers = device
    good = batch_bytes(device_id)
    refused(post(central, headers, b"\xef\xbb\xbf" + good), 400, "malformed_json")
    refused(post(central, headers, good.decode().encode("utf-16")), 400, "malformed_json")
    for top_level in (b"null", b"1", b'"batch"', b"true", b"[]"):
        refused(post(central, headers, top_level), 422, "invalid")
    refused(post(central, headers, good + b"{}"), 400, "malformed_json")


NUL_FIELDS = ["app_version", "sent.boot_id", "responses.0.started.boot_id",
              "responses.0.suspect_reason", "responses.0.answers.1.value",
              "responses.0.answers.0.at.boot_id", "responses.0.location_id",
              "responses.0.questionnaire.id", "responses.0.answers.0.question_id",
              "responses.0.answers.0.aspect", "responses.0.language", "responses.0.id",
              "responses.0.end_reason"]


@pytest.mark.parametrize("path", NUL_FIELDS)
def test_a_nul_character_in_any_text_of_a_batch_is_refused_and_nothing_stored(
        central, device, path):
    device_id, headers = device
    records = [make_record(1, values=(8, "goed"), suspect=True, suspect_reason="snel"),
               make_record(2)]
    data = make_batch(device_id, records)
    escaped = _with(data, path, r'"ab\u0000cd"')
    refused(post(central, headers, escaped), 422, "invalid")
    refused(post(central, {**headers, "Content-Encoding": "gzip"}, gzip.compress(escaped)),
            422, "invalid")
    raw = _with(data, path, '"ab\x00cd"')                 # an unescaped control character
    refused(post(central, headers, raw), 400, "malformed_json")
    assert stored_responses(central, device_id) == 0
    reply = post(central, headers, json.dumps(data))
    assert [r["status"] for r in reply.json()["results"]] == ["accepted", "accepted"]


@pytest.mark.parametrize("path", ["app_version", "last_error", "clock.boot_id", "device_id"])
def test_a_nul_character_in_a_heartbeat_is_refused(central, device, path):
    device_id, headers = device
    beat = heartbeat(device_id, last_error="timeout")
    refused(post(central, headers, _with(beat, path, r'"x\u0000"'), HEARTBEAT_PATH),
            422, "invalid")
    refused(post(central, headers, _with(beat, path, '"x\x00"'), HEARTBEAT_PATH),
            400, "malformed_json")
    refused(post(central, headers, b"\x00" * 64, HEARTBEAT_PATH), 400, "malformed_json")


CONTENT_TYPES = ["text/plain", "application/xml", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=xyz", "application/octet-stream",
                 "application/json; charset=latin-1", "garbage", None]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_wrong_content_type_never_gives_a_5xx(central, device, content_type):
    """Central reads the body as JSON whatever its label (the uploader always says
    application/json): a valid body is stored, anything else is refused 400."""
    device_id, headers = device
    headers = {**headers, "Content-Type": content_type} if content_type else headers
    reply = post(central, headers, batch_bytes(device_id))
    assert reply.status_code == 200, reply.text
    refused(post(central, headers, b"device_id=dev-1&responses=1"), 400, "malformed_json")
    refused(post(central, headers,
                 b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n'),
            400, "malformed_json")
    refused(post(central, headers, b"<batch/>", HEARTBEAT_PATH), 400, "malformed_json")


def test_gzip_with_trailing_garbage_is_refused_400(central, device):
    device_id, headers = device
    headers = {**headers, "Content-Encoding": "gzip"}
    packed = gzip.compress(batch_bytes(device_id))
    for tail in (b"garbage", b"\x00", b"\x00" * 1000, packed):        # the last: a second member
        refused(post(central, headers, packed + tail), 400, "bad_gzip")

    def chunked(*parts):          # the garbage arrives in a later chunk than the stream's end
        yield from parts
    refused(post(central, headers, chunked(packed, b"x")), 400, "bad_gzip")
    refused(post(central, headers, chunked(packed[:10], packed[10:], b"", b"tail")),
            400, "bad_gzip")
    beat = gzip.compress(json.dumps(heartbeat(device_id)).encode())
    refused(post(central, headers, beat + b"junk", HEARTBEAT_PATH), 400, "bad_gzip")
    assert stored_responses(central, device_id) == 0


def test_an_empty_body_is_refused_400(central, device):
    _, headers = device
    for path in (BATCHES_PATH, HEARTBEAT_PATH):
        refused(post(central, headers, b"", path), 400, "malformed_json")
        refused(post(central, headers, iter([]), path), 400, "malformed_json")  # chunked
        refused(post(central, {**headers, "Content-Encoding": "gzip"}, b"", path),
                400, "bad_gzip")
        refused(post(central, {**headers, "Content-Encoding": "gzip"}, gzip.compress(b""),
                     path), 400, "malformed_json")
        refused(post(central, headers, b"   \n\t ", path), 400, "malformed_json")


def test_501_records_are_refused_413_also_gzipped_and_500_are_stored(central, device):
    device_id, headers = device
    records = [make_record(seq, values=(1,)) for seq in range(1, 502)]
    refused(post(central, {**headers, "Content-Encoding": "gzip"},
                 gzip.compress(batch_bytes(device_id, records))), 413, "too_many_records")
    # 501 records that are also invalid: the count is what the device must act on
    bad = [{**record, "end_reason": "bored"} for record in records]
    refused(post(central, headers, batch_bytes(device_id, bad)), 413, "too_many_records")
    assert stored_responses(central, device_id) == 0
    reply = post(central, {**headers, "Content-Encoding": "gzip"},
                 gzip.compress(batch_bytes(device_id, records[:500])))
    assert reply.status_code == 200, reply.text
    assert {r["status"] for r in reply.json()["results"]} == {"accepted"}


def padded(body: bytes, size: int) -> bytes:
    """``body`` (a JSON object) padded with whitespace inside it to exactly ``size`` bytes."""
    assert body.endswith(b"}")
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_body_exactly_at_the_byte_cap_is_taken_and_one_byte_over_is_413(central, device):
    device_id, headers = device
    at_cap = padded(batch_bytes(device_id, [make_record(1)]), MAX_BODY_BYTES)
    over = padded(batch_bytes(device_id, [make_record(2)]), MAX_BODY_BYTES + 1)
    assert (len(at_cap), len(over)) == (MAX_BODY_BYTES, MAX_BODY_BYTES + 1)
    gz = {**headers, "Content-Encoding": "gzip"}

    def chunks(data):                        # no Content-Length: read up to the cap + 1
        for start in range(0, len(data), 65536):
            yield data[start:start + 65536]

    for send, data in (("plain", at_cap), ("chunked", at_cap), ("gzip", at_cap)):
        reply = post(central, gz if send == "gzip" else headers,
                     {"plain": data, "chunked": chunks(data), "gzip": gzip.compress(data)}[send])
        assert reply.status_code == 200, (send, reply.text[:300])
        assert reply.json()["results"][0]["status"] in ("accepted", "duplicate"), send
    refused(post(central, headers, over), 413, "payload_too_large")
    refused(post(central, headers, chunks(over)), 413, "payload_too_large")
    refused(post(central, gz, gzip.compress(over)), 413, "payload_too_large")
    assert stored_responses(central, device_id) == 1
    beat = json.dumps(heartbeat(device_id)).encode()
    assert post(central, headers, padded(beat, MAX_BODY_BYTES),
                HEARTBEAT_PATH).status_code == 200
    refused(post(central, headers, padded(beat, MAX_BODY_BYTES + 1), HEARTBEAT_PATH),
            413, "payload_too_large")


def test_a_whole_float_for_an_integer_is_refused_422(central, device):
    """JSON Schema counts ``2.0`` as an integer; central's wire models are strict and refuse it
    with a documented 422 (a device never writes it), as schemathesis' generator finds."""
    device_id, headers = device
    refused(post(central, headers, _with(make_batch(device_id, [make_record(1)]),
                                                  "responses.0.answers.0.value", "8.0")),
            422, "invalid")
    refused(post(central, headers, _with(heartbeat(device_id), "backlog", "3.0"),
                 HEARTBEAT_PATH), 422, "invalid")


# ----------------------------------------------------------------------------- colliding ids

# Generated bodies almost never reuse an id, so the idempotency rules are fuzzed here: batches
# drawn from tiny pools of response ids, sequence numbers and answer ids (two devices), checked
# against a model of the rules in central/ingest.py, on top of "no 5xx".

POOL = 5


@st.composite
def colliding_records(draw) -> list[tuple[int, int, list[int], list[int]]]:
    """Records as (response id index, seq, answer id indexes, values)."""
    records = []
    for _ in range(draw(st.integers(0, 5))):
        count = draw(st.integers(1, 3))
        records.append((draw(st.integers(0, POOL - 1)), draw(st.integers(1, POOL)),
                        draw(st.lists(st.integers(0, 2 * POOL - 1), min_size=count,
                                      max_size=count, unique=True)),
                        draw(st.lists(st.integers(1, 2), min_size=count, max_size=count))))
    return records


class IngestModel:
    """What central must answer, per the rules of central/ingest.py (first matching rule wins)."""

    def __init__(self):
        self.stored: dict[str, tuple[str, str]] = {}     # id -> (device, canonical content)
        self.seqs: set[tuple[str, int]] = set()
        self.answers: set[str] = set()

    def expect(self, device_id: str, record: dict) -> str:
        content = json.dumps(record, sort_keys=True)
        if record["id"] in self.stored:
            owner, stored = self.stored[record["id"]]
            return "duplicate" if (owner, stored) == (device_id, content) else "rejected"
        answer_ids = {a["id"] for a in record["answers"]}
        if (device_id, record["seq"]) in self.seqs or answer_ids & self.answers:
            return "rejected"
        self.stored[record["id"]] = (device_id, content)
        self.seqs.add((device_id, record["seq"]))
        self.answers |= answer_ids
        return "accepted"


def check_colliding_batches(settings, base_url: str, max_examples: int) -> None:
    """Fuzz ``max_examples`` sequences of colliding batches; every rule must have been hit."""
    outcomes: collections.Counter = collections.Counter()

    @hypothesis_settings(max_examples=max_examples, derandomize=True, database=None,
                         deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)
    @given(batches=st.lists(st.tuples(st.integers(0, 1), colliding_records()), min_size=1,
                            max_size=4))
    def run(batches):
        devices = [enrol_device(settings, name=f"Botsing {i}") for i in (0, 1)]
        prefix = uuid.uuid4().hex[:8]                    # fresh ids for every example
        ident = lambda kind, i: f"{prefix}-0000-4000-{kind}-{i:012x}"  # noqa: E731
        model = IngestModel()
        for which, drawn in batches:
            device_id, token = devices[which]
            records = []
            for rid, seq, answer_ids, values in drawn:
                record = make_record(seq, id=ident("8000", rid), values=values)
                for answer, aid in zip(record["answers"], answer_ids):
                    answer["id"] = ident("9000", aid)
                records.append(record)
            expected = [model.expect(device_id, record) for record in records]
            reply = requests.post(base_url + BATCHES_PATH, json=make_batch(device_id, records),
                                  headers={"Authorization": f"Bearer {token}"}, timeout=(5, 60))
            outcomes.update(expected)
            assert reply.status_code == 200, (reply.status_code, reply.text[:500], records)
            results = reply.json()["results"]
            assert [r["id"] for r in results] == [r["id"] for r in records]
            assert [r["status"] for r in results] == expected, (results, batches)

    run()
    assert min(outcomes[s] for s in ("accepted", "duplicate", "rejected")) >= max_examples / 10, \
        outcomes
    print(f"\ncolliding ids, {max_examples} examples: {dict(outcomes)}")


def test_colliding_ids_follow_the_idempotency_rules_on_sqlite(central):
    check_colliding_batches(central.settings, central.base_url, round(120 * SCALE))
