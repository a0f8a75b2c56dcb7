"""The kiosk's exception hierarchy: every error the terminal raises on purpose.

Each class says whether retrying makes sense. Command-line entry points catch
:class:`BalieError` and print its message (no traceback), so messages must
name the thing that is wrong and say what to do.
"""


class BalieError(Exception):
    """Base class for every error the kiosk raises on purpose."""


class ConfigError(BalieError):
    """A configuration or questionnaire file is missing or invalid.

    Not safe to retry: the file has to be fixed first. ``str(error)`` names the
    file, the place in it (question and field where known) and what is wrong.
    """

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.path}: invalid configuration\n{lines}")


class QuestionnaireError(ConfigError):
    """A questionnaire file is missing or invalid (see :class:`ConfigError`)."""

    def __init__(self, path, problems):
        super().__init__(path, problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        self.args = (f"{self.path}: invalid questionnaire\n{lines}",)


class BufferUnavailable(BalieError):
    """The local buffer cannot be opened or written.

    Safe to retry once the cause (disk full, read-only file system, permissions)
    is fixed; nothing already stored has been changed. ``cause`` says which,
    when known: one of :data:`BUFFER_FAULTS` (``None``: another reason, e.g. a
    schema from a newer release).
    """

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause


#: The causes a :class:`BufferUnavailable` names. ``full``, ``read_only`` and ``io`` are
#: storage faults a restart cannot mend: the terminal stays up, out of order, and checks again.
BUFFER_FAULTS = ("full", "read_only", "io", "locked", "damaged")
STORAGE_FAULTS = ("full", "read_only", "io")

