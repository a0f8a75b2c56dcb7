"""The message to visitors central sent, kept on the device: one atomic JSON file in the data folder.

Use::

    store = MessageStore(data_dir)
    stored = store.load()            # None: none kept (never fetched, cleared, or damaged)
    stored.document, stored.etag     # a sync.protocol.MessageDocument and its ETag
    store.save(document, etag='"3f2a…"', fetched_at=time.time())
    store.clear()                    # central has no message (any more): show none

The file ``message-central.json`` holds the document as central sent it, its
ETag and when it was fetched (no secrets: mode 0644). It is replaced
atomically (:func:`kiosk.atomic_file.write_atomic`), so the last good
message survives a power cut, a restart and any time offline. On load it is
checked again (the wire model and :func:`sync.message_text.text_problem`); a
damaged file is logged and treated as none (the next fetch asks without ETag).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.protocol import MessageDocument

from kiosk.atomic_file import fsync_folder, write_atomic
from sync.message_text import text_problem

log = logging.getLogger(__name__)

FILE = "message-central.json"
FORMAT = 1


@dataclass(frozen=True)
class StoredMessage:
    """A message from central as kept on the device."""

    document: MessageDocument
    etag: str | None
    fetched_at: float | None


def document_problem(document: MessageDocument) -> str | None:
    """Why a terminal must not show ``document`` (its texts break the message rules), or None."""
    for language in ("nl", "en"):
        text = getattr(document, language)
        if text is not None:
            problem = text_problem(text)
            if problem:
                return f"the {language} text: {problem}"
    return None


class MessageStore:
    """Reads, writes and removes the kept message in ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.folder = Path(data_dir)
        self.path = self.folder / FILE

    def load(self) -> StoredMessage | None:
        """The kept message, checked; ``None`` when there is none or it is damaged (logged)."""
        from pydantic import ValidationError  # the wire models: built only when first used

        from sync.protocol import MessageDocument

        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("ignoring the kept message %s (%s); the next sync fetches it again",
                        self.path, err)
            return None
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a format-{FORMAT} message file")
            document = MessageDocument.model_validate(data.get("document"))
            problem = document_problem(document)
            if problem:
                raise ValueError(problem)
        except (ValueError, ValidationError) as err:
            log.warning("ignoring the kept message %s (%s); the next sync fetches it again",
                        self.path, str(err).splitlines()[0])
            return None
        etag, fetched_at = data.get("etag"), data.get("fetched_at")
        return StoredMessage(document, etag if isinstance(etag, str) else None,
                             fetched_at if isinstance(fetched_at, (int, float)) else None)

    def save(self, document: MessageDocument, *, etag: str | None,
             fetched_at: float) -> StoredMessage:
        """Keep ``document`` (already checked) and its ETag, atomically.

        Raises ``OSError`` when the disk refuses; the previous file is then untouched.
        """
        data = {"format": FORMAT, "etag": etag, "fetched_at": fetched_at,
                "document": document.model_dump(mode="json", exclude_none=True)}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
                     + b"\n")
        return StoredMessage(document, etag, fetched_at)

    def clear(self) -> bool:
        """Remove the kept message; ``False`` when there was none. Raises ``OSError``."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        fsync_folder(self.folder)
        return True
