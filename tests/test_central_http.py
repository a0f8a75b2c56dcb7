"""Central's HTTP edge: auth, size limits, gzip (and gzip bombs), malformed bodies — all 4xx, real HTTP."""

from __future__ import annotations

import gzip
import json
import struct
import threading
import zlib

import psutil
import pytest
import requests

from central.db import make_engine
from central.devices import revoke
from sync.protocol import BATCHES_PATH, HEALTH_PATH, HEARTBEAT_PATH, MAX_BODY_BYTES
from tests.central_fixtures import central_settings, enrol_device, make_batch, make_record, run_central


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    settings = central_settings(tmp_path_factory.mktemp("central") / "central.sqlite3")
    with run_central(settings) as base_url:
        yield settings, base_url


@pytest.fixture
def device(central):
    device_id, token = enrol_device(central[0])
    return device_id, {"Authorization": f"Bearer {token}"}


def send(central, headers, data, path=BATCHES_PATH, **kwargs):
    return requests.post(central[1] + path, data=data, headers=headers, timeout=(5, 60), **kwargs)


def body(device_id, records=None) -> bytes:
    return json.dumps(make_batch(device_id, records if records is not None else [make_record(1)])).encode()


def assert_error(reply, status, code=None):
    assert reply.status_code == status, reply.text
    payload = reply.json()
    assert set(payload) == {"error", "detail"}
    if code:
        assert payload["error"] == code


def gzip_bomb(size: int = 1 << 30) -> bytes:
    """A valid gzip of ``size`` zero bytes (~1000:1), built without ever holding the zeros.

    Each 1 MiB of zeros is compressed after a full flush, so every block after
    the first compresses to the same bytes; the trailer's CRC is computed over
    the same 1 MiB chunk repeated.
    """
    chunk = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush(zlib.Z_FINISH)[:-8]
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return first + block * (size // len(chunk) - 1) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def test_healthz_answers_when_the_database_does(central):
    reply = requests.get(central[1] + HEALTH_PATH, timeout=5)
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}


def test_openapi_describes_both_device_endpoints_with_their_bodies(central):
    spec = requests.get(central[1] + "/openapi.json", timeout=5).json()
    for path, schema in ((BATCHES_PATH, "Batch"), (HEARTBEAT_PATH, "Heartbeat")):
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert ref == {"$ref": f"#/components/schemas/{schema}"}
        assert schema in spec["components"]["schemas"]


def test_a_request_without_token_is_refused_401(central, device):
    reply = send(central, {}, body(device[0]))
    assert_error(reply, 401, "unauthorized")
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_a_wrong_token_is_refused_401(central, device):
    assert_error(send(central, {"Authorization": "Bearer nope"}, body(device[0])), 401)
    assert_error(send(central, {"Authorization": "Basic abc"}, body(device[0])), 401)


def test_a_revoked_token_is_refused_403_from_the_next_request_on(central, device):
    assert send(central, device[1], body(device[0])).status_code == 200
    engine = make_engine(central[0].database_url)
    revoke(engine, device[0], now=0.0)
    engine.dispose()
    assert_error(send(central, device[1], body(device[0], [make_record(2)])), 403, "revoked")
    beat = {"device_id": device[0], "app_version": "1", "backlog": 0, "quarantined": 0,
            "clock": {"wall": 1.0, "boot_id": "b", "mono": 1.0}}
    assert_error(send(central, device[1], json.dumps(beat), HEARTBEAT_PATH), 403, "revoked")


def test_a_device_cannot_write_as_another_device(central, device):
    other_id, other_headers = device[0], device[1]
    mine_id, _ = enrol_device(central[0], name="Balie 2")
    assert_error(send(central, other_headers, body(mine_id)), 403, "forbidden")


def test_too_many_records_is_refused_413(central, device):
    records = [make_record(seq, values=(1,)) for seq in range(1, 502)]
    assert_error(send(central, device[1], body(device[0], records)), 413, "too_many_records")


def test_a_lower_configured_record_limit_is_enforced_413(tmp_path):
    settings = central_settings(tmp_path / "c.sqlite3", limits={"max_records": 2})
    with run_central(settings) as base_url:
        device_id, token = enrol_device(settings)
        records = [make_record(seq) for seq in (1, 2, 3)]
        reply = requests.post(base_url + BATCHES_PATH, data=body(device_id, records), timeout=5,
                              headers={"Authorization": f"Bearer {token}"})
    assert_error(reply, 413, "too_many_records")


def test_an_oversized_body_with_content_length_is_refused_413(central, device):
    data = body(device[0]) + b" " * MAX_BODY_BYTES
    assert_error(send(central, device[1], data), 413, "payload_too_large")


def test_an_oversized_chunked_body_is_refused_413(central, device):
    def chunks():
        yield body(device[0])
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536
    assert_error(send(central, device[1], chunks()), 413, "payload_too_large")


def test_a_gzip_body_is_accepted(central, device):
    reply = send(central, {**device[1], "Content-Encoding": "gzip"}, gzip.compress(body(device[0])))
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"][0]["status"] == "accepted"


def test_a_gzip_bomb_is_refused_413_without_memory_blow_up(central, device):
    bomb = gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def watch():
        while not done.wait(0.005):
            peak[0] = max(peak[0], process.memory_info().rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        reply = send(central, {**device[1], "Content-Encoding": "gzip"}, bomb)
    finally:
        done.set()
        watcher.join()
    assert_error(reply, 413, "payload_too_large")
    assert peak[0] - before < 50 * 1024 * 1024


def test_broken_gzip_is_refused_400(central, device):
    headers = {**device[1], "Content-Encoding": "gzip"}
    assert_error(send(central, headers, b"this is not gzip"), 400, "bad_gzip")
    assert_error(send(central, headers, gzip.compress(body(device[0]))[:-20]), 400, "bad_gzip")


def test_malformed_json_is_refused_400(central, device):
    assert_error(send(central, device[1], b'{"device_id": '), 400, "malformed_json")
    assert_error(send(central, device[1], b""), 400, "malformed_json")
    assert_error(send(central, device[1], b'{"a": "\\ud800"}'), 400, "malformed_json")


def test_a_body_against_the_schema_is_refused_422(central, device):
    batch = make_batch(device[0], [make_record(1)])
    batch["responses"][0]["end_reason"] = "bored"
    reply = send(central, device[1], json.dumps(batch))
    assert_error(reply, 422, "invalid")
    assert "end_reason" in reply.json()["detail"]
    assert_error(send(central, device[1], b"[]"), 422, "invalid")


def test_unknown_paths_and_methods_answer_with_an_error_body(central):
    assert_error(requests.get(central[1] + "/nope", timeout=5), 404, "not_found")
    assert_error(requests.get(central[1] + BATCHES_PATH, timeout=5), 405, "method_not_allowed")


def test_an_unsupported_content_encoding_is_refused_415(central, device):
    assert_error(send(central, {**device[1], "Content-Encoding": "br"}, b"xx"), 415)
