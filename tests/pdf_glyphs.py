"""What a PDF draws: each character shown, in which font, whether that font travels in the file,
and whether the glyph the file holds for it has an outline (it is not .notdef, not empty).

Read from the page's content stream (the codes each `Tj`/`TJ` shows in the font `Tf` set), the
font's ToUnicode CMap (code -> character) and the embedded font program (code -> glyph), so a
character counts as drawn only when the file itself can draw it: a viewer's own fonts play no
part.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import ContentStream


@dataclass(frozen=True)
class Drawn:
    char: str
    font: str  # the PDF font's BaseFont
    embedded: bool  # the font program is in the file
    outlined: bool  # the embedded glyph for its code has contours (False if not embedded)


_BFCHAR = re.compile(rb"beginbfchar(.*?)endbfchar", re.S)
_BFRANGE = re.compile(rb"beginbfrange(.*?)endbfrange", re.S)
_HEX = re.compile(rb"<([0-9A-Fa-f]*)>")


def _utf16(hexdigits: bytes) -> str:
    return bytes.fromhex(hexdigits.decode()).decode("utf-16-be", errors="replace")


def _to_unicode(font) -> dict[int, str]:
    """code -> text, from the font's ToUnicode CMap (bfchar and bfrange, hex destinations)."""
    if "/ToUnicode" not in font:
        return {}
    cmap = font["/ToUnicode"].get_object().get_data()
    codes: dict[int, str] = {}
    for block in _BFCHAR.findall(cmap):
        pairs = _HEX.findall(block)
        for src, dst in zip(pairs[::2], pairs[1::2], strict=True):
            # An odd number of hex digits is not UTF-16BE: keep it visible as U+FFFD.
            codes[int(src, 16)] = _utf16(dst) if len(dst) % 4 == 0 else "\ufffd"
    for block in _BFRANGE.findall(cmap):
        for lo, hi, dst in re.findall(rb"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
            first = ord(_utf16(dst)[-1]) if len(dst) % 4 == 0 else 0xFFFD
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                codes[code] = chr(first + i)
    return codes


class _Font:
    def __init__(self, font) -> None:
        self.name = str(font.get("/BaseFont", "?")).lstrip("/")
        descriptor = font.get("/FontDescriptor")
        if font.get("/Subtype") == "/Type0":
            descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else {}
        program = descriptor.get("/FontFile2")
        self.embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        self.ttf = TTFont(io.BytesIO(program.get_object().get_data())) if program else None
        self.to_unicode = _to_unicode(font)
        encoding = str(font.get("/Encoding", ""))
        self.two_bytes = font.get("/Subtype") == "/Type0"
        self.ucs2 = "UCS2" in encoding  # a CID font addressed by UCS-2 (STSong-Light's)

    def chars(self, shown: bytes) -> list[tuple[str, int]]:
        if self.two_bytes:
            codes = [int.from_bytes(shown[i : i + 2], "big") for i in range(0, len(shown), 2)]
            if self.ucs2 and not self.to_unicode:
                text = b"".join(c.to_bytes(2, "big") for c in codes).decode("utf-16-be", "replace")
                return [(ch, -1) for ch in text]
        else:
            codes = list(shown)
            if not self.to_unicode:  # a standard font's WinAnsi codes (Helvetica's)
                return [(bytes([c]).decode("cp1252", "replace"), c) for c in codes]
        return [(self.to_unicode.get(code, "\ufffd"), code) for code in codes]

    def outlined(self, code: int) -> bool:
        """The embedded glyph for `code` has contours. A simple TrueType font's codes go
        through its (3,0) or (1,0) cmap (PDF 32000-1, 9.6.6.4)."""
        if self.ttf is None or code < 0:
            return False
        glyph = None
        for platform, encoding, base in ((3, 0, 0xF000), (1, 0, 0), (3, 1, 0)):
            table = self.ttf["cmap"].getcmap(platform, encoding)
            if table is not None:
                glyph = table.cmap.get(base + code) or table.cmap.get(code)
                if glyph:
                    break
        if glyph is None or self.ttf.getGlyphID(glyph) == 0:
            return False  # .notdef
        return self.ttf["glyf"][glyph].numberOfContours != 0  # -1: composite, 0: empty


def drawn(pdf: bytes) -> list[Drawn]:
    """Every character shown on every page, in order."""
    reader = PdfReader(io.BytesIO(pdf))
    out: list[Drawn] = []
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {})
        parsed: dict[str, _Font] = {}
        current: _Font | None = None
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                name = str(operands[0])
                if name not in parsed:
                    parsed[name] = _Font(fonts[name].get_object())
                current = parsed[name]
            elif operator in (b"Tj", b"'", b'"', b"TJ"):
                items = operands[0] if operator == b"TJ" else [operands[-1]]
                for item in items:
                    if isinstance(item, bytes | str) and current is not None:
                        # pypdf decodes a string it can read as text; the codes are its bytes.
                        shown = getattr(item, "original_bytes", item)
                        out += [
                            Drawn(ch, current.name, current.embedded, current.outlined(code))
                            for ch, code in current.chars(shown)
                        ]
    return out


def fonts_of(pdf: bytes, char: str) -> list[Drawn]:
    """How each occurrence of `char` is drawn."""
    return [d for d in drawn(pdf) if d.char == char]
