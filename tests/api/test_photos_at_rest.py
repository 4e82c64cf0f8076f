"""Visit photos at rest: sealed by the data key under names that do not give the image away,
served opened, sealed and re-sealed by `gridwork security encrypt`."""

from __future__ import annotations

import hashlib
import logging

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api import crypto
from api.cli import main
from api.services import photo_sealing
from api.services.encryption import forget_other_keys, record_key, retire_other_keys
from api.services.photos import (
    SealedStorage,
    build_storage,
    clean_image,
    load_name_key,
    sniff_image_type,
)
from tests.api.test_photo_scrub import upload
from tests.factories import A1, TEST_SETTINGS, image_bytes, visit_item

JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")
WEBP = image_bytes("WEBP")
TEST_KID = crypto.key_id(crypto._decode_key(TEST_SETTINGS["DATA_KEY"], "key"))


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    return tmp_path / "photos"


@pytest.fixture()
def storage(app, session, photo_dir) -> SealedStorage:
    return build_storage(app.config, load_name_key(session))


def new_visit(client, world, household: int = 0) -> str:
    item = visit_item(world.households[A1][household])
    response = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert response.json["results"][0]["status"] == "created"
    return item["id"]


@pytest.fixture()
def visit_id(client, world):
    return new_visit(client, world)


def served(client, world, url):
    return client.get(url, headers=world.auth("worker_a1"))


def files(photo_dir) -> list:
    """Every file stored (temporary files of a write in flight left out)."""
    return sorted(p for p in photo_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def as_before_sealing(storage: SealedStorage, key: str) -> bytes:
    """Turn a photo's file back into what was stored before photos were sealed: the image in
    plaintext, named by its SHA-256."""
    data = storage.get(key)
    storage.sealed.delete(storage.name(key))
    storage.plain.write(key, data)
    return data


def encrypt(app, *args: str):
    with app.app_context():
        return CliRunner().invoke(main, ["security", "encrypt", *args])


class Rotation:
    """A rotation under way: GRIDWORK_DATA_KEY is a new key, the test key is listed in
    GRIDWORK_OLD_DATA_KEYS (`on`); `off`: a process still on the test key alone."""

    def __init__(self) -> None:
        self.key = crypto.new_key()
        self.kid = crypto.key_id(crypto._decode_key(self.key, "key"))

    def on(self) -> None:
        crypto.configure(self.key, TEST_SETTINGS["DATA_KEY"])

    def off(self) -> None:
        crypto.configure(TEST_SETTINGS["DATA_KEY"])


@pytest.fixture()
def rotation():
    rotation = Rotation()
    yield rotation
    rotation.off()


def key_state(session, kid: str) -> tuple:
    return session.execute(
        text("SELECT retired_at IS NOT NULL, emptied_at IS NOT NULL FROM data_keys WHERE kid = :k"),
        {"k": kid},
    ).one()


# --- the sealed bytes ---------------------------------------------------------------------------
def test_sealed_bytes_open_to_what_was_sealed_and_name_their_key(app):
    sealed = crypto.seal_bytes(JPEG)
    assert crypto.sealed_bytes_key_id(sealed) == TEST_KID
    assert crypto.open_bytes(sealed) == JPEG
    assert sniff_image_type(sealed) is None
    assert len(sealed) == len(JPEG) + crypto.BYTES_OVERHEAD


def test_sealed_bytes_changed_by_one_bit_do_not_open(app):
    sealed = bytearray(crypto.seal_bytes(JPEG))
    sealed[-20] ^= 1
    with pytest.raises(crypto.SealedBytesDamaged):
        crypto.open_bytes(bytes(sealed))


def test_sealed_bytes_of_a_key_not_configured_are_a_data_key_error(app):
    sealed = crypto.seal_bytes(JPEG)
    crypto.configure(crypto.new_key())
    try:
        with pytest.raises(crypto.DataKeyError, match=TEST_KID):
            crypto.open_bytes(sealed)
    finally:
        crypto.configure(TEST_SETTINGS["DATA_KEY"])


# --- uploads and reads --------------------------------------------------------------------------
def test_an_uploaded_photo_is_stored_sealed_not_as_the_image(client, world, photo_dir, visit_id):
    upload(client, world, visit_id, JPEG)
    (stored,) = files(photo_dir)
    data = stored.read_bytes()
    assert sniff_image_type(data) is None
    assert clean_image(JPEG, "image/jpeg") not in data
    assert crypto.sealed_bytes_key_id(data) == TEST_KID


def test_a_sealed_photos_file_name_is_not_the_images_hash(client, world, photo_dir, visit_id):
    uploaded = upload(client, world, visit_id, JPEG)
    (stored,) = files(photo_dir)
    assert uploaded["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert uploaded["sha256"] not in str(stored.relative_to(photo_dir))
    assert stored.relative_to(photo_dir).parts[0] == "sealed"


def test_a_sealed_photo_is_served_as_the_cleaned_image(client, world, photo_dir, visit_id):
    for image, kind in ((JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp")):
        response = served(client, world, upload(client, world, visit_id, image)["url"])
        assert response.status_code == 200
        assert response.data == clean_image(image, kind)
        assert response.mimetype == kind


def test_one_image_attached_to_two_visits_is_one_sealed_file(client, world, photo_dir):
    first, second = new_visit(client, world, 0), new_visit(client, world, 1)
    a, b = upload(client, world, first, PNG), upload(client, world, second, PNG)
    assert a["id"] != b["id"]
    assert len(files(photo_dir)) == 1
    assert served(client, world, a["url"]).data == served(client, world, b["url"]).data == PNG


def test_the_sealed_files_list_as_their_images_hashes(client, world, storage, visit_id):
    keys = {upload(client, world, visit_id, image)["sha256"] for image in (JPEG, PNG)}
    assert set(storage.iter_keys()) == keys


def test_a_photo_stored_before_sealing_is_still_served(client, world, storage, visit_id):
    uploaded = upload(client, world, visit_id, JPEG)
    before = as_before_sealing(storage, uploaded["sha256"])
    assert sniff_image_type(storage.plain.get(uploaded["sha256"])) == "image/jpeg"
    response = served(client, world, uploaded["url"])
    assert response.status_code == 200
    assert response.data == before


def test_a_tampered_photo_file_is_a_logged_500_problem(client, world, photo_dir, visit_id, caplog):
    uploaded = upload(client, world, visit_id, JPEG)
    (stored,) = files(photo_dir)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x40
    stored.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="gridwork.photos"):
        response = served(client, world, uploaded["url"])
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("stored-data-damaged")
    assert f"photo {uploaded['id']}" in response.json["detail"]
    assert any(
        r.levelno == logging.ERROR and f"photo {uploaded['id']}" in r.getMessage()
        for r in caplog.records
    )


def test_another_photos_file_put_in_place_of_one_is_refused(client, world, storage, visit_id):
    """Every file opens with the data key: the bytes are checked against the hash asked for."""
    jpeg, png = upload(client, world, visit_id, JPEG), upload(client, world, visit_id, PNG)
    png_file = storage.sealed.get(storage.name(png["sha256"]))
    storage.sealed.write(storage.name(jpeg["sha256"]), png_file)
    response = served(client, world, jpeg["url"])
    assert response.status_code == 500
    assert response.json["type"].endswith("stored-data-damaged")


def test_uploading_again_repairs_a_damaged_file(client, world, storage, photo_dir, visit_id):
    uploaded = upload(client, world, visit_id, JPEG)
    (stored,) = files(photo_dir)
    stored.write_bytes(stored.read_bytes()[:-5])
    assert served(client, world, uploaded["url"]).status_code == 500
    upload(client, world, visit_id, JPEG)
    assert served(client, world, uploaded["url"]).data == JPEG


def test_an_upload_replaces_a_file_sealed_by_a_retired_key(
    client, world, session, storage, visit_id, rotation
):
    """A process on the old key, not yet restarted after a rotation passed, leaves a file its
    refused commit does not point at: the retry, on the new key, must not keep that file (the
    old key is about to be dropped)."""
    digest = hashlib.sha256(JPEG).hexdigest()
    storage.sealed.write(storage.name(digest), crypto.seal_bytes(JPEG))  # the old process
    record_key(session.connection(), TEST_KID)  # as the old process's first seal did
    rotation.on()
    retire_other_keys(session.connection())  # the rotation retired the old key
    uploaded = upload(client, world, visit_id, JPEG)
    assert storage.sealed_key_id(uploaded["sha256"]) == rotation.kid


def test_an_upload_keeps_a_sound_file_sealed_by_a_key_not_retired(
    client, world, storage, visit_id, rotation
):
    """A process on the new key meets a file of the old one before the rotation retired it:
    re-sealing is the rotation's to do, not every upload's."""
    digest = hashlib.sha256(JPEG).hexdigest()
    storage.sealed.write(storage.name(digest), crypto.seal_bytes(JPEG))
    rotation.on()
    upload(client, world, visit_id, JPEG)
    assert storage.sealed_key_id(digest) == TEST_KID


# --- gridwork security encrypt --------------------------------------------------------------------
def test_security_encrypt_seals_a_photo_stored_before_sealing(
    app, client, world, storage, photo_dir, visit_id
):
    uploaded = upload(client, world, visit_id, JPEG)
    as_before_sealing(storage, uploaded["sha256"])
    result = encrypt(app)
    assert result.exit_code == 0, result.output
    assert "photo files: 1 sealed from plaintext, 0 re-sealed from an old key" in result.output
    assert "and 1 photo file(s) under the current key" in result.output
    (stored,) = files(photo_dir)
    assert stored.relative_to(photo_dir).parts[0] == "sealed"
    assert crypto.sealed_bytes_key_id(stored.read_bytes()) == TEST_KID
    assert served(client, world, uploaded["url"]).data == JPEG


def test_security_encrypt_run_again_seals_no_photo(app, client, world, storage, visit_id):
    uploaded = upload(client, world, visit_id, JPEG)
    as_before_sealing(storage, uploaded["sha256"])
    assert encrypt(app).exit_code == 0
    again = encrypt(app)
    assert again.exit_code == 0, again.output
    assert "and 0 photo file(s) under the current key" in again.output
    assert served(client, world, uploaded["url"]).data == JPEG


def test_security_encrypt_killed_midway_loses_no_photo_and_finishes_when_run_again(
    app, client, world, storage, photo_dir, monkeypatch
):
    """Killed after a sealed copy is written and before its plaintext is removed."""
    visits = [new_visit(client, world, i) for i in range(3)]
    images = [JPEG, PNG, WEBP]
    photos = [upload(client, world, v, image) for v, image in zip(visits, images, strict=True)]
    for photo in photos:
        as_before_sealing(storage, photo["sha256"])
    removals = []

    def killed_at_the_second(self, key):
        if len(removals) == 1:
            raise KeyboardInterrupt  # what SIGINT raises; SIGKILL leaves the same files
        removals.append(key)
        (self.root / key[:2] / key[2:4] / key).unlink()

    monkeypatch.setattr(type(storage.plain), "delete", killed_at_the_second)
    assert encrypt(app).exit_code != 0
    monkeypatch.undo()
    for photo, image in zip(photos, images, strict=True):
        assert served(client, world, photo["url"]).data == image
    again = encrypt(app)
    assert again.exit_code == 0, again.output
    assert "photo files: 2 sealed from plaintext" in again.output
    assert len(files(photo_dir)) == 3
    assert all(p.relative_to(photo_dir).parts[0] == "sealed" for p in files(photo_dir))
    for photo, image in zip(photos, images, strict=True):
        assert served(client, world, photo["url"]).data == image


def test_security_encrypt_stopped_by_a_full_disk_says_so_and_forgets_no_key(
    app, client, world, session, storage, visit_id, rotation, monkeypatch
):
    uploaded = upload(client, world, visit_id, PNG)
    rotation.on()

    def disk_full(self, key, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(storage.sealed), "write", disk_full)
    result = encrypt(app)
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert key_state(session, TEST_KID) == (True, False)
    monkeypatch.undo()
    assert served(client, world, uploaded["url"]).data == PNG


def test_a_rotation_reseals_the_photo_files_under_the_new_key(
    app, client, world, session, storage, visit_id, rotation
):
    uploaded = upload(client, world, visit_id, PNG)
    rotation.on()
    result = encrypt(app)
    assert result.exit_code == 0, result.output
    assert "photo files: 0 sealed from plaintext, 1 re-sealed from an old key" in result.output
    assert storage.sealed_key_id(uploaded["sha256"]) == rotation.kid
    assert f"no data needs key id(s) {TEST_KID} any more" in result.output
    crypto.configure(rotation.key)  # GRIDWORK_OLD_DATA_KEYS dropped
    assert served(client, world, uploaded["url"]).data == PNG


def test_a_key_still_sealing_a_damaged_photo_file_is_not_forgotten(
    app, client, world, session, storage, photo_dir, rotation
):
    damaged = upload(client, world, new_visit(client, world, 0), JPEG)
    sound = upload(client, world, new_visit(client, world, 1), PNG)
    path = storage.sealed._path(storage.name(damaged["sha256"]))
    path.write_bytes(path.read_bytes()[:-1])
    rotation.on()
    result = encrypt(app)
    assert result.exit_code == 1
    assert f"photo file(s) damaged, left as they are (images' SHA-256: {damaged['sha256']})" in (
        result.output
    )
    assert f"key id(s) {TEST_KID} stay needed" in result.output
    assert key_state(session, TEST_KID) == (True, False)  # retired, not emptied
    assert storage.sealed_key_id(sound["sha256"]) == rotation.kid


def test_security_encrypt_forgets_no_key_when_it_finds_no_photo_file(
    app, client, world, session, photo_dir, visit_id, rotation
):
    """A wrong GRIDWORK_PHOTO_DIR must not pass for a rotation with nothing to re-seal."""
    upload(client, world, visit_id, JPEG)
    rotation.on()
    app.config["PHOTO_DIR"] = str(photo_dir.parent / "elsewhere")
    result = encrypt(app)
    assert result.exit_code == 1
    assert "1 photo in the database but no photo file" in result.output
    assert key_state(session, TEST_KID) == (True, False)


def test_forgetting_keys_keeps_the_ones_photo_files_still_use(app, session, rotation):
    record_key(session.connection(), TEST_KID)
    rotation.on()
    retire_other_keys(session.connection())
    assert forget_other_keys(session.connection(), still_used={TEST_KID}) == []
    assert key_state(session, TEST_KID) == (True, False)
    assert forget_other_keys(session.connection()) == [TEST_KID]


def test_the_photo_key_ids_are_counted_from_the_files_headers(client, world, storage, visit_id):
    jpeg = upload(client, world, visit_id, JPEG)
    upload(client, world, visit_id, PNG)
    as_before_sealing(storage, jpeg["sha256"])
    assert photo_sealing.key_ids(storage) == {TEST_KID: 1, "plaintext": 1}


def check_key(app):
    with app.app_context():
        return CliRunner().invoke(main, ["security", "check-key"])


def test_check_key_counts_the_photo_files_by_the_key_sealing_them(
    app, client, world, storage, visit_id
):
    jpeg = upload(client, world, visit_id, JPEG)
    upload(client, world, visit_id, PNG)
    as_before_sealing(storage, jpeg["sha256"])
    result = check_key(app)
    assert result.exit_code == 0, result.output
    assert (
        f"photo files: 1 sealed by {TEST_KID}, "
        "1 in plaintext (`gridwork security encrypt` seals them)"
    ) in result.output


def test_check_key_refuses_photo_files_sealed_by_a_key_not_configured(
    app, client, world, storage, visit_id
):
    upload(client, world, visit_id, JPEG)
    crypto.configure(crypto.new_key())
    try:
        foreign = crypto.current_key_id()
        storage.sealed.write("ab" * 32, crypto.seal_bytes(PNG))  # another deployment's file
    finally:
        crypto.configure(TEST_SETTINGS["DATA_KEY"])
    result = check_key(app)
    assert result.exit_code == 1
    assert f"photo files are sealed by key id(s) {foreign}" in result.output


def test_a_file_retention_deletes_while_the_sealing_waits_is_not_written_back(
    own_database_url, tmp_path
):
    """Retention deleted a photo and is deleting its bytes, its photo lock held: the sealing
    waits for it, then finds the file gone (without the lock it read the plaintext first and
    wrote the sealed copy back after the deletion: a deleted photo kept on disk)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    from api.services.photos import PHOTO_LOCK_CLASS
    from tests.races import wait_for_lock_waits

    engine = create_engine(own_database_url)
    begin = sessionmaker(engine).begin
    try:
        with begin() as session:
            storage = SealedStorage(tmp_path, load_name_key(session))
        key = hashlib.sha256(PNG).hexdigest()
        storage.plain.write(key, PNG)
        with Session(engine) as retention, ThreadPoolExecutor(1) as pool:
            retention.execute(
                text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))"),
                {"lock": PHOTO_LOCK_CLASS, "key": key},
            )
            sealing = pool.submit(photo_sealing.seal_photos, begin, storage)
            wait_for_lock_waits(engine, 1)
            storage.delete(key)  # no kept photo has these bytes
            retention.commit()
            result = sealing.result(timeout=60)
        assert result.sealed == 0
        assert list(storage.iter_keys()) == []
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    finally:
        engine.dispose()


def test_the_scrub_replaces_a_stripped_file_sealed_by_a_retired_key(
    app, world, session, storage, photo_dir, visit_id, rotation
):
    """As an upload does (above): the scrub points a photo at the stripped image, whose file a
    process on the old key left; kept, it would be lost with the old key the rotation retired."""
    from api.extensions import db
    from api.services.photo_scrub import scrub_photos
    from api.services.photos import strip_metadata
    from tests.api.test_photo_scrub import phone_photo, store_as_before

    original = phone_photo()
    clean = strip_metadata(original, "image/jpeg")
    digest = hashlib.sha256(clean).hexdigest()
    storage.sealed.write(storage.name(digest), crypto.seal_bytes(clean))  # the old process
    record_key(session.connection(), TEST_KID)
    rotation.on()
    retire_other_keys(session.connection())
    store_as_before(session, world, photo_dir, visit_id, original)

    scrub_photos(db.begin, storage)

    assert storage.sealed_key_id(digest) == rotation.kid
