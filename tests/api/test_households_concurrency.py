"""Two edits of one household at once: each keeps the other's fields.

A PATCH of `lat` alone fills in `lon` from the household it read. Read before the other edit
committed, that `lon` is stale and overwrites the other edit's. A third connection holds the
household so both edits are in flight before either reads it, then lets go.
"""

from __future__ import annotations

import uuid

from api.models import Household
from api.services.households import household_lonlat
from tests import races
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user

COMMUNITY = "110109009001"


def test_a_lon_edit_and_a_lat_edit_at_once_both_stay(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.40, 39.70, 116.41, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        home = make_household(session, 116.402, 39.702)
        headers, home_id = bearer(admin), home.id

    def patch(changes):
        def send():
            with app.test_client() as client:
                return client.patch(f"/api/v1/households/{home_id}", json=changes, headers=headers)

        return send

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "SELECT 1 FROM households WHERE id = :id FOR UPDATE",
                {"id": home_id},
                patch({"lat": 39.705}),
                patch({"lon": 116.405}),
            )
            with db.new_session() as session:
                stored = household_lonlat(session.get(Household, home_id))
    finally:
        with app.app_context():
            db.engine.dispose()
    assert [r.status_code for r in answers] == [200, 200]
    assert stored == (116.405, 39.705)


def test_an_address_edited_while_an_update_import_waits_for_its_household_is_a_409(
    own_database_url,
):
    """An update re-import matches a row to a household, then locks it to edit it. Edited
    meanwhile so the row no longer names it (its room changed), the import is refused whole
    (409), not applied to another flat's household."""
    import io
    import threading

    from sqlalchemy import text

    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "002", box(116.42, 39.70, 116.43, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        home = make_household(session, 116.422, 39.702, building="8", room="801")
        headers, home_id = bearer(admin), home.id
    register = b"building,unit,floor,room,lon,lat,tags\n8,1,1,801,116.422,39.702,low_income\n"
    answers = []

    def reimport():
        with app.test_client() as client:
            answers.append(
                client.post(
                    "/api/v1/households/import?mode=update",
                    data={"file": (io.BytesIO(register), "register.csv")},
                    headers=headers,
                    content_type="multipart/form-data",
                )
            )

    try:
        with app.app_context():
            with db.engine.connect() as holder:
                holder.execute(
                    text("SELECT 1 FROM households WHERE id = :id FOR UPDATE"), {"id": home_id}
                )
                importing = threading.Thread(target=reimport)
                importing.start()
                races.wait_for_lock_waits(db.engine, 1)
                holder.execute(
                    text("UPDATE households SET room = '802' WHERE id = :id"), {"id": home_id}
                )
                holder.commit()
            importing.join(60)
            with db.new_session() as session:
                stored = session.get(Household, home_id)
                room, tags = stored.room, stored.tags
    finally:
        with app.app_context():
            db.engine.dispose()
    [answer] = answers
    assert answer.status_code == 409, answer.json
    assert (room, tags) == ("802", [])


def test_one_address_sent_by_two_forms_at_once_is_registered_once(own_database_url):
    """Both forms look for the address at the point before either has written it: without the
    lock on the address each finds nothing and the flat is registered twice. The second waits
    for the first and is a 409 naming its household."""
    from sqlalchemy import func, select

    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "003", box(116.44, 39.70, 116.45, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id = bearer(admin), grid.id

    def register(room):
        def send():
            body = {"building": "9号楼", "room": room, "lon": 116.442, "lat": 39.702}
            with app.test_client() as client:
                return client.post("/api/v1/households", json=body, headers=headers)

        return send

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "SELECT 1 FROM grids WHERE id = :id FOR UPDATE",  # both wait where they place it
                {"id": grid_id},
                register("0901"),
                register("901"),
            )
            with db.new_session() as session:
                stored = session.scalar(
                    select(func.count(Household.id)).where(Household.grid_id == grid_id)
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert sorted(r.status_code for r in answers) == [201, 409]
    created = next(r for r in answers if r.status_code == 201)
    refused = next(r for r in answers if r.status_code == 409)
    assert refused.json["household_id"] == created.json["id"]
    assert stored == 1


def _households_at(session, grid_id):
    from sqlalchemy import func, select

    return session.scalar(select(func.count(Household.id)).where(Household.grid_id == grid_id))


def test_a_flat_a_form_registered_while_an_import_waited_is_a_repeat_row_of_the_import(
    own_database_url,
):
    """A form has checked and written the flat, not yet committed; an import of the same flat
    at the same point waits for it (the form's lock on the address), then its repeat check
    sees the form's household: the import is refused naming it, the flat registered once."""
    import io
    import threading

    from api.extensions import db
    from api.services import households

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "004", box(116.46, 39.70, 116.47, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id = bearer(admin), grid.id
    register = b"building,unit,floor,room,lon,lat\n5,1,2,201,116.462,39.702\n"
    answers = []

    def import_register():
        with app.test_client() as client:
            answers.append(
                client.post(
                    "/api/v1/households/import",
                    data={"file": (io.BytesIO(register), "register.csv")},
                    headers=headers,
                    content_type="multipart/form-data",
                )
            )

    try:
        with app.app_context():
            with db.new_session() as form:
                home = households.create_household(
                    form,
                    None,
                    {"building": "5", "unit": "1", "floor": "2", "room": "0201"}
                    | {"lon": 116.462, "lat": 39.702},
                )
                home_id = home.id
                importing = threading.Thread(target=import_register)
                importing.start()
                races.wait_for_lock_waits(db.engine, 1)
                form.commit()
            importing.join(60)
            with db.new_session() as session:
                stored = _households_at(session, grid_id)
    finally:
        with app.app_context():
            db.engine.dispose()
    [answer] = answers
    assert answer.status_code == 422, answer.json
    assert answer.json["errors"][0]["row"] == 2
    assert f"already registered as household {home_id}" in answer.json["errors"][0]["detail"]
    assert stored == 1


def test_a_form_sent_while_an_import_of_its_flat_is_uncommitted_waits_and_is_a_409(
    own_database_url,
):
    """An import has checked and written the flat, not yet committed; a form of the same flat
    at the same point waits for it (the import holds the address's lock), then is a 409
    naming the imported household."""
    import threading

    from sqlalchemy import select

    from api.extensions import db
    from api.services import households

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "005", box(116.48, 39.70, 116.49, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id = bearer(admin), grid.id
    register = b"building,unit,floor,room,lon,lat\n6,1,3,301,116.482,39.702\n"
    answers = []

    def send_form():
        body = {"building": "6", "unit": "1", "floor": "3", "room": "301"}
        with app.test_client() as client:
            answers.append(
                client.post(
                    "/api/v1/households",
                    json=body | {"lon": 116.482, "lat": 39.702},
                    headers=headers,
                )
            )

    try:
        with app.app_context():
            with db.new_session() as importer:
                result = households.import_households(importer, None, register)
                assert result.created == 1
                sending = threading.Thread(target=send_form)
                sending.start()
                races.wait_for_lock_waits(db.engine, 1)
                importer.commit()
            sending.join(60)
            with db.new_session() as session:
                stored = _households_at(session, grid_id)
                imported = session.scalar(select(Household.id).where(Household.grid_id == grid_id))
    finally:
        with app.app_context():
            db.engine.dispose()
    [answer] = answers
    assert answer.status_code == 409, answer.json
    assert answer.json["household_id"] == imported
    assert stored == 1


def test_a_form_waiting_on_a_long_imports_writes_is_not_waited_for_by_it(
    own_database_url, monkeypatch
):
    """A file of more than one chunk holds every address lock before its first write. Taking a
    chunk's locks only as it came to it, the import, having written its first chunk (and so a
    grid's report counts), would wait for a form of its second chunk's flat, which holds that
    flat's lock and waits for those counts: a deadlock, one of them aborted. Here the form waits
    for the import and is a 409; the import registers the flat once."""
    import io
    import threading

    from sqlalchemy import select, text

    from api.extensions import db
    from api.services import households

    monkeypatch.setattr(households, "IMPORT_CHUNK", 2)
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "006", box(116.50, 39.70, 116.51, 39.71))
        other = make_grid(session, COMMUNITY + "007", box(116.51, 39.70, 116.52, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id, other_id = bearer(admin), grid.id, other.id
    # Chunk 1 in the grid; chunk 2 in the other grid (where the holder stops the import,
    # its first chunk written) and, last, the form's flat in the grid.
    register = (
        b"building,unit,floor,room,lon,lat\n"
        b"7,1,1,101,116.502,39.702\n7,1,1,102,116.502,39.702\n"
        b"7,1,1,103,116.512,39.702\n7,1,1,104,116.503,39.702\n"
    )
    answers: dict[str, object] = {}

    def import_register():
        with app.test_client() as client:
            answers["import"] = client.post(
                "/api/v1/households/import",
                data={"file": (io.BytesIO(register), "register.csv")},
                headers=headers,
                content_type="multipart/form-data",
            )

    def send_form():
        body = {"building": "7", "unit": "1", "floor": "1", "room": "104"}
        with app.test_client() as client:
            answers["form"] = client.post(
                "/api/v1/households", json=body | {"lon": 116.503, "lat": 39.702}, headers=headers
            )

    try:
        with app.app_context():
            with db.engine.connect() as holder:
                holder.execute(
                    text("SELECT 1 FROM grids WHERE id = :id FOR UPDATE"), {"id": other_id}
                )
                importing = threading.Thread(target=import_register)
                importing.start()
                races.wait_for_lock_waits(db.engine, 1)
                sending = threading.Thread(target=send_form)
                sending.start()
                races.wait_for_lock_waits(db.engine, 2)
                holder.commit()
            importing.join(60)
            sending.join(60)
            with db.new_session() as session:
                rooms = session.scalars(
                    select(Household.room).where(Household.grid_id == grid_id)
                ).all()
    finally:
        with app.app_context():
            db.engine.dispose()
    assert answers["import"].status_code == 201, answers["import"].json
    assert answers["form"].status_code == 409, answers["form"].json
    assert sorted(rooms) == ["101", "102", "104"]
