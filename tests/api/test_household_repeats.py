"""One address at one point is one household: a form (POST, PATCH) is refused a repeat as an
import row is, however the address is spelled (0502 / 502, 3 号楼 / ３号楼, f502 / F502)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.models import Household
from tests.factories import A1, A2, B1, BOXES, centre, make_household

POINT = centre(A1, dy=0.0012)


def count(session) -> int:
    return session.scalar(select(func.count(Household.id)))


def post(client, world, user="worker_a1", **fields):
    lon, lat = fields.pop("at", POINT)
    return client.post(
        "/api/v1/households",
        json={"lon": lon, "lat": lat, **fields},
        headers=world.auth(user),
    )


@pytest.mark.parametrize(
    ("registered", "typed"),
    [
        ({"building": "3号楼", "unit": "1", "room": "0502"}, {"unit": "01", "room": "502"}),
        ({"building": "3 号楼", "unit": "1", "room": "502"}, {"unit": "1", "room": "502"}),
        ({"building": "3号楼", "unit": "1", "room": "502"}, {"unit": "１", "room": "５０２"}),
        ({"building": "3号楼", "unit": "1", "room": "F502"}, {"unit": "1", "room": "f502"}),
    ],
)
def test_a_form_registering_an_address_already_at_the_point_is_409_naming_the_household(
    client, session, world, registered, typed
):
    home = make_household(session, *POINT, **{"floor": "", **registered})
    session.flush()
    before = count(session)
    response = post(client, world, building=" 3号楼", **typed)
    assert response.status_code == 409, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["household_id"] == home.id
    assert f"household {home.id}" in response.json["detail"]
    assert count(session) == before


def test_another_room_at_the_point_or_the_same_room_at_another_point_is_registered(
    client, session, world
):
    """Rooms of a stair entrance share its point; the same number at another point is another
    building numbered alike (the import's rule)."""
    make_household(session, *POINT, building="3号楼", unit="1", floor="", room="502")
    session.flush()
    assert post(client, world, building="3号楼", unit="1", room="602").status_code == 201
    lon, lat = POINT
    elsewhere = (lon + 0.0003, lat)
    assert (
        post(client, world, building="3号楼", unit="1", room="502", at=elsewhere).status_code == 201
    )
    assert post(client, world, building="3号楼", unit="1", room="5020").status_code == 201


def test_a_repeat_at_a_point_within_a_centimetre_is_refused(client, session, world):
    """The point Excel or a map gives back, 15 digits kept: the same point to the import."""
    lon, lat = POINT
    home = make_household(session, lon, lat, building="8", unit="", floor="", room="1")
    session.flush()
    response = post(client, world, building="8", room="1", at=(lon + 1e-9, lat - 1e-9))
    assert response.status_code == 409
    assert response.json["household_id"] == home.id


def test_a_repeat_of_a_household_outside_your_grids_is_409_without_naming_it(
    client, session, world
):
    """On the A1 | A2 border the household goes to A1 (the lower code); a point a few mm east
    of it is A2's, where worker_a2 registers. Refused (one flat, two households), but the
    household of A1 is not disclosed to A2's worker."""
    border = (BOXES[A1][2], centre(A1)[1] + 0.0017)
    home = make_household(session, *border, building="5", unit="", floor="", room="101")
    session.flush()
    assert home.grid_id == world.grids[A1].id
    before = count(session)
    response = post(
        client, world, user="worker_a2", building="5", room="101", at=(border[0] + 3e-8, border[1])
    )
    assert response.status_code == 409, response.json
    assert "household_id" not in response.json
    assert str(home.id) not in response.json["detail"]
    assert count(session) == before


def test_a_patch_giving_a_household_the_address_of_another_at_its_point_is_409(
    client, session, world
):
    first = make_household(session, *POINT, building="6", unit="", floor="", room="101")
    second = make_household(session, *POINT, building="6", unit="", floor="", room="102")
    session.flush()
    response = client.patch(
        f"/api/v1/households/{second.id}", json={"room": " 0101"}, headers=world.auth("worker_a1")
    )
    assert response.status_code == 409, response.json
    assert response.json["household_id"] == first.id
    session.expire_all()
    assert session.get(Household, second.id).room == "102"


def test_a_patch_moving_a_household_onto_its_twin_at_another_point_is_409(client, session, world):
    lon, lat = POINT
    first = make_household(session, lon, lat, building="6", unit="", floor="", room="201")
    second = make_household(session, lon + 0.0003, lat, building="6", unit="", floor="", room="201")
    session.flush()
    response = client.patch(
        f"/api/v1/households/{second.id}",
        json={"lon": lon, "lat": lat},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 409
    assert response.json["household_id"] == first.id


def test_a_patch_respelling_a_households_own_address_is_no_repeat(client, session, world):
    """Its own record is not a second household: 0502 written 502, F502 written f502."""
    home = make_household(session, *POINT, building="6", unit="", floor="", room="0502")
    session.flush()
    response = client.patch(
        f"/api/v1/households/{home.id}",
        json={"room": "502", "members": 3},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 200, response.json
    assert (response.json["room"], response.json["members"]) == ("502", 3)


def test_a_patch_of_other_facts_of_a_household_registered_twice_before_is_allowed(
    client, session, world
):
    """Households stored twice before the check (`gridwork households spellings` names them)
    can still have their members or tags corrected: only an address or point change is
    checked."""
    lon, lat = POINT
    make_household(session, lon, lat, building="6", unit="", floor="", room="301")
    other = make_household(session, lon, lat, building="6", unit="", floor="", room="9")
    session.flush()
    # Stored as a household was before the check: 0301 beside 301.
    session.execute(
        Household.__table__.update().where(Household.id == other.id).values(room="0301")
    )
    session.flush()
    response = client.patch(
        f"/api/v1/households/{other.id}", json={"members": 4}, headers=world.auth("worker_a1")
    )
    assert response.status_code == 200, response.json


def test_the_repeat_of_a_household_in_another_community_at_a_shared_border_is_not_disclosed(
    client, session, world
):
    """A2 | B1 is a community border: B's admin learns only that the flat is registered."""
    border = (BOXES[A2][2], centre(A2)[1] - 0.0011)
    home = make_household(session, *border, building="7", unit="", floor="", room="1")
    session.flush()
    assert home.grid_id == world.grids[A2].id
    response = post(
        client, world, user="admin_b", building="7", room="1", at=(border[0] + 3e-8, border[1])
    )
    assert response.status_code == 409
    assert "household_id" not in response.json
    assert world.grids[B1].code not in response.json["detail"]
