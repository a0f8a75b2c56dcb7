"""The questionnaire central published, kept on the device: atomic files in the data folder.

Use::

    store = CentralCopy(data_dir)
    stored = store.load()          # None: nothing fetched yet; QuestionnaireError: damaged
    stored.questionnaire, stored.etag
    store.save(toml_text, questionnaire, etag='"3f2a…"')   # the old copy stays until the rename

    in_use = choose_questionnaire(load_questionnaire(settings.questionnaire_path), store)
    in_use.questionnaire, in_use.source                    # "central" or "config"

Two files: ``questionnaire-central.toml`` (the TOML text exactly as central
published it, checked again with :func:`kiosk.questionnaire.parse_questionnaire`
on every load) and ``questionnaire-central.json`` (its ETag, id, version,
sha256 and when it was fetched; no secrets, so mode 0644). Each is replaced
atomically: written to a temporary file in the same folder, fsynced, renamed
over the old one, and the folder fsynced. The TOML goes first; a crash before
the JSON follows leaves a JSON whose sha256 no longer matches, so its ETag is
not used and the next fetch downloads the document again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.atomic_file import write_atomic
from kiosk.errors import QuestionnaireError
from kiosk.questionnaire import Questionnaire, parse_questionnaire

log = logging.getLogger(__name__)

TOML_FILE = "questionnaire-central.toml"
META_FILE = "questionnaire-central.json"
FORMAT = 1


@dataclass(frozen=True)
class StoredQuestionnaire:
    """A valid questionnaire from central as stored on the device."""

    questionnaire: Questionnaire
    etag: str | None  # None: unknown (the next fetch asks without If-None-Match)
    fetched_at: float | None
    path: Path


@dataclass(frozen=True)
class InUse:
    """The questionnaire a terminal asks, and where it came from (``central`` or ``config``)."""

    questionnaire: Questionnaire
    source: str
    stored: StoredQuestionnaire | None = None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CentralCopy:
    """Reads and writes the stored copy of central's questionnaire in ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.folder = Path(data_dir)
        self.path = self.folder / TOML_FILE
        self.meta_path = self.folder / META_FILE

    def load(self) -> StoredQuestionnaire | None:
        """The stored copy, validated; ``None`` when there is none.

        A copy that cannot be read or does not validate raises
        :class:`~kiosk.errors.QuestionnaireError` naming the file and what is wrong.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise QuestionnaireError(self.path, [f"cannot read the file: {reason}"]) from None
        questionnaire = parse_questionnaire(text, str(self.path))
        meta = self._read_meta()
        etag = fetched_at = None
        if meta.get("sha256") == sha256_text(text):
            etag = meta.get("etag") if isinstance(meta.get("etag"), str) else None
            fetched_at = meta.get("fetched_at")
        return StoredQuestionnaire(questionnaire, etag,
                                   fetched_at if isinstance(fetched_at, (int, float)) else None,
                                   self.path)

    def save(self, text: str, questionnaire: Questionnaire, *, etag: str | None,
             fetched_at: float) -> StoredQuestionnaire:
        """Store ``text`` (already validated as ``questionnaire``) and its ETag, atomically.

        Raises ``OSError`` when the disk refuses; the previous copy is then untouched.
        """
        meta = {"format": FORMAT, "etag": etag, "id": questionnaire.id,
                "version": questionnaire.version, "sha256": sha256_text(text),
                "fetched_at": fetched_at}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, text.encode("utf-8"))
        write_atomic(self.meta_path, json.dumps(meta, indent=2).encode("utf-8") + b"\n")
        return StoredQuestionnaire(questionnaire, etag, fetched_at, self.path)

    def _read_meta(self) -> dict:
        try:
            data = json.loads(self.meta_path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as err:
            if not isinstance(err, FileNotFoundError):
                log.warning("ignoring %s (%s): the next fetch downloads the questionnaire again",
                            self.meta_path, err)
            return {}
        return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def choose_questionnaire(config_questionnaire: Questionnaire, store: CentralCopy) -> InUse:
    """The questionnaire to start with: a valid stored copy from central, else the config one.

    A damaged or invalid stored copy is left on disk (the next fetch replaces it),
    logged as a warning, and the config questionnaire is used.
    """
    try:
        stored = store.load()
    except QuestionnaireError as err:
        log.warning("ignoring the questionnaire stored from central; using the config file's. %s",
                    err)
        return InUse(config_questionnaire, "config")
    if stored is None:
        return InUse(config_questionnaire, "config")
    return InUse(stored.questionnaire, "central", stored)
