"""A step naming a photo and the photo's deletion, sent at once (two phones, or an app's retry).

The assignee's phone sends a step with photo X while their other phone deletes X (a shot
taken by mistake). Exactly one of them may win: a step answered 200 naming a photo whose row
is gone, or a deletion answered 204 while a step kept the photo, would be a lie to one phone.
Each race is forced into one order, not left to the scheduler: a third connection holds a
table the first request writes after it has locked the photo, the first request waits on it
holding that lock, the second is sent and waits on the first, and only then is the table let
go. The loser gets an RFC 9457 problem and changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from api.models import PhotoDeletion, Task, TaskEvent, TaskPhoto
from tests import races
from tests.factories import bearer, box, build_app, image_bytes, make_led_grid, make_task

COMMUNITY = "110109009005"
T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)

# Taken by a step after it has locked its photos (it inserts its event), never by a deletion.
HOLD_STEPS = "LOCK TABLE task_events IN EXCLUSIVE MODE"
# Taken by a deletion after it has locked and deleted its photo (it queues the photo's bytes),
# never by a step.
HOLD_DELETIONS = "LOCK TABLE photo_deletions IN EXCLUSIVE MODE"


class Place:
    """A grid with its worker and leader, committed in this module's own database."""

    def __init__(self, app, worker_id: int, headers: dict):
        self.app, self.worker_id, self.headers = app, worker_id, headers
        self.images = iter(image_bytes("PNG", size=8 + i) for i in range(1000))

    def task(self, status: str = "accepted") -> int:
        """A new task of the grid, its assignee the worker, in `status`."""
        from api.extensions import db

        with self.app.app_context(), db.begin() as session:
            task = make_task(
                session, now=T0, source="proactive", title="井盖缺失",
                location={"lon": 116.405, "lat": 39.765},
            )  # fmt: skip
            task.assignee_id, task.status = self.worker_id, status
            session.flush()
            return task.id

    def upload(self, task_id: int, image: bytes | None = None) -> int:
        """The worker uploads an image (a new one unless given) to the task: its photo's id."""
        with self.app.app_context():
            answer = self.sending(task_id, image or next(self.images))()
        assert answer.status_code == 201, answer.json
        return answer.json["id"]

    def sending(self, task_id: int, image: bytes):
        """A request uploading the image to the task (run in its own thread)."""

        def send():
            with self.app.test_client() as client:
                return client.post(
                    f"/api/v1/tasks/{task_id}/photos",
                    data={"file": (io.BytesIO(image), "photo.png")},
                    headers=self.headers,
                    content_type="multipart/form-data",
                )

        return send

    def step(self, task_id: int, action: str, photos: list[int]):
        """A request sending the worker's step with these photos (run in its own thread)."""

        def send():
            with self.app.test_client() as client:
                return client.post(
                    f"/api/v1/tasks/{task_id}/transitions",
                    json={"action": action, "note": "", "photos": photos},
                    headers=self.headers,
                )

        return send

    def delete(self, task_id: int, photo_id: int):
        """A request deleting the worker's photo (run in its own thread)."""

        def send():
            with self.app.test_client() as client:
                return client.delete(
                    f"/api/v1/tasks/{task_id}/photos/{photo_id}", headers=self.headers
                )

        return send

    def read(self, query, **params):
        from api.extensions import db

        with self.app.app_context(), db.new_session() as session:
            return session.execute(query, params).all()


@pytest.fixture(scope="module")
def place(own_database_url, tmp_path_factory):
    from api.extensions import db

    app = build_app(own_database_url, PHOTO_DIR=str(tmp_path_factory.mktemp("photos")))
    app.config["FIXED_NOW"] = T0
    tag = uuid.uuid4().hex[:6]
    with app.app_context(), db.begin() as session:
        worker, _ = make_led_grid(
            session, COMMUNITY + "001", box(116.40, 39.76, 116.41, 39.77), f"tpr_{tag}"
        )
        place = Place(app, worker.id, bearer(worker))
    yield place
    with app.app_context():
        db.engine.dispose()


def in_turn(app, hold: str, first, second) -> tuple:
    """`first`, then `second`, each in its own thread with its own connection: `hold` is held
    until `first` waits on it, and let go once `second` waits too (on what `first` holds)."""
    from api.extensions import db

    with app.app_context(), db.engine.connect() as holder:
        holder.execute(text(hold))
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(first)
            races.wait_for_lock_waits(db.engine, 1)
            two = pool.submit(second)
            races.wait_for_lock_waits(db.engine, 2)
            holder.commit()
            return one.result(timeout=60), two.result(timeout=60)


def is_problem(answer, status: int) -> bool:
    return (
        answer.status_code == status
        and answer.mimetype == "application/problem+json"
        and answer.json["status"] == status
    )


def photo_row(place, photo_id: int):
    """(event_id,) of the photo, or None when it is gone."""
    rows = place.read(select(TaskPhoto.event_id).where(TaskPhoto.id == photo_id))
    return rows[0] if rows else None


def queued(place, photo_sha: str) -> bool:
    return bool(place.read(select(PhotoDeletion.sha256).where(PhotoDeletion.sha256 == photo_sha)))


def sha_of(place, photo_id: int) -> str:
    return place.read(select(TaskPhoto.sha256).where(TaskPhoto.id == photo_id))[0][0]


def events_of(place, task_id: int) -> list[str]:
    rows = place.read(
        select(TaskEvent.action).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
    )
    return [action for (action,) in rows]


def status_of(place, task_id: int) -> str:
    return place.read(select(Task.status).where(Task.id == task_id))[0][0]


# --- a step and a deletion of its photo --------------------------------------------------------
def test_a_deletion_sent_while_a_step_holds_the_photo_is_refused_and_the_step_keeps_it(place):
    """The step has locked photo X and is writing its event when the deletion arrives: the
    deletion waits, then finds X sent with the step (409); X stays, readable, nothing queued."""
    task_id = place.task()
    photo_id = place.upload(task_id)
    sha = sha_of(place, photo_id)
    stepped, deleted = in_turn(
        place.app,
        HOLD_STEPS,
        place.step(task_id, "start", [photo_id]),
        place.delete(task_id, photo_id),
    )
    assert stepped.status_code == 200, stepped.json
    assert [p["id"] for p in stepped.json["events"][-1]["attachments"]] == [photo_id]
    assert is_problem(deleted, 409), deleted.json
    assert "sent with a step" in deleted.json["detail"]
    [event_id] = place.read(
        select(TaskEvent.id).where(TaskEvent.task_id == task_id, TaskEvent.action == "start")
    )[0]
    assert photo_row(place, photo_id) == (event_id,)
    assert not queued(place, sha)
    with place.app.app_context(), place.app.test_client() as client:
        served = client.get(f"/api/v1/tasks/{task_id}/photos/{photo_id}", headers=place.headers)
    assert served.status_code == 200


def test_a_step_sent_while_its_photo_is_being_deleted_is_refused_and_changes_nothing(place):
    """The deletion has deleted photo X and is queueing its bytes when the step arrives: the
    step waits, then finds no photo X (a 422 naming `photos`); the task is as it was, X is gone
    and its bytes queued."""
    task_id = place.task()
    photo_id = place.upload(task_id)
    sha = sha_of(place, photo_id)
    before = events_of(place, task_id)
    deleted, stepped = in_turn(
        place.app,
        HOLD_DELETIONS,
        place.delete(task_id, photo_id),
        place.step(task_id, "start", [photo_id]),
    )
    assert deleted.status_code == 204
    assert is_problem(stepped, 422), stepped.json
    assert str(photo_id) in " ".join(stepped.json["errors"]["json"]["photos"])
    assert (status_of(place, task_id), events_of(place, task_id)) == ("accepted", before)
    assert photo_row(place, photo_id) is None
    assert queued(place, sha)


def test_a_step_naming_two_photos_while_one_is_deleted_takes_neither(place):
    """Half a step is no step: the other photo stays unsent, the uploader's to send again."""
    task_id = place.task()
    kept, gone = place.upload(task_id), place.upload(task_id)
    deleted, stepped = in_turn(
        place.app,
        HOLD_DELETIONS,
        place.delete(task_id, gone),
        place.step(task_id, "start", [kept, gone]),
    )
    assert deleted.status_code == 204
    assert is_problem(stepped, 422), stepped.json
    assert status_of(place, task_id) == "accepted"
    assert (photo_row(place, kept), photo_row(place, gone)) == ((None,), None)


def test_an_image_sent_again_while_its_photo_is_being_deleted_is_stored_again(place):
    """The app resends an upload (its answer was lost) as the other phone deletes the photo:
    the upload waits for the deletion, then stores the image as a new photo (201, not the
    duplicate of the photo gone), and retention's next run keeps the bytes it points at."""
    from api.extensions import db
    from api.services import retention
    from api.services.photos import build_storage, load_name_key

    task_id = place.task()
    image = next(place.images)
    photo_id = place.upload(task_id, image)
    deleted, sent_again = in_turn(
        place.app,
        HOLD_DELETIONS,
        place.delete(task_id, photo_id),
        place.sending(task_id, image),
    )
    assert deleted.status_code == 204
    assert sent_again.status_code == 201, sent_again.json
    assert (sent_again.json["duplicate"], photo_row(place, photo_id)) == (False, None)
    with place.app.app_context(), db.new_session() as session, session.begin():
        storage = build_storage(place.app.config, load_name_key(session))
        retention.delete_photo_files(session, storage, 100)
    with place.app.app_context(), place.app.test_client() as client:
        served = client.get(sent_again.json["url"], headers=place.headers)
    assert served.status_code == 200


def test_an_image_sent_again_as_its_photo_is_deleted_right_after_the_conflict_is_stored_again(
    place,
):
    """The app resends an upload (its answer was lost) and the other phone's deletion of the
    photo commits after the upload found the image held (its insert did nothing) but before it
    read that photo back: the upload stores the image as a new photo (201, not the duplicate
    of the photo gone, not a 500), and retention's next run keeps the bytes it points at."""
    from api.extensions import db
    from api.services import retention
    from api.services.photos import build_storage, load_name_key

    task_id = place.task()
    image = next(place.images)
    photo_id = place.upload(task_id, image)
    sha = sha_of(place, photo_id)
    with place.app.app_context():
        engine = db.engine
    with races.between_insert_and_read_back(
        engine, "task_photos", place.delete(task_id, photo_id)
    ) as deleted:
        sent_again = place.sending(task_id, image)()
    assert [answer.status_code for answer in deleted] == [204]
    assert sent_again.status_code == 201, sent_again.json
    assert sent_again.json["duplicate"] is False
    assert sent_again.json["id"] != photo_id
    assert photo_row(place, photo_id) is None
    assert sha_of(place, sent_again.json["id"]) == sha
    with place.app.app_context(), db.new_session() as session, session.begin():
        storage = build_storage(place.app.config, load_name_key(session))
        retention.delete_photo_files(session, storage, 100)
    assert not queued(place, sha)
    with place.app.app_context(), place.app.test_client() as client:
        served = client.get(sent_again.json["url"], headers=place.headers)
    assert served.status_code == 200
    assert hashlib.sha256(served.data).hexdigest() == sha


# --- two steps naming one photo ----------------------------------------------------------------
def test_two_steps_naming_one_photo_at_once_give_it_to_the_first_and_refuse_the_second(place):
    """Two phones send "start" and "resolve" with the same photo: the second waits for the
    first (the task's lock), then finds the photo sent with it (422); it is not resolved."""
    task_id = place.task()
    photo_id = place.upload(task_id)
    started, resolved = in_turn(
        place.app,
        HOLD_STEPS,
        place.step(task_id, "start", [photo_id]),
        place.step(task_id, "resolve", [photo_id]),
    )
    assert started.status_code == 200, started.json
    assert is_problem(resolved, 422), resolved.json
    assert "sent with another step" in " ".join(resolved.json["errors"]["json"]["photos"])
    assert status_of(place, task_id) == "in_progress"
    assert events_of(place, task_id)[-1] == "start"
    holders = place.read(
        select(TaskEvent.action)
        .join(TaskPhoto, TaskPhoto.event_id == TaskEvent.id)
        .where(TaskPhoto.id == photo_id)
    )
    assert holders == [("start",)]


def test_the_same_step_sent_twice_at_once_is_taken_once(place):
    """An app's retry without an Idempotency-Key: the second "start" finds the task started
    (409 naming its state); one event holds the photo."""
    task_id = place.task()
    photo_id = place.upload(task_id)
    first, second = in_turn(
        place.app,
        HOLD_STEPS,
        place.step(task_id, "start", [photo_id]),
        place.step(task_id, "start", [photo_id]),
    )
    assert first.status_code == 200, first.json
    assert is_problem(second, 409), second.json
    assert second.json["state"] == "in_progress"
    assert events_of(place, task_id).count("start") == 1
    assert photo_row(place, photo_id) is not None


# --- two deletions of one photo ----------------------------------------------------------------
def test_two_deletions_of_one_photo_at_once_delete_it_once_and_the_second_finds_none(place):
    task_id = place.task()
    photo_id = place.upload(task_id)
    sha = sha_of(place, photo_id)
    first, second = in_turn(
        place.app,
        HOLD_DELETIONS,
        place.delete(task_id, photo_id),
        place.delete(task_id, photo_id),
    )
    assert first.status_code == 204
    assert is_problem(second, 404), second.json
    assert photo_row(place, photo_id) is None
    assert queued(place, sha)
    count = place.read(
        select(func.count()).select_from(PhotoDeletion).where(PhotoDeletion.sha256 == sha)
    )
    assert count == [(1,)]
