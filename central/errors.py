"""Central's exception hierarchy: every error the server and its CLI raise on purpose.

Each class says whether retrying makes sense. ``balie-central`` catches
:class:`CentralError` and prints its message (exit status 2, no traceback), so
messages name the thing that is wrong and say what to do.
"""

from __future__ import annotations

from kiosk.errors import BalieError
from kiosk.errors import ConfigError as _KioskConfigError


class CentralError(BalieError):
    """Base class for every error central raises on purpose."""


class ConfigError(_KioskConfigError, CentralError):
    """``central.toml`` is missing or invalid.

    Not safe to retry: fix the file first. ``str(error)`` names the file, the
    key and what is wrong (same wording as the kiosk's settings errors).
    """


class DatabaseUnavailable(CentralError):
    """The database cannot be reached or opened.

    Safe to retry once the cause (server down, wrong URL, permissions) is fixed.
    """


class DatabaseNotMigrated(CentralError):
    """The database schema is missing or older than this release.

    Not safe to retry: run ``balie-central db upgrade`` first. Also raised for a
    schema written by a newer release (which is left untouched).
    """


class UnknownDevice(CentralError):
    """A device id given on the command line is not enrolled. Not safe to retry."""


class RequestRefused(CentralError):
    """An HTTP request central answers with a 4xx/5xx and an ``ErrorBody``.

    ``status``: the HTTP status; ``error``: a short machine-readable code
    (``payload_too_large``, ``malformed_json``, ...); ``detail``: one sentence
    for people. 4xx: not safe to retry unchanged; 503: retry after
    ``Retry-After``.
    """

    def __init__(self, status: int, error: str, detail: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(f"{status} {error}: {detail}" if detail else f"{status} {error}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


class QuestionnaireConflict(CentralError):
    """A questionnaire id and version is already published with other content.

    Not safe to retry: a published version is immutable; raise ``version`` in the file.
    """


class UnknownQuestionnaire(CentralError):
    """A questionnaire id, version and location given on the command line was never published.

    Not safe to retry (see ``balie-central questionnaire list``).
    """
