"""Hostile input: huge, malformed and mislabelled bodies and files, at every upload and import.

Each gets a clear 4xx problem+json (or, from the CLI, a non-zero exit naming the problem), is
handled within bounded memory (peak Python allocations, measured with tracemalloc), and
changes nothing: the row counts of every table an import writes are the same after.
"""

from __future__ import annotations

import functools
import io
import json
import re
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api.cli import main
from tests.factories import A1, A, box, centre, grid_feature, visit_item

MB = 1024 * 1024
# Peak Python allocations while one hostile request is handled (the bodies go up to 50 MB).
MEMORY_LIMIT = 64 * MB
TABLES = ("grids", "grid_versions", "households", "visits", "visit_photos")


# --- helpers ------------------------------------------------------------------------------------
class Endless(io.RawIOBase):
    """`head`, then `size` bytes of `pattern`, then `tail`, produced as read: a huge body the
    test never holds in memory."""

    def __init__(self, pattern: bytes, size: int, head: bytes = b"", tail: bytes = b"") -> None:
        self.pattern, self.body, self.head, self.tail = pattern, size, head, tail
        self.size = len(head) + size + len(tail)
        self.pos = 0

    @property
    def left(self) -> int:
        return self.size - self.pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def wrapped(self, head: bytes, tail: bytes) -> Endless:
        return Endless(self.pattern, self.body, head + self.head, self.tail + tail)

    def _bytes(self, start: int, n: int) -> bytes:
        out = bytearray()
        head_end = len(self.head)
        body_end = head_end + self.body
        while n > 0:
            if start < head_end:
                piece = self.head[start : start + n]
            elif start < body_end:
                offset = (start - head_end) % len(self.pattern)
                length = min(n, body_end - start)
                piece = (self.pattern * (length // len(self.pattern) + 2))[offset : offset + length]
            else:
                piece = self.tail[start - body_end : start - body_end + n]
            out += piece
            start += len(piece)
            n -= len(piece)
        return bytes(out)

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = self._bytes(self.pos, n)
        self.pos += n
        return n


@contextmanager
def bounded_memory(limit: int = MEMORY_LIMIT) -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak allocations {peak / MB:.1f} MB, limit {limit / MB:.0f} MB"


def counts(session) -> dict[str, int]:
    return {t: session.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}


def assert_problem(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.data[:500])
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == response.status_code
    assert body.get("detail"), body
    return body


@pytest.fixture()
def unchanged(session, photo_dir):
    """Asserts, after the test, that no row and no stored photo was added."""
    before = counts(session)
    yield
    session.expire_all()
    assert counts(session) == before
    assert not [p for p in photo_dir.rglob("*") if p.is_file()]


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    app.extensions.pop("gridwork_photo_storage", None)
    return tmp_path / "photos"


def post_raw(client, path: str, headers: dict, body: bytes | Endless, content_type: str):
    stream = body if isinstance(body, Endless) else io.BytesIO(body)
    length = body.size if isinstance(body, Endless) else len(body)
    return client.post(
        path,
        input_stream=stream,
        content_length=length,
        content_type=content_type,
        headers=headers,
    )


# --- JSON bodies: every JSON import/upload endpoint ---------------------------------------------
def _grid_import(lon: str = "116.4012") -> bytes:
    feature = grid_feature(A + "009", box(116.40, 39.92, 116.405, 39.925))
    raw = json.dumps({"type": "FeatureCollection", "features": [feature]})
    return raw.replace("116.4,", f"{lon},", 1).encode()


def _grid_create(lon: str = "116.4012") -> bytes:
    feature = grid_feature(A + "009", box(116.40, 39.92, 116.405, 39.925))
    return json.dumps(feature).replace("116.4,", f"{lon},", 1).encode()


def _visit_batch(lon: str = "116.4012") -> bytes:
    item = visit_item(lon=116.4012, lat=39.9212, building="9")
    return json.dumps({"visits": [item]}).replace("116.4012", lon, 1).encode()


JSON_ENDPOINTS = {
    "grid import": ("/api/v1/grids/import", "admin_a", _grid_import),
    "grid create": ("/api/v1/grids", "admin_a", _grid_create),
    "visit batch": ("/api/v1/visits/batch", "worker_a1", _visit_batch),
}

JSON_CASES: dict[str, tuple[Callable[[Callable], bytes | io.RawIOBase], tuple[int, ...]]] = {
    "50 MB body": (lambda valid: Endless(b'{"a": [1, 2, 3], ', 50 * MB), (413,)),
    "nesting 100,000 deep": (lambda valid: b"[" * 100_000 + b"]" * 100_000, (400,)),
    "nesting beyond 64": (lambda valid: b'{"a":' * 100 + b"1" + b"}" * 100, (400,)),
    "JSON bomb of 3 million objects": (
        lambda valid: b"[" + b"{}," * 3_000_000 + b"{}]",
        (413,),
    ),
    "a million-digit number": (lambda valid: b'{"n": ' + b"7" * 1_000_000 + b"}", (400,)),
    "NaN coordinate": (lambda valid: valid("NaN"), (400,)),
    "Infinity coordinate": (lambda valid: valid("Infinity"), (400,)),
    "-Infinity coordinate": (lambda valid: valid("-Infinity"), (400,)),
    "invalid UTF-8": (
        lambda valid: valid("116.4012").replace(b"{", b'{"\xff\xfe": 1, ', 1),
        (400,),
    ),
    "truncated JSON": (lambda valid: valid("116.4012")[:-7], (400,)),
    "CSV labelled as JSON": (lambda valid: b"building,lon,lat\n1,116.4,39.9\n", (400,)),
}


@pytest.mark.parametrize("case", JSON_CASES)
@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_hostile_json_is_a_clear_4xx_in_bounded_memory_and_writes_nothing(
    client, world, unchanged, endpoint, case
):
    path, user, valid = JSON_ENDPOINTS[endpoint]
    make, statuses = JSON_CASES[case]
    body = make(valid)
    with bounded_memory():
        response = post_raw(client, path, world.auth(user), body, "application/json")
    assert_problem(response, *statuses)


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_a_chunked_json_body_over_the_limit_is_a_413_not_a_cut_body(
    client, world, unchanged, endpoint
):
    """Sent chunked (no Content-Length, as gunicorn passes it on), a body over the 20 MB limit
    was cut at the limit without a word (werkzeug's stream stops there) and answered 400 "not
    valid JSON": the client was told its JSON was broken, not that it was too large."""
    path, user, valid = JSON_ENDPOINTS[endpoint]
    item = valid("116.4012")
    body = Endless(b" ", 25 * MB, head=item[:-1], tail=item[-1:])  # valid JSON, padded
    with bounded_memory():
        response = client.post(
            path,
            input_stream=body,
            content_type="application/json",
            headers={**world.auth(user), "Transfer-Encoding": "chunked"},
            environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
        )
    assert "20 MB" in assert_problem(response, 413)["detail"]


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_json_labelled_as_text_is_not_read_as_json(client, world, unchanged, endpoint):
    path, user, valid = JSON_ENDPOINTS[endpoint]
    response = post_raw(client, path, world.auth(user), valid("116.4012"), "text/plain")
    assert_problem(response, 415, 422)


@pytest.mark.parametrize(
    ("path", "user", "body"),
    [
        ("/api/v1/visits/batch", "worker_a1", {"visits": []}),
        ("/api/v1/tasks", "admin_a", {"source": "leader", "title": "x"}),
        ("/api/v1/auth/password", "worker_a1", {"current_password": "x", "new_password": "y"}),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_labelled_as_something_else_is_415_saying_so(
    client, world, path, user, body, content_type
):
    """A JSON body sent as text/plain (fetch with a string body and no header) was read as no
    body: "visits: missing", a puzzle for whoever wrote the client."""
    response = post_raw(client, path, world.auth(user), json.dumps(body).encode(), content_type)
    assert "application/json" in assert_problem(response, 415)["detail"]


def test_a_json_endpoint_without_a_body_needs_no_content_type(client, world):
    response = client.post("/api/v1/auth/logout-all", headers=world.auth("worker_a1"))
    assert response.status_code == 200, response.json


# --- GeoJSON geometry -----------------------------------------------------------------------------
def _polygon_with(vertices: int, digits: int = 7) -> dict:
    """A closed ring of `vertices` positions around A1's centre (a valid polygon)."""
    import math

    lon, lat = centre(A1)
    ring = [
        [
            round(lon + 0.002 * math.cos(2 * math.pi * i / vertices), digits),
            round(lat + 0.002 * math.sin(2 * math.pi * i / vertices), digits),
        ]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [[116.40, 39.92], [116.41, 39.93], [116.41, 39.92], [116.40, 39.93], [116.40, 39.92]]
    ],
}


@pytest.mark.parametrize(
    ("geometry", "status", "words"),
    [
        (BOW_TIE, 422, "self-intersection"),
        (lambda: _polygon_with(20_000), 422, "at most 10,000"),
        (lambda: _polygon_with(1_000_000, digits=4), 413, "values"),
        (lambda: _polygon_with(1_500_000), 413, "20 MB"),
        ({"type": "Polygon", "coordinates": [[[1e308, 1e308]] * 4]}, 422, "out of range"),
        (
            '{"type":"Polygon","coordinates":[[[1e400,39.9],[116.4,39.9],[1e400,39.9]]]}',
            422,
            "not finite",
        ),
        ({"type": "Point", "coordinates": [116.4, 39.9]}, 422, "Polygon"),
    ],
    ids=[
        "self-intersecting",
        "20k vertices",
        "1e6 vertices",
        "1.5e6 vertices, 40 MB",
        "huge",
        "1e400",
        "a point",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/grids/import", "/api/v1/grids"])
def test_bad_grid_geometry_is_named_and_nothing_is_stored(
    client, world, unchanged, path, geometry, status, words
):
    geometry = geometry() if callable(geometry) else geometry
    raw = geometry if isinstance(geometry, str) else None  # JSON text json.dumps cannot write
    feature = grid_feature(A + "009", "GEOMETRY" if raw else geometry)
    payload = (
        feature if path == "/api/v1/grids" else {"type": "FeatureCollection", "features": [feature]}
    )
    body = json.dumps(payload, separators=(",", ":"))
    body = (body.replace('"GEOMETRY"', raw) if raw else body).encode()
    with bounded_memory(192 * MB if len(body) > 5 * MB else MEMORY_LIMIT):
        response = post_raw(client, path, world.auth("admin_a"), body, "application/json")
    problem = assert_problem(response, status)
    assert words in json.dumps(problem, ensure_ascii=False)


def test_an_import_of_too_many_features_is_refused_whole(client, world, unchanged):
    features = [grid_feature(A + f"{i:03d}", box(116.40, 39.92, 116.401, 39.921)) for i in range(2)]
    payload = {"type": "FeatureCollection", "features": features * 5_001}
    response = client.post("/api/v1/grids/import", json=payload, headers=world.auth("admin_a"))
    assert "at most 10,000" in assert_problem(response, 413)["detail"]


# --- files: household registers (CSV / XLSX) ----------------------------------------------------
def _png(width: int = 8, height: int = 8, idat: bytes | None = None) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = idat if idat is not None else zlib.compress(b"\x00" + b"\x10" * (width * 3) * height)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _zip(members: dict[str, bytes | int]) -> bytes:
    """A zip; an int member is that many zero bytes, written in chunks (a bomb, built cheaply)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in members.items():
            if isinstance(content, int):
                with archive.open(name, "w", force_zip64=True) as part:
                    zeros = b"\x00" * MB
                    for _ in range(content // MB):
                        part.write(zeros)
            else:
                archive.writestr(name, content)
    return out.getvalue()


@functools.cache
def _xlsx_bomb() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": b"<Types/>",
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": 600 * MB,
        }
    )


def _csv_wide() -> bytes:
    return b"building,lon,lat," + b"x," * 1_000_000 + b"\n1,116.4,39.9\n"


def _csv_row_wide() -> bytes:
    return b"building,lon,lat\n1,116.4,39.9" + b",x" * 1_000_000 + b"\n"


def _register_xlsx(
    rewrite: Callable[[str, bytes], bytes] = lambda name, data: data,
    extra: dict[str, bytes] | None = None,
    notes_first: bool = False,
) -> bytes:
    """A real one-household workbook (openpyxl's), each part passed through `rewrite`, with
    `extra` parts added; with `notes_first`, behind a sheet of instructions."""
    from openpyxl import Workbook

    book = Workbook()
    lon, lat = centre(A1)
    if notes_first:
        book.active.append(["填表说明"])
        book.create_sheet("住户")
        book.active = 1
    book.active.append(["building", "room", "lon", "lat"])
    book.active.append(["1号楼", "101", lon, lat])
    made = io.BytesIO()
    book.save(made)
    out = io.BytesIO()
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for part in src.infolist():
            dst.writestr(part.filename, rewrite(part.filename, src.read(part.filename)))
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out.getvalue()


def _xlsx_cut_sheet() -> bytes:
    """The sheet's XML cut in half: openpyxl fails only once rows are read."""
    return _register_xlsx(
        lambda name, data: data[: len(data) // 2] if "worksheets/" in name else data
    )


SHARED_STRINGS_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def _xlsx_huge_shared_strings(part: str = "xl/sharedStrings.xml") -> bytes:
    """A two-row sheet beside a shared-strings table of 600,000 strings (14 MB of XML that
    compresses ~50-fold: no zip bomb), which openpyxl would read whole before the first row;
    openpyxl finds the table by its content type, whatever `part` is called."""

    def declare(name: str, data: bytes) -> bytes:
        if name == "[Content_Types].xml":
            override = SHARED_STRINGS_TYPE.replace(b"/xl/sharedStrings.xml", b"/" + part.encode())
            return data.replace(b"</Types>", override + b"</Types>")
        return data

    table = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"".join(b"<si><t>%07d</t></si>" % n for n in range(600_000))
        + b"</sst>"
    )
    return _register_xlsx(declare, {part: table})


def _xlsx_many_merges(notes_first: bool = False) -> bytes:
    """A one-household sheet declaring 200,000 merged ranges (6 MB of XML, ~15-fold: no zip
    bomb), which the import would have to hold before the first row (with `notes_first`, a
    sheet of notes declaring them too in front, read to find the register's sheet)."""
    ranges = b"".join(b'<mergeCell ref="E%d:F%d"/>' % (n, n) for n in range(3, 200_003))
    tail = b'<mergeCells count="200000">' + ranges + b"</mergeCells>"

    def declare(name: str, data: bytes) -> bytes:
        if "worksheets/" in name:
            return data.replace(b"</sheetData>", b"</sheetData>" + tail)
        return data

    return _register_xlsx(declare, notes_first=notes_first)


def _xlsx_part_rewritten(part: str, rewrite: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    """A one-household workbook whose `part` is passed through `rewrite`. openpyxl parses the
    workbook's parts on opening (load_workbook), before any row: a part that is not XML raised
    ParseError, a number that is not one (numFmtId="abc", sheetId="abc") TypeError, and the
    import answered 500 (only the sheet's damage, found once rows are read, was a 422)."""
    return lambda: _register_xlsx(lambda name, data: rewrite(data) if name == part else data)


def _not_xml(data: bytes) -> bytes:
    return b"<notxml"


FILE_CASES = {
    "50 MB CSV": (lambda: Endless(b"1,116.4,39.9\n", 50 * MB), "register.csv", (413,)),
    "CSV of a million columns": (_csv_wide, "register.csv", (422,)),
    "a row of a million columns": (_csv_row_wide, "register.csv", (422,)),
    "invalid UTF-8 and GB18030": (
        lambda: b"building,lon,lat\n\xff\xff,116.4,39.9\n",
        "r.csv",
        (422,),
    ),
    "NaN and Infinity coordinates": (
        lambda: b"building,lon,lat\n1,nan,39.92\n2,116.40,inf\n3,-Infinity,39.9\n",
        "register.csv",
        (422,),
    ),
    "XLSX zip bomb": (_xlsx_bomb, "register.xlsx", (422,)),
    "a PNG named .xlsx": (_png, "register.xlsx", (422,)),
    "a PNG named .csv": (_png, "register.csv", (422,)),
    "a zip that is no workbook": (lambda: _zip({"a.txt": b"hello"}), "register.csv", (422,)),
    "an XLSX whose sheet is cut in half": (_xlsx_cut_sheet, "register.xlsx", (422,)),
    "an XLSX whose styles are not XML": (
        _xlsx_part_rewritten("xl/styles.xml", _not_xml),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose workbook part is not XML": (
        _xlsx_part_rewritten("xl/workbook.xml", _not_xml),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose workbook relationships are not XML": (
        _xlsx_part_rewritten("xl/_rels/workbook.xml.rels", _not_xml),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose document properties are not XML": (
        _xlsx_part_rewritten("docProps/core.xml", _not_xml),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose content types are not XML": (
        _xlsx_part_rewritten("[Content_Types].xml", _not_xml),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose number format id is not a number": (
        _xlsx_part_rewritten(
            "xl/styles.xml", lambda data: re.sub(rb'numFmtId="\d+"', b'numFmtId="abc"', data)
        ),
        "register.xlsx",
        (422,),
    ),
    "an XLSX whose sheet id is not a number": (
        _xlsx_part_rewritten(
            "xl/workbook.xml", lambda data: data.replace(b'sheetId="1"', b'sheetId="abc"')
        ),
        "register.xlsx",
        (422,),
    ),
    "an XLSX with 600,000 shared strings": (_xlsx_huge_shared_strings, "register.xlsx", (422,)),
    # The limit went by the part's name (…sharedStrings.xml): so named otherwise, the table was
    # read whole, 600,000 strings and more, before the first row.
    "an XLSX with 600,000 shared strings in a part named otherwise": (
        lambda: _xlsx_huge_shared_strings("xl/strings.xml"),
        "register.xlsx",
        (422,),
    ),
    "an XLSX declaring 200,000 merged ranges": (_xlsx_many_merges, "register.xlsx", (422,)),
    "an XLSX whose sheet of notes in front declares 200,000 merged ranges": (
        lambda: _xlsx_many_merges(notes_first=True),
        "register.xlsx",
        (422,),
    ),
    "300,000 rows out of range": (
        lambda: b"building,lon,lat\n" + b"1,200,0\n" * 300_000,
        "register.csv",
        (422,),
    ),
    "20,000 rows outside every grid": (
        lambda: b"building,lon,lat\n" + b"1,100.0,30.0\n" * 20_000,
        "register.csv",
        (422,),
    ),
    "an empty file": (lambda: b"", "register.csv", (422,)),
    "a CSV with no header": (lambda: b"\n\n\n", "register.csv", (422,)),
}


def multipart(client, path: str, headers: dict, name: str, data: bytes | Endless):
    """A multipart/form-data upload of one file, encoded here so a huge one is never held."""
    boundary = "hostile-input-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = data.wrapped(head, tail) if isinstance(data, Endless) else head + data + tail
    return post_raw(client, path, headers, body, f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("case", FILE_CASES)
def test_a_hostile_register_file_is_a_clear_4xx_in_bounded_memory(client, world, unchanged, case):
    make, name, statuses = FILE_CASES[case]
    data = make()
    with bounded_memory():
        response = multipart(client, "/api/v1/households/import", world.auth("admin_a"), name, data)
    assert_problem(response, *statuses)


def test_a_register_of_many_bad_rows_answers_the_first_hundred(client, world, unchanged):
    """Reading stops at 100 problems, whichever check finds them: the answer stays small."""
    data = b"building,lon,lat\n" + b"1,200,0\n" * 5_000
    response = multipart(
        client, "/api/v1/households/import", world.auth("admin_a"), "register.csv", data
    )
    body = assert_problem(response, 422)
    assert len(body["errors"]) == 100
    assert body["detail"].startswith("At least 100 problems (reading stopped there)")


# --- files: visit photos ----------------------------------------------------------------------
@pytest.fixture()
def visit_id(client, world, photo_dir):
    item = visit_item(world.households[A1][0])
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert response.json["results"][0]["status"] == "created"
    return item["id"]


@pytest.fixture()
def no_new_photos(session, photo_dir, visit_id):
    before = counts(session)
    yield
    session.expire_all()
    assert counts(session) == before
    assert not [p for p in photo_dir.rglob("*") if p.is_file()]


def _lying_jpeg() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"not really a photo" * 100


def _truncated_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(out, "JPEG")
    return out.getvalue()[:300]


def _webp(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WEBP" + b"".join(
        kind + len(payload).to_bytes(4, "little") + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in chunks
    )
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _webp_garbage() -> bytes:
    """A lossless frame header (64x64) followed by bytes that are no Huffman codes."""
    bits = (64 - 1) | (64 - 1) << 14
    garbage = bytes((i * 37 + 11) & 0xFF for i in range(4000))
    return _webp((b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + garbage))


def _webp_canvas(width: int, height: int) -> bytes:
    """A lossless frame header claiming width x height, its data a few bytes: a bomb."""
    bits = (width - 1) | (height - 1) << 14
    return _webp((b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 32))


PHOTO_CASES = {
    "50 MB photo": (lambda: Endless(b"\xff\xd8\xff" + b"\x00" * 997, 50 * MB), (413,)),
    "a .png that is a zip": (lambda: _zip({"photo.png": b"\x89PNG"}), (415,)),
    "a JPEG with a lying header": (_lying_jpeg, (415,)),
    "a truncated JPEG": (_truncated_jpeg, (415,)),
    "a PNG with a broken chunk": (lambda: _png()[:-20] + b"\x00" * 20, (415,)),
    "a PNG claiming 60000x60000 pixels": (lambda: _png(60_000, 60_000, zlib.compress(b"")), (413,)),
    "a GIF": (lambda: b"GIF89a" + b"\x00" * 100, (415,)),
    "a WebP of garbage image data": (lambda: _webp_garbage(), (415,)),
    "a WebP claiming 16383x16383 pixels": (lambda: _webp_canvas(16383, 16383), (413,)),
    "a WebP claiming 7000x7000 pixels": (lambda: _webp_canvas(7000, 7000), (413,)),
}


@pytest.mark.parametrize("case", PHOTO_CASES)
def test_a_hostile_photo_is_a_clear_4xx_in_bounded_memory_and_stores_nothing(
    client, world, no_new_photos, visit_id, case
):
    make, statuses = PHOTO_CASES[case]
    with bounded_memory():
        response = multipart(
            client,
            f"/api/v1/visits/{visit_id}/photos",
            world.auth("worker_a1"),
            "photo.png",
            make(),
        )
    assert_problem(response, *statuses)


# --- forms: what a 413 says -------------------------------------------------------------------
FORM_BOUNDARY = "form-limits-boundary"


def _form(fields: list[tuple[str, bytes]]) -> bytes:
    """A multipart/form-data body: the photo, then `fields` (text parts)."""
    parts = [
        (b'name="file"; filename="photo.png"', _png()),
        *((f'name="{name}"'.encode(), value) for name, value in fields),
    ]
    return (
        b"".join(
            b"--%s\r\nContent-Disposition: form-data; %s\r\n\r\n%s\r\n"
            % (FORM_BOUNDARY.encode(), disposition, value)
            for disposition, value in parts
        )
        + f"--{FORM_BOUNDARY}--\r\n".encode()
    )


def post_form(client, world, visit_id, body: bytes | Endless, chunked: bool = False):
    """The photo upload of `body`, with its Content-Length or sent chunked (as gunicorn passes
    such a body on)."""
    headers = world.auth("worker_a1")
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        sent = {"environ_overrides": {"CONTENT_LENGTH": "", "wsgi.input_terminated": True}}
    else:
        sent = {"content_length": body.size if isinstance(body, Endless) else len(body)}
    return client.post(
        f"/api/v1/visits/{visit_id}/photos",
        input_stream=body if isinstance(body, Endless) else io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={FORM_BOUNDARY}",
        headers=headers,
        **sent,
    )


def test_a_form_of_more_than_1000_parts_is_a_413_that_says_so(
    client, world, no_new_photos, visit_id
):
    """It was answered as a body over the 20 MB limit: 30 KB of parts."""
    body = _form([("note", b"x")] * 1000)  # with the photo, 1,001 parts
    response = post_form(client, world, visit_id, body)
    detail = assert_problem(response, 413)["detail"]
    assert detail == "The form holds more than the limit of 1,000 parts (fields and files)."


def test_a_form_of_1000_parts_is_read(client, world, no_new_photos, visit_id):
    """Refused for another reason than its parts: a field the form does not take."""
    body = _form([("note", b"x")] * 999)
    response = post_form(client, world, visit_id, body)
    assert assert_problem(response, 422)["errors"] == {"multipart": {"note": ["Unknown field."]}}


def test_a_form_text_field_over_500_000_bytes_is_a_413_that_says_so(
    client, world, no_new_photos, visit_id
):
    body = _form([("sha256", b"0" * 500_001)])
    response = post_form(client, world, visit_id, body)
    detail = assert_problem(response, 413)["detail"]
    assert detail == "A form field (not a file) is larger than the limit of 500,000 bytes."


def test_a_chunked_form_over_20_mb_is_a_413_that_says_so(client, world, no_new_photos, visit_id):
    head = _form([]).removesuffix(f"--{FORM_BOUNDARY}--\r\n".encode())[:-2]
    body = Endless(b"\x00", 25 * MB, head=head, tail=f"\r\n--{FORM_BOUNDARY}--\r\n".encode())
    with bounded_memory():
        response = post_form(client, world, visit_id, body, chunked=True)
    detail = assert_problem(response, 413)["detail"]
    assert detail == "The request body is larger than the limit of 20 MB."


# --- the CLI imports --------------------------------------------------------------------------
@pytest.fixture()
def gridwork(app):
    def run(*args: str):
        with app.app_context():
            return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def _feature_collection(geometry_json: str) -> bytes:
    return (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
        f'{{"code":"{A}009","name":"x"}},"geometry":{geometry_json}}}]}}'
    ).encode()


CLI_GRID_CASES = {
    "nesting 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
    "NaN coordinates": (
        _feature_collection('{"type":"Polygon","coordinates":[[[NaN,39.9],[116.4,39.9]]]}'),
        "NaN",
    ),
    "invalid UTF-8": (b'{"type":"FeatureCollection\xff"}', "not UTF-8"),
    "1e6-vertex polygon": (
        _feature_collection(json.dumps(_polygon_with(1_000_000))),
        "at most 10,000",
    ),
    "self-intersecting polygon": (_feature_collection(json.dumps(BOW_TIE)), "self-intersection"),
}


@pytest.mark.parametrize("case", CLI_GRID_CASES)
def test_cli_grid_import_of_hostile_geojson_exits_with_the_reason(
    gridwork, session, world, tmp_path, unchanged, case
):
    content, words = CLI_GRID_CASES[case]
    path = tmp_path / "grids.geojson"
    path.write_bytes(content)
    result = gridwork("import", "grids", str(path))
    assert result.exit_code != 0
    assert words in result.output


@pytest.mark.parametrize(
    ("make", "name", "words"),
    [
        (_xlsx_bomb, "register.xlsx", "zip bomb"),
        (_csv_wide, "register.csv", "columns"),
        (_png, "register.xlsx", "not a workbook"),
        (_xlsx_part_rewritten("xl/styles.xml", _not_xml), "register.xlsx", "not a readable"),
    ],
    ids=["xlsx bomb", "a million columns", "a PNG named .xlsx", "XLSX styles not XML"],
)
def test_cli_household_import_of_a_hostile_file_exits_with_the_reason(
    gridwork, session, world, tmp_path, unchanged, make, name, words
):
    path = tmp_path / name
    path.write_bytes(make())
    with bounded_memory():
        result = gridwork("import", "households", str(path))
    assert result.exit_code == 1
    assert words in result.output
