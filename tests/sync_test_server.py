"""A scriptable stand-in for central on a real loopback port (a real HTTP peer, not a mock).

Use::

    with ScriptedCentral(token="secret-token-1") as central:
        central.script.extend([Reply(503, {"Retry-After": "7"}), "ok"])
        central.max_records = 10          # 413 for bigger batches
        ...point the uploader at central.url...
        central.batches                   # what arrived, decoded

Batches are validated with :mod:`sync.protocol` exactly as central does; the
default answer ("ok") computes per-record results from the body: accepted the
first time, duplicate after, rejected for ids in :attr:`reject` (or same id with
other content), and no result at all for ids in :attr:`omit`.

Script entries for the batch endpoint (one consumed per request, then "ok"):
``"ok"``, ``Reply(status, headers, body)``, ``"drop"`` (close the connection
without answering), ``"truncate"`` (promise a body, send half, close),
``"garbage"`` (200 with a body that is not JSON), ``Sleep(seconds)`` (wait,
then answer "ok").

``GET`` :data:`~sync.protocol.QUESTIONNAIRE_PATH` serves :attr:`questionnaire`
(a ``QuestionnaireDocument``; ``None``: 404 ``no_questionnaire``) with an ETag
(the quoted sha256 of its TOML) and answers 304 to a matching
``If-None-Match``; :attr:`questionnaire_script` takes the same entries as the
batch script ("truncate" sends half a document).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import ValidationError

from sync.protocol import (BATCHES_PATH, HEARTBEAT_PATH, QUESTIONNAIRE_PATH, Batch, Heartbeat,
                           QuestionnaireDocument)


@dataclass
class Reply:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b'{"error": "scripted"}'


@dataclass
class Sleep:
    seconds: float


@dataclass
class Received:
    path: str
    headers: dict
    raw: bytes  # as sent on the wire
    body: bytes  # after gzip decompression
    at: float


class ScriptedCentral:
    def __init__(self, token: str | None = "secret-token-1") -> None:
        self.token = token
        self.script: deque = deque()
        self.heartbeat_script: deque = deque()
        self.max_records: int | None = None
        self.reject: dict[str, str] = {}
        self.omit: set[str] = set()
        self.stored: dict[str, dict] = {}
        self.received: list[Received] = []
        self.batches: list[Batch] = []
        self.heartbeats: list[Heartbeat] = []
        self.questionnaire: QuestionnaireDocument | None = None
        self.questionnaire_script: deque = deque()
        self._lock = threading.Lock()
        central = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_POST(self):
                central._handle(self)

            def do_GET(self):
                central._handle_get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> ScriptedCentral:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------- answering

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        body = gzip.decompress(raw) if h.headers.get("Content-Encoding") == "gzip" else raw
        with self._lock:
            self.received.append(Received(h.path, dict(h.headers), raw, body, time.monotonic()))
        if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"error": "unauthorized"})
        if h.path == HEARTBEAT_PATH:
            return self._heartbeat(h, body)
        if h.path != BATCHES_PATH:
            return self._send(h, 404, {"error": "not found"})
        with self._lock:
            action = self.script.popleft() if self.script else "ok"
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            action = "ok"
        if action == "drop":
            h.close_connection = True
            return
        if action == "truncate":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "400")
            h.end_headers()
            h.wfile.write(b'{"received_at": 1.0, "results": [')
            h.wfile.flush()
            h.close_connection = True
            return
        if action == "garbage":
            return self._send(h, 200, b"<html>proxy error</html>")
        if isinstance(action, Reply):
            return self._send(h, action.status, action.body, action.headers)
        try:
            batch = Batch.model_validate_json(body)
        except ValidationError as err:
            return self._send(h, 422, {"error": "invalid batch", "detail": str(err)[:500]})
        if self.max_records is not None and len(batch.responses) > self.max_records:
            return self._send(h, 413, {"error": "too many records"})
        with self._lock:
            self.batches.append(batch)
            results = []
            for r in batch.responses:
                if r.id in self.omit:
                    continue
                content = r.model_dump()
                if r.id in self.reject:
                    results.append({"id": r.id, "status": "rejected", "reason": self.reject[r.id]})
                elif r.id not in self.stored:
                    self.stored[r.id] = content
                    results.append({"id": r.id, "status": "accepted"})
                elif self.stored[r.id] == content:
                    results.append({"id": r.id, "status": "duplicate"})
                else:
                    results.append({"id": r.id, "status": "rejected", "reason": "conflict"})
        self._send(h, 200, {"received_at": time.time(), "results": results})

    def _heartbeat(self, h, body: bytes) -> None:
        action = self.heartbeat_script.popleft() if self.heartbeat_script else "ok"
        if isinstance(action, Reply):
            return self._send(h, action.status, action.body, action.headers)
        try:
            beat = Heartbeat.model_validate_json(body)
        except ValidationError as err:
            return self._send(h, 422, {"error": "invalid heartbeat", "detail": str(err)[:500]})
        self.heartbeats.append(beat)
        self._send(h, 200, {"received_at": time.time()})

    def _handle_get(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.received.append(Received(h.path, dict(h.headers), b"", b"", time.monotonic()))
        if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"error": "unauthorized"})
        if h.path != QUESTIONNAIRE_PATH:
            return self._send(h, 404, {"error": "not found"})
        with self._lock:
            action = self.questionnaire_script.popleft() if self.questionnaire_script else "ok"
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            action = "ok"
        if action == "drop":
            h.close_connection = True
            return
        if isinstance(action, Reply):
            return self._send(h, action.status, action.body, action.headers)
        document = self.questionnaire
        if document is None:
            return self._send(h, 404, {"error": "no_questionnaire", "detail": "scripted"})
        etag = questionnaire_etag(document)
        if h.headers.get("If-None-Match") == etag:
            h.send_response_only(304)
            h.send_header("Date", h.date_time_string())
            h.send_header("ETag", etag)
            h.end_headers()
            return
        body = document.model_dump_json().encode()
        if action == "truncate":
            h.send_response_only(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.send_header("ETag", etag)
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, 200, body, {"ETag": etag})

    @staticmethod
    def _send(h, status: int, body, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = dict(headers or {})
        h.send_response_only(status)
        h.send_header("Date", headers.pop("Date", None) or h.date_time_string())
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    # ----------------------------------------------------------------- inspection

    @property
    def batch_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == BATCHES_PATH]

    @property
    def questionnaire_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == QUESTIONNAIRE_PATH]


def questionnaire_etag(document: QuestionnaireDocument) -> str:
    """The ETag central gives a document: the quoted sha256 of its TOML text."""
    return '"' + hashlib.sha256(document.toml.encode("utf-8")).hexdigest() + '"'


# --------------------------------------------------------------------------- test support


class FakeTime:
    """Deadline clock and sleep for the uploader: real time plus whatever was 'slept'.

    ``sleep`` records the wait and moves the clock on instead of waiting.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds


DRAFT = dict(questionnaire_id="balie-standaard", questionnaire_version=1,
             location_id="stadhuis", language="nl")


def fill_buffer(buf, n: int, answers: int = 2, *, close: bool = True, text: str | None = None,
                text_everywhere: bool = False):
    """Store ``n`` responses of ``answers`` answers each (closed unless told); returns their ids.

    ``text``: the last answer's value (every answer's with ``text_everywhere``); else grade 8.
    """
    ids = []
    for _ in range(n):
        draft = buf.new_draft(**DRAFT)
        for k in range(answers):
            last = k == answers - 1 or text_everywhere
            value = text if (text is not None and last) else 8
            buf.record_answer(draft, question_id=f"q{k + 1}", aspect="totaal", value=value)
        if close:
            buf.close_response(draft, "completed")
        ids.append(draft.id)
    return ids
