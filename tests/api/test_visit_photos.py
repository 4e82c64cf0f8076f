"""Visit photos: hashed, deduplicated, size- and type-checked, stored behind LocalStorage."""

from __future__ import annotations

import hashlib
import io
import itertools

import pytest
from sqlalchemy import func, select

from api.models import VisitPhoto
from api.services.photos import MAX_PHOTOS_PER_VISIT, LocalStorage, sniff_image_type
from tests.factories import A1, image_bytes, visit_item

JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")
WEBP = image_bytes("WEBP")


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    return tmp_path / "photos"


@pytest.fixture()
def visit_id(client, world):
    item = visit_item(world.households[A1][0])
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert response.json["results"][0]["status"] == "created"
    return item["id"]


def upload(client, world, visit_id, data, user="worker_a1", **form):
    return client.post(
        f"/api/v1/visits/{visit_id}/photos",
        data={"file": (io.BytesIO(data), "photo.jpg"), **form},
        headers=world.auth(user),
        content_type="multipart/form-data",
    )


def photo_count(session) -> int:
    return session.scalar(select(func.count(VisitPhoto.id)))


def test_a_photo_is_known_by_its_sha256(client, world, session, photo_dir, visit_id):
    """Stored sealed, under a name that is not its hash: tests/api/test_photos_at_rest.py."""
    digest = hashlib.sha256(JPEG).hexdigest()
    response = upload(client, world, visit_id, JPEG, sha256=digest)
    assert response.status_code == 201
    assert response.json["sha256"] == digest
    assert response.json["content_type"] == "image/jpeg"
    assert response.json["duplicate"] is False
    assert client.get(response.json["url"], headers=world.auth("worker_a1")).data == JPEG


def test_the_same_photo_twice_is_one_attachment(client, world, session, photo_dir, visit_id):
    first = upload(client, world, visit_id, PNG).json
    second = upload(client, world, visit_id, PNG).json
    assert second["duplicate"] is True
    assert second["id"] == first["id"]
    assert photo_count(session) == 1


def test_a_photo_over_the_size_limit_is_413(client, world, session, app, photo_dir, visit_id):
    app.config["PHOTO_MAX_MB"] = 100 / (1024 * 1024)  # 100 bytes
    response = upload(client, world, visit_id, JPEG)
    assert response.status_code == 413
    assert photo_count(session) == 0


def test_a_photo_over_the_limit_is_answered_with_the_limit_not_a_made_up_size(
    client, world, session, app, photo_dir, visit_id
):
    """The route reads one byte past the limit: a 12 MB upload was said to be 10485761 bytes."""
    app.config["PHOTO_MAX_MB"] = 10
    boundary = "photo-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body += JPEG + b"\0" * (12 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        f"/api/v1/visits/{visit_id}/photos",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 413
    assert response.json["detail"] == (
        "The photo is larger than the limit of 10485760 bytes (10 MB)."
    )
    assert photo_count(session) == 0


def test_a_file_that_is_not_an_image_is_415(client, world, session, photo_dir, visit_id):
    response = upload(client, world, visit_id, b"%PDF-1.7 not a photo")
    assert response.status_code == 415
    assert photo_count(session) == 0


def test_a_photo_sent_as_a_text_field_is_a_422_naming_file(
    client, world, session, photo_dir, visit_id
):
    """A form whose `file` part carries no filename is a text field to werkzeug: it reached
    the upload as a string (no `.stream`), a 500."""
    response = client.post(
        f"/api/v1/visits/{visit_id}/photos",
        data={"file": "not a file"},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert list(response.json["errors"]["multipart"]) == ["file"]
    assert photo_count(session) == 0


def test_a_visit_holds_a_bounded_number_of_photos_and_a_resend_is_still_a_duplicate(
    client, world, session, photo_dir, visit_id
):
    """Found by a review: any number of distinct images could be attached to one visit, so one
    account (or a stolen phone) could fill the photo disk. A visit holds MAX_PHOTOS_PER_VISIT:
    one more is a 409 that stores nothing; a photo it holds, sent again (an answer lost on the
    way), is still answered as the duplicate it is."""
    images = [image_bytes("PNG", size=8 + i) for i in range(MAX_PHOTOS_PER_VISIT + 1)]
    for image in images[:-1]:
        assert upload(client, world, visit_id, image).status_code == 201
    files_before = sorted(p for p in photo_dir.rglob("*") if p.is_file())

    refused = upload(client, world, visit_id, images[-1])
    again = upload(client, world, visit_id, images[0])

    assert refused.status_code == 409, refused.json
    assert str(MAX_PHOTOS_PER_VISIT) in refused.json["detail"]
    assert refused.mimetype == "application/problem+json"
    assert (again.status_code, again.json["duplicate"]) == (201, True)
    assert photo_count(session) == MAX_PHOTOS_PER_VISIT
    assert sorted(p for p in photo_dir.rglob("*") if p.is_file()) == files_before


def test_a_photo_damaged_on_the_way_is_422(client, world, session, photo_dir, visit_id):
    response = upload(client, world, visit_id, JPEG, sha256="0" * 64)
    assert response.status_code == 422
    assert photo_count(session) == 0


def test_photos_are_read_back_within_scope(client, world, photo_dir, visit_id):
    url = upload(client, world, visit_id, WEBP).json["url"]
    response = client.get(url, headers=world.auth("leader_a"))
    assert response.status_code == 200
    assert response.data == WEBP
    assert response.mimetype == "image/webp"
    assert client.get(url, headers=world.auth("worker_b1")).status_code == 404


def test_a_photo_is_not_kept_by_the_browser(client, world, photo_dir, visit_id):
    """A resident's photo on a shared phone: kept in the browser's cache, it was served to the
    next user of the phone (and to its worker moved off the grid) with no check and no audit
    for a day. Every read goes to the server."""
    url = upload(client, world, visit_id, WEBP).json["url"]
    response = client.get(url, headers=world.auth("leader_a"))
    assert response.headers["Cache-Control"] == "no-store"


def test_the_visit_lists_its_photos(client, world, photo_dir, visit_id):
    upload(client, world, visit_id, JPEG)
    body = client.get(f"/api/v1/visits/{visit_id}", headers=world.auth("worker_a1")).json
    assert [p["sha256"] for p in body["photos"]] == [hashlib.sha256(JPEG).hexdigest()]


def test_only_the_visiting_worker_adds_photos(client, world, photo_dir, visit_id):
    assert upload(client, world, visit_id, JPEG, user="leader_a").status_code == 403


@pytest.mark.parametrize(
    ("data", "kind"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp"), (b"GIF89a", None)],
)
def test_image_types_are_read_from_magic_bytes(data, kind):
    assert sniff_image_type(data) == kind


def test_local_storage_writes_each_hash_once(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("ab" * 32, b"one")
    storage.put("ab" * 32, b"two")
    assert storage.get("ab" * 32) == b"one"
    with pytest.raises(KeyError):
        storage.get("cd" * 32)


def image_with_metadata(kind: str, orientation: int = 6) -> bytes:
    """A phone's photo: where it was taken (the resident's door), the phone, a comment."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker-8842"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (39.0, 54.0, 26.52), 3: "E", 4: (116.0, 23.0, 29.2)})
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 40, 40)).save(out, kind, exif=exif)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_a_photo_is_stored_and_served_without_its_location_keeping_its_orientation(
    client, world, photo_dir, visit_id, kind
):
    """District viewers see a visit's position to ~100 m; the photo's EXIF had it exactly."""
    from PIL import ExifTags, Image

    original = image_with_metadata(kind)
    uploaded = upload(
        client, world, visit_id, original, sha256=hashlib.sha256(original).hexdigest()
    )
    assert uploaded.status_code == 201
    served = client.get(uploaded.json["url"], headers=world.auth("viewer_110101"))
    assert served.status_code == 200
    assert b"PhoneMaker-8842" not in served.data
    with Image.open(io.BytesIO(served.data)) as image:
        exif = image.getexif()
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert dict(exif) == {ExifTags.Base.Orientation: 6}
        assert image.size == (16, 8)
    # What is served is what is stored: the file's bytes, opened, hash to the photo's SHA-256.
    assert uploaded.json["sha256"] == hashlib.sha256(served.data).hexdigest()


def test_bytes_after_the_end_of_the_image_are_not_stored(client, world, photo_dir, visit_id):
    polyglot = JPEG + b"<html><script>alert(1)</script></html>" + b"PK\x05\x06" + b"\x00" * 18
    uploaded = upload(client, world, visit_id, polyglot)
    assert uploaded.status_code == 201
    assert client.get(uploaded.json["url"], headers=world.auth("worker_a1")).data == JPEG


_MEASURE = """
import resource, sys
from api.services.photos import clean_image
from PIL import Image, JpegImagePlugin  # loaded before measuring
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    clean_image(data, "image/jpeg")
except Exception as exc:
    print(type(exc).__name__, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize("progressive", [True, False], ids=["progressive", "baseline"])
def test_a_jpeg_of_many_pixels_is_checked_in_bounded_memory(tmp_path, progressive):
    """A 575 KB progressive JPEG of 49 MP made libjpeg hold its whole-image coefficient buffer
    (280 MB, in C: tracemalloc does not see it) while the upload was checked."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    path = tmp_path / "photo.jpg"
    make = (
        "import sys; from PIL import Image; Image.new('RGB', (7000, 7000), (200, 40, 40))"
        f".save(sys.argv[1], 'JPEG', progressive={progressive}, subsampling=0, quality=50)"
    )
    subprocess.run([sys.executable, "-c", make, str(path)], check=True)  # apart: its own peak
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert measured.stderr == ""  # accepted
    assert int(measured.stdout) < 64 * 1024  # KiB


def test_a_png_without_image_data_is_415_and_stores_nothing(
    client, world, session, photo_dir, visit_id
):
    """A PNG whose IDAT chunk is missing (or whose type is damaged, so the stripping drops it)
    made Pillow's check raise an IndexError: a 500."""
    start = PNG.index(b"IDAT") - 4
    end = start + 12 + int.from_bytes(PNG[start : start + 4], "big")
    before = photo_count(session)
    uploaded = upload(client, world, visit_id, PNG[:start] + PNG[end:])
    assert uploaded.status_code == 415
    assert uploaded.json["accepted"] == ["image/jpeg", "image/png", "image/webp"]
    assert photo_count(session) == before


def jpeg_with_a_scan_repeated(copies: int) -> bytes:
    """A small progressive JPEG whose last scan (an AC refinement: a few bytes, every block
    visited) is repeated: libjpeg decodes every copy, warning of a bogus progression only."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (256, 256), 128).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last:end] * copies + b"\xff\xd9"


def test_a_jpeg_of_more_scans_than_any_camera_writes_is_refused_before_it_is_decoded(
    client, world, session, photo_dir, visit_id
):
    """Each scan costs a pass over every block of the image: 1,000 copies of a 31-byte scan
    of a 16 MP JPEG (94 KB) took 12 s of CPU to check, a 10 MB upload over an hour."""
    before = photo_count(session)
    uploaded = upload(client, world, visit_id, jpeg_with_a_scan_repeated(1_000))
    assert uploaded.status_code == 415
    assert "scans" in uploaded.json["detail"]
    assert photo_count(session) == before


def test_a_progressive_jpeg_of_an_encoders_scans_is_accepted(client, world, visit_id, photo_dir):
    uploaded = upload(client, world, visit_id, jpeg_with_a_scan_repeated(0))
    assert uploaded.status_code == 201


def png_with_exif_after_idat(orientation: int = 6) -> bytes:
    """A PNG whose eXIf chunk follows its image data, as PNG's third edition allows (libpng and
    Pillow read it there; some phones' editors write it there)."""
    import struct
    import zlib

    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker-8842"
    payload = exif.tobytes()[6:]  # without "Exif\0\0"
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    plain = image_bytes("PNG", 16)
    iend = plain.rindex(b"IEND") - 4
    return plain[:iend] + chunk + plain[iend:]


def test_a_png_keeps_its_orientation_when_its_exif_follows_the_image_data():
    from PIL import ExifTags, Image

    from api.services.photos import strip_metadata

    original = png_with_exif_after_idat()
    with Image.open(io.BytesIO(original)) as image:
        image.load()
        assert image.getexif().get(ExifTags.Base.Orientation) == 6  # as a viewer reads it
    stripped = strip_metadata(original, "image/png")
    assert b"PhoneMaker-8842" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        image.load()
        assert dict(image.getexif()) == {ExifTags.Base.Orientation: 6}
        assert image.size == (16, 16)


def test_an_uploaded_jpeg_is_walked_once(monkeypatch):
    """The stripping walks the segments and counts the scans; the check that decides whether
    the JPEG may be decoded (its coefficient buffer) takes that count instead of walking the
    file again: each byte of the entropy-coded data is searched for a marker once."""
    from PIL import Image

    from api.services import photos

    out = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue()
    stripped = photos.strip_metadata(data, "image/jpeg")
    searched: list[tuple[int, int]] = []
    marker = photos._JPEG_MARKER

    class Watched:
        def search(self, data, pos=0):
            found = marker.search(data, pos)
            searched.append((pos, found.start() if found else len(data)))
            return found

    monkeypatch.setattr(photos, "_JPEG_MARKER", Watched())
    assert photos.clean_image(data, "image/jpeg") == stripped
    assert len(searched) == data.count(b"\xff\xda") > 1  # once per scan (a progressive JPEG)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(sorted(searched)))


# --- WebP: the image data is checked, not the header alone -----------------------------------
def _riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WEBP" + b"".join(
        kind + len(payload).to_bytes(4, "little") + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in chunks
    )
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _noisy_webp(lossless: bool) -> tuple[bytes, bytes]:
    """(the image chunk's kind, its payload) of a real 64x64 WebP with something to decode."""
    import random

    from PIL import Image

    pixels = random.Random(7).randbytes(64 * 64 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 64), pixels).save(out, "WEBP", lossless=lossless)
    data = out.getvalue()
    kind, size = data[12:16], int.from_bytes(data[16:20], "little")
    assert kind == (b"VP8L" if lossless else b"VP8 ")
    return kind, data[20 : 20 + size]


def _webp_damaged(how: str) -> bytes:
    kind, payload = _noisy_webp(lossless=how.startswith("lossless"))
    header = 5 if kind == b"VP8L" else 10  # the frame header: its size is read from it
    if how.endswith("garbage data"):
        garbage = bytes((i * 37 + 11) & 0xFF for i in range(len(payload) - header))
        return _riff((kind, payload[:header] + garbage))
    if how.endswith("zeroed data"):
        return _riff((kind, payload[:header] + b"\x00" * (len(payload) - header)))
    if how.endswith("cut short, its sizes written to match"):
        return _riff((kind, payload[: len(payload) // 3]))
    if how.endswith("header only"):
        return _riff((kind, payload[:header]))
    raise AssertionError(how)


# A lossy (VP8) frame carries no check value: bytes of the right length after its header decode
# to noise, in libwebp as in every browser, so only a frame cut short is found. A lossless one
# (VP8L) starts with its Huffman codes, which garbage or zeros break.
WEBP_DAMAGES = [
    "lossy cut short, its sizes written to match",
    "lossy header only",
    *(
        f"lossless {how}"
        for how in ("garbage data", "zeroed data", "cut short, its sizes written to match")
    ),
    "lossless header only",
]


@pytest.mark.parametrize("how", WEBP_DAMAGES)
def test_a_webp_whose_image_data_is_not_an_image_is_415_and_stores_nothing(
    client, world, session, photo_dir, visit_id, how
):
    """A WebP was taken on its RIFF header and chunk sizes alone (Pillow's verify() of a WebP
    checks nothing): garbage, zeros or a cut frame with its sizes rewritten were stored, and
    served to every browser that opens the visit."""
    before = photo_count(session)
    uploaded = upload(client, world, visit_id, _webp_damaged(how))
    assert uploaded.status_code == 415, uploaded.json
    assert uploaded.json["accepted"] == ["image/jpeg", "image/png", "image/webp"]
    assert "not a readable WEBP image" in uploaded.json["detail"]
    assert photo_count(session) == before
    assert not [p for p in photo_dir.rglob("*") if p.is_file()]


def test_a_webp_whose_canvas_and_frame_sizes_differ_is_415():
    """A VP8X header declaring another size than the frame it holds."""
    from api import errors
    from api.services.photos import clean_image

    kind, payload = _noisy_webp(lossless=False)
    canvas = (128 - 1).to_bytes(3, "little") * 2  # 128x128, the frame is 64x64
    with pytest.raises(errors.UnsupportedMediaType):
        clean_image(_riff((b"VP8X", b"\x00" * 4 + canvas), (kind, payload)), "image/webp")


def test_a_webp_with_alpha_and_an_orientation_is_still_accepted(client, world, photo_dir, visit_id):
    from PIL import Image

    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGBA", (32, 16), (10, 20, 30, 128)).save(out, "WEBP", exif=exif.tobytes())
    uploaded = upload(client, world, visit_id, out.getvalue())
    assert uploaded.status_code == 201, uploaded.json


def test_an_animated_webp_is_415(client, world, session, photo_dir, visit_id):
    """A visit photo is one picture: each frame of an animation would have to be decoded to
    check it (a small file can hold thousands)."""
    from PIL import Image

    frames = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:])
    before = photo_count(session)
    uploaded = upload(client, world, visit_id, out.getvalue())
    assert uploaded.status_code == 415
    assert "animation" in uploaded.json["detail"]
    assert photo_count(session) == before


_MEASURE_WEBP = """
import resource, sys
from api import errors
from api.services.photos import clean_image
from PIL import Image, WebPImagePlugin  # loaded before measuring
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    clean_image(data, "image/webp")
except errors.PayloadTooLarge:
    print("413", file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_webp_of_more_pixels_than_it_may_be_decoded_at_is_413_in_bounded_memory(tmp_path):
    """A WebP is decoded whole to be checked (no scaled decoding, as a JPEG's): a 2 KB
    lossless WebP of 49 MP, under the 50 MP every photo is held to, took 770 MB to decode."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from api.services.photos import MAX_WEBP_PIXELS

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    path = tmp_path / "bomb.webp"
    make = (
        "import sys; from PIL import Image; Image.new('RGB', (7000, 7000), (200, 40, 40))"
        ".save(sys.argv[1], 'WEBP', lossless=True)"
    )
    subprocess.run([sys.executable, "-c", make, str(path)], check=True)  # apart: its own peak
    assert path.stat().st_size < 10_000 and MAX_WEBP_PIXELS < 7000 * 7000
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE_WEBP, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert measured.stderr == "413\n"
    assert int(measured.stdout) < 32 * 1024  # KiB
