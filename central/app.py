"""The HTTP API, made by a factory from settings: /healthz, batches, heartbeats, questionnaire, message, /metrics.

Use::

    app = create_app(settings)          # refuses an un-migrated database (DatabaseNotMigrated)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port)

Every request of a device carries ``Authorization: Bearer <token>``; the token
is looked up on every request (no cache). Bodies are read by
:func:`central.body.read_body` (size cap, gzip with the same cap) before any
JSON parsing. Every error answer is an :class:`~sync.protocol.ErrorBody`;
bad input gets a 4xx, never a 5xx. The OpenAPI description is at
``/openapi.json`` (``/docs`` renders it). ``/metrics`` (Prometheus text, not in
the OpenAPI description) needs no token: it holds nothing personal, but it
belongs behind the reverse proxy with the rest. While the app runs, a
:class:`~central.fleet.FleetWatcher` checks the fleet's health every
``[fleet] check_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from central.body import read_body
from central.db import check_migrated, make_engine
from central.devices import AuthDevice, authenticate, record_heartbeat
from central.errors import RequestRefused
from central.fleet import FleetWatcher, check_fleet
from central.ingest import INT64_MAX, ingest_batch
from central.messages import document_for, overall_grade
from central.metrics import Metrics
from central.questionnaires import current_for_location
from central.settings import CentralSettings
from central.wire import BatchRefused, decode_batch
from kiosk import __version__
from sync.protocol import (
    BATCHES_PATH,
    HEALTH_PATH,
    HEARTBEAT_PATH,
    MESSAGE_PATH,
    QUESTIONNAIRE_PATH,
    Batch,
    BatchResult,
    ErrorBody,
    Heartbeat,
    HeartbeatAck,
    MessageDocument,
    QuestionnaireDocument,
)

log = logging.getLogger("balie.central")
METRICS_PATH = "/metrics"
#: A device fetches its questionnaire again each round; caches must ask central every time.
_QUESTIONNAIRE_CACHE = "private, no-cache"

_ERRORS = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "Malformed JSON or gzip",
        401: "No or unknown token",
        403: "Token revoked, or the body names another device",
        413: "Body or record count over the limit (after decompression); send a smaller batch",
        415: "Unsupported Content-Encoding",
        422: "The body does not match the schema",
        503: "Database unreachable or busy; retry after Retry-After",
    }.items()
}


class Health(BaseModel):
    """``GET /healthz``: the database answered."""

    status: str = "ok"


def create_app(settings: CentralSettings, *, engine: Engine | None = None,
               clock: Callable[[], float] = time.time, watch_fleet: bool = True) -> FastAPI:
    """A FastAPI app serving central's API from ``settings``.

    ``engine``: use this engine (the caller disposes it) instead of one made
    from ``settings.database_url``; ``clock``: the server's wall clock (Unix
    seconds) for ``received_at``, fleet health and metrics; ``watch_fleet``
    False: no background fleet check (tests that call
    :func:`central.fleet.check_fleet` themselves). Raises
    :class:`~central.errors.DatabaseNotMigrated` or
    :class:`~central.errors.DatabaseUnavailable` instead of starting on a
    database it cannot use.
    """
    own_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except Exception:
        if own_engine:
            engine.dispose()
        raise
    limits = settings.limits
    retry_after = str(settings.server.retry_after_s)
    metrics = Metrics(engine, settings.fleet, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        watcher = task = None
        if watch_fleet:
            watcher = FleetWatcher(lambda: check_fleet(engine, settings.fleet, now=clock()),
                                   settings.fleet.check_interval_s)
            task = asyncio.create_task(watcher.run(), name="fleet-watcher")
        app.state.fleet_watcher = watcher
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
                await task
            if own_engine:
                engine.dispose()

    app = FastAPI(title="Balie central", version=__version__, lifespan=lifespan,
                  description=_DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics

    # ------------------------------------------------------------------ errors

    def error(status: int, code: str, detail: str | None = None, headers=None) -> JSONResponse:
        metrics.errors.labels(status=str(status), error=code).inc()
        body = ErrorBody(error=code, detail=detail).model_dump()
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestRefused)
    async def _refused(_request, exc: RequestRefused):
        headers = dict(exc.headers)
        if exc.status in (503, 429):
            headers.setdefault("Retry-After", retry_after)
        return error(exc.status, exc.error, exc.detail, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        return error(422, "invalid", _summary(exc.errors()))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _unavailable(_request, exc: DBAPIError):
        log.warning("database unavailable: %s", exc.orig or exc)
        return error(503, "unavailable", "the database is unreachable; try again later",
                     {"Retry-After": retry_after})

    @app.exception_handler(Exception)
    async def _internal(_request, exc: Exception):
        log.exception("unexpected error")
        return error(500, "internal", "an unexpected error; it has been logged")

    # ------------------------------------------------------------------ helpers

    async def device_of(request: Request) -> AuthDevice:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token:
            raise RequestRefused(401, "unauthorized", "send Authorization: Bearer <device token>",
                                 challenge)
        device = await run_in_threadpool(authenticate, engine, token)
        if device is None:
            raise RequestRefused(401, "unauthorized", "unknown token", challenge)
        if device.revoked_at is not None:
            raise RequestRefused(403, "revoked", f"device {device.id} has been revoked; "
                                 "enrol it again to send")
        return device

    def same_device(device: AuthDevice, claimed: str) -> None:
        if claimed != device.id:
            raise RequestRefused(403, "forbidden", f"this token belongs to {device.id}; it cannot "
                                 f"write as {claimed}")

    # ------------------------------------------------------------------ routes

    @app.get(HEALTH_PATH, response_model=Health, responses={503: _ERRORS[503]}, tags=["service"])
    async def healthz() -> Health:
        """The service runs and its database answers."""
        def ping():
            with engine.connect() as conn:
                conn.execution_options(sqlite_begin="DEFERRED").execute(text("SELECT 1"))
        await run_in_threadpool(ping)
        return Health()

    @app.post(BATCHES_PATH, response_model=BatchResult, tags=["device"],
              responses={k: v for k, v in _ERRORS.items()},
              openapi_extra=_request_body("Batch"))
    async def post_batch(request: Request) -> Response:
        """Store a batch of responses; one result per response, in the order sent.

        ``accepted``: stored now; ``duplicate``: stored before with the same
        content (success); ``rejected``: not stored, with a reason (a conflict:
        same id, other content — the stored data is kept). The whole batch is
        refused (4xx, nothing stored) when it is malformed or over a limit.
        """
        received_at = clock()
        device = await device_of(request)
        raw = await read_body(request, max_bytes=limits.max_body_bytes)
        try:   # sync.protocol.Batch's schema, read faster (central.wire)
            batch = decode_batch(raw, max_records=limits.max_records)
        except BatchRefused as exc:
            code = {400: "malformed_json", 413: "too_many_records"}.get(exc.status, "invalid")
            raise RequestRefused(exc.status, code, exc.detail) from None
        same_device(device, batch.device_id)   # (NUL in any text: refused by the schema's patterns)
        results = await run_in_threadpool(ingest_batch, engine, device.id, batch,
                                          received_at=received_at)
        metrics.batches.inc()
        for record, result in zip(batch.responses, results):
            metrics.responses.labels(result=result.status).inc()
            if result.status == "accepted":
                metrics.answers.inc(len(record.answers))
        body = BatchResult(received_at=received_at, results=results).model_dump_json()
        return Response(body, media_type="application/json")

    @app.post(HEARTBEAT_PATH, response_model=HeartbeatAck, tags=["device"],
              responses={k: v for k, v in _ERRORS.items()},
              openapi_extra=_request_body("Heartbeat"))
    async def post_heartbeat(request: Request) -> HeartbeatAck:
        """Record the device's state (backlog, quarantine, last error, disk, clock,
        questionnaire, opening hours)."""
        received_at = clock()
        device = await device_of(request)
        raw = await read_body(request, max_bytes=limits.max_body_bytes)
        beat = _parse(raw, Heartbeat)
        same_device(device, beat.device_id)
        texts = (beat.app_version, beat.last_error or "", beat.clock.boot_id,
                 beat.questionnaire_error or "")
        if any("\x00" in t for t in texts):
            raise RequestRefused(422, "invalid", "text must not contain NUL characters")
        if max(beat.backlog, beat.quarantined, beat.disk_free_bytes or 0) > INT64_MAX:
            raise RequestRefused(422, "invalid", "a count is out of range (at most 2**63-1)")
        await run_in_threadpool(record_heartbeat, engine, device.id, beat, received_at=received_at)
        metrics.heartbeats.inc()
        return HeartbeatAck(received_at=received_at)

    @app.get(QUESTIONNAIRE_PATH, response_model=QuestionnaireDocument, tags=["device"],
             responses=_conditional_responses(
                 "The quoted sha256 of `toml`",
                 "`no_questionnaire`: nothing is published for this device's location; "
                 "keep the local questionnaire"),
             openapi_extra=_conditional_extra("ETags the device has"))
    async def get_questionnaire(request: Request) -> Response:
        """The questionnaire published for this device's location (its own, else the one for
        every location), as published TOML text with its id and version.

        Conditional: the ``ETag`` is the quoted sha256 of the text; send it back in
        ``If-None-Match`` to get ``304 Not Modified`` without a body while it is current.
        """
        device = await device_of(request)
        current = await run_in_threadpool(current_for_location, engine, device.location)
        if current is None:
            metrics.questionnaire_fetches.labels(result="none").inc()
            raise RequestRefused(404, "no_questionnaire", f"nothing is published for location "
                                 f"{device.location!r}; keep the questionnaire you have")
        etag = f'"{current.sha256}"'
        headers = {"ETag": etag, "Cache-Control": _QUESTIONNAIRE_CACHE}
        if etag_matches(request.headers.get("if-none-match"), etag):
            metrics.questionnaire_fetches.labels(result="not_modified").inc()
            return Response(status_code=304, headers=headers)
        metrics.questionnaire_fetches.labels(result="sent").inc()
        body = QuestionnaireDocument(id=current.questionnaire_id, version=current.version,
                                     toml=current.toml).model_dump_json()
        return Response(body, media_type="application/json", headers=headers)

    grades: dict[str | None, tuple[float, object]] = {}  # location -> (computed at, grade)

    def cached_grade(engine_, location, *, now, days, min_n):
        """:func:`overall_grade`, computed at most once per location per ``grade_cache_s``."""
        hit = grades.get(location)
        if hit is not None and 0 <= now - hit[0] < settings.message.grade_cache_s:
            return hit[1]
        figure = overall_grade(engine_, location, now=now, days=days, min_n=min_n)
        grades[location] = (now, figure)
        return figure

    @app.get(MESSAGE_PATH, response_model=MessageDocument, tags=["device"],
             responses=_conditional_responses(
                 "The quoted sha256 of the body",
                 "`no_message`: no message for this device's location; show none"),
             openapi_extra=_conditional_extra("The ETag the device has"))
    async def get_message(request: Request) -> Response:
        """The message for visitors at this device's location (its own, else the one for every
        location), with the current overall grade when asked for and enough answers back it.

        Conditional: the ``ETag`` is the quoted sha256 of the body; send it back in
        ``If-None-Match`` to get ``304 Not Modified`` without a body while it is current.
        """
        device = await device_of(request)
        document = await run_in_threadpool(document_for, engine, device.location,
                                           settings.message, now=clock(), grade=cached_grade)
        if document is None:
            raise RequestRefused(404, "no_message", f"no message for location "
                                 f"{device.location!r}; show none")
        body = document.model_dump_json(exclude_none=True).encode("utf-8")
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        headers = {"ETag": etag, "Cache-Control": _QUESTIONNAIRE_CACHE}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get(METRICS_PATH, include_in_schema=False)
    async def get_metrics() -> Response:
        """Prometheus text format: counters of this process, per-device gauges from the database."""
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)

    app.openapi = lambda: _openapi(app)
    return app


_DESCRIPTION = """Receives the counter terminals' responses and heartbeats, and serves them \
their questionnaire and the message to visitors (conditional GETs with ETag / If-None-Match).

Device routes need `Authorization: Bearer <device token>`. Every error is an `ErrorBody`.

Not in this description: `GET /metrics`, the Prometheus text format (counters of this \
process, per-device gauges: last seen, backlog, quarantine, silent, no ratings). It needs \
no token and holds nothing personal; expose it only behind the reverse proxy, to the \
monitoring system."""


#: Objects allocated (net) between the garbage collector's youngest-generation passes while
#: serving; Python's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Call once the app is built, before serving: the objects made at start-up (modules,
    the app, the engine) move out of the garbage collector's sight (``gc.freeze``), and
    its youngest generation is collected every :data:`GC_YOUNG_THRESHOLD` new objects.

    A batch allocates tens of thousands of short-lived objects, nearly all freed by
    reference counting; at the default threshold the collector kept walking them and
    the start-up heap: 10 % of central's CPU per answer in ``bench/ingest.py``
    (docs/benchmarks.md). Cycles are still collected, only in larger steps.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, ``*`` matches)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _conditional_responses(etag_means: str, not_found: str) -> dict:
    """The OpenAPI responses of a device's conditional GET (ETag, 304, 404 with ``not_found``)."""
    etag = {"schema": {"type": "string"}}
    return {
        200: {"headers": {"ETag": {"description": etag_means, **etag}}},
        304: {"description": "Not Modified: `If-None-Match` names the current ETag; no body",
              "headers": {"ETag": {"description": "The current ETag", **etag}}},
        401: _ERRORS[401],
        403: {"model": ErrorBody, "description": "Token revoked"},
        404: {"model": ErrorBody, "description": not_found},
        503: _ERRORS[503]}


def _conditional_extra(if_none_match: str) -> dict:
    """The bearer scheme and the ``If-None-Match`` header of a device's conditional GET."""
    return {"security": [{"deviceToken": []}], "parameters": [{
        "name": "If-None-Match", "in": "header", "required": False,
        "schema": {"type": "string"},
        "description": f'{if_none_match} (`"<sha256>"`); a match gets 304'}]}


def _parse(raw: bytes, model: type[BaseModel]):
    """``model`` from JSON bytes: 400 for malformed JSON, 422 otherwise. (Batches: central.wire.)"""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        bad_json = [e for e in errors if e["type"] == "json_invalid"]
        if bad_json:
            raise RequestRefused(400, "malformed_json", bad_json[0]["msg"]) from None
        raise RequestRefused(422, "invalid", _summary(errors)) from None


def _summary(errors: list[dict], shown: int = 5) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:shown]]
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more


def _request_body(name: str) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}},
        "security": [{"deviceToken": []}]}


def _openapi(app: FastAPI) -> dict:
    """FastAPI's description plus the request schemas and the bearer scheme (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    _, defs = models_json_schema([(Batch, "validation"), (Heartbeat, "validation")],
                                 ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {})
    for key, value in defs.get("$defs", {}).items():
        components.setdefault("schemas", {}).setdefault(key, value)
    components["securitySchemes"] = {"deviceToken": {
        "type": "http", "scheme": "bearer",
        "description": "The device token printed once by `balie-central device add`."}}
    app.openapi_schema = schema
    return schema
