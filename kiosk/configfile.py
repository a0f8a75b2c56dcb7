"""Reading TOML config files and turning pydantic's errors into plain sentences.

Shared by :mod:`kiosk.questionnaire` and :mod:`kiosk.settings`. Use::

    data = read_toml(path, QuestionnaireError)       # syntax errors name line and column
    try:
        Model.model_validate(data)
    except ValidationError as exc:
        problems = explain_validation_error(exc, Model, place)

Validators raise :func:`problem` to have their message shown exactly as written.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from kiosk.errors import ConfigError


def problem(message: str, kind: str = "balie", **ctx: Any) -> PydanticCustomError:
    """A validation error whose message is shown to the administrator as written.

    ``kind="balie_fields"`` carries ``problems=[(field, message), ...]`` for one model;
    ``kind="balie_list"`` carries ``problems=[full message, ...]`` that name their own place.
    """
    template = message.replace("{", "{{").replace("}", "}}")
    return PydanticCustomError(kind, template, ctx or None)


def read_toml(path: str | Path, error: type[ConfigError] = ConfigError) -> dict:
    """Parse the TOML file at ``path``; any failure becomes ``error(path, [plain message])``."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(path, ["file not found"]) from None
    except IsADirectoryError:
        raise error(path, ["this is a folder, not a file"]) from None
    except OSError as exc:
        raise error(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise error(path, [f"the file is not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise error(path, [toml_problem(exc)]) from None


def toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    """``line 12, column 5: Expected '=' ...`` from tomllib's ``... (at line 12, column 5)``."""
    message = str(exc)
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        return f"line {found[1]}, column {found[2]}: {message[:found.start()]}"
    found = re.search(r"\s*\(at end of document\)$", message)
    if found:
        return f"at the end of the file: {message[:found.start()]}"
    return f"TOML syntax error: {message}"


def explain_validation_error(
    exc: ValidationError, root: type[BaseModel], place: Callable[[tuple], tuple[str, tuple]]
) -> list[str]:
    """Turn pydantic's errors into one plain sentence each, naming the place.

    ``place(loc)`` returns a prefix (e.g. ``question 'x' (#2)``) and the rest of the loc,
    which is shown as the field (``field 'text.nl'``).
    """
    problems: list[str] = []
    errors = exc.errors()
    for err in errors:
        loc = err["loc"]
        ctx = err.get("ctx") or {}
        if err["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and other["loc"][: len(loc)] == loc for other in errors
        ):
            continue  # a list whose entries are bad: the entries' own errors say why
        if err["type"] == "balie_list":
            problems.extend(ctx["problems"])
            continue
        prefix, rest = place(loc)
        if err["type"] == "balie_fields":
            for field, message in ctx["problems"]:
                problems.append(_join(prefix, (field,), message))
            continue
        problems.append(_join(prefix, rest, _plain_message(err, root)))
    return problems


def _join(prefix: str, rest: tuple, message: str) -> str:
    keys = [str(part) for part in rest if isinstance(part, str) and part != "[key]"]
    if rest and rest[-1] == "[key]":
        keys = keys[:-1]  # the bad key itself is named in the message
    entries = [f"entry #{part + 1}" for part in rest if isinstance(part, int)]
    where = [prefix] if prefix else []
    if keys:
        where.append(f"field {'.'.join(keys)!r}")
    where.extend(entries)
    return f"{', '.join(where)}: {message}" if where else message


def describe(value: Any) -> str:
    """A short, TOML-flavoured description of a value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


_PLAIN = {
    "missing": "is required",
    "string_type": "must be text in quotes, got {got}",
    "int_type": "must be a whole number, got {got}",
    "int_parsing": "must be a whole number, got {got}",
    "int_from_float": "must be a whole number, got {got}",
    "float_type": "must be a number, got {got}",
    "float_parsing": "must be a number, got {got}",
    "bool_type": "must be true or false, got {got}",
    "model_type": "must be a table (a [section] or {{ key = ... }}), got {got}",
    "model_attributes_type": "must be a table (a [section] or {{ key = ... }}), got {got}",
    "dict_type": "must be a table of languages (like text.nl = \"...\"), got {got}",
    "tuple_type": "must be a list [ ... ], got {got}",
    "list_type": "must be a list [ ... ], got {got}",
    "greater_than": "must be more than {gt}, got {got}",
    "greater_than_equal": "must be at least {ge}, got {got}",
    "less_than": "must be less than {lt}, got {got}",
    "less_than_equal": "must be at most {le}, got {got}",
    "literal_error": "must be one of {expected}, got {got}",
    "path_type": "must be a file path in quotes, got {got}",
}


def _plain_message(err: dict, root: type[BaseModel]) -> str:
    kind, ctx = err["type"], dict(err.get("ctx") or {})
    if kind == "balie":
        return err["msg"]
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        limit = ctx.get("min_length", ctx.get("max_length"))
        word = "entry" if limit == 1 else "entries"
        side = "at least" if kind == "too_short" else "at most"
        return f"needs {side} {limit} {word}, got {ctx['actual_length']}"
    if kind == "extra_forbidden":
        known = _known_fields(root, err["loc"][:-1])
        hint = f" (known fields: {', '.join(known)})" if known else ""
        return f"unknown field; check the spelling{hint}"
    if kind in _PLAIN:
        # limits like gt=0 on a float field: show "0", as a TOML user writes it
        ctx = {key: f"{value:g}" if isinstance(value, float) else value for key, value in ctx.items()}
        try:
            return _PLAIN[kind].format(got=describe(err.get("input")), **ctx)
        except (KeyError, IndexError):
            pass
    return err["msg"].removeprefix("Value error, ")


def _known_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed at ``loc`` inside ``model`` (walking nested models)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        nested = _model_in(field.annotation) if field else None
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if arg is not Ellipsis and arg is not type(None):
            found = _model_in(arg)
            if found:
                return found
    return None


def key_place(loc: tuple) -> tuple[str, tuple]:
    """For :func:`explain_validation_error` on a settings file: ``timeouts.idle_reset_s``.

    The TOML key path as the prefix, then any list entries as the rest.
    """
    keys = [part for part in loc if isinstance(part, str)]
    return ".".join(keys), tuple(part for part in loc if isinstance(part, int))


def validate_settings_file(model, data: dict, base: Path, source: str, path,
                           error: type[ConfigError] = ConfigError) -> Any:
    """Validate ``data`` (read from ``path``, or ``{}`` for built-in defaults) as ``model``.

    Relative paths in the file resolve against ``base``; a failure raises
    ``error`` (a :class:`ConfigError`) naming ``source`` and every problem. The result
    remembers the file it came from in ``_source_path``.
    """
    try:
        settings = model.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        raise error(source, explain_validation_error(exc, model, key_place)) from None
    settings._source_path = None if path is None else Path(path).resolve()
    return settings
