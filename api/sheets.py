"""Spreadsheet cells written safely: what a CSV or XLSX the API serves holds is text, never a
formula a spreadsheet program would run (CSV injection, OWASP), and never a character openpyxl
refuses. Names, addresses and notes come from users; a building typed "=HYPERLINK(…)" must
open as those characters.
"""

from __future__ import annotations

from typing import Any

# A cell a spreadsheet program would run as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    if value.startswith("'") and value.lstrip("'").startswith(FORMULA_START):
        return value[1:]
    return value


def xlsx_row(sheet: Any, values: list[Any]) -> list[Any]:
    """Cells for `sheet.append`, of a write-only sheet or not: a text is a text cell whatever
    it starts with (openpyxl makes "=…" a formula), its control characters dropped (openpyxl
    refuses them: a name stored before input refused them must not fail the whole file), and
    formatted as text ("@"), so what Excel's user types over it stays text (a phone 010…, a
    room 0502 keep their 0; in a "General" cell Excel makes them numbers)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    row = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
            cell.data_type = "s"
            cell.number_format = "@"
            row.append(cell)
        else:
            row.append(value)
    return row
