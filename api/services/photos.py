"""Photos of visits and tasks: type sniffing, content hashing, their storage (sealed on disk)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from api import crypto, errors
from api.models import PhotoDeletion, PhotoStorageKey, Task, TaskPhoto, Visit, VisitPhoto
from api.services.encryption import key_is_retired

log = logging.getLogger("gridwork.photos")

# Magic bytes of the accepted image types. The client's Content-Type is not trusted.
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/webp")
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_KEY = re.compile(r"[0-9a-f]{64}")  # a storage key: the SHA-256 of the bytes, in hex
# Bytes are shared by content (their SHA-256): an upload and retention's deletion of bytes no
# photo points at queue on a transaction lock per hash (class 5; 1-4 are the sign-in,
# data-key and grid-map locks).
PHOTO_LOCK_CLASS = 5
# The photos of one visit (or task) are counted under a transaction lock per visit (task)
# (class 8; 6 and 7 are the address and username locks): two uploads at once cannot both take
# the last place.
VISIT_PHOTOS_LOCK_CLASS = 8
# Far beyond what a door-to-door visit (a task's steps) documents; without a bound one account
# (or a stolen phone) could fill the photo disk with distinct images on one visit (task).
MAX_PHOTOS_PER_VISIT = VisitPhoto.MAX_PER_OWNER
MAX_PHOTOS_PER_TASK = TaskPhoto.MAX_PER_OWNER
# What a photo is of -> the rows of its photos.
Owner = Visit | Task
Photo = VisitPhoto | TaskPhoto
_PHOTOS_OF: dict[type, type] = {Visit: VisitPhoto, Task: TaskPhoto}
# Beyond any phone photo that fits the size limit; a small file claiming more is a bomb.
MAX_PIXELS = 50_000_000
# A JPEG of several scans (progressive, or one scan per component) cannot be decoded a band at a
# time: libjpeg keeps every DCT coefficient of the image, 2 bytes per sample at full size
# whatever the scale asked for (a 575 KB progressive file of 49 MP: 280 MB, out of Python's
# sight). Such a JPEG is decoded only while that buffer stays under this; a larger one has had
# its structure checked, segment by segment up to its end marker, by strip_metadata.
MAX_COEFFICIENT_BYTES = 32 * 1024 * 1024
# Each scan is a pass of libjpeg over every block of the image, and a scan can be a few bytes
# (an AC refinement of nothing but end-of-band runs), repeated at will (libjpeg only warns of a
# bogus progression): 1,000 copies of a 31-byte scan of a 16 MP JPEG took 12 s of CPU to check,
# a 10 MB upload over an hour. Encoders write one scan per component at most for a baseline
# JPEG (4) and about ten for a progressive one (libjpeg's script; mozjpeg's a few more).
MAX_JPEG_SCANS = 100
# A WebP's image data is checked only by decoding it, and Pillow decodes a WebP whole, at full
# size (libwebp's canvas, its copy for the next frame, Python's bytes and the image: 16 bytes a
# pixel, measured 270 MB for 4096x4096, 770 MB for a 2 KB lossless file of 49 MP). So a WebP is
# held to fewer pixels than the others: 4096x4096, more than a 16 MP phone camera writes.
MAX_WEBP_PIXELS = 4096 * 4096


def sniff_image_type(data: bytes) -> str | None:
    """The image type from the file's first bytes (JPEG, PNG, WebP), or None for anything else."""
    if data.startswith(_JPEG):
        return "image/jpeg"
    if data.startswith(_PNG):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def verify_image(
    data: bytes, content_type: str, *, jpeg_scans: int | None = None
) -> tuple[int, int]:
    """Check that `data` really is an image of `content_type`; its (width, height).

    Magic bytes only say what a file claims to be. Pillow reads the header and checks the
    structure (PNG chunk CRCs; a JPEG is decoded at 1/8 scale, which finds truncated or
    garbage data in bounded memory; a WebP, which Pillow cannot decode scaled, is decoded
    whole, held to MAX_WEBP_PIXELS first). `jpeg_scans`: the JPEG's number of scans when known
    (`clean_image` counts them while stripping), else the segments are walked to count them.
    """
    from PIL import Image, UnidentifiedImageError

    kind = _PIL_FORMATS[content_type]
    if kind == "WEBP":
        # Before Pillow opens it: its WebP decoder allocates the canvas when created.
        _check_pixels(*(_webp_size(data) or (0, 0)), MAX_WEBP_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
                _check_pixels(width, height, MAX_WEBP_PIXELS if kind == "WEBP" else MAX_PIXELS)
                if kind == "JPEG":
                    if jpeg_scans is None:
                        jpeg_scans = _jpeg_scans(data)
                    if jpeg_scans > MAX_JPEG_SCANS:
                        raise errors.UnsupportedMediaType(
                            f"The photo is a JPEG of {jpeg_scans:,} scans; no camera writes "
                            f"more than {MAX_JPEG_SCANS}.",
                            accepted=list(ACCEPTED_TYPES),
                        )
                    if _jpeg_coefficient_bytes(image, jpeg_scans) <= MAX_COEFFICIENT_BYTES:
                        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                        image.load()
                elif kind == "WEBP":
                    if getattr(image, "n_frames", 1) > 1:
                        # Each frame would be decoded to check it; a small file holds thousands.
                        raise errors.UnsupportedMediaType(
                            f"The photo is a WebP animation of {image.n_frames:,} frames; a "
                            "photo is one image.",
                            accepted=list(ACCEPTED_TYPES),
                        )
                    # Its header and chunk sizes say nothing of the data they frame: garbage
                    # or a frame cut short is found by decoding it (verify() checks nothing).
                    image.load()
                else:
                    image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.PayloadTooLarge(
            f"The photo's pixel count is beyond {MAX_PIXELS:,}.", limit=MAX_PIXELS
        ) from exc
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        ArithmeticError,  # a header's number our sizing or Pillow's cannot divide or hold
    ) as exc:
        raise errors.UnsupportedMediaType(
            f"The photo starts like {kind} but is not a readable {kind} image.",
            accepted=list(ACCEPTED_TYPES),
        ) from exc
    return width, height


def _check_pixels(width: int, height: int, limit: int) -> None:
    """A 413 for a photo of more pixels than `limit` (MAX_PIXELS, or MAX_WEBP_PIXELS)."""
    if width * height > limit:
        why = " for a WebP, which is decoded whole to be checked" if limit != MAX_PIXELS else ""
        raise errors.PayloadTooLarge(
            f"The photo claims {width}x{height} pixels; the limit is {limit:,} pixels{why}.",
            limit=limit,
        )


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The size a WebP declares in its first chunk (the VP8X canvas, or the VP8 / VP8L frame
    header), read as Pillow reads it; None when that chunk says none."""
    kind, head = data[12:16], data[20:30]
    if kind == b"VP8X" and len(head) == 10:
        return int.from_bytes(head[4:7], "little") + 1, int.from_bytes(head[7:10], "little") + 1
    if kind == b"VP8L" and len(head) >= 5 and head[0] == 0x2F:
        bits = int.from_bytes(head[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(head) == 10 and head[3:6] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(head[6:8], "little") & 0x3FFF,
            int.from_bytes(head[8:10], "little") & 0x3FFF,
        )
    return None


# --- metadata ---------------------------------------------------------------------------------
# A phone writes where a photo was taken (GPS to the metre: the resident's door), when, and the
# phone's make, model and serial into it; district viewers are shown a visit's position to
# ~100 m only. What is stored is the image without its metadata: the segments and chunks that
# draw it are copied byte for byte (nothing is decoded or re-encoded, memory stays linear in
# the file), every other one is dropped, and so is anything after the image's end (a zip or a
# page appended to a JPEG). The EXIF orientation alone is kept, or the photo would show sideways.
_ORIENTATION = 0x0112
_JPEG_KEEP_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"cLLI", b"bKGD", b"hIST", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
# In a scan, 0xFF is followed by 0x00 (a stuffed byte), a restart marker or more 0xFF (fill):
# anything else after it is the marker that ends the scan.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_WEBP_KEEP = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}
_WEBP_EXIF_FLAG, _WEBP_XMP_FLAG = 0x08, 0x04


class _Damaged(ValueError):
    """The file's structure is broken (a length past its end, a missing end marker)."""


def _orientation(tiff: bytes) -> int | None:
    """The EXIF orientation (2-8) in a TIFF/EXIF block, None if absent, 1 or unreadable."""
    from PIL import Image

    try:
        exif = Image.Exif()
        exif.load(tiff)
        value = exif.get(_ORIENTATION)
    except Exception:  # noqa: BLE001 - a broken EXIF only loses the orientation
        return None
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def _orientation_exif(orientation: int) -> bytes:
    """An EXIF block (b"Exif\\0\\0" + TIFF) holding the orientation alone."""
    from PIL import Image

    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    return exif.tobytes()


def clean_image(data: bytes, content_type: str) -> bytes:
    """What an upload stores: `data` stripped of its metadata, then checked (`verify_image`).

    A JPEG's segments are walked once: the stripping counts its scans for the check."""
    stripped, scans = _strip(data, content_type)
    verify_image(stripped, content_type, jpeg_scans=scans)
    return stripped


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """`data` without metadata (EXIF, XMP, IPTC, comments, text) nor trailing bytes.

    Raises UnsupportedMediaType when the structure is broken (as `verify_image` would)."""
    return _strip(data, content_type)[0]


def _strip(data: bytes, content_type: str) -> tuple[bytes, int | None]:
    """(`data` stripped, its number of scans when a JPEG)."""
    if content_type != "image/jpeg":
        strip = {"image/png": _strip_png, "image/webp": _strip_webp}[content_type]
        return _refusing_damage(strip, data, content_type), None
    return _refusing_damage(_strip_jpeg, data, content_type)


def _refusing_damage(strip, data: bytes, content_type: str):
    try:
        return strip(data)
    except _Damaged as exc:
        kind = _PIL_FORMATS[content_type]
        raise errors.UnsupportedMediaType(
            f"The photo starts like {kind} but is not a readable {kind} image ({exc}).",
            accepted=list(ACCEPTED_TYPES),
        ) from exc


def _strip_jpeg(data: bytes) -> tuple[bytes, int]:
    """The JPEG stripped, and its number of scans (SOS segments)."""
    out = [b"\xff\xd8"]
    scans = 0
    after_app0 = 1  # where a kept orientation goes: after SOI and a leading JFIF segment
    orientation = None
    i, n = 2, len(data)
    while True:
        if i >= n or data[i] != 0xFF:
            raise _Damaged("no marker where one belongs")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            raise _Damaged("cut short")
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI: the end; whatever follows is not the image
            out.append(b"\xff\xd9")
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            raise _Damaged(f"stray marker {marker:#x}")
        if i + 2 > n or (length := int.from_bytes(data[i : i + 2], "big")) < 2 or i + length > n:
            raise _Damaged("a segment runs past the end")
        payload = data[i + 2 : i + length]
        segment = data[i - 2 : i + length]  # the marker (its last 0xFF) and the segment
        i += length
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00") and orientation is None:
            orientation = _orientation(payload[6:])
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn and COM: metadata
            prefix = _JPEG_KEEP_APP.get(marker)
            if prefix is None or not payload.startswith(prefix):
                continue
            if marker == 0xE0 and len(out) == 1:
                after_app0 = 2
        out.append(segment)
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker
            scans += 1
            found = _JPEG_MARKER.search(data, i)
            if found is None:
                raise _Damaged("a scan is cut short")
            out.append(data[i : found.start()])
            i = found.start()
    if orientation is not None:
        block = _orientation_exif(orientation)
        out.insert(after_app0, b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block)
    return b"".join(out), scans


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    import zlib

    crc = zlib.crc32(kind + payload).to_bytes(4, "big")
    return len(payload).to_bytes(4, "big") + kind + payload + crc


def _png_chunks(data: bytes):
    """(kind, start, end) of each chunk, up to and including IEND."""
    i, n = 8, len(data)
    while True:
        if i + 8 > n:
            raise _Damaged("cut short")
        length, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise _Damaged("a chunk runs past the end")
        yield kind, i, end
        if kind == b"IEND":
            return
        i = end


def _strip_png(data: bytes) -> bytes:
    chunks = list(_png_chunks(data))
    if not any(kind == b"IDAT" for kind, _, _ in chunks):
        # Nothing to draw (Pillow's check of such a file raised an IndexError: a 500).
        raise _Damaged("no image data")
    # The orientation is read wherever eXIf is: before the image data (PNG 1.5's extensions)
    # or after it (the third edition allows it; libpng and Pillow read it there).
    orientation = next(
        (_orientation(data[s + 8 : e - 4]) for kind, s, e in chunks if kind == b"eXIf"), None
    )
    out = [data[:8]]
    for kind, start, end in chunks:
        if kind == b"IDAT" and orientation is not None:
            out.append(_png_chunk(b"eXIf", _orientation_exif(orientation)[6:]))
            orientation = None  # written once, before the first IDAT (where any reader sees it)
        if kind in _PNG_KEEP:
            out.append(data[start:end])
    return b"".join(out)


def _strip_webp(data: bytes) -> bytes:
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data) or riff_end < 12:
        raise _Damaged("the RIFF size runs past the end")
    chunks: list[bytes] = []
    orientation = None
    i = 12
    while i < riff_end:
        if i + 8 > riff_end:
            raise _Damaged("cut short")
        kind, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        if i + 8 + size > riff_end:
            raise _Damaged("a chunk runs past the end")
        end = min(i + 8 + size + (size & 1), riff_end)
        if kind == b"EXIF" and orientation is None:
            orientation = _orientation(data[i + 8 : i + 8 + size])
        if kind in _WEBP_KEEP:
            padding = 8 + size + (size & 1) - (end - i)  # a last odd chunk may lack its pad
            chunks.append(data[i:end] + b"\x00" * padding)
        i = end
    if chunks and chunks[0][:4] == b"VP8X" and len(chunks[0]) >= 9:
        flags = chunks[0][8] & ~(_WEBP_EXIF_FLAG | _WEBP_XMP_FLAG)
        if orientation is not None:
            flags |= _WEBP_EXIF_FLAG
            block = _orientation_exif(orientation)[6:]
            chunks.append(
                b"EXIF" + len(block).to_bytes(4, "little") + block + b"\x00" * (len(block) & 1)
            )
        chunks[0] = chunks[0][:8] + bytes([flags]) + chunks[0][9:]
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _jpeg_scans(data: bytes) -> int:
    """How many scans (SOS segments) a JPEG holds, walking its markers up to its end."""
    scans, i = 0, 2
    while (found := _JPEG_MARKER.search(data, i)) is not None:
        marker = data[found.start() + 1]
        if marker == 0xD9:
            break
        length = int.from_bytes(data[found.start() + 2 : found.start() + 4], "big")
        scans += marker == 0xDA
        i = found.start() + 2 + length
    return scans


def _jpeg_coefficient_bytes(image, scans: int) -> int:
    """What libjpeg holds to decode this JPEG at any scale: 0 for one scan (decoded a band at a
    time), else its whole-image coefficient buffer."""
    if scans <= 1 and not image.info.get("progressive"):
        return 0
    layers = image.layer or [(0, 1, 1, 0)]
    if any(not (1 <= h <= 4 and 1 <= v <= 4) for _, h, v, _ in layers):
        # libjpeg refuses them as it decodes; a 0 here divided by zero first (a 500).
        raise ValueError("a JPEG component's sampling factors are outside 1 to 4")
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    samples = sum(h * v for _, h, v, _ in layers) / (h_max * v_max)
    return int(image.size[0] * image.size[1] * samples * 2)


class PhotoStorage(Protocol):
    """Where photo bytes live, addressed by their SHA-256 hex digest (content-addressed)."""

    def put(self, key: str, data: bytes, *, stale: Callable[[str], bool] | None = None) -> None:
        """Store `data` under `key`; storing the same key again is a no-op (`stale`: see
        `SealedStorage.put`)."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; KeyError when absent."""

    def delete(self, key: str) -> None:
        """Remove the bytes under `key`; nothing when absent."""

    def iter_keys(self) -> Iterator[str]:
        """Every key stored (`gridwork photos scrub` looks for files no row points at)."""


class LocalStorage:
    """Files under a directory, sharded by the first hex digits of their 64-hex-digit name.

    Writes go to a temporary file that is fsynced and renamed into place, so a crash never
    leaves a half-written file under its final name, and a file replaced is read whole, old
    or new. On its own it stores bytes as they are given: the app stores photos through
    `SealedStorage`, which keeps its files here.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, key: str, data: bytes, *, stale: Callable[[str], bool] | None = None) -> None:
        if not self.exists(key):
            self.write(key, data)

    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what is there (atomically)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename itself made durable: `security encrypt` removes a plaintext file once its
        # sealed copy is written, and a crash must not keep the removal and lose the copy.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes under `key`; KeyError when absent."""
        try:
            with self._path(key).open("rb") as file:
                return file.read(size)
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        # Only names of the layout (a temporary `.upload-*` file is not a photo yet).
        for path in self.root.glob("??/??/*"):
            key = path.name
            if _KEY.fullmatch(key) and path.parent.parts[-2:] == (key[:2], key[2:4]):
                yield key


class PhotoDamaged(Exception):
    """A stored photo file that fails its check: it does not open with the key it names, or
    opens to bytes whose SHA-256 is not the one it is stored under (changed on disk, or
    another photo's file put in its place)."""


# Sealed files live under PHOTO_DIR/sealed/, plaintext ones from before under PHOTO_DIR/ab/cd/:
# which kind a file is shows in its path, without reading it (`sealed` never matches `??`).
SEALED_DIR = "sealed"


class SealedStorage:
    """Photos sealed at rest by the data key, under names the disk alone cannot tie to images.

    Contents: `crypto.seal_bytes` (AES-256-GCM, the current data key, its key id in the file's
    header so a rotation re-seals it: `api/services/photo_sealing.py`). Each read checks that
    the bytes opened hash to the SHA-256 asked for.

    Names: the image's SHA-256 (the storage key the rest of the app speaks, the column
    `visit_photos.sha256`, the ETag) enciphered with the photo name key (table
    `photo_storage_key`, migration 0036): one AES-256 block operation on each half of the
    digest (ECB). Chosen over plain SHA-256, which lets anyone with the disk and a copy of an
    image (a photo a worker shared) confirm it is stored; and over an HMAC of it because a
    cipher can be undone by whoever holds the key, so `iter_keys` lists the images' hashes
    without opening a file (`photos scrub` looks for files no row points at). ECB leaks equal
    blocks of its input, which for two halves of SHA-256 digests never happen. Deterministic,
    so the same image is still stored once (dedup) and a retry finds its file. Not hidden: a
    file's size (the image's plus 40 bytes), as AES-GCM does for the columns.

    Files written before photos were sealed (plaintext, named by the SHA-256) are still read
    until `gridwork security encrypt` seals them (`plain`).
    """

    def __init__(self, root: str | os.PathLike, name_key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self.root = Path(root)
        self.plain = LocalStorage(self.root)
        self.sealed = LocalStorage(self.root / SEALED_DIR)
        self._names = Cipher(algorithms.AES(name_key), modes.ECB())

    def name(self, key: str) -> str:
        """The name of the sealed file of the image whose SHA-256 is `key`."""
        encryptor = self._names.encryptor()
        return (encryptor.update(bytes.fromhex(key)) + encryptor.finalize()).hex()

    def key_of(self, name: str) -> str:
        """The SHA-256 of the image in the sealed file `name` (`name` undone)."""
        decryptor = self._names.decryptor()
        return (decryptor.update(bytes.fromhex(name)) + decryptor.finalize()).hex()

    def sealed_key_id(self, key: str) -> str | None:
        """The data key id named by the sealed file of `key`; None when there is none."""
        try:
            head = self.sealed.head(self.name(key), crypto.BYTES_HEADER)
        except KeyError:
            return None
        return crypto.sealed_bytes_key_id(head) or ""

    def put(self, key: str, data: bytes, *, stale: Callable[[str], bool] | None = None) -> None:
        """Seal `data` (whose SHA-256 is `key`) under the current data key, unless a sound file
        is there already: one sealed by the current key that opens to `key`, or one sealed by
        another key that `stale` (the key retired by a rotation?) does not call stale. A
        damaged file is replaced; so is a file of a retired key, which a rotation may have
        passed already: an upload to a process not yet restarted after it, refused at its
        commit, leaves one (the re-sealing would not see it, and the key will be dropped)."""
        name = self.name(key)
        kid = self.sealed_key_id(key)
        if kid == crypto.current_key_id():
            try:
                self.open_sealed(key, self.sealed.get(name))
                return
            except (PhotoDamaged, KeyError):
                pass  # replaced below
        elif kid is not None and kid != "" and not (stale and stale(kid)):
            return  # another process's key (a rotation under way): the re-sealing takes it
        self.sealed.write(name, crypto.seal_bytes(data))

    def get(self, key: str) -> bytes:
        """The image whose SHA-256 is `key`: its sealed file opened, else its plaintext file
        from before sealing. KeyError when neither is stored; PhotoDamaged when the file fails
        its check; crypto.DataKeyError when the key it names is not configured."""
        try:
            return self.open_sealed(key, self.sealed.get(self.name(key)))
        except KeyError:
            pass
        data = self.plain.get(key)
        if hashlib.sha256(data).hexdigest() != key:
            raise PhotoDamaged(f"the plaintext file {key} does not hash to its name")
        return data

    def open_sealed(self, key: str, stored: bytes) -> bytes:
        """The image in the sealed file `stored` of `key`, checked (see `get`)."""
        try:
            data = crypto.open_bytes(stored)
        except crypto.SealedBytesDamaged as exc:
            raise PhotoDamaged(f"the sealed file of {key}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != key:
            raise PhotoDamaged(f"the sealed file of {key} opens to another image's bytes")
        return data

    def delete(self, key: str) -> None:
        self.sealed.delete(self.name(key))
        self.plain.delete(key)

    def iter_keys(self) -> Iterator[str]:
        """Every image stored: the plaintext files' hashes, then the sealed files' (each once:
        a file sealed by `security encrypt` before its plaintext was removed)."""
        yield from self.plain.iter_keys()
        for name in self.sealed.iter_keys():
            key = self.key_of(name)
            if not self.plain.exists(key):
                yield key


def load_name_key(session: Session) -> bytes:
    """The photo name key (migration 0036); ServiceUnavailable before that migration."""
    key = session.scalar(select(PhotoStorageKey.name_key).where(PhotoStorageKey.id == 1))
    if key is None:
        raise errors.ServiceUnavailable(
            "Photos cannot be stored or read until the database is upgraded "
            "(`gridwork db upgrade`: migration 0036 makes the photo name key)."
        )
    return bytes(key)


def build_storage(config: dict, name_key: bytes) -> SealedStorage:
    """The storage the settings name (PHOTO_STORAGE); only "local" exists so far. `name_key`:
    `load_name_key`."""
    kind = config.get("PHOTO_STORAGE", "local")
    if kind == "local":
        return SealedStorage(config["PHOTO_DIR"], name_key)
    raise ValueError(f"unknown PHOTO_STORAGE {kind!r}; expected 'local'")


def attach_photo(
    session: Session,
    storage: PhotoStorage,
    owner: Owner,
    data: bytes,
    *,
    uploader_id: int,
    max_bytes: int,
    claimed_sha256: str | None = None,
) -> tuple[Photo, bool]:
    """Check, store and attach a photo to a visit or a task; (the photo, True if it was
    already attached)."""
    model = _PHOTOS_OF[type(owner)]
    if not data:
        raise errors.Unprocessable("The photo is empty.", errors={"file": ["Empty file."]})
    if len(data) > max_bytes:
        # `data` may be only the first bytes of the upload (the route reads one byte past the
        # limit): its length is not the photo's size, which stays unsaid.
        raise errors.PayloadTooLarge(
            f"The photo is larger than the limit of {max_bytes} bytes ({max_bytes / 2**20:g} MB).",
            limit=max_bytes,
        )
    content_type = sniff_image_type(data)
    if content_type is None:
        raise errors.UnsupportedMediaType(
            "The photo must be a JPEG, PNG or WebP image.", accepted=list(ACCEPTED_TYPES)
        )
    received = hashlib.sha256(data).hexdigest()
    if claimed_sha256 is not None and claimed_sha256.lower() != received:
        raise errors.Unprocessable(
            "The photo's SHA-256 does not match the sha256 sent with it; it was damaged on "
            "the way. Send it again.",
            errors={
                "sha256": [f"Expected {claimed_sha256}, received content hashes to {received}."]
            },
        )
    # What is stored, hashed and served is the image without its metadata (the location).
    data = clean_image(data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    _check_room(session, owner, model, digest, uploader_id)
    # The bytes go to storage before the row: a row never points at missing bytes, and a file
    # left by a failed transaction is simply reused (same hash) by the retry. Retention deletes
    # bytes no photo points at under the same lock (api/services/retention.py): held until this
    # transaction ends, it keeps them from going between this `put` (a no-op when they exist)
    # and the commit of the row that points at them.
    session.execute(
        text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))"),
        {"lock": PHOTO_LOCK_CLASS, "key": digest},
    )
    storage.put(digest, data, stale=lambda kid: key_is_retired(session.connection(), kid))
    owned_by = getattr(model, model.OWNER) == owner.id
    # An insert that meets the photo held already does nothing, and the photo is read back in
    # a statement of its own, which sees what committed in between: that photo's deletion (its
    # uploader's, or retention's purge) leaves nothing to read. The insert is tried again then,
    # and stores the image as a new photo. Once: a photo of this image appears only under the
    # image's lock, held here, so the second insert meets none (deletions take no such lock).
    for _ in range(2):
        inserted = session.scalar(
            insert(model)
            .values(
                **{model.OWNER: owner.id},
                sha256=digest,
                content_type=content_type,
                size_bytes=len(data),
                uploaded_by_id=uploader_id,
                stripped_at=func.now(),  # stored stripped: `photos scrub` need not read it
            )
            .on_conflict_do_nothing(constraint=model.UNIQUE)
            .returning(model.id)
        )
        photo = session.scalar(select(model).where(owned_by, model.sha256 == digest))
        if photo is not None:
            return photo, inserted is None
    raise errors.ServiceUnavailable(  # pragma: no cover - the image's lock makes it unreachable
        "The photo was deleted again and again as it was stored; send it again.",
        headers={"Retry-After": "1"},
    )


def _kind(owner: Owner) -> str:
    return "visit" if isinstance(owner, Visit) else "task"


def _check_room(session: Session, owner: Owner, model: type, digest: str, uploader_id: int) -> None:
    """409 when the visit (task) holds its most photos and this is not one of them (a photo it
    holds, sent again, is the duplicate it was). Counted under the owner's lock, held until
    the transaction ends.

    A task's photos counted are its steps' and the uploader's own not sent with a step yet:
    another's never sent (uploaded for a step refused, or cleared and taken again) are shown
    nowhere, and they filled the task for everyone (its leader's photo of the return call a
    409 "holds 20 photos"). Each uploader's unsent ones stay bounded, and a step brings the
    steps' photos to the most at most (`tasks.transition`)."""
    # A visit's key is its UUID (as it always was); a task's its id, told apart by a prefix.
    key = str(owner.id) if isinstance(owner, Visit) else f"task {owner.id}"
    session.execute(
        text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))"),
        {"lock": VISIT_PHOTOS_LOCK_CLASS, "key": key},
    )
    counted = func.count()
    if model is TaskPhoto:
        mine = (TaskPhoto.event_id.is_not(None)) | (TaskPhoto.uploaded_by_id == uploader_id)
        counted = func.count().filter(mine)
    held = session.execute(
        select(counted, func.count().filter(model.sha256 == digest)).where(
            getattr(model, model.OWNER) == owner.id
        )
    ).one()
    if held[0] >= model.MAX_PER_OWNER and not held[1]:
        kind = _kind(owner)
        raise errors.Conflict(
            f"{kind.capitalize()} {owner.id} holds {held[0]} photos, the most a {kind} may hold "
            f"({model.MAX_PER_OWNER}); nothing was stored."
        )


def get_photo(session: Session, owner: Owner, photo_id: int, reader_id: int | None) -> Photo:
    """The photo `photo_id` of the visit (task) `owner`, as `reader_id` may see it; 404 when it
    has none of that id, or (a task's) when no step holds it yet and another uploaded it: shown
    with no step, it is its uploader's alone (a shot for the next step, or one taken by
    mistake: a resident's face) until a step sends it (until 2026-12-07 whoever read the task,
    a district viewer too, was served it by its id)."""
    model = _PHOTOS_OF[type(owner)]
    photo = session.scalar(
        select(model).where(model.id == photo_id, getattr(model, model.OWNER) == owner.id)
    )
    unsent = isinstance(photo, TaskPhoto) and photo.event_id is None
    if photo is None or (unsent and photo.uploaded_by_id != reader_id):
        raise errors.NotFound(f"Photo {photo_id} of {_kind(owner)} {owner.id} not found.")
    return photo


def delete_unsent_task_photo(session: Session, task: Task, photo_id: int, user_id: int) -> None:
    """Delete the photo `photo_id` of `task` that `user_id` uploaded and sent with no step (a
    shot taken by mistake: a resident's face, the wrong door), its bytes queued for retention's
    next run (`photo_deletions`, as retention's own deletions are). 404 when the task has no
    such photo, 403 when another uploaded it, 409 once a step holds it (the task's history).
    The row is locked as a step naming it locks it: the step or the deletion, never both."""
    photo = session.scalar(
        select(TaskPhoto)
        .where(TaskPhoto.id == photo_id, TaskPhoto.task_id == task.id)
        .with_for_update()
    )
    if photo is None:
        raise errors.NotFound(f"Photo {photo_id} of task {task.id} not found.")
    if photo.uploaded_by_id != user_id:
        raise errors.Forbidden("Only who uploaded a photo deletes it, before a step holds it.")
    if photo.event_id is not None:
        raise errors.Conflict(
            f"Photo {photo_id} was sent with a step: it is part of the task's history and stays."
        )
    session.delete(photo)
    session.execute(insert(PhotoDeletion).values(sha256=photo.sha256).on_conflict_do_nothing())


def read_photo(session: Session, storage: PhotoStorage, photo: Photo) -> bytes:
    """The photo's bytes (opened: `SealedStorage.get`); StoredDataDamaged, logged, when its
    file fails its check. `gridwork photos scrub` may switch the row to new bytes and remove
    the old ones between the row's read and the bytes': the row is read again then."""
    for attempt in range(2):
        try:
            return storage.get(photo.sha256)
        except PhotoDamaged as exc:
            log.error("photo %s of %s %s: %s", photo.id, *_of(photo), exc)
            raise errors.StoredDataDamaged(
                f"The stored file of photo {photo.id} is damaged; it cannot be served. The "
                "service's operators are told (the file needs restoring from a backup, or the "
                "photo uploading again)."
            ) from exc
        except KeyError:
            before = photo.sha256
            if attempt:
                break
            try:
                session.refresh(photo)
            except InvalidRequestError:  # the row is gone (merged into its twin meanwhile)
                break
            if photo.sha256 == before:
                break
    raise errors.NotFound(f"The bytes of photo {photo.id} are missing.")


def _of(photo: Photo) -> tuple[str, object]:
    """("visit", its id) or ("task", its id): what the photo is of."""
    return photo.OWNER.removesuffix("_id"), getattr(photo, photo.OWNER)
