"""Households stored before their address parts were made half-width and spaced one way (７号楼,
3 号楼): `gridwork households spellings` lists them and, with --apply, respells them; two
households of one address at one point, spelled two ways, are named and left as they are."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select, update

from api.cli import main
from api.models import AuditEntry, Household
from tests.factories import A1, B1, A, centre, make_household


def run(app, *args):
    with app.app_context():
        return CliRunner().invoke(main, ["households", "spellings", *args])


def address(session, household) -> tuple[str, str, str, str]:
    session.expire_all()
    home = session.get(Household, household.id)
    return home.building, home.unit, home.floor, home.room


def legacy(session):
    """Two households as they were stored before (make_household stores what it is given)."""
    lon, lat = centre(A1, dy=-0.002)
    full_width = make_household(session, lon, lat, building="７号楼", unit="１", room="７０１")
    spaced = make_household(session, lon, lat, building="3 号楼", unit="2\u3000单元", room="702")
    session.flush()
    return full_width, spaced


def test_the_households_stored_spelled_otherwise_are_listed_and_not_changed(app, session, world):
    full_width, spaced = legacy(session)
    result = run(app)
    assert result.exit_code == 0, result.output
    assert "2 households stored spelled otherwise" in result.output
    assert f"household {full_width.id} ({A1}): ７号楼 / １ / 1 / ７０１ -> 7号楼 / 1 / 1 / 701" in (
        result.output
    )
    assert (
        f"household {spaced.id} ({A1}): 3 号楼 / 2\u3000单元 / 1 / 702 -> 3号楼 / 2单元 / 1 / 702"
        in (result.output)
    )
    assert "--apply" in result.output
    assert address(session, full_width) == ("７号楼", "１", "1", "７０１")


def test_apply_respells_them_as_an_audited_update(app, session, world):
    full_width, spaced = legacy(session)
    result = run(app, "--apply")
    assert result.exit_code == 0, result.output
    assert "2 households respelled" in result.output
    assert address(session, full_width) == ("7号楼", "1", "1", "701")
    assert address(session, spaced) == ("3号楼", "2单元", "1", "702")
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "update").order_by(AuditEntry.id.desc())
    )
    assert (entry.user_id, entry.resource) == (None, "household")
    assert sorted(entry.resource_ids) == sorted([full_width.id, spaced.id])
    assert entry.path.startswith("gridwork households spellings")
    assert "0 households stored spelled otherwise" in run(app).output


def test_one_address_registered_twice_spelled_two_ways_is_named_and_not_merged(app, session, world):
    """3 号楼 502 and 3号楼 0502 at one point: one flat registered twice (the update import made
    the second). Which holds the visits, the phone? Not the command's to say: it names both,
    respells neither, deletes neither."""
    lon, lat = centre(A1, dy=-0.0025)
    spaced = make_household(session, lon, lat, building="3 号楼", unit="1", room="502")
    zeroed = make_household(session, lon, lat, building="3号楼", unit="1", room="9")
    other = make_household(session, lon, lat, building="８号楼", unit="1", room="502")
    session.flush()
    # Registered so before a form's repeat was refused: 0502 beside 502.
    session.execute(update(Household).where(Household.id == zeroed.id).values(room="0502"))
    session.expire_all()
    result = run(app, "--apply")
    assert result.exit_code == 0, result.output
    assert "1 address registered more than once at one point" in result.output
    assert f"households {spaced.id} (3 号楼 / 1 / 1 / 502), {zeroed.id} (3号楼 / 1 / 1 / 0502)" in (
        result.output
    )
    assert "1 household respelled" in result.output
    assert address(session, spaced) == ("3 号楼", "1", "1", "502")
    assert address(session, zeroed) == ("3号楼", "1", "1", "0502")
    assert address(session, other) == ("8号楼", "1", "1", "502")


def test_an_address_registered_twice_is_resolved_by_removing_one_as_a_duplicate(
    app, client, session, world
):
    lon, lat = centre(A1, dy=-0.0025)
    kept = make_household(session, lon, lat, building="3 号楼", unit="1", room="502")
    twice = make_household(session, lon, lat, building="3号楼", unit="1", room="9")
    session.flush()
    session.execute(update(Household).where(Household.id == twice.id).values(room="0502"))
    assert "1 address registered more than once" in run(app).output
    response = client.post(
        f"/api/v1/households/{twice.id}/removal",
        json={"reason": "duplicate", "note": f"same flat as {kept.id}"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 201, response.json
    assert "registered more than once" not in run(app).output


def test_a_household_removed_from_the_register_is_left_as_it_was_when_it_left(
    app, client, session, world
):
    """Out of the register, it is no work's address: it is kept as it was registered (the
    import matches a returning household by its address key, however it is spelled)."""
    full_width, spaced = legacy(session)
    response = client.post(
        f"/api/v1/households/{full_width.id}/removal",
        json={"reason": "moved_out"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 201, response.json
    result = run(app, "--apply")
    assert "1 household respelled" in result.output, result.output
    assert address(session, full_width) == ("７号楼", "１", "1", "７０１")
    assert address(session, spaced) == ("3号楼", "2单元", "1", "702")


def test_a_community_limits_the_households_looked_at(app, session, world):
    in_a = make_household(session, *centre(A1, dy=-0.002), building="９号楼")
    in_b = make_household(session, *centre(B1, dy=-0.002), building="９号楼")
    session.flush()
    result = run(app, "--community", A, "--apply")
    assert result.exit_code == 0, result.output
    assert (address(session, in_a)[0], address(session, in_b)[0]) == ("9号楼", "９号楼")


def test_households_stored_as_the_import_stores_them_are_not_listed(app, session, world):
    make_household(session, *centre(A1, dy=-0.002), building="Block A", unit="01", room="0502")
    session.flush()
    result = run(app)
    assert result.exit_code == 0, result.output
    assert "0 households stored spelled otherwise" in result.output


def test_a_building_of_spaces_alone_is_not_respelled_blank(app, session, world):
    home = make_household(session, *centre(A1, dy=-0.002), building="\u3000")
    session.flush()
    result = run(app, "--apply")
    assert result.exit_code == 0, result.output
    assert address(session, home)[0] == "\u3000"


def test_invisible_characters_stored_before_are_respelled_away(app, session, world):
    """3<U+200B>号楼 stored before address parts lost their invisible characters reads as 3号楼
    and is listed as another building: respelled 3号楼."""
    home = make_household(session, *centre(A1, dy=-0.002), building="3\u200b号楼", room="\ufeff9")
    session.flush()
    result = run(app, "--apply")
    assert result.exit_code == 0, result.output
    assert "1 household respelled" in result.output
    assert address(session, home) == ("3号楼", "1", "1", "9")
