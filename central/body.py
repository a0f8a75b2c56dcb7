"""Reading a request body with a hard cap, gunzipping it with the same cap (no gzip bombs).

Use (inside an async endpoint)::

    raw = await read_body(request, max_bytes=settings.limits.max_body_bytes)

Raises :class:`~central.errors.RequestRefused`: 413 when the body (as sent, or
after decompression) is larger than ``max_bytes`` — a ``Content-Length`` over
the cap is refused before reading anything, a chunked body is read only up to
the cap plus one byte, and a gzip body is inflated with ``max_length`` so no
more than the cap plus one byte is ever produced; 400 for broken gzip; 415 for
an encoding other than gzip/identity.
"""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

from central.errors import RequestRefused

GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not zlib/raw deflate


def too_large(max_bytes: int, what: str = "the body") -> RequestRefused:
    """The 413 answer: the device halves its batch and tries again."""
    return RequestRefused(413, "payload_too_large",
                          f"{what} is larger than {max_bytes} bytes; send fewer records per batch")


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, decompressed if ``Content-Encoding: gzip``; at most ``max_bytes``."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise RequestRefused(415, "unsupported_encoding",
                             f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise RequestRefused(400, "bad_request", "Content-Length is not a number")
        if int(length) > max_bytes:
            raise too_large(max_bytes)
    inflater = zlib.decompressobj(GZIP_WBITS) if encoding in ("gzip", "x-gzip") else None
    parts: list[bytes] = []
    received = produced = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            if inflater is None:
                parts.append(chunk)
                continue
            data = chunk
            while data:
                if inflater.eof:
                    raise RequestRefused(400, "bad_gzip", "data after the end of the gzip stream")
                out = _inflate(inflater, data, max_bytes - produced + 1)
                produced += len(out)
                if produced > max_bytes:
                    raise too_large(max_bytes, "the decompressed body")
                parts.append(out)
                data = inflater.unconsumed_tail
            if inflater.unused_data:
                raise RequestRefused(400, "bad_gzip", "data after the end of the gzip stream")
    except ClientDisconnect:
        raise RequestRefused(400, "bad_request", "the client closed the connection mid-body") from None
    if inflater is not None and not inflater.eof:
        raise RequestRefused(400, "bad_gzip", "the gzip stream is truncated" if received
                             else "the body is empty, not gzip data")
    return b"".join(parts)


def _inflate(inflater, data: bytes, limit: int) -> bytes:
    try:
        return inflater.decompress(data, limit)
    except zlib.error as err:
        raise RequestRefused(400, "bad_gzip", f"the body is not valid gzip data ({err})") from None
