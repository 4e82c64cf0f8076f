"""Reading household register files (CSV or XLSX, English or Chinese headers) into checked rows."""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, BinaryIO

from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS, OCCUPANCIES
from api.services.names import has_control_characters

COLUMNS = (
    "building",
    "unit",
    "floor",
    "room",
    "lon",
    "lat",
    "kind",
    "occupancy",
    "members",
    "tags",
    "phone",
)
CHINESE_HEADERS = {
    "楼栋": "building",
    "单元": "unit",
    "楼层": "floor",
    "房号": "room",
    "经度": "lon",
    "纬度": "lat",
    "类型": "kind",
    "居住性质": "occupancy",
    "人数": "members",
    "标签": "tags",
    "电话": "phone",
}
REQUIRED = ("building", "lon", "lat")
KIND_WORDS = {
    "住宅": "residence",
    "居民": "residence",
    "商铺": "business",
    "商户": "business",
    "企业": "business",
    "经营": "business",
}
OCCUPANCY_WORDS = {
    "自住": "owner",
    "业主": "owner",
    "自有": "owner",
    "租住": "tenant",
    "租户": "tenant",
    "出租": "tenant",
    "空置": "vacant",
}
TAG_WORDS = {
    "高龄": "elderly_80",
    "80岁以上": "elderly_80",
    "独居": "living_alone",
    "空巢": "living_alone",
    "低保": "low_income",
    "残疾": "disability",
    "流动人口": "migrant",
    "困境儿童": "child_in_difficulty",
    "困境妇女": "woman_in_difficulty",
    "特殊人群": "special_care",
    "重点关怀": "special_care",
}
XLSX_MAGIC = b"PK\x03\x04"
MAX_ERRORS = 100
MAX_COLUMNS = 200  # a register has 11 columns; a row of a million is an attack, not data
# An XLSX is a zip: its parts are checked before openpyxl inflates any of them.
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024  # bytes, all parts together
MAX_XLSX_RATIO = 200  # XML compresses 5-20x; zeros or repeated cells 1000x and more
MAX_XLSX_PARTS = 10_000
# openpyxl reads the whole shared-strings table into a list before the first row, whatever the
# sheet holds: 8 MB of XML is at most ~500,000 strings (~30 MB of Python objects). A register
# of 50,000 rows needs ~2 MB; larger registers come as CSV, which is streamed.
MAX_XLSX_SHARED_STRINGS = 8 * 1024 * 1024


class FileProblem(ValueError):
    """The file as a whole cannot be read (format, headers)."""


@dataclass
class RowError:
    row: int
    column: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "detail": self.detail}


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _header_key(name: Any) -> str | None:
    text = str(name or "").strip().lstrip("\ufeff").strip()
    if text.lower() in COLUMNS:
        return text.lower()
    return CHINESE_HEADERS.get(text)


SNIFF = 1 << 16
NOT_TEXT = "The CSV file is neither UTF-8 nor GB18030 text."
UTF16 = (
    'The file is UTF-16 text (Excel\'s "Unicode Text"); save it as "CSV UTF-8" (or CSV) and '
    "import that, or import the XLSX workbook itself."
)
# A Chinese register lists tags with 、 or ，as readily as with ; or ,.
TAG_SEPARATORS = str.maketrans({"；": ";", ",": ";", "，": ";", "、": ";"})


def _csv_encoding(stream: BinaryIO) -> str:
    """UTF-8 (with or without BOM) or GB18030, found by reading the file once in blocks."""
    stream.seek(0)
    if stream.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        # Excel's "Unicode Text" (tab-separated UTF-16): its NULs read as a binary file.
        raise FileProblem(UTF16)
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    while block := stream.read(SNIFF):
        if b"\x00" in block:
            raise FileProblem("The file is binary, not CSV text.")
        if utf8:
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return "utf-8-sig" if utf8 else "gb18030"


def _cells_csv(stream: BinaryIO) -> Iterator[list[Any]]:
    encoding = _csv_encoding(stream)
    stream.seek(0)
    # The header decides the columns; one line of a million fields is refused before parsing.
    head = stream.read(SNIFF)
    first_line = head[: head.find(b"\n")] if b"\n" in head else head
    if first_line.count(b",") >= MAX_COLUMNS:
        raise FileProblem(f"The header has more than {MAX_COLUMNS} columns.")
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield from csv.reader(text)
    finally:
        text.detach()  # the caller owns the file


def check_zip(stream: BinaryIO) -> None:
    """Refuse a zip whose parts would inflate beyond the limits (a zip bomb), unopened."""
    import zipfile

    try:
        with zipfile.ZipFile(stream) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileProblem("The file is not a readable XLSX workbook.") from exc
    if len(parts) > MAX_XLSX_PARTS:
        raise FileProblem(f"The workbook has more than {MAX_XLSX_PARTS} parts.")
    total = 0
    for part in parts:
        total += part.file_size
        if part.filename.lower().endswith("sharedstrings.xml") and (
            part.file_size > MAX_XLSX_SHARED_STRINGS
        ):
            raise FileProblem(
                f"The workbook's shared-strings table inflates to {part.file_size:,} bytes; the "
                f"limit is {MAX_XLSX_SHARED_STRINGS:,}. Save a register this large as CSV."
            )
        ratio = part.file_size // max(part.compress_size, 1)
        if part.file_size > 1024 * 1024 and ratio > MAX_XLSX_RATIO:
            raise FileProblem(
                f"The workbook part {part.filename!r} inflates {ratio}-fold; "
                "refusing it as a zip bomb."
            )
    if total > MAX_XLSX_UNCOMPRESSED:
        raise FileProblem(
            f"The workbook inflates to {total:,} bytes; the limit is {MAX_XLSX_UNCOMPRESSED:,}."
        )


def _cells_xlsx(stream: BinaryIO) -> Iterator[list[Any]]:
    import zipfile
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook

    check_zip(stream)
    stream.seek(0)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileProblem("The file is not a readable XLSX workbook.") from exc
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    except (
        ParseError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        LookupError,
        TypeError,
        ValueError,
    ) as exc:
        # A damaged sheet (cut XML, a part whose CRC or size does not match, no sheet at all):
        # openpyxl reads it as the rows are asked for, so the damage shows here, not on opening.
        raise FileProblem("The file is not a readable XLSX workbook (a damaged sheet).") from exc
    finally:
        workbook.close()


def _blank(stream: BinaryIO) -> bool:
    stream.seek(0)
    while block := stream.read(SNIFF):
        if block.strip():
            return False
    return True


def detect_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    if data.startswith(XLSX_MAGIC):
        return "xlsx"
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")) or "spreadsheetml" in (content_type or ""):
        raise FileProblem("The file is named or labelled XLSX but is not a workbook.")
    return "csv"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: Any) -> float:
    number = float(_text(value))
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _check_row(values: dict[str, Any], row: int, errors: list[RowError]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    before = len(errors)
    for column in REQUIRED:
        if _text(values.get(column)) == "":
            errors.append(RowError(row, column, f"{column} is required"))
    for column in ("building", "unit", "floor", "room"):
        value = values.get(column)
        if isinstance(value, date | time):
            # Excel reads a typed "1-2" or "3/4" as a date; its text would be a timestamp.
            errors.append(
                RowError(
                    row,
                    column,
                    f"{column} is a date in the workbook ({value}); Excel turned what was "
                    "typed into a date: format the column as text and type it again",
                )
            )
            value = None
        out[column] = _text(value)
    for column, limit in (("building", 50), ("unit", 20), ("floor", 10), ("room", 20)):
        if len(out[column]) > limit:
            errors.append(RowError(row, column, f"{column} is longer than {limit} characters"))
        elif has_control_characters(out[column]):
            errors.append(RowError(row, column, f"{column} holds a control character"))
    for column in ("lon", "lat"):
        if _text(values.get(column)):
            try:
                out[column] = _number(values.get(column))
            except ValueError:
                errors.append(
                    RowError(row, column, f"{column} {values.get(column)!r} is not a number")
                )
    kind = _text(values.get("kind")) or "residence"
    out["kind"] = KIND_WORDS.get(kind, kind.lower())
    if out["kind"] not in HOUSEHOLD_KINDS:
        errors.append(
            RowError(row, "kind", f"kind {kind!r} is not one of {', '.join(HOUSEHOLD_KINDS)}")
        )
    occupancy = _text(values.get("occupancy")) or "owner"
    out["occupancy"] = OCCUPANCY_WORDS.get(occupancy, occupancy.lower())
    if out["occupancy"] not in OCCUPANCIES:
        errors.append(
            RowError(
                row, "occupancy", f"occupancy {occupancy!r} is not one of {', '.join(OCCUPANCIES)}"
            )
        )
    members = _text(values.get("members"))
    if members == "":
        out["members"] = 0 if out.get("occupancy") == "vacant" else 1
    else:
        try:
            number = _number(members)  # "inf", "nan" and "1e400" are refused here, not by int()
            if not number.is_integer() or not 0 <= number <= 100:
                raise ValueError
            out["members"] = int(number)
        except ValueError:
            errors.append(
                RowError(row, "members", f"members {members!r} is not a whole number 0-100")
            )
    tags = []
    for raw in _text(values.get("tags")).translate(TAG_SEPARATORS).split(";"):
        tag = raw.strip()
        if not tag:
            continue
        tag = TAG_WORDS.get(tag, tag.lower())
        if tag not in CARE_TAGS:
            errors.append(RowError(row, "tags", f"unknown care tag {raw.strip()!r}"))
        elif tag not in tags:
            tags.append(tag)
    out["tags"] = tags
    phone = _text(values.get("phone"))
    if len(phone) > 32:
        errors.append(RowError(row, "phone", "phone is longer than 32 characters"))
    out["phone"] = phone or None
    return out if len(errors) == before else None


class HouseholdReader:
    """Checked rows of a register file, read as a stream (a 900,000-row file stays on disk).

    Opening it checks the file as a whole (empty, format, headers) and raises FileProblem.
    `chunks(n)` then yields lists of (row number, checked values) while `errors` collects the
    rows' problems; reading stops once MAX_ERRORS problems are found. Row numbers are
    spreadsheet rows (the header is row 1).
    """

    def __init__(
        self, stream: BinaryIO, filename: str | None = None, content_type: str | None = None
    ) -> None:
        self.stream = stream
        self.errors: list[RowError] = []
        self.rows = 0
        stream.seek(0, io.SEEK_END)
        self.size = stream.tell()
        stream.seek(0)
        head = stream.read(len(XLSX_MAGIC))
        if not head.startswith(XLSX_MAGIC) and _blank(stream):
            raise FileProblem("The file is empty.")
        fmt = detect_format(head, filename, content_type)
        self.format = fmt
        self._cells = _cells_xlsx(stream) if fmt == "xlsx" else _cells_csv(stream)
        try:
            header = next(self._cells)
        except StopIteration as exc:
            raise FileProblem("The file has no header row.") from exc
        except csv.Error as exc:
            raise FileProblem(f"The CSV file is malformed: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise FileProblem(NOT_TEXT) from exc
        if len(header) > MAX_COLUMNS:
            raise FileProblem(f"The header has more than {MAX_COLUMNS} columns.")
        self.keys = [_header_key(name) for name in header]
        for key in COLUMNS:
            where = [str(i + 1) for i, k in enumerate(self.keys) if k == key]
            if len(where) > 1:
                # Which of two `room` columns is the room? Taking the last one silently
                # stored the other's values nowhere, or a wrong point.
                raise FileProblem(
                    f"The column {key} is named more than once in the header (columns "
                    f"{' and '.join(where)}); keep one."
                )
        missing = [c for c in REQUIRED if c not in self.keys]
        if missing:
            raise FileProblem(
                "Missing column(s): "
                + ", ".join(missing)
                + ". Expected headers: "
                + ", ".join(COLUMNS)
                + " (or 楼栋, 单元, 楼层, 房号, 经度, 纬度, 类型, 居住性质, 人数, 标签, 电话)."
            )

    def position(self) -> int:
        """Bytes read so far (for a progress bar; an XLSX is read whole by openpyxl's zip)."""
        try:
            return min(self.stream.tell(), self.size)
        except (OSError, ValueError):
            return 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        keys = [(i, key) for i, key in enumerate(self.keys) if key]
        try:
            for number, row in enumerate(self._cells, start=2):
                if len(row) > MAX_COLUMNS:
                    raise FileProblem(f"Row {number} has more than {MAX_COLUMNS} columns.")
                if all(_text(v) == "" for v in row):
                    continue
                self.rows += 1
                width = len(row)
                values = {key: row[i] if i < width else None for i, key in keys}
                checked = _check_row(values, number, self.errors)
                if checked is not None:
                    yield number, checked
                if len(self.errors) >= MAX_ERRORS:
                    break
        except csv.Error as exc:
            raise FileProblem(f"The CSV file is malformed: {exc}") from exc
        except UnicodeDecodeError as exc:  # not UTF-8, and GB18030 fails further on
            raise FileProblem(NOT_TEXT) from exc

    def chunks(self, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        chunk: list[tuple[int, dict[str, Any]]] = []
        for item in self:
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def read_households(
    data: bytes, filename: str | None = None, content_type: str | None = None
) -> ParsedFile:
    """Parse a whole register file held in memory (see HouseholdReader to stream one)."""
    reader = HouseholdReader(io.BytesIO(data), filename, content_type)
    parsed = ParsedFile()
    parsed.rows = list(reader)
    parsed.errors = reader.errors
    return parsed
