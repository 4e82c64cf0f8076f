"""The PDF report's font chain (api/pdf_fonts.py) drawing characters it has, has not, or should
not draw."""

from __future__ import annotations

import io

import pytest
from reportlab.pdfgen.canvas import Canvas

from api import pdf_fonts
from tests import pdf_glyphs


def _pdf(text: str) -> bytes:
    out = io.BytesIO()
    font = pdf_fonts.report_font()
    canvas = Canvas(out, initialFontName=font)
    canvas.setFont(font, 12)
    canvas.drawString(72, 720, text)
    canvas.save()
    return out.getvalue()


def test_each_character_is_drawn_by_the_first_font_that_has_it():
    shown = pdf_glyphs.drawn(_pdf("W48 网格 䶮 𠮷 𤭢 𰻞"))
    fonts = {d.char: d.font.split("+")[1] for d in shown if not d.char.isspace()}
    assert fonts == {
        "W": "LiberationSerif",
        "4": "LiberationSerif",
        "8": "LiberationSerif",
        "网": "UMingCN-0",
        "格": "UMingCN-0",
        "䶮": "UMingCN-0",
        "𠮷": "HanaMinA",
        "𤭢": "HanaMinB",
        "𰻞": "BabelStoneHan",
    }


def test_a_character_no_font_has_is_drawn_as_a_box_and_logged(caplog):
    """U+2EBF0, Extension I (2023), is in none of the fonts yet: a box shows something is
    there (dropped, a name would read as another name). Logged once a process: no other test
    draws U+2EBF0."""
    shown = pdf_glyphs.drawn(_pdf("网\U0002ebf0格"))
    assert [d.char for d in shown] == ["网", "\x00", "格"]  # .notdef is code 0, U+0000
    assert [d.outlined for d in shown] == [True, False, True]
    assert "U+2EBF0 is in none of the PDF fonts" in caplog.text


def test_invisible_characters_are_not_drawn():
    """A zero-width non-joiner, a variation selector, an ideographic variation selector, a
    control character: no glyph of their own, so no box either."""
    shown = pdf_glyphs.drawn(_pdf("一\u200c网\ufe0f格\U000e0100\x07"))
    assert [(d.char, d.outlined) for d in shown] == [("一", True), ("网", True), ("格", True)]


def test_a_missing_font_file_is_an_error_naming_it_and_its_package(tmp_path):
    missing = pdf_fonts.FontFile(str(tmp_path / "HanaMinB.ttf"), "fonts-hanazono")
    with pytest.raises(pdf_fonts.FontMissing) as caught:
        pdf_fonts.report_font((*pdf_fonts.REPORT_FONTS[:3], missing), name="MissingOne")
    assert caught.value.status == 503
    assert str(caught.value) == (
        f"PDF fonts missing: {tmp_path}/HanaMinB.ttf (Debian package fonts-hanazono)"
    )
    assert "HanaMinB" not in caught.value.detail  # the client's message names no path
