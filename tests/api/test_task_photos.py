"""Task photos: uploaded by who may take a step, named by the step they document, read in scope.

A step took `photos` as free strings ("URLs or storage keys") that nothing checked or served.
A photo of a task is now uploaded to it (checked, stripped and stored as a visit's photo), and a
step names the photos it documents by id; the task's history lists them, each readable."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlalchemy import func, select

from api.models import AuditEntry, Task, TaskEvent, TaskPhoto
from api.services.photos import MAX_PHOTOS_PER_TASK
from tests.factories import A1, image_bytes, make_task, make_user

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing: worker_a1 on duty
JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    return tmp_path / "photos"


@pytest.fixture()
def task(session, world, photo_dir):
    """A task of grid A1, dispatched to worker_a1."""
    return make_task(session, now=T0)


def upload(client, world, task_id, data, user="worker_a1", **form):
    return client.post(
        f"/api/v1/tasks/{task_id}/photos",
        data={"file": (io.BytesIO(data), "photo.jpg"), **form},
        headers=world.auth(user),
        content_type="multipart/form-data",
    )


def act(client, world, user, task_id, action, **body):
    return client.post(
        f"/api/v1/tasks/{task_id}/transitions",
        json={"action": action, **body},
        headers=world.auth(user),
    )


def photo_count(session) -> int:
    return session.scalar(select(func.count(TaskPhoto.id)))


def stored_files(photo_dir) -> list:
    return sorted(p for p in photo_dir.rglob("*") if p.is_file())


# --- uploading ---------------------------------------------------------------------------------
def test_the_assignee_uploads_a_photo_and_gets_its_id_to_send_with_a_step(client, world, task):
    response = upload(client, world, task.id, JPEG)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["task_id"], body["event_id"], body["duplicate"]) == (task.id, None, False)
    assert body["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert body["url"] == f"/api/v1/tasks/{task.id}/photos/{body['id']}"
    read = client.get(body["url"], headers=world.auth("worker_a1"))
    assert (read.status_code, read.data, read.mimetype) == (200, JPEG, "image/jpeg")


def test_the_same_photo_twice_is_one_photo_of_the_task(client, world, session, task):
    first = upload(client, world, task.id, PNG).json
    second = upload(client, world, task.id, PNG).json
    assert (second["id"], second["duplicate"]) == (first["id"], True)
    assert photo_count(session) == 1


@pytest.mark.parametrize("user", ["leader_a", "admin_a"])
def test_the_grids_leader_and_the_community_admin_upload_too(client, world, task, user):
    assert upload(client, world, task.id, PNG, user=user).status_code == 201


def test_who_may_take_no_step_on_the_task_uploads_nothing(client, world, session, task):
    """A district viewer reads, changes nothing (403); another worker of the grid sees the task
    but takes none of its steps (403); a worker of another grid does not see it (404)."""
    world.users["worker_a1b"] = make_user(session, "worker_a1b", "worker", grids=[A1])
    session.flush()
    answers = [
        upload(client, world, task.id, PNG, user=user).status_code
        for user in ("viewer_110101", "worker_a1b", "worker_a2")
    ]
    assert answers == [403, 403, 404]
    assert photo_count(session) == 0


def test_a_task_with_no_step_left_to_the_caller_takes_no_photo(client, world, session, task):
    """Resolved, the task waits for the leader's callback: the assignee has no step to take."""
    act(client, world, "worker_a1", task.id, "accept")
    assert act(client, world, "worker_a1", task.id, "resolve").status_code == 200
    response = upload(client, world, task.id, PNG)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert upload(client, world, task.id, PNG, user="leader_a").status_code == 201


@pytest.mark.parametrize(
    ("data", "form", "status"),
    [
        (b"%PDF-1.7 not a photo", {}, 415),
        (b"", {}, 422),
        (PNG[:40], {}, 415),  # a PNG cut short
        (JPEG, {"sha256": "0" * 64}, 422),  # damaged on the way
    ],
)
def test_a_bad_file_is_a_problem_and_stores_nothing(
    client, world, session, task, photo_dir, data, form, status
):
    response = upload(client, world, task.id, data, **form)
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert photo_count(session) == 0
    assert stored_files(photo_dir) == []


def _jpeg_sampled(factors: int, progressive: bool) -> bytes:
    """A JPEG whose frame header gives every component the sampling byte `factors` (h << 4 | v;
    libjpeg takes 1 to 4 of each)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(out, "JPEG", progressive=progressive)
    data = bytearray(out.getvalue())
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):  # to the frame header (SOF0 or SOF2)
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    for component in range(data[i + 9]):
        data[i + 11 + component * 3] = factors
    return bytes(data)


@pytest.mark.parametrize("progressive", [True, False], ids=["progressive", "baseline"])
@pytest.mark.parametrize("factors", [0x00, 0x10, 0x55], ids=["0x0", "1x0", "5x5"])
def test_a_jpeg_of_sampling_factors_outside_one_to_four_is_415(
    client, world, session, task, photo_dir, factors, progressive
):
    """A progressive JPEG whose components claimed sampling factors of 0 divided by zero
    sizing its coefficient buffer: a 500 (the baseline one was refused, libjpeg read it)."""
    response = upload(client, world, task.id, _jpeg_sampled(factors, progressive))
    assert response.status_code == 415, response.json
    assert photo_count(session) == 0


def test_an_upload_of_two_files_is_refused_whole(client, world, session, task, photo_dir):
    """A form of two `file` parts (a client sending both shots at once) stored the first and
    answered 201 with its id alone: the second was dropped without a word."""
    response = client.post(
        f"/api/v1/tasks/{task.id}/photos",
        data={"file": [(io.BytesIO(JPEG), "a.jpg"), (io.BytesIO(PNG), "b.png")]},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]["multipart"]) == ["file"]
    assert photo_count(session) == 0
    assert stored_files(photo_dir) == []


def test_a_photo_over_the_size_limit_is_413(client, world, session, app, task):
    app.config["PHOTO_MAX_MB"] = 100 / (1024 * 1024)  # 100 bytes
    assert upload(client, world, task.id, JPEG).status_code == 413
    assert photo_count(session) == 0


def test_a_task_holds_a_bounded_number_of_photos(client, world, session, task, photo_dir):
    images = [image_bytes("PNG", size=8 + i) for i in range(MAX_PHOTOS_PER_TASK + 1)]
    for image in images[:-1]:
        assert upload(client, world, task.id, image).status_code == 201
    files = stored_files(photo_dir)
    refused = upload(client, world, task.id, images[-1])
    assert refused.status_code == 409
    assert str(MAX_PHOTOS_PER_TASK) in refused.json["detail"]
    assert upload(client, world, task.id, images[0]).json["duplicate"] is True
    assert photo_count(session) == MAX_PHOTOS_PER_TASK
    assert stored_files(photo_dir) == files


def test_photos_another_uploaded_and_never_sent_leave_the_caller_room(client, world, session, task):
    """The assignee's 20 photos uploaded for steps never sent (refused steps, shots cleared and
    taken again) filled the task: the leader's photo of the return call was a 409 "holds 20
    photos", of photos no step showed. Each caller's room is the steps' photos and their own
    not sent yet; a step still brings the task's sent photos to 20 at most."""
    images = [image_bytes("PNG", size=8 + i) for i in range(MAX_PHOTOS_PER_TASK + 2)]
    for image in images[:MAX_PHOTOS_PER_TASK]:
        assert upload(client, world, task.id, image).status_code == 201
    leaders = upload(client, world, task.id, images[-1], user="leader_a")
    assert leaders.status_code == 201, leaders.json
    # The assignee's own room is full all the same.
    assert upload(client, world, task.id, images[-2]).status_code == 409
    # And a task's steps hold 20 photos at most: the assignee sends theirs, the leader's one
    # more is refused with nothing done.
    ids = session.scalars(
        select(TaskPhoto.id).where(TaskPhoto.uploaded_by_id == world.users["worker_a1"].id)
    ).all()
    assert act(client, world, "worker_a1", task.id, "accept", photos=ids).status_code == 200
    refused = act(client, world, "leader_a", task.id, "escalate", photos=[leaders.json["id"]])
    assert refused.status_code == 409, refused.json
    assert refused.mimetype == "application/problem+json"
    session.expire_all()
    assert session.get(Task, task.id).status == "accepted"
    assert session.get(TaskPhoto, leaders.json["id"]).event_id is None


def test_the_metadata_of_a_photo_is_not_stored(client, world, task):
    """The phone's GPS (the resident's door) goes, as a visit photo's does."""
    from tests.api.test_visit_photos import image_with_metadata

    url = upload(client, world, task.id, image_with_metadata("JPEG")).json["url"]
    served = client.get(url, headers=world.auth("worker_a1")).data
    assert b"PhoneMaker-8842" not in served and served.startswith(b"\xff\xd8")


# --- reading -----------------------------------------------------------------------------------
def sent(client, world, task) -> dict:
    """A photo the assignee uploaded and sent with a step (accepting the task): the task's."""
    photo = upload(client, world, task.id, PNG).json
    assert (
        act(client, world, "worker_a1", task.id, "accept", photos=[photo["id"]]).status_code == 200
    )
    return photo


def test_a_photo_sent_with_a_step_is_read_by_whoever_reads_the_task(client, world, task):
    url = sent(client, world, task)["url"]
    answers = {
        user: client.get(url, headers=world.auth(user)).status_code
        for user in ("leader_a", "admin_a", "viewer_110101", "worker_a2", "admin_b")
    }
    assert answers == {
        "leader_a": 200,
        "admin_a": 200,
        "viewer_110101": 200,
        "worker_a2": 404,
        "admin_b": 404,
    }


def test_a_photo_not_yet_sent_with_a_step_is_its_uploaders_alone(client, world, task):
    """Shown with no step (a shot taken for the next one, or by mistake: a resident's face), an
    unsent photo was served to whoever read the task, a district viewer too, by its id."""
    url = upload(client, world, task.id, PNG).json["url"]
    answers = {
        user: client.get(url, headers=world.auth(user)).status_code
        for user in ("worker_a1", "leader_a", "admin_a", "viewer_110101")
    }
    assert answers == {"worker_a1": 200, "leader_a": 404, "admin_a": 404, "viewer_110101": 404}


def test_a_photo_of_another_task_is_not_found_under_this_one(client, world, session, task):
    other = make_task(session, now=T0, title="井盖缺失")
    url = upload(client, world, other.id, PNG).json["url"]
    wrong = url.replace(f"/tasks/{other.id}/", f"/tasks/{task.id}/")
    assert client.get(wrong, headers=world.auth("worker_a1")).status_code == 404


def test_a_photo_read_is_audited_naming_its_task(client, world, session, task):
    photo = sent(client, world, task)
    client.get(photo["url"], headers=world.auth("viewer_110101"))
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.user_id, entry.action, entry.resource, entry.resource_ids) == (
        world.users["viewer_110101"].id,
        "read",
        "task_photo",
        [task.id],
    )
    assert entry.fields == ["photo"] and entry.path == photo["url"]


# --- a step's photos ---------------------------------------------------------------------------
def test_a_step_names_its_photos_and_the_task_lists_them_with_the_step(client, world, task):
    before = upload(client, world, task.id, JPEG).json["id"]
    after = upload(client, world, task.id, PNG).json["id"]
    act(client, world, "worker_a1", task.id, "accept")
    response = act(client, world, "worker_a1", task.id, "resolve", photos=[before, after])
    assert response.status_code == 200, response.json
    resolve = response.json["events"][-1]
    assert [p["id"] for p in resolve["attachments"]] == [before, after]
    assert {p["event_id"] for p in resolve["attachments"]} == {resolve["id"]}
    detail = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("leader_a")).json
    steps = {e["action"]: e for e in detail["events"]}
    urls = [f"/api/v1/tasks/{task.id}/photos/{before}", f"/api/v1/tasks/{task.id}/photos/{after}"]
    assert [p["url"] for p in steps["resolve"]["attachments"]] == urls
    assert steps["resolve"]["photos"] == urls
    assert steps["accept"]["photos"] == [] and steps["accept"]["attachments"] == []
    fetched = client.get(steps["resolve"]["attachments"][0]["url"], headers=world.auth("leader_a"))
    assert fetched.data == JPEG


def _named(client, world, session, task):
    """Photo ids a step may not name, by why."""
    other = make_task(session, now=T0, title="井盖缺失")
    theirs = upload(client, world, task.id, PNG, user="leader_a").json["id"]
    sent = upload(client, world, task.id, image_bytes("PNG", 12)).json["id"]
    assert act(client, world, "worker_a1", task.id, "accept", photos=[sent]).status_code == 200
    return {
        "another task's": [upload(client, world, other.id, PNG).json["id"]],
        "someone else's": [theirs],
        "sent with another step": [sent],
        "no photo at all": [987654321],
        "named twice": [upload(client, world, task.id, JPEG).json["id"]] * 2,
    }


@pytest.mark.parametrize(
    "why",
    [
        "another task's",
        "someone else's",
        "sent with another step",
        "no photo at all",
        "named twice",
    ],
)
def test_a_step_naming_anything_but_the_callers_unsent_photos_of_the_task_is_422(
    client, world, session, task, why
):
    ids = _named(client, world, session, task)[why]
    steps = session.scalar(select(func.count()).where(TaskEvent.task_id == task.id))
    attached = dict(session.execute(select(TaskPhoto.id, TaskPhoto.event_id)).all())

    response = act(client, world, "worker_a1", task.id, "start", photos=ids, note="到场")

    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]["json"]) == ["photos"]
    session.expire_all()
    assert session.get(Task, task.id).status == "accepted"
    assert session.scalar(select(func.count()).where(TaskEvent.task_id == task.id)) == steps
    assert dict(session.execute(select(TaskPhoto.id, TaskPhoto.event_id)).all()) == attached


@pytest.mark.parametrize("value", ["photos/1.jpg", [None], [True], [""], ["x" * 501], [1.5]])
def test_a_step_naming_photos_by_anything_but_ids_or_references_is_422(
    client, world, session, task, value
):
    response = act(client, world, "worker_a1", task.id, "accept", photos=value)
    assert response.status_code == 422
    assert "photos" in response.json["errors"]["json"]
    session.expire_all()
    assert session.get(Task, task.id).status == "dispatched"


@pytest.mark.parametrize("big", [2**31, 2**40, 2**63 - 1])
def test_a_step_naming_a_photo_id_past_the_databases_integers_is_422_naming_photos(
    client, world, session, task, big
):
    """Sent to the database, which refused it: a 422 naming no field ("A value is out of
    range or malformed."), not the one naming `photos` that any other id is."""
    response = act(client, world, "worker_a1", task.id, "accept", photos=[big])
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert list(response.json["errors"]["json"]) == ["photos"]
    session.expire_all()
    assert session.get(Task, task.id).status == "dispatched"


def test_a_step_keeps_the_references_it_is_given_beside_the_photos_uploaded(
    client, world, session, task
):
    """As a step always took them (issue #5: "optionally a location and photos"): strings are
    references kept as they were sent (a client's URL or storage key, nothing served here);
    ids name photos of the task uploaded first. `photos` lists both as strings (an uploaded
    one by its URL), `attachments` the uploaded ones in full."""
    photo = upload(client, world, task.id, JPEG).json
    response = act(
        client, world, "worker_a1", task.id, "accept", photos=["photos/1.jpg", photo["id"]]
    )
    assert response.status_code == 200, response.json
    last = response.json["events"][-1]
    assert last["photos"] == ["photos/1.jpg", f"/api/v1/tasks/{task.id}/photos/{photo['id']}"]
    assert [a["id"] for a in last["attachments"]] == [photo["id"]]


# --- a photo taken by mistake, never sent with a step -------------------------------------------
def delete_photo(client, world, task_id, photo_id, user="worker_a1"):
    return client.delete(f"/api/v1/tasks/{task_id}/photos/{photo_id}", headers=world.auth(user))


def test_the_uploader_deletes_a_photo_not_sent_with_a_step_and_its_bytes_are_queued(
    client, world, session, task
):
    """A photo uploaded by mistake (a resident's face, the wrong door) stayed on the task for
    months, until retention: nobody could take it back. Its uploader deletes it while no step
    holds it; its bytes go with retention's next run, as deleted photos' do."""
    from api.models import PhotoDeletion

    photo_id = upload(client, world, task.id, JPEG).json["id"]
    sha256 = session.get(TaskPhoto, photo_id).sha256
    assert delete_photo(client, world, task.id, photo_id).status_code == 204
    assert session.get(TaskPhoto, photo_id) is None
    assert session.get(PhotoDeletion, sha256) is not None
    assert (
        client.get(
            f"/api/v1/tasks/{task.id}/photos/{photo_id}", headers=world.auth("worker_a1")
        ).status_code
        == 404
    )
    assert delete_photo(client, world, task.id, photo_id).status_code == 404


def test_a_photo_sent_with_a_step_is_the_tasks_history_and_stays(client, world, session, task):
    photo_id = upload(client, world, task.id, JPEG).json["id"]
    act(client, world, "worker_a1", task.id, "accept", photos=[photo_id])
    answer = delete_photo(client, world, task.id, photo_id)
    assert answer.status_code == 409, answer.json
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert session.get(TaskPhoto, photo_id) is not None


@pytest.mark.parametrize("user", ["leader_a", "admin_a"])
def test_only_the_uploader_deletes_a_photo_not_sent(client, world, session, task, user):
    """The leader may read the assignee's unsent photo at its URL, not take it away."""
    photo_id = upload(client, world, task.id, JPEG).json["id"]
    assert delete_photo(client, world, task.id, photo_id, user).status_code == 403
    assert session.get(TaskPhoto, photo_id) is not None
