"""The PDF report's font: embedded TrueType subsets, each character drawn by the first font of a
chain that has it, so rare characters of names (生僻字: 䶮 U+4DAE, 𠮷 U+20BB7) draw as they are.

Before, the report named STSong-Light, a CID font the PDF does not carry: each viewer drew it
with whatever it had, rare characters as boxes or not at all. reportlab embeds TrueType (glyf)
fonts only, not CFF-based OpenType (Noto CJK, Source Han), and no free TrueType font covers
every CJK extension, hence the chain, each character drawn by the first that has it:

- Liberation Serif (fonts-liberation), for ASCII only: proportional serif Latin and digits, as
  STSong-Light's were (UMing's are monospaced).
- AR PL UMing CN (fonts-arphic-uming): a Ming (Song) face like STSong, mainland glyph forms;
  it draws the Chinese. 18,739 unified ideographs, few of Extensions A and B.
- HanaMinA (fonts-hanazono): all of the unified ideographs and of Extension A (Japanese
  Mincho forms, for the characters UMing lacks).
- HanaMinB (fonts-hanazono): Extension B (all but 9), and C to F (all but a few dozen).
- BabelStone Han (fonts-babelstone-han): what Hanazono (2017) predates: the newest unified
  ideographs (U+9FEB...), most of Extensions G and H (2020, 2022; H holds many characters of
  personal and place names), 𰻞 (biáng).

Extension I (2023) is in none of them yet: such a character is drawn as a box, and logged.

The fonts are Debian packages that scripts/lib.sh installs. A missing one is an error, not a
quiet fall back to STSong-Light: a report drawing a name as a box names someone wrongly, and the
Monday reports are stored for good; the Monday job records the failure and retries it
(api/services/report_store.py), a request gets a 503 saying the PDF cannot be made, and the
log names the file and the package to install.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from itertools import groupby

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from api import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FontFile:
    path: str
    package: str  # the Debian package that installs it
    subfont: int = 0  # the face's index in a collection (.ttc)
    only: range | None = None  # the code points it may draw (None: all it has)


REPORT_FONTS = (
    # Latin letters, digits and ASCII punctuation: proportional and serif, as STSong-Light's.
    FontFile(
        "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
        "fonts-liberation",
        only=range(0x20, 0x7F),
    ),
    FontFile("/usr/share/fonts/truetype/arphic/uming.ttc", "fonts-arphic-uming", 0),  # UMing CN
    FontFile("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf", "fonts-hanazono"),
    FontFile("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf", "fonts-hanazono"),
    FontFile("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf", "fonts-babelstone-han"),
)
REPORT_FONT = "GridworkSong"


class FontMissing(errors.ServiceUnavailable):
    """A font the PDF needs is not installed: the deployment's fault, fixed by an operator."""

    def __init__(self, missing: list[FontFile]) -> None:
        super().__init__(
            "The PDF cannot be made: a font it needs is not installed on the server. "
            "The other formats (json, csv, xlsx) can be."
        )
        self.missing = missing

    def __str__(self) -> str:  # what the log and the Monday job's traceback show
        return "PDF fonts missing: " + ", ".join(
            f"{f.path} (Debian package {f.package})" for f in self.missing
        )


# Characters with no glyph of their own: control and format characters (zero-width joiners,
# the BOM) and variation selectors (an ideographic variation sequence draws as its base
# character: reportlab does not shape). Drawn, they would be .notdef boxes.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") or bool(_VARIATION_SELECTORS.match(char))


# reportlab writes each ToUnicode destination as "%04X" % code point: a character beyond
# U+FFFF (𠮷 is U+20BB7) becomes <20BB7>, not UTF-16BE <D842DFB7>, so copying, searching or a
# screen reader gets nothing, or ₻ (reportlab 5.1).
_WIDE_DESTINATION = re.compile(r"^(<[0-9A-F]+> )<([0-9A-F]{5,6})>$", re.M)


def _utf16_destinations(cmap: str) -> str:
    return _WIDE_DESTINATION.sub(
        lambda m: f"{m[1]}<{chr(int(m[2], 16)).encode('utf-16-be').hex().upper()}>", cmap
    )


class _TTFont(TTFont):
    """A TrueType font whose ToUnicode maps name characters beyond U+FFFF."""

    def addObjects(self, doc) -> None:
        before = set(doc.idToObject)
        super().addObjects(doc)
        for key in set(doc.idToObject) - before:
            if key.startswith("toUnicodeCMap:"):
                stream = doc.idToObject[key]
                stream.content = _utf16_destinations(stream.content)


# Not asciiReadable: else each font's first subset carries all of ASCII, drawn or not (the
# demo district's PDF: 78 kB, not 52 kB). Not shapable: shaping would see the first font only.
_EMBEDDING = {"asciiReadable": False, "shapable": False}


class FallbackFont(_TTFont):
    """Draws each character with the first font of `files` that has it (and may draw it).

    reportlab asks a TrueType font to split a text into runs of its subsets (`splitString`),
    names each subset's PDF font (`getSubsetInternalName`) and measures text (`stringWidth`);
    here a run is (font, subset), and each font embeds its own subsets. The first file is this
    font (its face gives the ascent and descent); the others are read at the first character
    that needs them (a CJK font file is 20-30 MB in memory).
    """

    def __init__(self, name: str, files: tuple[FontFile, ...]) -> None:
        super().__init__(name, files[0].path, subfontIndex=files[0].subfont, **_EMBEDDING)
        self._files = files
        self._members: list[TTFont | None] = [self, *[None] * (len(files) - 1)]
        self._font_of: dict[int, int | None] = {}  # code point -> member index, None: not drawn
        self._lock = threading.Lock()

    def _member(self, i: int) -> TTFont:
        font = self._members[i]
        if font is None:
            with self._lock:
                font = self._members[i]
                if font is None:
                    f = self._files[i]
                    font = _TTFont(
                        f"{self.fontName}.{i}", f.path, subfontIndex=f.subfont, **_EMBEDDING
                    )
                    self._members[i] = font
        return font

    def _which(self, char: str) -> int | None:
        """The index of the font drawing `char`; None for a character not to draw."""
        code = 0x20 if char == "\xa0" else ord(char)  # reportlab draws U+00A0 as a space
        which = self._font_of.get(code, -1)
        if which != -1:
            return which
        which = None
        if not _invisible(char):
            for i, f in enumerate(self._files):
                if (f.only is None or code in f.only) and code in self._member(i).face.charToGlyph:
                    which = i
                    break
            else:
                # The .notdef box of the first font without `only` (UMing's): a box is seen
                # where a dropped character would not be.
                which = next((i for i, f in enumerate(self._files) if f.only is None), 0)
                log.warning("U+%04X is in none of the PDF fonts: it is drawn as a box", code)
        self._font_of[code] = which
        return which

    def _runs(self, text: str | bytes):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        for which, chars in groupby(text, self._which):
            if which is not None:
                yield which, "".join(chars)

    def stringWidth(self, text, size, encoding="utf8") -> float:
        width = 0.0
        for which, run in self._runs(text):
            measure = super().stringWidth if which == 0 else self._member(which).stringWidth
            width += measure(run, size)
        return width

    def splitString(self, text, doc, encoding="utf-8"):
        out = []
        for which, run in self._runs(text):
            split = super().splitString if which == 0 else self._member(which).splitString
            out += [((which, subset), codes) for subset, codes in split(run, doc)]
        return out

    def getSubsetInternalName(self, subset, doc) -> str:
        # A run's (font, subset); TTFont.addObjects asks for this font's own subsets by number.
        which, n = subset if isinstance(subset, tuple) else (0, subset)
        if which == 0:
            return super().getSubsetInternalName(n, doc)
        return self._member(which).getSubsetInternalName(n, doc)


_register_lock = threading.Lock()


def report_font(files: tuple[FontFile, ...] | None = None, name: str = REPORT_FONT) -> str:
    """The registered name of the report's font; raises FontMissing when a file is not there.

    Every file of the chain is checked on every call, not only when a rare character needs it:
    a missing font shows on the first PDF, not on the first name that needs it."""
    files = REPORT_FONTS if files is None else files
    missing = [f for f in files if not os.path.isfile(f.path)]
    if missing:
        error = FontMissing(missing)
        log.error("%s: install them (scripts/lib.sh does)", error)
        raise error
    with _register_lock:
        if name not in pdfmetrics.getRegisteredFontNames():
            # One font per face: reportlab's registry keeps the first font of a face name.
            pdfmetrics.registerFont(FallbackFont(name, files))
    return name
