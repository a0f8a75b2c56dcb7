"""One conditional GET to central for a small document (the questionnaire, the message).

Use::

    status, headers, body = conditional_get(session, state, QUESTIONNAIRE_PATH,
                                            etag=stored_etag, settings=sync_settings,
                                            max_bytes=MAX_DOCUMENT_BYTES)

The device's bearer token, ``If-None-Match`` when an ETag is kept, a
``(connect, read)`` timeout, no redirects; the body is read under ``max_bytes``
and within ``connect_timeout_s + read_timeout_s`` in all. Raises
:class:`BadReply` when either is exceeded, and ``requests`` errors as they come.
"""

from __future__ import annotations

import time
from typing import Callable

import requests

CHUNK_BYTES = 16 * 1024


class BadReply(Exception):
    """Central's reply was too large or too slow to read."""


def conditional_get(session: requests.Session, state, path: str, *, etag: str | None, settings,
                    max_bytes: int, monotonic: Callable[[], float] = time.monotonic
                    ) -> tuple[int, requests.structures.CaseInsensitiveDict, bytes]:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {state.token}"}
    if etag:
        headers["If-None-Match"] = etag
    ends_at = monotonic() + settings.connect_timeout_s + settings.read_timeout_s
    response = session.get(state.url(path), headers=headers,
                           timeout=(settings.connect_timeout_s, settings.read_timeout_s),
                           stream=True, allow_redirects=False)
    try:
        chunks, size = [], 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise BadReply(f"reply larger than {max_bytes} bytes")
            if monotonic() > ends_at:
                raise BadReply("the reply took longer than the connect and read timeouts")
            chunks.append(chunk)
        return response.status_code, response.headers, b"".join(chunks)
    finally:
        response.close()
