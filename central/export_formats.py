"""The wide export's files: CSV with a codebook CSV, XLSX (openpyxl), SPSS .sav (pyreadstat).

Use::

    count = write_csv(path, book, rows)               # rows: lists from Codebook.row
    write_codebook_csv(codebook_path, book)
    count = write_xlsx(path, book, rows, about)       # about: (key, text) pairs
    count = write_sav(path, book, rows, about)

Each writer writes the path it is given (the caller renames ``*.partial``) and
returns the number of data rows. CSV and XLSX stream the rows; SPSS needs them
in memory (pyreadstat writes a whole data frame: some hundred bytes per
response). Values are the codebook's codes and missing codes in every format;
times are UTC (ISO 8601 with ``Z`` in CSV, a date-time in XLSX and SPSS).

XLSX is written with openpyxl in write-only mode (rows are streamed, memory
stays flat): the same library reads the files back in the tests, so one
dependency serves both; xlsxwriter is faster but can only write. Text cells
are always stored as text, never as formulas (a comment starting with ``=``
stays a comment), and characters XML cannot hold become U+FFFD.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from central.codebook import CODEBOOK_COLUMNS, Codebook, Variable
from central.errors import CentralError

#: SPSS limits, in UTF-8 bytes.
SPSS_LABEL_BYTES, SPSS_VALUE_LABEL_BYTES, SPSS_NOTE_BYTES, SPSS_FILE_LABEL_BYTES = 256, 120, 80, 64
FILE_LABEL = "Balie: antwoorden per bezoeker"
CODEBOOK_WIDTHS = {"variable": 24, "question_id": 20, "label": 50, "type": 14, "level": 10,
                   "value_labels": 50, "missing_codes": 45, "aspect": 16, "question_type": 13,
                   "wording_per_version": 100, "notes": 60}


class ExportDependencyMissing(CentralError):
    """A library the format needs is not installed (install ``balie[central]``). Not retryable."""


# ---------------------------------------------------------------------------- CSV

#: A text cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def spreadsheet_safe(cell):
    """A text that a spreadsheet would run as a formula, with ``'`` before it; anything else as is.

    Visitors type comments on the terminal: ``=HYPERLINK(...)`` must reach the
    bureau as text, not run when the CSV is opened in Excel or LibreOffice
    (OWASP, "CSV Injection"). Numbers stay as they are, also written as text
    (``"-1"``, a text variable's missing code, is a number to a spreadsheet too).
    """
    if (isinstance(cell, str) and cell.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(cell)):
        return "'" + cell
    return cell


def write_csv(path: Path, book: Codebook, rows: Iterable[list]) -> int:
    """The data as CSV (UTF-8, header of variable names); returns the number of rows."""
    iso = _iso_format(book)
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(book.names)
        for row in rows:
            writer.writerow([iso(cell) if isinstance(cell, datetime) else spreadsheet_safe(cell)
                             for cell in row])
            count += 1
    return count


def write_codebook_csv(path: Path, book: Codebook) -> None:
    """The codebook as CSV: :data:`~central.codebook.CODEBOOK_COLUMNS`, one row per variable."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CODEBOOK_COLUMNS)
        writer.writerows(book.table())


def _iso_format(book: Codebook):
    timespec = "milliseconds" if book.round_to == "none" else "seconds"
    return lambda moment: moment.isoformat(timespec=timespec).replace("+00:00", "Z")


# ---------------------------------------------------------------------------- XLSX

def write_xlsx(path: Path, book: Codebook, rows: Iterable[list],
               about: Sequence[tuple[str, str]]) -> int:
    """Sheets ``data`` (one row per response), ``codebook`` and ``export``; header rows frozen."""
    try:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Alignment, Font
        from openpyxl.utils import get_column_letter
    except ImportError:
        raise ExportDependencyMissing("--format xlsx needs openpyxl: pip install "
                                      "'balie[central]'") from None
    workbook = Workbook(write_only=True)
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    date_format = "yyyy-mm-dd hh:mm:ss.000" if book.round_to == "none" else "yyyy-mm-dd hh:mm"

    def sheet(title: str, widths: Sequence[int], header: Sequence[str]):
        ws = workbook.create_sheet(title)
        ws.freeze_panes = "A2"
        for n, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(n)].width = width
        ws.append([styled(ws, name, font=bold) for name in header])
        return ws

    def styled(ws, value, *, font=None, alignment=None, number_format=None):
        cell = WriteOnlyCell(ws, value=text(value) if isinstance(value, str) else value)
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula
        if font is not None:
            cell.font = font
        if alignment is not None:
            cell.alignment = alignment
        if number_format is not None:
            cell.number_format = number_format
        return cell

    def text(value: str) -> str:
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)

    data = sheet("data", [max(v.width, len(v.name)) + 2 for v in book.variables], book.names)
    count = 0
    for row in rows:
        data.append([
            styled(data, cell.replace(tzinfo=None), number_format=date_format)
            if isinstance(cell, datetime) else
            styled(data, cell) if isinstance(cell, str) and (cell.startswith("=") or
                                                            ILLEGAL_CHARACTERS_RE.search(cell))
            else cell
            for cell in row])
        count += 1
    codebook = sheet("codebook", [CODEBOOK_WIDTHS[c] for c in CODEBOOK_COLUMNS], CODEBOOK_COLUMNS)
    for entry in book.table():
        codebook.append([styled(codebook, value, alignment=wrap) for value in entry])
    export = sheet("export", [24, 140], ("about", "value"))
    for key, value in about:
        export.append([styled(export, key, font=bold, alignment=wrap),
                       styled(export, value, alignment=wrap)])
    workbook.save(path)
    return count


# ---------------------------------------------------------------------------- SPSS

def write_sav(path: Path, book: Codebook, rows: Iterable[list],
              about: Sequence[tuple[str, str]]) -> int:
    """An SPSS .sav: variable labels, value labels, user-missing codes, measure levels,
    display widths and formats; the export's facts and the wording per version as documents."""
    try:
        import pandas as pd
        import pyreadstat
    except ImportError:
        raise ExportDependencyMissing("--format sav needs pyreadstat and pandas: pip install "
                                      "'balie[central]'") from None
    open(path, "wb").close()  # a folder that is missing or not writable: the usual OSError
    columns: list[list] = [[] for _ in book.variables]
    count = 0
    for row in rows:
        for values, cell in zip(columns, row):
            values.append(cell)
        count += 1
    frame = pd.DataFrame({v.name: _series(pd, v, values)
                          for v, values in zip(book.variables, columns)})
    pyreadstat.write_sav(
        frame, str(path),
        file_label=fit_bytes(FILE_LABEL, SPSS_FILE_LABEL_BYTES),
        column_labels={v.name: fit_bytes(v.label, SPSS_LABEL_BYTES) for v in book.variables},
        note=_notes(book, about),
        variable_value_labels={
            v.name: {code: fit_bytes(text, SPSS_VALUE_LABEL_BYTES)
                     for code, text in v.value_labels.items()}
            for v in book.variables if v.value_labels},
        missing_ranges={v.name: _missing(v) for v in book.variables if v.missing},
        variable_measure={v.name: v.level for v in book.variables},
        variable_display_width={v.name: v.width for v in book.variables},
        variable_format={v.name: v.spss_format for v in book.variables if v.spss_format},
    )
    return count


def _series(pd, variable: Variable, values: list):
    if variable.storage == "datetime":
        return pd.Series([v.replace(tzinfo=None) for v in values], dtype="datetime64[us]")
    if variable.storage == "numeric":
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype="object")


def _missing(variable: Variable) -> list:
    codes = sorted(variable.missing)
    if variable.storage == "string" or len(codes) <= 3:
        return codes
    return [{"lo": codes[0], "hi": codes[-1]}]  # SPSS: at most three discrete codes, or a range


def _notes(book: Codebook, about: Sequence[tuple[str, str]]) -> list[str]:
    """SPSS documents (DISPLAY DOCUMENTS): lines of at most 80 bytes."""
    lines = []
    for key, value in about:
        lines.extend(wrap_bytes(f"{key}: {value}", SPSS_NOTE_BYTES))
    lines.append("")
    lines.append("Wording per questionnaire version (also in the codebook):")
    for variable in book.variables:
        for wording in variable.wordings:
            lines.extend(wrap_bytes(f"{variable.name} - {wording}", SPSS_NOTE_BYTES))
    return lines


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, ending in ``…`` when cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit - 3].decode("utf-8", "ignore") + "…"


def wrap_bytes(text: str, limit: int) -> list[str]:
    """``text`` as lines of at most ``limit`` UTF-8 bytes, broken between words where it can."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if len(candidate.encode("utf-8")) <= limit:
                line = candidate
                continue
            if line:
                lines.append(line)
            while len(word.encode("utf-8")) > limit:
                head = word.encode("utf-8")[:limit].decode("utf-8", "ignore")
                lines.append(head)
                word = word[len(head):]
            line = word
        lines.append(line)
    return lines
