"""A map asks for dozens of tiles at a time, all with one token. The first tile of a token is
checked as every request is (the token check, a statement of its own, which reads the user and
their grids); each next tile carries the check inside its own statement: the token still live,
the user still active and still the one whose scope drew the last tile. One round trip a tile.

When the statement finds the token dead, it draws nothing and writes no audit entry, and the
request is refused as any request with that token is. When it finds the user's scope changed
(other grids, another role or community), the tile is drawn again for the scope as it is now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from api import auth, errors
from api.models import AuditEntry
from tests.api.test_auth_sessions import bearer, sign_in
from tests.api.test_round_trips import statements
from tests.api.test_tiles import props, url
from tests.factories import A1, A2, B1, A, B, centre

# Households from zoom 16 are drawn one by one, each with its grid.
Z = 16


def households_tile(code: str) -> str:
    return url("households", *centre(code), z=Z)


def checks(sent: list[str]) -> list[str]:
    """The statements that checked the token (they read revoked_tokens)."""
    return [s for s in sent if "revoked_tokens" in s]


def entries(session, user_id: int) -> int:
    return session.scalar(
        select(text("count(*)")).select_from(AuditEntry).where(AuditEntry.user_id == user_id)
    )


def test_the_next_tiles_of_a_token_check_it_inside_their_own_statement(client, world, connection):
    headers = world.auth("leader_a")
    path = households_tile(A1)
    first, sent_first = statements(connection, lambda: client.get(path, headers=headers))
    again, sent_again = statements(connection, lambda: client.get(path, headers=headers))
    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    (check,) = checks(sent_first)
    assert "ST_AsMVT" not in check
    (check,) = checks(sent_again)
    assert "ST_AsMVT" in check
    assert [s for s in sent_again if "ST_AsMVT" in s] == [check]


def test_another_endpoint_still_checks_the_token_on_its_own(client, world, connection):
    headers = world.auth("leader_a")
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    response, sent = statements(connection, lambda: client.get("/api/v1/grids", headers=headers))
    assert response.status_code == 200
    assert len(checks(sent)) == 1 and "ST_AsMVT" not in checks(sent)[0]


@pytest.mark.parametrize("layer", ["grids", "households", "visits", "tasks"])
def test_a_token_revoked_after_a_tile_gets_no_next_tile_and_no_audit_entry(
    client, session, world, layer
):
    tokens = sign_in(client, "leader_a")
    headers = bearer(tokens["access_token"])
    path = url(layer, *centre(A1), z=Z)
    assert client.get(path, headers=headers).status_code in (200, 204)
    assert client.post("/api/v1/auth/logout", json={}, headers=headers).status_code == 204
    written = entries(session, world.users["leader_a"].id)
    refused = client.get(path, headers=headers)
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert refused.json["detail"] == "The token was revoked."
    assert entries(session, world.users["leader_a"].id) == written


def deactivate(session, world):
    world.users["leader_a"].active = False


def bump_token_version(session, world):
    world.users["leader_a"].token_version += 1


@pytest.mark.parametrize("change", [deactivate, bump_token_version])
def test_a_user_switched_off_after_a_tile_gets_no_next_tile(client, session, world, change):
    headers = world.auth("leader_a")
    path = households_tile(A1)
    assert client.get(path, headers=headers).status_code == 200
    change(session, world)
    session.flush()
    written = entries(session, world.users["leader_a"].id)
    refused = client.get(path, headers=headers)
    assert refused.status_code == 401
    assert refused.json["detail"] == "The token is no longer valid."
    assert entries(session, world.users["leader_a"].id) == written


def grid_ids(response) -> set[int]:
    return {p["grid_id"] for p in props(response, "households")}


def test_a_worker_moved_to_another_grid_sees_it_on_the_next_tile(client, session, world):
    headers = world.auth("worker_a1")
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == {world.grids[A1].id}
    assert grid_ids(client.get(households_tile(A2), headers=headers)) == set()
    session.execute(
        text("UPDATE user_grids SET grid_id = :a2 WHERE user_id = :user"),
        {"a2": world.grids[A2].id, "user": world.users["worker_a1"].id},
    )
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == set()
    assert grid_ids(client.get(households_tile(A2), headers=headers)) == {world.grids[A2].id}


def test_a_leader_no_longer_leading_a_grid_stops_seeing_it(client, session, world):
    leader = world.users["worker_a2"]  # made a grid leader who leads A1 too
    leader.role = "grid_leader"
    world.grids[A1].leader_id = leader.id
    session.flush()
    headers = world.auth("worker_a2")
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == {world.grids[A1].id}
    world.grids[A1].leader_id = None
    session.flush()
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == set()


def test_an_admin_moved_to_another_community_sees_it_on_the_next_tile(client, session, world):
    headers = world.auth("admin_a")
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == {world.grids[A1].id}
    world.users["admin_a"].community_code = B
    session.flush()
    assert grid_ids(client.get(households_tile(A1), headers=headers)) == set()
    assert grid_ids(client.get(households_tile(B1), headers=headers)) == {world.grids[B1].id}


def test_a_worker_made_community_admin_sees_the_community_on_the_next_tile(client, session, world):
    headers = world.auth("worker_a1")
    assert grid_ids(client.get(households_tile(A2), headers=headers)) == set()
    user = world.users["worker_a1"]
    user.role, user.community_code = "community_admin", A
    session.flush()
    assert grid_ids(client.get(households_tile(A2), headers=headers)) == {world.grids[A2].id}


def test_a_tile_drawn_without_sql_still_refuses_a_revoked_token(client, world):
    """Households are not drawn below zoom 15: such a tile is answered without a statement,
    so the token is checked on its own."""
    tokens = sign_in(client, "leader_a")
    headers = bearer(tokens["access_token"])
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    empty = url("households", *centre(A1), z=12)
    assert client.get(empty, headers=headers).status_code == 204
    client.post("/api/v1/auth/logout", json={}, headers=headers)
    assert client.get(empty, headers=headers).status_code == 401


@pytest.mark.parametrize(
    "bad",
    [
        url("households", *centre(A1), z=Z, week="2026-W99"),
        url("households", *centre(A1), z=Z, colour="red"),
        "/api/v1/tiles/nothing/16/1/1.mvt",
        "/api/v1/tiles/households/16/99999999/1.mvt",
    ],
)
def test_a_revoked_tokens_bad_tile_request_is_refused_as_revoked(client, world, bad):
    """Whatever is wrong with the request, a dead token hears first that it is dead."""
    tokens = sign_in(client, "leader_a")
    headers = bearer(tokens["access_token"])
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    assert client.get(bad, headers=headers).status_code in (404, 422)
    client.post("/api/v1/auth/logout", json={}, headers=headers)
    refused = client.get(bad, headers=headers)
    assert refused.status_code == 401
    assert refused.json["detail"] == "The token was revoked."
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_logging_out_on_one_device_leaves_the_others_tiles(client, world):
    phone = bearer(sign_in(client, "leader_a")["access_token"])
    laptop = bearer(sign_in(client, "leader_a")["access_token"])
    for headers in (phone, laptop):
        assert client.get(households_tile(A1), headers=headers).status_code == 200
    client.post("/api/v1/auth/logout", json={}, headers=phone)
    assert client.get(households_tile(A1), headers=phone).status_code == 401
    assert client.get(households_tile(A1), headers=laptop).status_code == 200


def test_a_process_keeps_a_bounded_number_of_principals_dropping_the_oldest(monkeypatch):
    from api import auth
    from api.scope import ScopeGrids
    from api.services.sessions import Principal

    monkeypatch.setattr(auth, "PRINCIPALS_KEPT", 2)
    kept = auth._Principals(["tiles.Tile"])
    first, second, third = (
        Principal(n, "worker", None, None, 0, ScopeGrids(n, (n,), ())) for n in (1, 2, 3)
    )
    for principal in (first, second, third):
        kept.put(principal)
    assert [kept.get(n, 0) for n in (1, 2, 3)] == [None, second, third]
    kept.drop(second)
    assert kept.get(2, 0) is None
    kept.put(second)  # full again: third is the oldest
    kept.put(second)  # stored again, by another request
    assert kept.get(3, 0) is third  # not pushed out by a principal already kept
    newer = Principal(2, "worker", None, None, 0, ScopeGrids(2, (2, 5), ()))
    kept.put(newer)
    kept.drop(second)  # a request's stale principal: the newer one stays
    assert kept.get(2, 0) is newer


# --- a token refused by its verification after its check was left to the statement --------
# The revocation check runs first (flask-jwt-extended's blocklist loader, where the check is
# left to the statement), then the expiry by the app's clock (the database's, which may run
# ahead of the host's that PyJWT reads), then the user. A tile's token refused in between is
# answered as on any endpoint.


def logout(client, headers):
    assert client.post("/api/v1/auth/logout", json={}, headers=headers).status_code == 204


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda client, session, world, headers: None, "The token has expired."),
        (lambda client, session, world, headers: logout(client, headers), "The token was revoked."),
        (
            lambda client, session, world, headers: deactivate(session, world),
            "The token has expired.",
        ),
    ],
    ids=["expired", "expired-and-revoked", "expired-and-deactivated"],
)
def test_a_token_expired_on_the_apps_clock_after_a_tile_is_refused_as_on_any_endpoint(
    app, client, session, world, change, detail
):
    headers = bearer(sign_in(client, "leader_a")["access_token"])
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    change(client, session, world, headers)
    session.flush()
    app.config["FIXED_NOW"] = datetime.now(UTC) + timedelta(minutes=61)
    refused = client.get(households_tile(A1), headers=headers)
    elsewhere = client.get("/api/v1/grids", headers=headers)
    assert refused.status_code == elsewhere.status_code == 401
    assert refused.json == elsewhere.json
    assert refused.json["detail"] == detail


# --- the caller during a tile's request whose check was left to its statement ---------------
# The tile view reads only the scope; anything else in the request asking who the caller is
# (`current_user()`) gets the user checked in full, whether the statement's check is still to
# come, held, or failed.


def deferred_request(app, client, headers):
    """A tile request of a token whose user was checked before, up to its view."""
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    context = app.test_request_context(households_tile(A1), headers=headers)
    context.push()
    app.preprocess_request()
    assert auth.deferred_check() is not None
    return context


def test_the_caller_is_the_user_after_the_statement_confirmed_the_check(app, client, world):
    context = deferred_request(app, client, world.auth("admin_a"))
    try:
        auth.confirm_check()
        assert auth.current_user().id == world.users["admin_a"].id
    finally:
        context.pop()


def test_a_request_whose_token_was_refused_keeps_no_scope(app, client, session, world):
    headers = bearer(sign_in(client, "leader_a")["access_token"])
    context = deferred_request(app, client, headers)
    try:
        assert auth.current_scope().user_id == world.users["leader_a"].id
        world.users["leader_a"].active = False
        session.flush()
        with pytest.raises(errors.Unauthorized):
            auth.check_token_now()
        with pytest.raises(errors.Unauthorized):
            auth.current_scope()
        with pytest.raises(errors.Unauthorized):
            auth.current_user()
    finally:
        context.pop()


# --- other tokens after a tile: each answered as on any endpoint --------------------------


def test_a_deleted_users_token_is_refused_as_on_any_endpoint(client, session, world):
    headers = world.auth("admin_a")  # a tool's token: no sign-in session
    assert client.get(households_tile(A1), headers=headers).status_code == 200
    session.execute(text("DELETE FROM users WHERE id = :id"), {"id": world.users["admin_a"].id})
    refused = client.get(households_tile(A1), headers=headers)
    elsewhere = client.get("/api/v1/grids", headers=headers)
    assert refused.status_code == elsewhere.status_code == 401
    assert refused.json == elsewhere.json


def test_a_refresh_token_gets_no_tile_after_its_sessions_access_token_did(client, world):
    tokens = sign_in(client, "leader_a")
    assert (
        client.get(households_tile(A1), headers=bearer(tokens["access_token"])).status_code == 200
    )
    refused = client.get(households_tile(A1), headers=bearer(tokens["refresh_token"]))
    elsewhere = client.get("/api/v1/grids", headers=bearer(tokens["refresh_token"]))
    assert refused.status_code == elsewhere.status_code == 401
    assert refused.json == elsewhere.json


def test_two_users_tiles_in_turn_each_draw_their_own_grids(client, world):
    a1, a2 = world.auth("worker_a1"), world.auth("worker_a2")
    for _ in range(2):  # the second round: both principals known, each checked in its statement
        assert grid_ids(client.get(households_tile(A1), headers=a1)) == {world.grids[A1].id}
        assert grid_ids(client.get(households_tile(A1), headers=a2)) == set()
        assert grid_ids(client.get(households_tile(A2), headers=a2)) == {world.grids[A2].id}
