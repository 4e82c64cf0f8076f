"""Address parts: the one spelling stored, and the key two spellings are matched by, the same in
Python (a file's rows) and in SQL (the stored households)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.services.households import _KEY_PARAMS, address_key_sql, same_address_part_sql
from api.services.names import address_key, address_part

SPELLINGS = [
    "0502",
    "502",
    "5020",
    "00502",
    "0",
    "00",
    "",
    "01",
    "F0502",
    "0F",
    "０５０２",
    "3 号楼",
    "3\u3000号楼",
    "３号楼",
    " Block\u00a0\u00a0A ",
    "0 502",
    "²",
    "幸福里 B 座",
    "3-0502",
    "5 02",
    "5\u200302",
    "Ｆ502",
    "F502",
    "07号楼",
    "7号楼",
    "f502",
    "f0502",
    "a座",
    "A座",
    "Ａ座",
    "\u0410座",
    "Ä",
    "ä",
    "3\u200b号楼",
    "\ufeff502",
    "0\u2060502",
    "F\u200c\u200d502",
]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("3 号楼", "3号楼"),
        ("3\u3000号楼", "3号楼"),
        ("  3 号 楼 ", "3号楼"),
        ("Block  A", "Block A"),
        ("Tower\u00a03", "Tower 3"),
        ("幸福里 B 座", "幸福里B座"),
        ("3 - 502", "3 - 502"),
        ("דירה  3", "דירה 3"),
        ("０５０２", "0502"),
        ("3\u200b号楼", "3号楼"),
        ("\ufeff7号楼", "7号楼"),
        ("3 \u2060 号楼", "3号楼"),
        ("Block\u200c\u200dA", "BlockA"),
    ],
)
def test_an_address_part_is_stored_half_width_and_spaced_one_way(typed, stored):
    assert address_part(typed) == stored


def test_letters_are_stored_in_the_case_they_were_written_in():
    assert [address_part(v) for v in ("F502", "f502", "a座", "Ａ座")] == [
        "F502",
        "f502",
        "a座",
        "A座",
    ]


def test_leading_zeros_are_kept_in_the_stored_spelling():
    """0502 is what the office wrote: stored as written, matched as 502."""
    assert address_part("0502") == "0502"


def test_a_line_break_inside_an_address_part_is_not_taken_for_a_space():
    """A control character is refused naming its field, not made a space."""
    assert address_part("3\n号楼") == "3\n号楼"


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("0502", "502", True),
        ("01", "1", True),
        ("000", "0", True),
        ("502", "5020", False),
        ("0", "", False),
        ("F0502", "F502", False),
        ("3 号楼", "3号楼", True),
        ("３号楼", "3号楼", True),
        ("Block A", "BlockA", True),
        ("f502", "F502", True),
        ("a座", "A座", True),
        ("Ａ座", "a座", True),
        ("f0502", "F502", False),
        ("Ä", "ä", False),
        ("\u0410座", "A座", False),
        ("3\u200b号楼", "3号楼", True),
        ("\ufeff502", "0502", True),
        ("0\u2060502", "502", True),
        ("F\u200c\u200d502", "f502", True),
    ],
)
def test_two_spellings_of_a_part_are_one_when_their_keys_are(one, other, same):
    assert (address_key(one) == address_key(other)) is same


def test_the_database_keys_a_stored_part_as_python_keys_a_rows(session):
    found = session.execute(
        text(f"SELECT s, {address_key_sql('s')} FROM unnest(CAST(:spellings AS text[])) AS t(s)"),
        {"spellings": SPELLINGS, **_KEY_PARAMS},
    ).all()
    assert {s: key for s, key in found} == {s: address_key(s) for s in SPELLINGS}


def test_the_database_matches_a_stored_part_to_a_rows_as_their_keys_match(session):
    """The match's shortcut (a stored part that is its own key) changes no answer."""
    pairs = [(stored, typed) for stored in SPELLINGS for typed in SPELLINGS]
    found = session.execute(
        text(
            f"SELECT stored, typed, {same_address_part_sql('stored', 'key')} "
            "FROM unnest(CAST(:stored AS text[]), CAST(:typed AS text[]), CAST(:keys AS text[])) "
            "AS t(stored, typed, key)"
        ),
        {
            "stored": [s for s, _ in pairs],
            "typed": [t for _, t in pairs],
            "keys": [address_key(t) for _, t in pairs],
            **_KEY_PARAMS,
        },
    ).all()
    assert {(s, t): same for s, t, same in found} == {
        (s, t): address_key(s) == address_key(t) for s, t in pairs
    }
