"""A visit photo sent again while retention purges it: the upload stores it again, whole."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from api.extensions import db
from api.models import PhotoDeletion, VisitPhoto
from api.services import retention
from api.services.photos import build_storage, load_name_key
from tests import races
from tests.factories import A1, build_app, build_world, image_bytes, make_visit

DAY = timedelta(days=1)


def test_a_photo_sent_again_as_retention_purges_it_right_after_the_conflict_is_stored_again(
    own_database_url, tmp_path
):
    """A worker's phone resends a visit photo (its answer was lost) and retention's purge of
    that photo commits after the upload found the image held (its insert did nothing) but
    before it read that photo back: the upload stores the image as a new photo (201, not the
    duplicate of the photo gone, not a 500), and the bytes it points at stay when retention
    then deletes the purged photos' files."""
    app = build_app(own_database_url, PHOTO_DIR=str(tmp_path / "photos"))
    engine = create_engine(own_database_url)
    try:
        with Session(engine) as session, app.app_context():
            world = build_world(session, app)
            worker = world.users["worker_a1"]
            visited_at = datetime.now(UTC) - DAY
            visit_id = make_visit(session, worker, world.households[A1][0], visited_at).id
            session.commit()
            headers = world.auth("worker_a1")
        image = image_bytes("PNG", size=12)

        def send():
            with app.test_client() as client:
                return client.post(
                    f"/api/v1/visits/{visit_id}/photos",
                    data={"file": (io.BytesIO(image), "photo.png")},
                    headers=headers,
                    content_type="multipart/form-data",
                )

        def purge():  # every photo stored so far is due
            with Session(engine) as session, session.begin():
                return retention.purge_photos(session, datetime.now(UTC) + DAY, 100)

        first = send()
        assert first.status_code == 201, first.json
        sha = first.json["sha256"]
        with app.app_context():
            app_engine = db.engine
        with races.between_insert_and_read_back(app_engine, "visit_photos", purge) as purged:
            again = send()
        assert purged == [1]
        assert again.status_code == 201, again.json
        assert (again.json["duplicate"], again.json["sha256"]) == (False, sha)
        assert again.json["id"] != first.json["id"]
        with Session(engine) as session, session.begin(), app.app_context():
            storage = build_storage(app.config, load_name_key(session))
            retention.delete_photo_files(session, storage, 100)
        with Session(engine) as session:
            ids = session.scalars(select(VisitPhoto.id).where(VisitPhoto.visit_id == visit_id))
            assert list(ids) == [again.json["id"]]
            assert session.get(PhotoDeletion, sha) is None
        with app.test_client() as client:
            served = client.get(again.json["url"], headers=headers)
        assert served.status_code == 200
        assert hashlib.sha256(served.data).hexdigest() == sha
    finally:
        with app.app_context():
            db.engine.dispose()
        engine.dispose()
