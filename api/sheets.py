"""Spreadsheet cells written safely: what a CSV or XLSX the API serves holds is text, never a
formula a spreadsheet program would run (CSV injection, OWASP), and never a character openpyxl
refuses. Names, addresses and notes come from users; a building typed "=HYPERLINK(…)" must
open as those characters.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from typing import Any

# A cell a spreadsheet program would run as a formula: full-width ＝ ＋ － ＠ too, which Excel
# with a Chinese or Japanese input method reads as = + - @ (OWASP lists them).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

# XLSX text encodes a character as _xHHHH_ (ECMA-376 Part 1, 22.9.2.19 ST_Xstring), and a text
# that reads as one is written with its "_" as _x005F_. openpyxl does neither, either way.
_XLSX_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
# A run of escapes: each is a UTF-16 code unit, and a character beyond the basic plane is two.
_XLSX_ESCAPES = re.compile(r"(?:_x[0-9A-Fa-f]{4}_)+")


def csv_text(value: Any) -> Any:
    """A text that starts like a formula, quoted (a leading ') so spreadsheet programs show it
    as text; `csv_unquoted` reads it back as it was. So is a text of quotes and then such a
    start ("'=1" is written "''=1"): read back, it loses only the quote added."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_START):
        return "'" + value
    return value


def csv_unquoted(value: str) -> str:
    """A cell `csv_text` quoted, as it was ("'-1" is the floor -1, "''=1" is "'=1"); any other
    cell as it is."""
    return value[1:] if quoted(value) else value


def quoted(value: str) -> bool:
    """Whether `value` reads as a cell `csv_text` quoted: a ', then what starts a formula."""
    return value.startswith("'") and value.lstrip("'").startswith(FORMULA_START)


def register_text(value: Any) -> Any:
    """A text for a workbook the import reads back: one that reads as quoted (`quoted`: "'=1",
    "'-2") gets a quote more, which the import takes off. The import takes the quote off a
    workbook's cells as off a CSV's, for Excel shows a CSV's quote, and a workbook saved from
    it keeps it ('-1 for the floor -1)."""
    return "'" + value if isinstance(value, str) and quoted(value) else value


def xlsx_row(sheet: Any, values: list[Any]) -> list[Any]:
    """Cells for `sheet.append`, of a write-only sheet or not: a text is a text cell whatever
    it starts with (openpyxl makes "=…" a formula), its control characters dropped (openpyxl
    refuses them: a name stored before input refused them must not fail the whole file), and
    formatted as text ("@"), so what Excel's user types over it stays text (a phone 010…, a
    room 0502 keep their 0; in a "General" cell Excel makes them numbers). A text that reads
    as an XLSX escape ("_x0041_") is escaped, or Excel would show "A"."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    row = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(sheet, xlsx_escaped(ILLEGAL_CHARACTERS_RE.sub("", value)))
            cell.data_type = "s"
            cell.number_format = "@"
            row.append(cell)
        else:
            row.append(value)
    return row


def xlsx_escaped(text: str) -> str:
    """`text` as XLSX stores it: "_x0041_" is "_x005F_x0041_", as Excel saves it."""
    return _XLSX_ESCAPE.sub(r"_x005F_x\1_", text) if "_x" in text else text


def xlsx_unescaped(value: Any) -> Any:
    """A text cell as Excel shows it ("_x0041_" is "A", "_x005F_x0041_" is "_x0041_"): what
    openpyxl reads is the stored text, escapes and all."""
    if isinstance(value, str) and "_x" in value:
        return _XLSX_ESCAPES.sub(_code_units, value)
    return value


def _code_units(run: re.Match) -> str:
    """A run of escapes as the characters its UTF-16 code units spell: a high and a low
    surrogate together are one character; a surrogate without its other half is no character
    (no text column stores it) and stays the escape it was."""
    escapes = _XLSX_ESCAPE.findall(run.group(0))
    units = [int(unit, 16) for unit in escapes]
    out, n = [], 0
    while n < len(units):
        unit = units[n]
        if 0xD800 <= unit < 0xDC00 and n + 1 < len(units) and 0xDC00 <= units[n + 1] < 0xE000:
            out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (units[n + 1] - 0xDC00)))
            n += 2
            continue
        out.append(f"_x{escapes[n]}_" if 0xD800 <= unit < 0xE000 else chr(unit))
        n += 1
    return "".join(out)


TABLE_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


def write_table(
    header: list[str],
    rows: Iterable[list[Any]],
    fmt: str,
    *,
    title: str,
    cell: Callable[[Any], Any] = lambda value: value,
) -> bytes:
    """A table as a file a spreadsheet program opens (`fmt`: one of TABLE_TYPES), under its
    header row. CSV is UTF-8 with a BOM (Excel opens it as such), its cells that start like a
    formula quoted (`csv_text`), None an empty cell. XLSX is one sheet named `title`, its
    header row frozen, each cell as `cell` makes it, then `xlsx_row`: text, never a formula."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else csv_text(v) for v in row])
        return ("\ufeff" + out.getvalue()).encode()
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.freeze_panes = "A2"
    sheet.append(xlsx_row(sheet, header))
    for row in rows:
        sheet.append(xlsx_row(sheet, [cell(v) for v in row]))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
