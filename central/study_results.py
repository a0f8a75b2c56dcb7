"""Imported study results: the bureau's own figures for other channels and earlier studies, for the report.

Use::

    rows = read_results_file(Path("kto-2023.csv"))          # ResultsFileError naming row and column
    done = import_results(engine, rows, source="kto-2023.csv", now=time.time())
    done.replaced        # {"KTO 2023": 24}: rows of a study stored before, now replaced
    for row in list_results(engine): print(row.key, row.mean, row.n)
    aggregates(engine, channel="telefoon", aspect="totaal")  # {ResultKey: central.stats.Aggregate}

The file (CSV, UTF-8 with or without BOM, ``,`` or ``;`` as separator; with
``;`` a decimal comma is read too) has a header row with these columns, in any
order and case:

======================  ==========================================================
``study``               the study's name, e.g. ``KTO 2023`` (1-64 characters)
``period`` (``year``)   when, e.g. ``2023`` or ``2024-Q1`` (1-32 characters)
``channel``             ``balie``, ``telefoon``, ``web``, ``e-mail``, ... (1-64)
``aspect``              the aspect as the questionnaire names it: ``totaal``,
                        ``wachttijd``, ... (lower case, digits, ``-`` and ``_``)
``mean``                the mean grade, 1 to 10
``sd``                  its standard deviation, at least 0
``n``                   the number of answers, a whole number of at least 1
``share_low``           optional: share of grades 1-5, a fraction (0.12) or ``12%``
``share_high``          optional: share of grades 8-10, likewise
======================  ==========================================================

One row per study, period, channel and aspect. Every problem in the file is
reported at once, each naming its row (the header is row 1) and column;
nothing is stored unless the whole file is right. Importing a study again
replaces every row stored for it (so a corrected file is simply imported
again); studies not in the file stay as they are.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine, delete, insert, select

from central.errors import CentralError
from central.models import StudyResult
from central.stats import Aggregate, InvalidInput

_table = StudyResult.__table__
#: A results file is at most this big (a real one is a few KiB).
MAX_FILE_BYTES = 5 * 1024 * 1024
REQUIRED = ("study", "period", "channel", "aspect", "mean", "sd", "n")
OPTIONAL = ("share_low", "share_high")
ALIASES = {"year": "period"}
_LIMITS = {"study": 64, "period": 32, "channel": 64, "aspect": 64}
_ASPECT = re.compile(r"^[a-z0-9_-]+$")
#: At most this many problems are listed; the rest are counted.
SHOWN_PROBLEMS = 20


class ResultsFileError(CentralError):
    """A results file cannot be imported; ``problems`` name row and column. Not safe to retry: fix the file."""

    def __init__(self, source: str, problems: list[str]):
        shown = problems[:SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        text = f"{source}: nothing imported:\n" + "\n".join(f"  {p}" for p in shown)
        if more:
            text += f"\n  (and {more} more problem(s))"
        super().__init__(text)
        self.source = source
        self.problems = problems


class ResultKey(NamedTuple):
    """What one imported figure is about."""

    study: str
    period: str
    channel: str
    aspect: str


@dataclass(frozen=True)
class ResultRow:
    """One figure of a study, as read from the file or stored."""

    key: ResultKey
    mean: float
    sd: float
    n: int
    low_share: float | None = None
    high_share: float | None = None
    source: str = ""
    imported_at: float | None = None

    @property
    def label(self) -> str:
        """``KTO 2023 2023 telefoon totaal``, for messages and :class:`Aggregate` labels."""
        return " ".join(self.key)

    def aggregate(self) -> Aggregate:
        """This figure as :class:`central.stats.Aggregate` (for ``compare`` and the report)."""
        return Aggregate(mean=self.mean, sd=self.sd, n=self.n, low_share=self.low_share,
                         high_share=self.high_share, label=self.label)


# ---------------------------------------------------------------------------- reading a file

def read_results_file(path: str | Path) -> list[ResultRow]:
    """The validated rows of the results file at ``path``; raises :class:`ResultsFileError`."""
    source = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ResultsFileError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise ResultsFileError(source, ["this is a folder, not a file"]) from None
    except OSError as exc:
        raise ResultsFileError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ResultsFileError(source, [f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultsFileError(source, [f"the file is not UTF-8 text (byte {exc.start}); save it "
                                        "as 'CSV UTF-8'"]) from None
    return parse_results(text, source)


def parse_results(text: str, source: str = "<results>") -> list[ResultRow]:
    """The validated rows of CSV ``text``; raises :class:`ResultsFileError` listing every problem."""
    if "\x00" in text:
        raise ResultsFileError(source, ["the file holds NUL characters: not a CSV text file"])
    text = text.removeprefix("\ufeff")  # a BOM (Excel's "CSV UTF-8") is not part of the header
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise ResultsFileError(source, ["the file is empty; it needs a header row and data rows"])
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        table = list(reader)
    except csv.Error as exc:
        raise ResultsFileError(source, [f"row {reader.line_num}: not valid CSV ({exc})"]) from None
    header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in table[0]]
    problems = []
    unknown = [h or "(empty)" for h in header if h not in REQUIRED + OPTIONAL]
    if unknown:
        problems.append(f"row 1: unknown column(s) {', '.join(unknown)}; the columns are "
                        f"{', '.join(REQUIRED)}, optionally {', '.join(OPTIONAL)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"row 1: missing column(s) {', '.join(missing)}")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        problems.append(f"row 1: column(s) {', '.join(twice)} appear more than once")
    if problems:
        raise ResultsFileError(source, problems)
    rows, seen = [], {}
    for number, cells in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (Excel leaves them at the end)
        if len(cells) != len(header):
            problems.append(f"row {number}: {len(cells)} field(s), the header has {len(header)}")
            continue
        row, row_problems = _row(dict(zip(header, cells)), number, decimal_comma=delimiter == ";")
        problems.extend(row_problems)
        if row is None:
            continue
        if row.key in seen:
            problems.append(f"row {number}: study, period, channel and aspect repeat row "
                            f"{seen[row.key]} ({row.label})")
            continue
        seen[row.key] = number
        rows.append(row)
    if not rows and not problems:
        problems.append("no data rows under the header")
    if problems:
        raise ResultsFileError(source, problems)
    return rows


def _row(cells: dict[str, str], number: int, *, decimal_comma: bool):
    problems = []

    def where(column: str) -> str:
        return f"row {number}, column {column}"

    texts = {}
    for column, limit in _LIMITS.items():
        value = cells[column].strip()
        if not value:
            problems.append(f"{where(column)}: empty")
        elif len(value) > limit:
            problems.append(f"{where(column)}: at most {limit} characters, got {len(value)}")
        elif any(ord(c) < 32 for c in value):
            problems.append(f"{where(column)}: holds a control character")
        elif column == "aspect" and not _ASPECT.match(value):
            problems.append(f"{where(column)}: {value!r} is not an aspect as questionnaires name "
                            "them (lower case letters, digits, - and _; e.g. totaal, wachttijd)")
        texts[column] = value

    def number_in(column: str, *, share: bool = False):
        value = cells.get(column, "").strip()
        if not value:
            if column in OPTIONAL:
                return None
            problems.append(f"{where(column)}: empty")
            return None
        percent = share and value.endswith("%")
        plain = value[:-1].strip() if percent else value
        if decimal_comma:
            plain = plain.replace(",", ".")
        try:
            result = float(plain)
        except ValueError:
            hint = " (use ';' as separator for a decimal comma)" if "," in plain else ""
            problems.append(f"{where(column)}: {value!r} is not a number{hint}")
            return None
        if not math.isfinite(result):
            problems.append(f"{where(column)}: {value!r} is not a number")
            return None
        if share:
            if percent:
                result /= 100
            if not 0 <= result <= 1:
                problems.append(f"{where(column)}: {value!r} is not a share: a fraction from 0 to "
                                "1 (0.12) or a percentage with % (12%)")
                return None
        return result

    mean, sd = number_in("mean"), number_in("sd")
    low, high = number_in("share_low", share=True), number_in("share_high", share=True)
    n_text = cells["n"].strip()
    n = None
    if not re.fullmatch(r"[0-9]+", n_text):
        problems.append(f"{where('n')}: {n_text!r} is not a whole number of answers (digits only, "
                        "no thousands separator)" if n_text else f"{where('n')}: empty")
    else:
        n = int(n_text)
        if not 1 <= n <= 2 ** 31 - 1:
            problems.append(f"{where('n')}: must be at least 1, got {n}")
            n = None
    if mean is not None and not 1 <= mean <= 10:
        problems.append(f"{where('mean')}: must be a grade from 1 to 10, got {cells['mean'].strip()!r}"
                        " (a percentage or a 1-5 scale?)")
    if sd is not None and sd < 0:
        problems.append(f"{where('sd')}: must be at least 0, got {cells['sd'].strip()!r}")
    if low is not None and high is not None and low + high > 1 + 1e-9:
        problems.append(f"row {number}, columns share_low and share_high: together more than 1 "
                        f"({low:g} + {high:g})")
    if problems:
        return None, problems
    row = ResultRow(ResultKey(texts["study"], texts["period"], texts["channel"], texts["aspect"]),
                    mean=mean, sd=sd, n=n, low_share=low, high_share=high)
    try:
        row.aggregate()  # the report's own checks, so a stored row always makes an Aggregate
    except InvalidInput as exc:
        return None, [f"row {number}: {exc}"]
    return row, []


# ---------------------------------------------------------------------------- storing

@dataclass(frozen=True)
class ImportResult:
    """Rows stored per study, and for studies stored before, how many of their rows were replaced."""

    stored: dict[str, int]
    replaced: dict[str, int]


def import_results(engine: Engine, rows: list[ResultRow], *, source: str,
                   now: float) -> ImportResult:
    """Store ``rows`` (validated); every study in them replaces what was stored for it, in one transaction."""
    studies = sorted({row.key.study for row in rows})
    stored = {study: sum(1 for row in rows if row.key.study == study) for study in studies}
    replaced = {}
    with engine.begin() as conn:
        for study in studies:
            count = conn.execute(delete(_table).where(_table.c.study == study)).rowcount
            if count:
                replaced[study] = count
        conn.execute(insert(_table), [dict(
            study=row.key.study, period=row.key.period, channel=row.key.channel,
            aspect=row.key.aspect, mean=row.mean, sd=row.sd, n=row.n, low_share=row.low_share,
            high_share=row.high_share, source=source, imported_at=now) for row in rows])
    return ImportResult(stored, replaced)


def list_results(engine: Engine, *, study: str | None = None, channel: str | None = None,
                 aspect: str | None = None) -> list[ResultRow]:
    """Stored rows (optionally of one study, channel or aspect), by study, period, channel, aspect."""
    query = select(_table).order_by(_table.c.study, _table.c.period, _table.c.channel,
                                    _table.c.aspect)
    for column, value in (("study", study), ("channel", channel), ("aspect", aspect)):
        if value is not None:
            query = query.where(_table.c[column] == value)
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return [ResultRow(ResultKey(r.study, r.period, r.channel, r.aspect), mean=r.mean, sd=r.sd,
                          n=r.n, low_share=r.low_share, high_share=r.high_share, source=r.source,
                          imported_at=r.imported_at) for r in conn.execute(query)]


def aggregates(engine: Engine, **filters) -> dict[ResultKey, Aggregate]:
    """The stored rows as :class:`central.stats.Aggregate` (labelled), keyed by study, period,
    channel and aspect; ``filters``: ``study``, ``channel``, ``aspect`` as for :func:`list_results`.

    Use (the report)::

        previous = aggregates(engine, study="KTO 2023", channel="balie")
        compare(summarise(grades), previous[ResultKey("KTO 2023", "2023", "balie", "totaal")])
    """
    return {row.key: row.aggregate() for row in list_results(engine, **filters)}
