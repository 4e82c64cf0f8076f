"""Signing in: tokens, refresh, the signed-in user, revocation, and problem responses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import event

from api.auth import claims_for
from tests.factories import A1, PASSWORD


def sign_in(client, username, password=PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_sign_in_returns_access_and_refresh_tokens(client, world):
    response = sign_in(client, "worker_a1")
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["access_token"] and body["refresh_token"]
    assert body["user"]["grid_codes"] == [A1]


def test_wrong_password_is_401_problem(client, world):
    response = sign_in(client, "worker_a1", "wrong-password")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["title"] == "Unauthorized"


def test_unknown_user_is_the_same_401(client, world):
    assert (
        sign_in(client, "nobody").json["detail"] == sign_in(client, "worker_a1", "x").json["detail"]
    )


def test_missing_fields_is_422_with_field_errors(client, world):
    response = client.post("/api/v1/auth/token", json={"username": "worker_a1"})
    assert response.status_code == 422
    assert "password" in response.json["errors"]["json"]


def test_refresh_gives_a_new_access_token(client, world):
    refresh = sign_in(client, "worker_a1").json["refresh_token"]
    response = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert response.status_code == 200
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json['access_token']}"}
    )
    assert me.json["username"] == "worker_a1"


def test_an_access_token_cannot_refresh(client, world):
    access = sign_in(client, "worker_a1").json["access_token"]
    response = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 422 or response.status_code == 401


def test_no_token_is_401(client, world):
    response = client.get("/api/v1/grids")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_garbage_token_is_401(client, world):
    response = client.get("/api/v1/grids", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401


def test_expired_token_is_401(app, client, world):
    with app.app_context():
        user = world.users["worker_a1"]
        token = create_access_token(
            user, additional_claims=claims_for(user), expires_delta=timedelta(seconds=-1)
        )
    response = client.get("/api/v1/grids", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


def test_bumping_the_token_version_revokes_issued_tokens(client, session, world):
    headers = world.auth("worker_a1")
    user = world.users["worker_a1"]
    user.token_version += 1
    session.flush()
    assert client.get("/api/v1/grids", headers=headers).status_code == 401


def test_deactivated_user_is_401(client, session, world):
    headers = world.auth("worker_a1")
    world.users["worker_a1"].active = False
    session.flush()
    assert client.get("/api/v1/grids", headers=headers).status_code == 401


def test_a_switched_off_account_is_told_so_once_its_password_is_right(client, session, world):
    """A worker whose account the admin switched off was told "wrong password", tried again
    until the throttle locked them out, and never learned to ask the admin. The right password
    now gets a 403 that says the account is switched off; a wrong one is the same 401 as any
    (who is switched off is not told to someone guessing)."""
    world.users["worker_a1"].active = False
    session.flush()
    right = sign_in(client, "worker_a1")
    assert right.status_code == 403
    assert right.json["type"].endswith("/account-switched-off")
    assert "switched off" in right.json["detail"]
    assert "access_token" not in right.json
    wrong = sign_in(client, "worker_a1", "wrong-password")
    assert wrong.status_code == 401
    assert wrong.json["detail"] == sign_in(client, "nobody").json["detail"]


def test_passwords_are_stored_as_argon2_hashes(world):
    assert world.users["worker_a1"].password_hash.startswith("$argon2")


# --- what a request costs before its view ------------------------------------------------------


@pytest.mark.parametrize("username", ["worker_a1", "leader_a"])
def test_a_workers_token_user_and_grids_are_read_in_one_statement(
    client, world, connection, username
):
    """Every request of a worker or a grid leader needs their grids (the scope): they came in a
    statement of their own (a leader's in two), a round trip each before the view."""
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        response = client.get("/api/v1/households?page_size=1", headers=world.auth(username))
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert response.status_code == 200
    grids_read = [s for s in sent if "FROM user_grids" in s or "grids.leader_id =" in s]
    assert len(grids_read) == 1
    assert "revoked_tokens" in grids_read[0]  # the token check's own statement
