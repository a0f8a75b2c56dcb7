"""The HTTP API, made by a factory from settings: /healthz, batches, heartbeats.

Use::

    app = create_app(settings)          # refuses an un-migrated database (DatabaseNotMigrated)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port)

Every request of a device carries ``Authorization: Bearer <token>``; the token
is looked up on every request (no cache). Bodies are read by
:func:`central.body.read_body` (size cap, gzip with the same cap) before any
JSON parsing. Every error answer is an :class:`~sync.protocol.ErrorBody`;
bad input gets a 4xx, never a 5xx. The OpenAPI description is at
``/openapi.json`` (``/docs`` renders it).
"""

from __future__ import annotations

import contextlib
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
from central.ingest import INT64_MAX, ingest_batch
from central.settings import CentralSettings
from kiosk import __version__
from sync.protocol import (
    BATCHES_PATH,
    HEALTH_PATH,
    HEARTBEAT_PATH,
    Batch,
    BatchResult,
    ErrorBody,
    Heartbeat,
    HeartbeatAck,
)

log = logging.getLogger("balie.central")

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
               clock: Callable[[], float] = time.time) -> FastAPI:
    """A FastAPI app serving central's API from ``settings``.

    ``engine``: use this engine (the caller disposes it) instead of one made
    from ``settings.database_url``; ``clock``: the server's wall clock (Unix
    seconds) for ``received_at``. Raises :class:`~central.errors.DatabaseNotMigrated`
    or :class:`~central.errors.DatabaseUnavailable` instead of starting on a
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

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if own_engine:
            engine.dispose()

    app = FastAPI(title="Balie central", version=__version__, lifespan=lifespan,
                  description="Receives the counter terminals' responses and heartbeats.")
    app.state.settings = settings
    app.state.engine = engine

    # ------------------------------------------------------------------ errors

    def error(status: int, code: str, detail: str | None = None, headers=None) -> JSONResponse:
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
        batch = _parse(raw, Batch)
        if len(batch.responses) > limits.max_records:
            raise _too_many(limits.max_records)
        same_device(device, batch.device_id)
        if "\x00" in batch.app_version or "\x00" in batch.sent.boot_id:
            raise RequestRefused(422, "invalid", "text must not contain NUL characters")
        results = await run_in_threadpool(ingest_batch, engine, device.id, batch,
                                          received_at=received_at)
        body = BatchResult(received_at=received_at, results=results).model_dump_json()
        return Response(body, media_type="application/json")

    @app.post(HEARTBEAT_PATH, response_model=HeartbeatAck, tags=["device"],
              responses={k: v for k, v in _ERRORS.items()},
              openapi_extra=_request_body("Heartbeat"))
    async def post_heartbeat(request: Request) -> HeartbeatAck:
        """Record the device's state (backlog, quarantine, last error, disk, clock)."""
        received_at = clock()
        device = await device_of(request)
        raw = await read_body(request, max_bytes=limits.max_body_bytes)
        beat = _parse(raw, Heartbeat)
        same_device(device, beat.device_id)
        texts = (beat.app_version, beat.last_error or "", beat.clock.boot_id)
        if any("\x00" in t for t in texts):
            raise RequestRefused(422, "invalid", "text must not contain NUL characters")
        if max(beat.backlog, beat.quarantined, beat.disk_free_bytes or 0) > INT64_MAX:
            raise RequestRefused(422, "invalid", "a count is out of range (at most 2**63-1)")
        await run_in_threadpool(record_heartbeat, engine, device.id, beat, received_at=received_at)
        return HeartbeatAck(received_at=received_at)

    app.openapi = lambda: _openapi(app)
    return app


def _too_many(limit: int) -> RequestRefused:
    return RequestRefused(413, "too_many_records",
                          f"at most {limit} responses per batch; send fewer records per batch")


def _parse(raw: bytes, model: type[BaseModel]):
    """``model`` from JSON bytes: 400 for malformed JSON, 413 for too many records, 422 otherwise."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        bad_json = [e for e in errors if e["type"] == "json_invalid"]
        if bad_json:
            raise RequestRefused(400, "malformed_json", bad_json[0]["msg"]) from None
        for e in errors:
            if e["type"] == "too_long" and e["loc"] == ("responses",):
                raise _too_many(e.get("ctx", {}).get("max_length", 0)) from None
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
