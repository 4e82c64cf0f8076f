"""Names people give things (grids, communities, streets, districts, users): one rule for all."""

from __future__ import annotations

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


def name_problem(value: Any, *, optional: bool = False, max_length: int = NAME_MAX) -> str | None:
    """Why `value` is not a usable name, or None when it is (`optional`: None or "" is)."""
    if value is None or value == "":
        return None if optional else f"A name is needed (text, 1-{max_length} characters)."
    if not isinstance(value, str) or len(value) > max_length:
        return f"Must be text of at most {max_length} characters."
    if has_control_characters(value):
        return CONTROL_CHARACTERS
    return None


def check_name(field: str, value: Any, *, optional: bool = False, max_length: int = NAME_MAX):
    """Raise a 422 naming `field` when `value` is not a usable name."""
    problem = name_problem(value, optional=optional, max_length=max_length)
    if problem is not None:
        raise errors.Unprocessable(f"{field}: {problem}", errors={field: [problem]})
