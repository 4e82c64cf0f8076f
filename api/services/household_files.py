"""Household register files (CSV, tab-separated text or XLSX; English or Chinese headers): read
into checked rows, and written (`write_register`) as the import reads them back."""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, time
from itertools import zip_longest
from typing import Any, BinaryIO

from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS, OCCUPANCIES
from api.services.names import (
    INVISIBLE_IN_NAMES,
    address_part,
    half_width,
    has_control_characters,
)
from api.sheets import csv_unquoted, register_text, write_table, xlsx_unescaped

# A row's, a form's or the door's slip: one of the two is wrong, and which is not ours to guess.
VACANT_MEMBERS = "A vacant household has no members: give 0, or another occupancy."

ADDRESS_COLUMNS = ("building", "unit", "floor", "room")
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
    "重点关注": "special_care",  # as fixtures/export.py writes the demo's register
    "80岁以上老人": "elderly_80",  # as the weekly report names them
    # Registers name the groups by the person too.
    "高龄老人": "elderly_80",
    "独居老人": "living_alone",
    "空巢老人": "living_alone",
    "低保户": "low_income",
    "残疾人": "disability",
}
# What a clerk writes in a cell that has nothing to hold (no phone, no care tag): read as empty.
NONE_WORDS = frozenset(("无", "暂无", "没有", "/", "-", "—", "--"))
XLSX_MAGIC = b"PK\x03\x04"
# An OLE2 compound file: an Excel 97-2003 workbook (.xls), a WPS one (.et), or an .xlsx that
# Excel encrypted with a password to open. None of them is read: say how to save the file.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE2 = (
    "The file is an Excel 97-2003 workbook (.xls), a WPS workbook (.et) or a workbook with a "
    "password to open it; none of them can be read. Open it in Excel or WPS, remove any "
    'password, and save it as "Excel Workbook (*.xlsx)" or as CSV, then import that.'
)
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
# openpyxl finds the shared-strings table by its content type in [Content_Types].xml, whatever
# the part is called: that part is read (within this size: an <Override> of ~150 bytes for each
# of MAX_XLSX_PARTS is 1.5 MB) to know which part the limit above applies to.
MAX_XLSX_CONTENT_TYPES = 4 * 1024 * 1024
SHARED_STRINGS_CONTENT_TYPE = "sharedStrings+xml"


# Registers exported from the street office's systems open with a title (幸福社区住户登记表), a
# line of 填报单位 and 填报日期, a blank line; some have two header rows (a group heading such as
# 房屋信息 over 楼栋, 单元 and 房号, the other headings merged down over both). The header is
# looked for in the first rows.
HEADER_SEARCH_ROWS = 10
# Headings of a column numbering the rows (序号 1, 2, 3 …). A template numbers its rows in
# advance: a row holding its number and nothing else is an empty row, not a household missing
# its building and point.
SERIAL_HEADINGS = frozenset({"序号", "序", "编号", "行号", "no", "no.", "#"})
# Notes a template puts under its header, before the households (`_is_note`): a row that
# marks a sample household (示例 in any cell: its other cells are valid, so it was registered
# as one), or a row of nothing but hints on filling the columns in (必填, （选填）, 例：7号楼,
# 格式：…). A household's cells are never all hints, nor one of them a sample's mark.
SAMPLE_MARKS = frozenset(
    {"示例", "例", "样例", "例子", "举例", "填写示例", "示例行", "sample", "example"}
)
HINT = re.compile(
    r"[（(]?\s*(必填|选填|非必填|可选|可不填|可为空|必填项|选填项)\s*[)）]?"
    r"|(例|如|示例|格式|说明|注|填写说明)\s*[:：].*",
    re.IGNORECASE | re.DOTALL,
)


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


# Other names registers give the columns. A column so headed is read as that column unless the
# file also has a column of its own name (电话 and 手机: 电话 is the phone, 手机 is not read).
# Only names whose values the import reads as they come: none for the kind or the occupancy
# (a 房屋类型 of 商品房, a 住户类型 of 户籍 or 流动, a 居住状态 of 常住 would refuse a file
# that imported before), none that may hold another number (户号, the household's register
# number). Coordinates only by their own names and the plain English ones: a heading naming
# another datum (高德经度, GCJ-02) must not be read as WGS-84 without a word.
HEADER_ALIASES = {
    # 幢 is the building's word in Zhejiang and Jiangsu (3幢).
    **dict.fromkeys(
        ("楼号", "楼栋号", "栋号", "楼宇", "楼栋名称", "栋", "幢", "幢号", "楼幢", "楼幢号"),
        "building",
    ),
    **dict.fromkeys(("单元号",), "unit"),
    **dict.fromkeys(("层", "层号", "所在楼层"), "floor"),
    **dict.fromkeys(("房间号", "门牌号", "室号"), "room"),
    **dict.fromkeys(("longitude", "lng"), "lon"),
    **dict.fromkeys(("latitude",), "lat"),
    **dict.fromkeys(
        ("人口数", "家庭人口", "家庭人数", "户内人数", "居住人数", "在住人数"), "members"
    ),
    **dict.fromkeys(("关怀标签",), "tags"),
    **dict.fromkeys(("联系电话", "手机", "手机号", "手机号码", "电话号码"), "phone"),
    **dict.fromkeys(("telephone", "mobile"), "phone"),
}


# What a template adds to a heading to say a column must or may be filled in: *楼栋, 楼栋＊,
# 房号（必填）, 电话(选填). The heading names its column all the same.
HEADING_MARKS = re.compile(
    r"^\*+|\*+$|[（(](?:必填|选填|非必填|可选|可不填|可为空|必填项|选填项)[)）]$"
)


def _heading(name: Any) -> str:
    text = "".join(half_width(str(name or "").lstrip("\ufeff")).split())
    while (bare := HEADING_MARKS.sub("", text)) != text and bare:
        text = bare
    return text


def _header_key(name: Any) -> str | None:
    """The column a heading names by the column's own name (`room`, 房号)."""
    text = _heading(name)
    if text.lower() in COLUMNS:
        return text.lower()
    return CHINESE_HEADERS.get(text)


def _alias_key(name: Any) -> str | None:
    """The column a heading names by another of its usual names (门牌号, 手机)."""
    text = _heading(name)
    return HEADER_ALIASES.get(text) or HEADER_ALIASES.get(text.lower())


# A heading giving a column two names (门牌号/室, 房号／门牌号, 房号、门牌号): each part is
# one of the column's names, or one of these words, which name it only so joined (a column
# headed 室 alone stays unread, as it was: a register may have it beside 门牌号).
HEADING_OR = re.compile(r"[/、|]")
HEADING_PARTS = dict.fromkeys(("室", "房", "房间", "门牌", "户室"), "room")


def _joined_key(name: Any) -> str | None:
    """The column a heading of several names joined by / or 、 names, when every part names
    that one column. A heading naming two columns (楼栋/单元, 经度/纬度), or a part naming
    none, names no column: what its cells hold is not guessed."""
    text = _heading(name)
    if not HEADING_OR.search(text):
        return None
    keys = {
        _header_key(part) or _alias_key(part) or HEADING_PARTS.get(part)
        for part in HEADING_OR.split(text)
    }
    return keys.pop() if len(keys) == 1 else None


def _is_note(row: list[Any]) -> bool:
    """A template's note row (see SAMPLE_MARKS): a sample household, or hints only."""
    cells = [text for text in map(_text, row) if text]
    if any(text.lower() in SAMPLE_MARKS for text in cells):
        return True
    return bool(cells) and all(HINT.fullmatch(text) for text in cells)


def _names_a_column(name: Any) -> bool:
    return any(key(name) is not None for key in (_header_key, _alias_key, _joined_key))


SNIFF = 1 << 16
NOT_TEXT = "The CSV file is neither UTF-8 nor GB18030 text."
UTF16 = (
    'The file is UTF-16 text (Excel\'s "Unicode Text"); save it as "CSV UTF-8" (or CSV) and '
    "import that, or import the XLSX workbook itself."
)
# Excel shows a phone stored as a number in scientific notation (1.38E+10) once the column is
# too narrow or "General", and a CSV saved from it keeps only what it shows.
SHORTENED_NUMBER = re.compile(r"\d+(?:\.\d*)?[eE][+-]?\d+")
# A landline with its area code (010, 02x, 0xxx) is 10-12 digits, 0 first. Excel reads a CSV's
# phone column as numbers and saves 01065123456 as 1065123456 (a phone typed as a number in a
# workbook alike): 9-11 digits, 1-9 first, that are not a mobile (11 digits, 1 first) nor a
# 400/800 number (10 digits) are such a landline. Short and local numbers (95588, 65123456) and
# a number written with a space, dash, + or 00 are as typed.
# Only digits that some landline could be are taken for one: the area code is 10 or 2x
# (followed by a 7-8 digit local number) or three digits 3-9 first (followed by 6-8), and a
# local number never begins with 0 or 1 (the trunk and the service/mobile prefixes). So an
# international number written without its + is stored as typed where no landline could be
# (France's 33612345678: 336 then 1…; South Africa's 27821234567: 9 digits after 27), and
# refused, saying how to write it, where one could (Hong Kong's 85291234567 is also Zunyi's
# 0852 9123 4567 without its 0: which it is, the digits do not tell).
LOST_ZERO = re.compile(
    r"(?!1\d{10}\Z|[48]00\d{7}\Z)(?:(?:10|2\d)[2-9]\d{6,7}|[3-9]\d\d[2-9]\d{5,7})"
)
DIGITS = re.compile(r"[0-9]+")
# What Excel shows, and saves in a CSV, of an address typed in a "General" column that it read
# as a date or a number: a room 1-2 or 1/2 is 2 January (1月2日 in Chinese Excel, 2-Jan in
# English), 1-32 January 1932 (Jan-32), 1-2-3 2001/2/3, 2023-1 2023年1月; a room of 12 digits
# 1.23457E+11. No register writes an address so, and stored it was another flat: an update
# import of an exported CSV saved in Excel registered each such flat again beside itself.
_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# Only the forms Excel writes: "12/3/2001" (a building, unit and room written as one) is
# refused by no rule here, nor "1001/2/3" (Excel dates no year before 1900).
SPREADSHEET_MADE = re.compile(
    r"\d{1,2}月\d{1,2}日|(?:19|20)\d\d年\d{1,2}月(?:\d{1,2}日)?"
    rf"|\d{{1,2}}-{_MONTH}(?:-\d{{2,4}})?|{_MONTH}-\d{{2}}"
    r"|(?:19|20)\d\d/\d{1,2}/\d{1,2}"
    r"|\d(?:\.\d+)?E[+-]\d+"
)
# A workbook's date cell as the reader gives it (a phone column Excel read as dates: a phone
# typed 2024-1-2 or 1/2, or a column of dates pasted over the phones).
WORKBOOK_DATE = re.compile(r"(?:19|20)\d\d-\d\d-\d\d(?: \d\d:\d\d:\d\d)?")
# What no phone holds and a phone pasted from a chat often does: 138<U+200B>1234 5678 is dialled
# as typed by nobody and found by no search of its digits.
INVISIBLE_IN_PHONE = (
    "holds an invisible character (U+200B zero-width space, U+2060 word joiner or U+FEFF "
    "byte order mark, pasted with it): type it again"
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
    # Bytes of characters beyond ASCII read as UTF-8 so far (a BOM counts as many): past
    # UTF8_SURE, a byte that is not UTF-8 is a fault in UTF-8 text, not a sign of GB18030.
    multibyte = UTF8_SURE if stream.read(3) == codecs.BOM_UTF8 else 0
    stream.seek(0)
    read = lines = 0  # bytes and line breaks before the block
    while block := stream.read(SNIFF):
        if b"\x00" in block:
            raise FileProblem("The file is binary, not CSV text.")
        if utf8:
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                utf8 = False
                good = block[: max(exc.start, 0)]
                if multibyte + len(good.translate(None, ASCII)) >= UTF8_SURE:
                    _not_utf8(lines + good.count(b"\n") + 1)
            else:
                if multibyte < UTF8_SURE:
                    multibyte += len(block.translate(None, ASCII))
        read += len(block)
        lines += block.count(b"\n")
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
            if multibyte >= UTF8_SURE:
                _not_utf8(lines + 1)
    return "utf-8-sig" if utf8 else "gb18030"


# GBK's bytes for a few characters may read as UTF-8 for a moment (E4 B8 B0 is a character in
# either); dozens never do.
UTF8_SURE = 60
ASCII = bytes(range(128))


def _not_utf8(line: int) -> None:
    raise FileProblem(
        f"The CSV file is UTF-8 text, but line {line} holds bytes that are not UTF-8 (a "
        "character cut in half by a program that cut the text at a byte limit, or text of "
        "another encoding pasted in). Mend that line, or open the file and save it again as "
        "CSV UTF-8."
    )


def _delimiter(head: bytes) -> str:
    """A tab for text saved by Excel or WPS as 文本文件(制表符分隔) (tab-separated, in GBK): its
    first line with a tab or a comma has tabs and no comma. Else a comma: a CSV's."""
    for line in head.splitlines():
        if b"," in line:
            return ","
        if b"\t" in line:
            return "\t"
    return ","


def _cells_csv(stream: BinaryIO, encoding: str) -> Iterator[list[Any]]:
    stream.seek(0)
    # The header decides the columns; one line of a million fields is refused before parsing.
    head = stream.read(SNIFF)
    delimiter = _delimiter(head)
    first_line = head[: head.find(b"\n")] if b"\n" in head else head
    if first_line.count(delimiter.encode()) >= MAX_COLUMNS:
        raise FileProblem(f"The header has more than {MAX_COLUMNS} columns.")
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    done = 0  # records read: rows as the reader numbers them
    try:
        for row in csv.reader(text, delimiter=delimiter):
            done += 1
            # A cell our export quoted as text ("'-1", the floor -1) reads as it was written.
            yield [csv_unquoted(v) if v.startswith("'") else v for v in row]
    except csv.Error as exc:
        if "field limit" not in str(exc):
            raise FileProblem(f"The CSV file is malformed at row {done + 1}: {exc}") from exc
        # A cell opening a quote that nothing closes takes in every line after it.
        raise FileProblem(
            f"Row {done + 1} of the CSV file has a cell longer than "
            f'{csv.field_size_limit():,} characters: a cell that opens a quote (") and never '
            "closes it takes in the lines after it. Close the quote, or remove it."
        ) from exc
    finally:
        text.detach()  # the caller owns the file


def check_zip(stream: BinaryIO) -> None:
    """Refuse a zip whose parts would inflate beyond the limits (a zip bomb), unopened."""
    import zipfile

    try:
        with zipfile.ZipFile(stream) as archive:
            parts = archive.infolist()
            if len(parts) > MAX_XLSX_PARTS:
                raise FileProblem(f"The workbook has more than {MAX_XLSX_PARTS} parts.")
            strings = _shared_strings_parts(archive)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileProblem):
            raise
        raise FileProblem("The file is not a readable XLSX workbook.") from exc
    total = 0
    for part in parts:
        total += part.file_size
        name = part.filename.lower()
        if (name.endswith("sharedstrings.xml") or name in strings) and (
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


def _shared_strings_parts(archive: Any) -> frozenset[str]:
    """The parts (lower-cased names in the zip) [Content_Types].xml declares as shared-strings
    tables: openpyxl reads the first so declared, whatever its name. None without the part
    (load_workbook then finds the workbook unreadable)."""
    import zipfile
    from xml.etree.ElementTree import ParseError, iterparse

    try:
        info = archive.getinfo("[Content_Types].xml")
    except KeyError:
        return frozenset()
    if info.file_size > MAX_XLSX_CONTENT_TYPES:
        raise FileProblem(
            f"The workbook's list of content types inflates to {info.file_size:,} bytes; the "
            f"limit is {MAX_XLSX_CONTENT_TYPES:,}."
        )
    names: set[str] = set()
    try:
        with archive.open(info) as part:
            for _, element in iterparse(part):
                if element.tag.rpartition("}")[2] == "Override" and (
                    element.get("ContentType", "").endswith(SHARED_STRINGS_CONTENT_TYPE)
                ):
                    part_name = element.get("PartName", "").lower()
                    # openpyxl opens the name without its first character (the leading /).
                    names.update((part_name[1:], part_name.lstrip("/")))
                element.clear()
    except (ParseError, zipfile.BadZipFile, EOFError) as exc:
        raise FileProblem(
            "The file is not a readable XLSX workbook (its list of content types is damaged)."
        ) from exc
    return frozenset(names)


# Merged cells and formulas, read from the sheet's XML before openpyxl streams its rows: a
# read-only sheet has no `merged_cells`, and `data_only` reads a formula nobody computed as empty.
MAX_MERGED_RANGES = 100_000  # ~10 MB of ranges; a register merging every floor of 50,000 rows
MAX_UNCOMPUTED_FORMULAS = 10_000  # cells; the import stops at MAX_ERRORS rows in any case
SCAN_BLOCK = 1 << 18  # bytes: two blocks are held at once
SCAN_KEEP = 512  # bytes carried between blocks: longer than any element the scan matches
# Markup cannot stand in text or attribute values (`<` is escaped there), so these match
# elements only, whatever their namespace prefix.
MERGE_CELL = re.compile(
    rb"""<(?:[\w.-]+:)?mergeCell\s[^>]{0,300}?\bref\s*=\s*["']([^"']{1,40})["']"""
)
# A formula (`</f>`, or a shared formula's `<f .../>`) followed by no value: an empty `<v>` or
# the cell's end. Only a sheet where this matches is parsed (expat) to name the cells.
UNCACHED = re.compile(
    rb"(?:</(?:[\w.-]+:)?f>|<(?:[\w.-]+:)?f\b[^>]{0,300}?/>)\s{0,100}"
    rb"(?:<(?:[\w.-]+:)?v\s{0,10}/>|<(?:[\w.-]+:)?v>\s{0,100}</(?:[\w.-]+:)?v>|</(?:[\w.-]+:)?c>)"
)
# Excel's last row and column (XFD). openpyxl's read-only reader yields an empty row for each
# row number a sheet skips, and makes each row as wide as its last cell's column: a 5 KB sheet
# declaring row 999,999,999 was read for half an hour, a cell in column ZZZZZZ made a row of
# 321 million cells. Numbers of 7 digits and columns of 3 letters are rare (row 1,000,000,
# column AAA); only those are matched, then compared.
MAX_SHEET_ROW = 1_048_576
MAX_SHEET_COLUMN = 16_384
# A row's or a cell's `r`, the element not matched: `<c\s[^>]*?\br=` costs ~0.4 s more a
# 50,000-row register. Only <row> and <c> have an `r` in a sheet; another attribute ending in r,
# or a cell's inline text, holding such a value would be refused too (none is Excel's).
FAR_REF = re.compile(rb"""r\s*=\s*["']\s*([A-Za-z]{3,}\d+|[A-Za-z]*\d{7,})\s*["']""")
SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
UNCOMPUTED = (
    "{cell} holds a formula with no computed value; open and save the file in Excel or WPS "
    "(which compute it), or paste the values"
)


class Uncomputed:
    """A formula cell without a cached value: read as empty it would be a silent blank."""

    __slots__ = ("cell",)

    def __init__(self, cell: str) -> None:
        self.cell = cell

    def __str__(self) -> str:
        return ""  # as blank as it reads; the reader names it where a column needs it

    @property
    def detail(self) -> str:
        return UNCOMPUTED.format(cell=self.cell)


@dataclass
class SheetLayout:
    """What the rows do not say: vertical merges (first row, last row, 0-based column) in
    order of first row, and the formula cells with no cached value (row << 16 | 0-based
    column, in order: 8 bytes a cell)."""

    merges: list[tuple[int, int, int]] = field(default_factory=list)
    uncomputed: array = field(default_factory=lambda: array("Q"))


@dataclass
class HeaderEnd:
    """The row the header ends on, set by the reader once it has found it. Until then no
    merge fills a row (the title and header rows are read as they stand); after it, a range
    anchored at or above it fills nothing: a title or a header is no value. `serial`: the
    0-based columns of row numbers (序号), which alone do not make a row a household's."""

    row: int | None = None
    serial: frozenset[int] = frozenset()


def _scan_merges(part: BinaryIO) -> tuple[list[tuple[int, int, int]], bool]:
    """The sheet's vertical merges, and whether it may hold a formula with no cached value,
    in one pass over its bytes: no XML parse (~0.1 s for a 50,000-row sheet, expat ~1.5 s).

    A range spanning several columns fills its first column only: its value is written once
    per row, in the column where it stands (a title or header merged across columns names
    one column). Which ranges fill rows the reader decides once it has found the header
    (`HeaderEnd`).

    A row or a cell beyond Excel's last (`MAX_SHEET_ROW`, `MAX_SHEET_COLUMN`) is refused here,
    before openpyxl reads up to it.
    """
    from openpyxl.utils.cell import range_boundaries

    merges: list[tuple[int, int, int]] = []
    declared = 0
    uncached = False
    carry = b""
    while True:
        block = part.read(SCAN_BLOCK)
        buffer = carry + block
        cut = len(buffer) - SCAN_KEEP if block else len(buffer)
        done = 0
        # bytes.find first: the regexes cost ~0.2 s per 25 MB where they have nothing to find.
        for match in MERGE_CELL.finditer(buffer) if b"mergeCell" in buffer else ():
            if match.start() >= cut:
                break
            done = match.end()
            declared += 1
            if declared > MAX_MERGED_RANGES:
                raise FileProblem(
                    f"The sheet declares more than {MAX_MERGED_RANGES:,} merged ranges; unmerge "
                    "the cells (Excel: select all, Merge & Center off) and fill in the values."
                )
            ref = match.group(1).decode("ascii", "replace")
            try:
                min_col, min_row, _, max_row = range_boundaries(ref)
            except (TypeError, ValueError) as exc:
                raise FileProblem(
                    f"The sheet declares a merged range {ref!r} that is not a range of cells."
                ) from exc
            if None not in (min_col, min_row, max_row) and max_row > min_row:
                merges.append((min_row, max_row, min_col - 1))
        if not uncached and (b"<f" in buffer or b":f" in buffer):
            uncached = UNCACHED.search(buffer) is not None
        _refuse_far_cells(buffer)
        if not block:
            break
        carry = buffer[max(cut, done) :]
    merges.sort()
    return merges, uncached


def _refuse_far_cells(buffer: bytes) -> None:
    """Refuse a row numbered, or a cell placed, beyond Excel's last (XFD1048576)."""
    from openpyxl.utils.cell import column_index_from_string

    for match in FAR_REF.finditer(buffer):
        ref = match.group(1).decode("ascii")
        letters = ref.rstrip("0123456789")
        row = int(ref[len(letters) :])
        if not letters:
            if row > MAX_SHEET_ROW:
                raise FileProblem(
                    f"The sheet declares row {row}, beyond Excel's last row ({MAX_SHEET_ROW:,});"
                    " the file was not written by Excel or WPS as it stands. Open and save it "
                    "in Excel or WPS, or save the register as CSV."
                )
            continue
        try:
            column = column_index_from_string(letters.upper())
        except ValueError:  # more than 3 letters: beyond XFD all the same
            column = MAX_SHEET_COLUMN + 1
        if column > MAX_SHEET_COLUMN or row > MAX_SHEET_ROW:
            raise FileProblem(
                f"The sheet declares a cell {ref}, beyond Excel's last cell (XFD{MAX_SHEET_ROW}: "
                f"column XFD, row {MAX_SHEET_ROW:,}); the file was not written by Excel or WPS "
                "as it stands. Open and save it in Excel or WPS, or save the register as CSV."
            )


def _scan_formulas(part: BinaryIO) -> array:
    """The formula cells with no cached value (`<f>` and no or an empty `<v>`), by row.

    A formula whose cached result is an empty string is written `t="str"` with an empty
    `<v>`: computed, and read as empty as it shows.
    """
    from xml.parsers import expat

    from openpyxl.utils.cell import coordinate_to_tuple, get_column_letter

    found = array("Q")  # row << 16 | 0-based column
    state = {"row": 0, "col": 0, "t": None, "f": False, "v": False, "in_v": False}
    count = 0
    cell, formula, value = (f"{SHEET_NS} {name}" for name in ("c", "f", "v"))
    row_tag = f"{SHEET_NS} row"

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == cell:
            ref = attrs.get("r")
            if ref:
                state["row"], state["col"] = coordinate_to_tuple(ref)
            else:
                state["col"] += 1
            state.update(t=attrs.get("t"), f=False, v=False)
        elif name == formula:
            state["f"] = True
        elif name == value:
            state["in_v"] = True
        elif name == row_tag:
            state["row"] = int(attrs["r"]) if attrs.get("r") else state["row"] + 1
            state["col"] = 0

    def end(name: str) -> None:
        nonlocal count
        if name == value:
            state["in_v"] = False
        elif name == cell and state["f"] and not state["v"] and state["t"] != "str":
            count += 1
            if count > MAX_UNCOMPUTED_FORMULAS:
                first = f"{get_column_letter((found[0] & 0xFFFF) + 1)}{found[0] >> 16}"
                raise FileProblem(
                    f"The sheet holds more than {MAX_UNCOMPUTED_FORMULAS:,} formulas with no "
                    f"computed value (the first in {first}): open and save the file in Excel "
                    "or WPS (which compute them), or paste the values."
                )
            found.append(state["row"] << 16 | (state["col"] - 1) & 0xFFFF)

    def text(data: str) -> None:
        if state["in_v"] and data.strip():
            state["v"] = True

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.buffer_text = True
    while block := part.read(SCAN_BLOCK):
        parser.Parse(block, False)
    parser.Parse(b"", True)
    return array("Q", sorted(found))


def _sheet_layout(archive: Any, path: str) -> SheetLayout:
    """The sheet part read once more before its rows, within the zip's declared sizes (which
    check_zip has bounded; zipfile stops at them and checks the CRC)."""
    with archive.open(path) as part:
        merges, uncached = _scan_merges(part)
    layout = SheetLayout(merges=merges)
    if uncached:  # most registers hold none: they pay for the byte scan only
        with archive.open(path) as part:
            layout.uncomputed = _scan_formulas(part)
    return layout


def _laid_out(
    rows: Iterator[tuple[Any, ...]], layout: SheetLayout, header: HeaderEnd
) -> Iterator[list[Any]]:
    """Rows with each vertical merge's value in every row it spans below the header, and
    formulas with no cached value marked; rows are numbered from 1, as openpyxl yields them
    from the top."""
    from openpyxl.utils.cell import get_column_letter

    uncomputed, pending = layout.uncomputed, 0
    merges = iter(layout.merges)
    upcoming = next(merges, None)
    fills: dict[int, tuple[Any, int, int]] = {}  # column -> (value, first row, last row)
    for number, values in enumerate(rows, start=1):
        row = list(values)
        while pending < len(uncomputed) and uncomputed[pending] >> 16 <= number:
            cell = uncomputed[pending]
            pending += 1
            col = cell & 0xFFFF
            if cell >> 16 < number:
                continue
            if col >= len(row):
                row.extend([None] * (col + 1 - len(row)))
            if row[col] is None:
                row[col] = Uncomputed(f"{get_column_letter(col + 1)}{number}")
        if fills:
            # A blank row stays blank: a merge drawn past the last household adds no row (nor
            # does one drawn over the template's numbered empty rows).
            serial = header.serial
            blank = all(i in serial or _text(v) == "" for i, v in enumerate(row))
            for col, (value, first, last) in list(fills.items()):
                if last < number or (header.row is not None and first <= header.row):
                    del fills[col]
                elif not blank and header.row is not None:
                    if col >= len(row):
                        row.extend([None] * (col + 1 - len(row)))
                    row[col] = value
        while upcoming is not None and upcoming[0] <= number:
            first, last, col = upcoming
            if first == number and col < len(row) and row[col] is not None:
                fills[col] = (row[col], first, last)
            upcoming = next(merges, None)
        yield row


def _names_the_required(rows: list[list[Any]]) -> bool:
    """Whether a row, or a row and the one under it (a header of two rows), names every
    column the import requires: a register's header, not a sheet of notes or of figures."""
    named = [
        {key(v) for v in row for key in (_header_key, _alias_key, _joined_key)} for row in rows
    ]
    return any(
        set(REQUIRED) <= (names | (named[i + 1] if i + 1 < len(named) else set()))
        for i, names in enumerate(named)
    )


def _register_sheet(workbook: Any) -> Any:
    """The sheet the register is on: the visible sheet whose first rows hold its header (a
    template's sheet of instructions, 填表说明, or a hidden one of drop-down lists may come
    first). A register on several sheets (a sheet per building) is refused: reading one of them
    imported part of the register without a word. No sheet with a header: the first, whose
    header the reader then finds missing."""
    if len(workbook.worksheets) == 1:
        return workbook.worksheets[0]
    registers = []
    for sheet in workbook.worksheets:
        if sheet.sheet_state != "visible":
            continue
        # openpyxl parses a sheet of fewer rows to its end, merged ranges and all: the scan
        # bounds them first, as before the rows are read (`_sheet_layout`).
        with workbook._archive.open(sheet._worksheet_path) as part:
            _scan_merges(part)
        sheet.reset_dimensions()
        head = sheet.iter_rows(
            max_row=HEADER_SEARCH_ROWS + 1, max_col=MAX_COLUMNS, values_only=True
        )
        if _names_the_required([[xlsx_unescaped(v) for v in row] for row in head]):
            registers.append(sheet)
    if len(registers) > 1:
        names = ", ".join(sheet.title for sheet in registers)
        raise FileProblem(
            f"The workbook holds a register on {len(registers)} sheets ({names}); one sheet is "
            "imported at a time. Put the households on one sheet, or save each sheet as a "
            "workbook of its own and import each."
        )
    return registers[0] if registers else workbook.worksheets[0]


def _cells_xlsx(stream: BinaryIO, header: HeaderEnd) -> Iterator[list[Any]]:
    import zipfile
    from xml.etree.ElementTree import ParseError
    from xml.parsers.expat import ExpatError

    from openpyxl import load_workbook

    # What a damaged part raises from openpyxl or the zip: ParseError for a part that is not
    # XML, TypeError for a number that is not one (numFmtId="abc", sheetId="abc"), KeyError
    # (a LookupError) for a part named but missing, BadZipFile or EOFError for a cut zip.
    damaged = (
        ParseError,
        ExpatError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        LookupError,
        TypeError,
        ValueError,
    )
    check_zip(stream)
    stream.seek(0)
    try:
        # Opening parses the workbook's parts (content types, workbook, its relationships,
        # styles, document properties) before any row.
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except damaged as exc:
        raise FileProblem("The file is not a readable XLSX workbook (a damaged part).") from exc
    try:
        sheet = _register_sheet(workbook)
        # A read-only sheet stops at the size its <dimension> declares, and some exporters
        # declare A1, or the size before rows were added: rows past it were dropped unread.
        sheet.reset_dimensions()
        # openpyxl 3.1 keeps a read-only sheet's zip and part path on these two attributes.
        layout = _sheet_layout(workbook._archive, sheet._worksheet_path)
        # A cell quoted as the CSV's are ('-1: a CSV saved by Excel as a workbook keeps the
        # quote Excel showed) reads as it was written, as in a CSV.
        rows = (
            [_unquoted(xlsx_unescaped(v)) for v in row] for row in sheet.iter_rows(values_only=True)
        )
        yield from _laid_out(rows, layout, header)
    except damaged as exc:
        if isinstance(exc, FileProblem):
            raise
        # A damaged sheet (cut XML, a part whose CRC or size does not match, no sheet at all):
        # openpyxl reads it as the rows are asked for, so the damage shows here, not on opening.
        raise FileProblem("The file is not a readable XLSX workbook (a damaged sheet).") from exc
    finally:
        workbook.close()


def _unquoted(value: Any) -> Any:
    return csv_unquoted(value) if isinstance(value, str) and value.startswith("'") else value


def _blank(stream: BinaryIO) -> bool:
    stream.seek(0)
    while block := stream.read(SNIFF):
        if block.strip():
            return False
    return True


def detect_format(data: bytes, filename: str | None = None, content_type: str | None = None) -> str:
    if data.startswith(XLSX_MAGIC):
        return "xlsx"
    if data.startswith(OLE2_MAGIC):
        raise FileProblem(OLE2)
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")) or "spreadsheetml" in (content_type or ""):
        raise FileProblem("The file is named or labelled XLSX but is not a workbook.")
    return "csv"


# A whole number a program wrote as a decimal (a database or pandas export: 502.0,
# 13800000000.0): read as the workbook's cell would be, 502.
WHOLE_DECIMAL = re.compile(r"(\d+)\.0+")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = half_width(str(value)).strip()
    whole = WHOLE_DECIMAL.fullmatch(text)
    return whole.group(1) if whole else text


def _number(value: Any) -> float:
    text = _text(value)
    # float() reads what no register means: a digit separator (1_16.4 as 116.4) or an exponent
    # (members 1e2 as 100). A workbook's number cell is a float already (1e-05 as its text).
    if isinstance(value, str) and ("_" in text or "e" in text.lower()):
        raise ValueError("not a decimal number")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


# A row's problem quotes its value up to this many characters: 100 problems quoting cells of
# 131,072 characters (the CSV's field limit) made an answer of ~13 MB.
QUOTED_CHARACTERS = 100


def _quoted(value: Any) -> str:
    """A refused value as a problem quotes it: repr, cut with an ellipsis past QUOTED_CHARACTERS."""
    if isinstance(value, str) and len(value) > QUOTED_CHARACTERS:
        value = value[:QUOTED_CHARACTERS] + "…"
    return repr(value)


def _not_one_line(row: int, column: str) -> RowError:
    """A cell one-line text may not hold (`names.has_control_characters`)."""
    return RowError(row, column, f"{column} holds a control character or a bidirectional override")


def _lost_characters(values: dict[str, Any], row: int, errors: list[RowError]) -> None:
    """Chinese Excel saves "CSV (逗号分隔)" in GBK, which lacks many rare characters (生僻字) and
    holds a "?" for each: in a GBK file, a "?" in an address part is such a loss (a "?" typed
    into an address is unheard of), and would register a building nobody can find."""
    for column in ADDRESS_COLUMNS:
        if "?" in _text(values.get(column)):
            errors.append(
                RowError(
                    row,
                    column,
                    f"{column} holds '?' where the file lost a character: Excel saves 'CSV "
                    "(逗号分隔)' in GBK, which cannot hold rare characters (生僻字) and writes "
                    "'?' for them. Save the register as 'CSV UTF-8 (逗号分隔)' or as an Excel "
                    "workbook (.xlsx), and import it again",
                )
            )


def _check_row(values: dict[str, Any], row: int, errors: list[RowError]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    before = len(errors)
    for column in REQUIRED:
        # A building of invisible characters only (a stray BOM, U+200B) is a blank one.
        if address_part(_text(values.get(column))) == "":
            errors.append(RowError(row, column, f"{column} is required"))
    for column in ADDRESS_COLUMNS:
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
        # One spelling stored (3 号楼 is 3号楼), as a form's address is (`address_part`).
        out[column] = address_part(_text(value))
    for column, limit in (("building", 50), ("unit", 20), ("floor", 10), ("room", 20)):
        if len(out[column]) > limit:
            errors.append(RowError(row, column, f"{column} is longer than {limit} characters"))
        elif has_control_characters(out[column]):
            errors.append(_not_one_line(row, column))
    for column in ("lon", "lat"):
        if _text(values.get(column)):
            try:
                out[column] = _number(values.get(column))
            except ValueError:
                errors.append(
                    RowError(row, column, f"{column} {_quoted(values.get(column))} is not a number")
                )
    # Left blank (or out of the file): the defaults below for a household registered by the
    # row; a registered household's row keeps what is stored (`households._keep_blanks`).
    facts = ("kind", "occupancy", "members")
    out["blank"] = frozenset(c for c in facts if not _text(values.get(c)))
    kind = _text(values.get("kind")) or "residence"
    out["kind"] = KIND_WORDS.get(kind, kind.lower())
    if out["kind"] not in HOUSEHOLD_KINDS:
        errors.append(
            RowError(
                row, "kind", f"kind {_quoted(kind)} is not one of {', '.join(HOUSEHOLD_KINDS)}"
            )
        )
    occupancy = _text(values.get("occupancy")) or "owner"
    out["occupancy"] = OCCUPANCY_WORDS.get(occupancy, occupancy.lower())
    if out["occupancy"] not in OCCUPANCIES:
        errors.append(
            RowError(
                row,
                "occupancy",
                f"occupancy {_quoted(occupancy)} is not one of {', '.join(OCCUPANCIES)}",
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
                RowError(row, "members", f"members {_quoted(members)} is not a whole number 0-100")
            )
    tags = []
    for raw in _text(values.get("tags")).translate(TAG_SEPARATORS).split(";"):
        tag = raw.strip()
        if not tag or tag in NONE_WORDS:
            continue
        tag = TAG_WORDS.get(tag, tag.lower())
        if tag not in CARE_TAGS:
            errors.append(RowError(row, "tags", f"unknown care tag {_quoted(raw.strip())}"))
        elif tag not in tags:
            tags.append(tag)
    out["tags"] = tags
    phone = phone_text(values.get("phone"))
    # A phone Excel shortened (1.38E+10) is refused where it would be stored (`phone_problem`):
    # in an update, the stored phone it shortens is that phone.
    if len(phone) > 32:
        errors.append(RowError(row, "phone", "phone is longer than 32 characters"))
    elif has_control_characters(phone):
        errors.append(_not_one_line(row, "phone"))
    elif any(c in INVISIBLE_IN_NAMES for c in phone):
        errors.append(RowError(row, "phone", f"phone {INVISIBLE_IN_PHONE}"))
    out["phone"] = phone or None
    return out if len(errors) == before else None


def phone_text(value: Any) -> str:
    """A phone cell, or a form's phone, as the register stores it: trimmed, half-width, a whole
    number a program wrote as a decimal without its .0, a word saying none (无, -) empty. The
    form and the import store one spelling, so the exported register imported again finds the
    phone it wrote."""
    phone = _text(value)
    return "" if phone in NONE_WORDS else phone


def spreadsheet_made(row: int, values: dict[str, Any]) -> RowError | None:
    """A row's address part that reads as a date or number Excel made of what was typed
    (`SPREADSHEET_MADE`): refused where the row would register a flat so named; a row of a
    household registered so (before this check) finds it, and changes nothing."""
    for column in ("building", "unit", "floor", "room"):
        if SPREADSHEET_MADE.fullmatch(values[column]):
            return RowError(
                row,
                column,
                f"{column} {values[column]!r} is a date or number a spreadsheet made of what was "
                "typed (Excel shows a room 1-2 as 1月2日): format the column as text and type it "
                "again (or import the XLSX export, which keeps it)",
            )
    return None


def phone_problem(row: int, phone: str | None) -> RowError | None:
    """Why a row's phone may not be stored as it reads: a number Excel shortened (1.38E+10), or
    a landline that lost its leading 0 (`lost_zero`). Asked of the rows that register a
    household or change its phone; a row whose phone is the stored one (`same_phone`) keeps
    the stored phone."""
    if phone and SHORTENED_NUMBER.fullmatch(phone):
        return RowError(
            row,
            "phone",
            f"phone {phone!r} is a number Excel shortened, its digits lost: format the column "
            "as text and type the phone again (or import the XLSX, which keeps them)",
        )
    if phone and (WORKBOOK_DATE.fullmatch(phone) or SPREADSHEET_MADE.fullmatch(phone)):
        return RowError(
            row,
            "phone",
            f"phone {phone!r} is a date a spreadsheet made of what was typed: format the column "
            "as text and type the phone again",
        )
    return lost_zero_problem(row, phone) if phone and lost_zero(phone) else None


def lost_zero(phone: str | None) -> bool:
    """A phone that looks like a landline whose leading 0 a spreadsheet dropped (LOST_ZERO)."""
    return bool(phone) and LOST_ZERO.fullmatch(phone) is not None


def lost_zero_problem(row: int, phone: str) -> RowError:
    """A row's phone that `lost_zero`: refused, for which 0 was lost is not the import's guess."""
    return RowError(
        row,
        "phone",
        f"phone {phone!r} looks like a landline whose leading 0 a spreadsheet dropped: format "
        f"the column as text and write it with its area code, e.g. '0{phone}' (or import the "
        "XLSX, which keeps it); a number from abroad, write with + and its country code, e.g. "
        f"'+{phone}'; any other, with its spaces or +86",
    )


def same_phone(cell: str | None, stored: str | None) -> bool:
    """Whether a row's phone is the stored one: as written, or all digits and the stored phone
    without its leading 0s (the register's own landline, a spreadsheet having dropped them), or
    the number Excel shows a stored phone of digits as in a narrow column (13812345678 as
    1.38E+10: the register's own mobile, its digits lost in the file, not in the register)."""
    if (cell or None) == (stored or None):
        return True
    if not (cell and stored and DIGITS.fullmatch(stored)):
        return False
    if DIGITS.fullmatch(cell):
        return stored.lstrip("0") == cell
    return SHORTENED_NUMBER.fullmatch(cell) is not None and _shortens(cell, int(stored))


def _shortens(cell: str, number: int) -> bool:
    """Whether Excel shows `number` as `cell` (1.38E+10): rounded half up to the digits the
    cell shows."""
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    mantissa = cell.upper().split("E")[0]
    shown = sum(c.isdigit() for c in mantissa)
    try:
        value = Decimal(cell)
    except InvalidOperation:
        return False
    if number <= 0 or shown == 0:
        return False
    drop = len(str(number)) - shown
    rounded = Decimal(number).scaleb(-drop).quantize(Decimal(1), ROUND_HALF_UP).scaleb(drop)
    return rounded == value


class HouseholdReader:
    """Checked rows of a register file, read as a stream (a 900,000-row file stays on disk).

    Opening it checks the file as a whole (empty, format, headers) and raises FileProblem.
    `chunks(n)` then yields lists of (row number, checked values) while `errors` collects the
    rows' problems; reading stops once MAX_ERRORS problems are found. Row numbers are
    spreadsheet rows (a CSV's records, from 1), whatever stands above the header.

    The header is the first row, within HEADER_SEARCH_ROWS, that names a column the import
    reads; the rows above it (a title, 填报单位 and 日期 lines) are skipped. When the row under
    it names columns too, the two are one header (a heading over several columns above theirs,
    the others' headings merged down or written in either row): a column is named by the lower
    row, or where that is blank, by the upper one. `header_row` is the header's last row;
    `unread` the headings of the columns the import does not read (序号, 备注 …).

    A template's notes under the header, before the first household (hints such as 必填 or
    例：7号楼, a sample household marked 示例: `_is_note`), are skipped and listed in
    `note_rows`.
    """

    def __init__(
        self, stream: BinaryIO, filename: str | None = None, content_type: str | None = None
    ) -> None:
        self.stream = stream
        self.errors: list[RowError] = []
        self.rows = 0
        self.note_rows: list[int] = []
        stream.seek(0, io.SEEK_END)
        self.size = stream.tell()
        stream.seek(0)
        head = stream.read(len(OLE2_MAGIC))
        if not head.startswith(XLSX_MAGIC) and _blank(stream):
            raise FileProblem("The file is empty.")
        fmt = detect_format(head, filename, content_type)
        self.format = fmt
        self._end = HeaderEnd()
        # A CSV's text encoding (UTF-8 or GB18030), None for a workbook.
        self.encoding = None if fmt == "xlsx" else _csv_encoding(stream)
        self._cells = (
            _cells_xlsx(stream, self._end)
            if self.encoding is None
            else _cells_csv(stream, self.encoding)
        )
        # The first row under the header, when it was read to see whether it is a second
        # header row and is not: it is the first row of households.
        self._first: list[Any] | None = None
        try:
            self._columns()
        except BaseException:
            self._cells.close()  # the workbook or the text wrapper, now, not when collected
            raise

    def _columns(self) -> None:
        """`keys` (a column's name in the import, or None) and `unread` from the header."""
        try:
            header = self._header()
        except csv.Error as exc:
            raise FileProblem(f"The CSV file is malformed: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise FileProblem(NOT_TEXT) from exc
        self.keys = [_header_key(name) for name in header]
        # A column's own name first, then its other usual names, then several names joined
        # (门牌号/室): a heading is read as a column no heading of a rank above names, so
        # no file that imported before is refused for naming a column twice.
        for other in (_alias_key, _joined_key):
            named_above = set(self.keys)
            for i, name in enumerate(header):
                key = None if self.keys[i] else other(name)
                if key is not None and key not in named_above:
                    self.keys[i] = key
        named = zip(header, self.keys, strict=True)
        self.unread = [_text(name) for name, key in named if not key and _text(name)]
        self._end.serial = frozenset(
            i
            for i, (name, key) in enumerate(zip(header, self.keys, strict=True))
            if key is None and _heading(name).lower() in SERIAL_HEADINGS
        )
        for key in COLUMNS:
            where = [f"{i + 1} ({_text(header[i])})" for i, k in enumerate(self.keys) if k == key]
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
                + " (or 楼栋, 单元, 楼层, 房号, 经度, 纬度, 类型, 居住性质, 人数, 标签, 电话)"
                + f", in one of the first {HEADER_SEARCH_ROWS} rows."
            )

    @property
    def header_row(self) -> int:
        """The header's last row (the merges below it fill, `HeaderEnd`)."""
        return self._end.row or 1

    def _row(self, number: int) -> list[Any] | None:
        row = next(self._cells, None)
        if row is not None and len(row) > MAX_COLUMNS:
            raise FileProblem(f"Row {number} has more than {MAX_COLUMNS} columns.")
        return row

    def _header(self) -> list[Any]:
        """The header's cells (two header rows made one), its last row noted in `_end`."""
        first_seen: list[Any] | None = None  # the first row with a value, if no header is found
        for number in range(1, HEADER_SEARCH_ROWS + 1):
            row = self._row(number)
            if row is None:
                break
            if first_seen is None and any(_text(v) for v in row):
                first_seen = row
            if not any(_names_a_column(v) for v in row):
                continue  # a title, a 填报单位 line, a blank line
            below = self._row(number + 1)
            if below is None or not any(_names_a_column(v) for v in below):
                self._first = below
                self._end.row = number
                return row
            self._end.row = number + 1
            return [low if _text(low) else up for up, low in zip_longest(row, below)]
        if first_seen is None:
            raise FileProblem("The file has no header row.")
        self._end.row = 1
        return first_seen

    def position(self) -> int:
        """Bytes read so far (for a progress bar; an XLSX is read whole by openpyxl's zip)."""
        try:
            return min(self.stream.tell(), self.size)
        except (OSError, ValueError):
            return 0

    def _body(self) -> Iterator[list[Any]]:
        if self._first is not None:
            yield self._first
        yield from self._cells

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        keys = [(i, key) for i, key in enumerate(self.keys) if key]
        serial = self._end.serial
        leading = True  # no household row yet: a template's notes may come
        try:
            for number, row in enumerate(self._body(), start=self.header_row + 1):
                if len(row) > MAX_COLUMNS:
                    raise FileProblem(f"Row {number} has more than {MAX_COLUMNS} columns.")
                width = len(row)
                values = {key: row[i] if i < width else None for i, key in keys}
                uncomputed = [(k, v) for k, v in values.items() if isinstance(v, Uncomputed)]
                # A blank row, or one holding nothing but its serial number (a template
                # numbers its rows in advance): no household, nothing to say about it.
                if not uncomputed and all(i in serial or _text(v) == "" for i, v in enumerate(row)):
                    continue
                if leading and not uncomputed and _is_note(row):
                    self.note_rows.append(number)
                    continue
                leading = False
                self.rows += 1
                if uncomputed:
                    # Read as empty it would be "required" or a default: say what it is.
                    for key, value in uncomputed:
                        self.errors.append(RowError(number, key, value.detail))
                    if len(self.errors) >= MAX_ERRORS:
                        break
                    continue
                if self.encoding == "gb18030":
                    _lost_characters(values, number, self.errors)
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


# --- writing a register: the import's columns, Chinese headers and words ----------------------

_HEADINGS = {key: heading for heading, key in CHINESE_HEADERS.items()}


def _first_words(words: dict[str, str]) -> dict[str, str]:
    """Each value's first word in a reader's table: the word the file is written with."""
    first: dict[str, str] = {}
    for word, value in words.items():
        first.setdefault(value, word)
    return first


_KIND_NAMES = _first_words(KIND_WORDS)
_OCCUPANCY_NAMES = _first_words(OCCUPANCY_WORDS)
_TAG_NAMES = _first_words(TAG_WORDS)


def register_row(household: Any) -> list[Any]:
    """A household (building … phone, lon, lat attributes) as a register row: the cells the
    import reads back into the same household (an update re-import finds it unchanged)."""
    return [
        household.building,
        household.unit or "",
        household.floor or "",
        household.room or "",
        household.lon,
        household.lat,
        _KIND_NAMES.get(household.kind, household.kind),
        _OCCUPANCY_NAMES.get(household.occupancy, household.occupancy),
        household.members,
        "、".join(_TAG_NAMES.get(tag, tag) for tag in household.tags or ()),
        household.phone or "",
    ]


def write_register(households: Iterable[Any], fmt: str) -> bytes:
    """A register file of the households, in the import's columns (Chinese headers and words):
    the file a community edits and imports again with `mode=update`. XLSX cells are text or
    numbers, never formulas; CSV is UTF-8 with a BOM (Excel opens it as such), its cells that
    start like a formula quoted as the import unquotes them."""
    header = [_HEADINGS[key] for key in COLUMNS]
    rows = (register_row(household) for household in households)
    return write_table(header, rows, fmt, title="住户登记", cell=register_text)
