"""Task photos under real concurrent uploads: a task's room is counted under its lock.

Two uploads that would each find one place left are caught only when both are in flight
before either counts: a third connection holds the task's photo lock (the advisory lock the
count is taken under) until both requests wait on it.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from api.models import TaskPhoto
from api.services.photos import MAX_PHOTOS_PER_TASK, VISIT_PHOTOS_LOCK_CLASS
from tests import races
from tests.factories import bearer, box, build_app, image_bytes, make_led_grid, make_task

COMMUNITY = "110109009004"
T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)


def test_two_uploads_at_once_for_the_last_place_store_one(own_database_url, tmp_path):
    """The assignee's room holds one more photo, and the leader's photos (never sent) are
    theirs: of two uploads at once by the assignee one is stored, the other a 409."""
    from api.extensions import db

    app = build_app(own_database_url, PHOTO_DIR=str(tmp_path / "photos"))
    app.config["FIXED_NOW"] = T0
    tag = uuid.uuid4().hex[:6]
    with app.app_context(), db.begin() as session:
        worker, leader = make_led_grid(
            session, COMMUNITY + "001", box(116.40, 39.74, 116.41, 39.75), f"tp_{tag}"
        )
        task = make_task(
            session, now=T0, source="proactive", title="井盖缺失",
            location={"lon": 116.405, "lat": 39.745},
        )  # fmt: skip
        task.assignee_id, task.status = worker.id, "dispatched"
        session.flush()
        task_id, worker_id = task.id, worker.id
        headers = {"worker": bearer(worker), "leader": bearer(leader)}

    def upload(who: str, image: bytes):
        def send():
            with app.test_client() as client:
                return client.post(
                    f"/api/v1/tasks/{task_id}/photos",
                    data={"file": (io.BytesIO(image), "photo.png")},
                    headers=headers[who],
                    content_type="multipart/form-data",
                )

        return send

    images = [image_bytes("PNG", size=8 + i) for i in range(MAX_PHOTOS_PER_TASK + 4)]
    try:
        with app.app_context():
            with app.test_client() as client:
                for image in images[: MAX_PHOTOS_PER_TASK - 1]:
                    r = client.post(
                        f"/api/v1/tasks/{task_id}/photos",
                        data={"file": (io.BytesIO(image), "photo.png")},
                        headers=headers["worker"],
                        content_type="multipart/form-data",
                    )
                    assert r.status_code == 201, r.json
                r = client.post(
                    f"/api/v1/tasks/{task_id}/photos",
                    data={"file": (io.BytesIO(images[-1]), "photo.png")},
                    headers=headers["leader"],
                    content_type="multipart/form-data",
                )
                assert r.status_code == 201, r.json
            answers = races.race(
                db.engine,
                "SELECT pg_advisory_xact_lock(:lock, hashtext(:key))",
                {"lock": VISIT_PHOTOS_LOCK_CLASS, "key": f"task {task_id}"},
                upload("worker", images[-2]),
                upload("worker", images[-3]),
            )
            with db.new_session() as session:
                mine = session.scalar(
                    select(func.count())
                    .select_from(TaskPhoto)
                    .where(TaskPhoto.task_id == task_id, TaskPhoto.uploaded_by_id == worker_id)
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert mine == MAX_PHOTOS_PER_TASK
