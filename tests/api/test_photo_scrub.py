"""`gridwork photos scrub`: photos stored before uploads were stripped lose their metadata."""

from __future__ import annotations

import hashlib
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.cli import main
from api.models import AuditEntry, VisitPhoto
from api.services.photos import LocalStorage, SealedStorage, load_name_key, strip_metadata
from tests.factories import A1, image_bytes, visit_item
from tests.fakes.file_opens import FileOpens

BEIJING = {1: "N", 2: (39.0, 54.0, 26.52), 3: "E", 4: (116.0, 23.0, 29.2)}


def phone_photo(kind: str = "JPEG", gps: dict = BEIJING, serial: str = "SN-0042") -> bytes:
    """A photo as a phone writes it: the resident's door to the metre, the camera's serial."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker-8842"
    exif[ExifTags.Base.BodySerialNumber] = serial
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps)
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 40, 40)).save(out, kind, exif=exif)
    return out.getvalue()


def carries_location(data: bytes) -> bool:
    from PIL import ExifTags, Image

    with Image.open(io.BytesIO(data)) as image:
        return bool(image.getexif().get_ifd(ExifTags.IFD.GPSInfo)) or b"SN-0042" in data


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    (tmp_path / "photos").mkdir()
    return tmp_path / "photos"


def new_visit(client, world, user="worker_a1") -> str:
    item = visit_item(world.households[A1][0])
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth(user)
    )
    assert response.json["results"][0]["status"] == "created"
    return item["id"]


@pytest.fixture()
def visit_id(client, world):
    return new_visit(client, world)


def store_as_before(session, world, photo_dir, visit_id, data: bytes) -> VisitPhoto:
    """What the upload did before it stripped metadata: the bytes as sent, under their hash."""
    digest = hashlib.sha256(data).hexdigest()
    LocalStorage(photo_dir).put(digest, data)
    photo = VisitPhoto(
        visit_id=visit_id,
        sha256=digest,
        content_type="image/jpeg" if data[:2] == b"\xff\xd8" else "image/png",
        size_bytes=len(data),
        uploaded_by_id=world.users["worker_a1"].id,
    )
    session.add(photo)
    session.commit()
    return photo


def stored_files(photo_dir) -> dict[str, bytes]:
    """Each image stored, opened (sealed or from before sealing), by the key it is stored under."""
    from api.extensions import db

    with db.new_session() as session:
        storage = SealedStorage(photo_dir, load_name_key(session))
    return {key: storage.get(key) for key in storage.iter_keys()}


@pytest.fixture()
def gridwork(app):
    def run(*args: str):
        with app.app_context():
            return CliRunner().invoke(main, ["photos", "scrub", *args])

    return run


def test_an_old_photo_loses_its_location_and_is_served_at_the_same_url(
    client, world, session, photo_dir, visit_id, gridwork
):
    original = phone_photo()
    photo = store_as_before(session, world, photo_dir, visit_id, original)
    url = f"/api/v1/visits/{visit_id}/photos/{photo.id}"
    assert carries_location(client.get(url, headers=world.auth("leader_a")).data)

    result = gridwork()

    assert result.exit_code == 0, result.output
    assert "1 photo scrubbed" in result.output
    served = client.get(url, headers=world.auth("leader_a"))
    assert served.status_code == 200
    assert served.data == strip_metadata(original, "image/jpeg")
    assert not carries_location(served.data)
    assert served.headers["ETag"] == f'"{hashlib.sha256(served.data).hexdigest()}"'
    listed = client.get(f"/api/v1/visits/{visit_id}", headers=world.auth("leader_a")).json
    assert [(p["id"], p["url"], p["sha256"], p["size_bytes"]) for p in listed["photos"]] == [
        (photo.id, url, hashlib.sha256(served.data).hexdigest(), len(served.data))
    ]


def test_no_stored_file_keeps_the_location(session, world, photo_dir, visit_id, gridwork):
    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    store_as_before(session, world, photo_dir, visit_id, phone_photo("PNG"))

    assert gridwork().exit_code == 0

    files = stored_files(photo_dir)
    assert len(files) == 2
    for name, data in files.items():
        assert hashlib.sha256(data).hexdigest() == name  # still content-addressed
        assert not carries_location(data)


def test_the_orientation_is_kept(session, world, photo_dir, visit_id, gridwork):
    from PIL import ExifTags, Image

    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    gridwork()
    [data] = stored_files(photo_dir).values()
    with Image.open(io.BytesIO(data)) as image:
        assert dict(image.getexif()) == {ExifTags.Base.Orientation: 6}


def test_a_second_run_changes_nothing(session, world, photo_dir, visit_id, gridwork):
    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    store_as_before(session, world, photo_dir, visit_id, image_bytes("JPEG"))  # nothing to strip
    assert "1 photo scrubbed" in gridwork().output
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in photo_dir.rglob("*") if p.is_file()}
    rows = session.execute(select(VisitPhoto.id, VisitPhoto.sha256, VisitPhoto.size_bytes)).all()
    audit_entries = session.scalars(select(AuditEntry.id)).all()

    again = gridwork()

    assert again.exit_code == 0, again.output
    assert "0 photos scrubbed" in again.output and "2 already clean" in again.output
    assert {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in photo_dir.rglob("*") if p.is_file()
    } == files
    session.expire_all()
    assert (
        session.execute(select(VisitPhoto.id, VisitPhoto.sha256, VisitPhoto.size_bytes)).all()
        == rows
    )
    assert session.scalars(select(AuditEntry.id)).all() == audit_entries


def upload(client, world, visit_id, data: bytes) -> dict:
    response = client.post(
        f"/api/v1/visits/{visit_id}/photos",
        data={"file": (io.BytesIO(data), "photo.jpg")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    return response.json


def test_a_second_run_reads_no_photo_bytes(client, session, world, photo_dir, visit_id, gridwork):
    """Each run read every stored photo again to find it clean; a photo found clean (or
    stripped) is marked so, and a run reads only the photos not marked yet."""
    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    store_as_before(session, world, photo_dir, visit_id, image_bytes("JPEG"))  # nothing to strip
    upload(client, world, visit_id, phone_photo("PNG"))
    with FileOpens(photo_dir) as first_run:
        assert "1 photo scrubbed" in gridwork().output
    assert first_run.names  # the counter sees the reads of the storage in use

    with FileOpens(photo_dir) as second_run:
        again = gridwork()

    assert again.exit_code == 0, again.output
    assert second_run.names == []
    assert "0 photos scrubbed" in again.output and "3 already clean" in again.output


def test_an_uploaded_photo_is_not_read_by_the_scrub(
    client, session, world, photo_dir, visit_id, gridwork
):
    """An upload stores the image stripped: it is marked clean as it is stored."""
    upload(client, world, visit_id, phone_photo())
    with FileOpens(photo_dir) as opens:
        result = gridwork()
    assert result.exit_code == 0, result.output
    assert opens.names == []
    assert "0 photos scrubbed, 1 already clean" in result.output


def test_a_dry_run_says_how_many_photos_are_not_marked_clean(
    client, session, world, photo_dir, visit_id, gridwork
):
    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    store_as_before(session, world, photo_dir, visit_id, image_bytes("JPEG"))
    upload(client, world, visit_id, phone_photo("PNG"))

    result = gridwork("--dry-run")

    assert result.exit_code == 0, result.output
    assert "2 photos not marked clean" in result.output
    session.expire_all()
    assert sorted(p.stripped_at is None for p in session.scalars(select(VisitPhoto))) == [
        False,
        True,
        True,
    ]  # a dry run marks nothing
    assert gridwork().exit_code == 0
    assert "0 photos not marked clean" in gridwork("--dry-run").output


def test_a_photo_the_scrub_could_not_read_is_read_again_next_time(
    session, world, photo_dir, visit_id, gridwork
):
    damaged = store_as_before(session, world, photo_dir, visit_id, phone_photo()[:-300])
    assert gridwork().exit_code == 1
    with FileOpens(photo_dir) as opens:
        result = gridwork()
    assert result.exit_code == 1
    assert opens.names == [damaged.sha256]


def test_a_dry_run_counts_and_changes_nothing(session, world, photo_dir, visit_id, gridwork):
    photo = store_as_before(session, world, photo_dir, visit_id, phone_photo())
    before = stored_files(photo_dir)

    result = gridwork("--dry-run")

    assert result.exit_code == 0, result.output
    assert "would scrub 1 photo" in result.output
    assert stored_files(photo_dir) == before
    session.expire_all()
    assert session.get(VisitPhoto, photo.id).sha256 == hashlib.sha256(phone_photo()).hexdigest()


def test_a_failed_write_leaves_the_old_photo_readable(
    client, world, session, photo_dir, visit_id, gridwork, monkeypatch
):
    """A crash before the new file is in place: the row and the old file are untouched."""
    original = phone_photo()
    photo = store_as_before(session, world, photo_dir, visit_id, original)

    def disk_full(self, key, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(LocalStorage, "write", disk_full)  # where every file is written
        result = gridwork()

    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    url = f"/api/v1/visits/{visit_id}/photos/{photo.id}"
    assert client.get(url, headers=world.auth("leader_a")).data == original
    assert gridwork().exit_code == 0  # run again: done
    assert client.get(url, headers=world.auth("leader_a")).data == strip_metadata(
        original, "image/jpeg"
    )


def test_a_crash_after_the_switch_leaves_the_old_file_to_the_next_run(
    client, world, session, photo_dir, visit_id, gridwork, monkeypatch
):
    """The row points at the new file; the old one (with the location) is removed next time."""
    original = phone_photo()
    photo = store_as_before(session, world, photo_dir, visit_id, original)

    def crash(self, key):
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(LocalStorage, "delete", crash)
        assert gridwork().exit_code == 1

    url = f"/api/v1/visits/{visit_id}/photos/{photo.id}"
    clean = strip_metadata(original, "image/jpeg")
    assert client.get(url, headers=world.auth("leader_a")).data == clean
    assert original in stored_files(photo_dir).values()

    result = gridwork()

    assert result.exit_code == 0, result.output
    assert "1 old file removed" in result.output
    assert list(stored_files(photo_dir).values()) == [clean]


def test_two_old_photos_of_one_visit_that_become_identical_are_one_attachment(
    client, world, session, photo_dir, visit_id, gridwork
):
    """The same picture sent twice with different metadata (two positions): after the scrub
    they are the same image, which a visit holds once; the first attachment keeps its id."""
    first = store_as_before(session, world, photo_dir, visit_id, phone_photo())
    second = store_as_before(
        session, world, photo_dir, visit_id, phone_photo(gps={**BEIJING, 4: (116.0, 23.0, 30.1)})
    )

    result = gridwork()

    assert result.exit_code == 0, result.output
    assert "1 merged into an identical photo of its visit" in result.output
    listed = client.get(f"/api/v1/visits/{visit_id}", headers=world.auth("leader_a")).json
    assert [p["id"] for p in listed["photos"]] == [first.id]
    gone = client.get(
        f"/api/v1/visits/{visit_id}/photos/{second.id}", headers=world.auth("leader_a")
    )
    assert gone.status_code == 404
    assert len(stored_files(photo_dir)) == 1


def test_an_old_photo_uploaded_again_after_the_fix_keeps_the_first_id(
    client, world, session, photo_dir, visit_id, gridwork
):
    original = phone_photo()
    old = store_as_before(session, world, photo_dir, visit_id, original)
    again = client.post(
        f"/api/v1/visits/{visit_id}/photos",
        data={"file": (io.BytesIO(original), "photo.jpg")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    ).json
    assert again["duplicate"] is False  # different bytes then

    assert gridwork().exit_code == 0

    listed = client.get(f"/api/v1/visits/{visit_id}", headers=world.auth("leader_a")).json
    assert [(p["id"], p["sha256"]) for p in listed["photos"]] == [(old.id, again["sha256"])]


def test_the_same_old_photo_in_two_visits_is_stored_once(
    client, world, session, photo_dir, visit_id, gridwork
):
    other_visit = new_visit(client, world)
    a = store_as_before(session, world, photo_dir, visit_id, phone_photo())
    b = store_as_before(
        session, world, photo_dir, other_visit, phone_photo(gps={**BEIJING, 2: (39.0, 54.0, 27)})
    )

    assert "2 photos scrubbed" in gridwork().output

    session.expire_all()
    assert session.get(VisitPhoto, a.id).sha256 == session.get(VisitPhoto, b.id).sha256
    assert len(stored_files(photo_dir)) == 1


def test_a_damaged_old_photo_is_named_and_the_rest_scrubbed(
    session, world, photo_dir, visit_id, gridwork
):
    damaged = store_as_before(session, world, photo_dir, visit_id, phone_photo()[:-300])
    store_as_before(session, world, photo_dir, visit_id, phone_photo("PNG"))

    result = gridwork()

    assert result.exit_code == 1
    assert "1 photo scrubbed" in result.output
    assert f"could not be read, left as stored: photo {damaged.id}" in result.output


def test_an_old_photo_whose_sealed_file_is_damaged_is_named_and_kept(
    session, world, photo_dir, visit_id, gridwork
):
    """Sealed by `security encrypt` before the scrub ran, then changed on disk."""
    from api import crypto

    damaged = store_as_before(session, world, photo_dir, visit_id, phone_photo())
    storage = SealedStorage(photo_dir, load_name_key(session))
    sealed = crypto.seal_bytes(storage.plain.get(damaged.sha256))
    storage.sealed.write(storage.name(damaged.sha256), sealed[:-1])
    storage.plain.delete(damaged.sha256)

    result = gridwork()

    assert result.exit_code == 1
    assert f"could not be read, left as stored: photo {damaged.id}" in result.output
    assert storage.sealed.get(storage.name(damaged.sha256)) == sealed[:-1]


def test_the_scrub_is_audited_as_a_console_update(session, world, photo_dir, visit_id, gridwork):
    photo = store_as_before(session, world, photo_dir, visit_id, phone_photo())
    gridwork()
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all()
    assert (entry.resource, entry.resource_ids, entry.user_id) == ("visit_photo", [photo.id], None)
    assert [str(u) for u in entry.resource_uuids] == [visit_id]
    assert entry.path == "gridwork photos scrub"


@pytest.mark.parametrize(
    ("args", "says"),
    [(("--dryrun",), "No such option '--dryrun'"), (("all",), "unexpected extra argument")],
)
def test_a_bad_argument_is_named(photo_dir, gridwork, args, says):
    result = gridwork(*args)
    assert result.exit_code == 2
    assert says in result.output


def test_a_photo_directory_that_does_not_exist_is_named(
    app, session, world, tmp_path, photo_dir, visit_id, gridwork
):
    """Run from another directory, the default `var/photos` finds none of them."""
    store_as_before(session, world, photo_dir, visit_id, phone_photo())
    app.config["PHOTO_DIR"] = str(tmp_path / "nowhere")
    result = gridwork()
    assert result.exit_code == 1
    assert "nowhere" in result.output and "GRIDWORK_PHOTO_DIR" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_storage_is_named(app, gridwork):
    app.config["PHOTO_STORAGE"] = "s3"
    result = gridwork()
    assert result.exit_code == 1
    assert "unknown PHOTO_STORAGE 's3'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_stripping_a_stripped_photo_changes_nothing(kind):
    """The scrub finds a photo clean when stripping it again gives the same bytes."""
    types = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
    once = strip_metadata(phone_photo(kind), types[kind])
    assert strip_metadata(once, types[kind]) == once


def test_a_photo_read_while_it_is_scrubbed_is_served(
    app, client, world, session, photo_dir, visit_id, monkeypatch
):
    """The reader had the row (old hash); the scrub switched it and removed the old file
    before the reader fetched the bytes: it reads the row again instead of answering 404."""
    from api.extensions import db
    from api.services.photo_scrub import scrub_photos

    original = phone_photo()
    photo = store_as_before(session, world, photo_dir, visit_id, original)
    get = LocalStorage.get

    def scrubbed_meanwhile(self, key):
        monkeypatch.setattr(LocalStorage, "get", get)
        scrub_photos(db.begin, LocalStorage(photo_dir))
        return get(self, key)

    monkeypatch.setattr(LocalStorage, "get", scrubbed_meanwhile)
    served = client.get(
        f"/api/v1/visits/{visit_id}/photos/{photo.id}", headers=world.auth("leader_a")
    )
    assert served.status_code == 200
    assert served.data == strip_metadata(original, "image/jpeg")
    assert served.headers["ETag"] == f'"{hashlib.sha256(served.data).hexdigest()}"'


def test_the_stripped_bytes_are_stored_under_the_lock_retention_deletes_by(
    session, world, photo_dir, visit_id, gridwork, database_url, monkeypatch
):
    """Found by a review: the scrub stored the stripped image, then pointed the photo at it in
    a transaction of its own. Retention, deleting the bytes no photo points at (a twin photo
    of the same image past its 180 days), could delete them in between: the photo then pointed
    at a missing file. They are stored under the photo lock of their hash (as an upload stores
    its bytes), held until the photo points at them."""
    import psycopg

    from api.services.photos import PHOTO_LOCK_CLASS

    original = phone_photo()
    store_as_before(session, world, photo_dir, visit_id, original)
    clean_key = hashlib.sha256(strip_metadata(original, "image/jpeg")).hexdigest()
    held_at_put: list[bool] = []
    put = SealedStorage.put

    def watched(self, key, data, *args, **kwargs):
        if key == clean_key:
            with psycopg.connect(database_url.replace("+psycopg", "")) as other:
                held_at_put.append(
                    other.execute(
                        "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND "
                        "granted AND classid = %s AND objid::bigint = "
                        "(hashtext(%s)::bigint + 4294967296) %% 4294967296",
                        (PHOTO_LOCK_CLASS, key),
                    ).fetchone()[0]
                )
        return put(self, key, data, *args, **kwargs)

    monkeypatch.setattr(SealedStorage, "put", watched)

    assert gridwork().exit_code == 0

    assert held_at_put == [True]
