"""Names people give things (grids, communities, streets, districts, users): one rule for all."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from api import errors

# The columns are varchar(100): grids, communities, streets, districts, users' display names.
NAME_MAX = 100
CONTROL_CHARACTERS = "Must not contain control characters or bidirectional overrides."
# Bidirectional embeddings and overrides (U+202A-U+202E) and isolates (U+2066-U+2069):
# invisible, they reorder what follows them on screen, so an address or a name can be made to
# read as another in a list or an export ("\u202e101" shows as "101" reversed). The marks
# (U+200E, U+200F) and joiners (U+200D, in emoji) reorder nothing and stay allowed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Full-width forms of ASCII (U+FF01-U+FF5E) and the ideographic space: what a Chinese input
# method types in full-width mode (７号楼, ５０２, １３８…). Shown as the same characters, they
# are other text to the database: another building, a repeat not found, a phone not dialled.
HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def half_width(value: str) -> str:
    """`value` with full-width ASCII forms as ASCII (５０２ is 502), CJK text untouched."""
    return value.translate(HALF_WIDTH)


# Spaces typed inside an address part (3 号楼, 3　号楼, a no-break space pasted from a web page)
# made another building of 3号楼. The space separators (Unicode Zs: the space, NBSP,
# U+2000-U+200A, U+3000 ...), listed so SQL matches the same set; tabs and line breaks are not
# among them: they are control characters, refused (`has_control_characters`).
SPACES = "".join(c for c in map(chr, range(0x3001)) if unicodedata.category(c) == "Zs")
_SPACE_RUN = re.compile(f"[{SPACES}]+")
# Chinese (and Japanese) writing, which puts no space between its characters: CJK radicals,
# symbols and punctuation, kana, the ideographs of every extension (生僻字 too), the
# compatibility and full-width forms.
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]")


def _space(match: re.Match[str]) -> str:
    """A run of spaces inside an address part (trimmed: never at its ends): none beside a
    Chinese character (3号楼, 幸福里B座), one space elsewhere (Block A, דירה 3)."""
    text, start, end = match.string, match.start(), match.end()
    return "" if _CJK.match(text[start - 1]) or _CJK.match(text[end]) else " "


# Characters that show as nothing: the zero-width space (U+200B, which web pages and chat apps
# put between characters to let a line break), the zero-width non-joiner and joiner (U+200C,
# U+200D), the word joiner (U+2060) and the byte order mark / zero-width no-break space
# (U+FEFF, at the start of a text saved by Notepad or pasted from one). Inside an address part
# they made another building of one that reads the same (3号楼 and 3\u200b号楼): they are
# dropped from an address part, a form's and an import's alike, not refused (the clerk could
# not see what to correct, in a register of thousands of rows). A name, stored as given and
# typed one at a time, is refused three of them instead (`INVISIBLE_IN_NAMES`).
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_DROP_INVISIBLE = dict.fromkeys(map(ord, INVISIBLE))


def address_part(value: str) -> str:
    """An address part (building, unit, floor, room) as it is stored: half-width, trimmed,
    spaced one way (`_space`) and without invisible characters (`INVISIBLE`): 3 号楼, ３号楼,
    3　号楼 and 3<U+200B>号楼 are 3号楼. Letters keep the case they were written in."""
    return _SPACE_RUN.sub(_space, value.translate(_DROP_INVISIBLE | HALF_WIDTH).strip())


# The key's one pass over a part: full-width forms as ASCII, ASCII capitals as small letters
# (F502 is f502, A座 is a座, Ｆ is f), invisible characters dropped.
KEY_TABLE = (
    {
        full: chr(half).lower() if chr(half).isascii() else chr(half)
        for full, half in HALF_WIDTH.items()
    }
    | {ord(c): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    | _DROP_INVISIBLE
)


def address_key(value: str) -> str:
    """What two spellings of an address part are compared by (`address_part` makes the
    stored one): half-width, without any space or invisible character, ASCII letters in one
    case (f502 is F502, a座 is A座: one flat, written either way on doors and forms), and a
    part of ASCII digits only without its leading zeros: Excel opens a CSV's room 0502 as the
    number 502 and saves it so, and 01 is the unit a clerk types as 1. 502 and 5020, 0 and no
    room, F0502 and F502 stay apart; letters of other scripts are compared as written.

    `households.address_key_sql` is the same key in SQL, for the stored side of a match."""
    text = _SPACE_RUN.sub("", value.translate(KEY_TABLE))
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return text


def has_control_characters(value: str) -> bool:
    """True when `value` holds a control character (Unicode category Cc: NUL, BEL, ESC, tab,
    newline, DEL, C1 ...) or a bidirectional override or isolate (`BIDI_CONTROLS`): the rule
    of one-line text (names, addresses, phones). A name goes into reports (XLSX refuses control
    characters), tables and headers."""
    # Every Cc character, and every one of BIDI_CONTROLS (Cf), is unprintable: a printable
    # string (the usual one) holds none.
    return not value.isprintable() and any(
        c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" for c in value
    )


# In a name (a grid's, a community's, a user's) the invisible characters that never carry
# meaning: 幸福<U+200B>里 reads as 幸福里 and is another name to every search, sort and report.
# Refused naming the field, in a grid file and a form alike, not dropped: a name is stored as
# given, and the one who typed it can retype it. The non-joiner and joiner (U+200C, U+200D)
# stay allowed: Persian and Indic words and emoji need them.
INVISIBLE_IN_NAMES = "\u200b\u2060\ufeff"
INVISIBLE_CHARACTERS = (
    "Must not contain invisible characters (U+200B zero-width space, U+2060 word joiner, "
    "U+FEFF byte order mark): type the name again."
)


def name_problem(value: Any, *, optional: bool = False, max_length: int = NAME_MAX) -> str | None:
    """Why `value` is not a usable name, or None when it is (`optional`: None or "" is)."""
    if value is None or value == "":
        return None if optional else f"A name is needed (text, 1-{max_length} characters)."
    if not isinstance(value, str) or len(value) > max_length:
        return f"Must be text of at most {max_length} characters."
    if has_control_characters(value):
        return CONTROL_CHARACTERS
    if any(c in INVISIBLE_IN_NAMES for c in value):
        return INVISIBLE_CHARACTERS
    return None


def check_name(field: str, value: Any, *, optional: bool = False, max_length: int = NAME_MAX):
    """Raise a 422 naming `field` when `value` is not a usable name."""
    problem = name_problem(value, optional=optional, max_length=max_length)
    if problem is not None:
        raise errors.Unprocessable(f"{field}: {problem}", errors={field: [problem]})
