"""Sign-in sessions: expiry by the app's clock, logout, refresh rotation with reuse detection,
password change, and the sign-in throttle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import select

from api.auth import claims_for
from api.models import AuthSession, LoginAttempt, RevokedToken
from api.services import audit, sessions
from tests.factories import PASSWORD, build_app, restart_with_rotated_key


def sign_in(client, username="worker_a1", password=PASSWORD):
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(client, token):
    return client.get("/api/v1/auth/me", headers=bearer(token))


def refresh(client, token):
    return client.post("/api/v1/auth/refresh", headers=bearer(token))


# --- expiry ---------------------------------------------------------------------------------
def test_an_access_token_works_until_its_lifetime_passes_on_the_app_clock(app, client, world):
    tokens = sign_in(client)
    start = datetime.now(UTC)
    app.config["FIXED_NOW"] = start + timedelta(minutes=59)
    assert me(client, tokens["access_token"]).status_code == 200
    app.config["FIXED_NOW"] = start + timedelta(minutes=61)
    response = me(client, tokens["access_token"])
    assert response.status_code == 401
    assert response.json["type"].endswith("/token-expired")


def test_a_refresh_token_expires_after_its_days(app, client, world):
    tokens = sign_in(client)
    app.config["FIXED_NOW"] = datetime.now(UTC) + timedelta(days=31)
    assert refresh(client, tokens["refresh_token"]).status_code == 401


# --- logout ---------------------------------------------------------------------------------
def test_logout_revokes_the_access_token(client, world):
    tokens = sign_in(client)
    assert client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens["access_token"]))
    assert me(client, tokens["access_token"]).status_code == 401


def test_logout_revokes_the_sessions_refresh_token_too(client, world):
    tokens = sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens["access_token"]))
    assert refresh(client, tokens["refresh_token"]).status_code == 401


def test_logout_leaves_the_users_other_sessions_signed_in(client, world):
    phone, laptop = sign_in(client), sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(phone["access_token"]))
    assert me(client, laptop["access_token"]).status_code == 200
    assert refresh(client, laptop["refresh_token"]).status_code == 200


# --- sign out everywhere --------------------------------------------------------------------
def logout_all(client, token):
    return client.post("/api/v1/auth/logout-all", headers=bearer(token))


def test_logout_all_signs_out_every_session_of_the_caller(client, world):
    """A phone lost and the password still one's own: every sign-in ends, this one too."""
    here, phone, laptop = sign_in(client), sign_in(client), sign_in(client)
    response = logout_all(client, here["access_token"])
    assert response.status_code == 200, response.json
    for tokens in (here, phone, laptop):
        assert me(client, tokens["access_token"]).status_code == 401
        assert refresh(client, tokens["refresh_token"]).status_code == 401


def test_logout_all_answers_how_many_sign_ins_and_devices_it_ended(client, world):
    here, _ = sign_in(client), sign_in(client)
    response = logout_all(client, here["access_token"])
    assert response.json == {"sessions_revoked": 2, "devices_signed_out": 0}


def test_logout_all_ends_tokens_of_no_session_too(client, world):
    """A token minted without a session (a tool's) is governed by the token version only."""
    headers = world.auth("worker_a1")
    assert client.post("/api/v1/auth/logout-all", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_logout_all_leaves_other_users_signed_in(client, world):
    mine, theirs = sign_in(client), sign_in(client, "worker_a2")
    logout_all(client, mine["access_token"])
    assert me(client, theirs["access_token"]).status_code == 200
    assert refresh(client, theirs["refresh_token"]).status_code == 200


def test_after_logout_all_the_password_signs_in_again(client, world):
    logout_all(client, sign_in(client)["access_token"])
    tokens = sign_in(client)
    assert me(client, tokens["access_token"]).status_code == 200


def test_logout_all_records_why_the_sessions_ended(client, session, world):
    logout_all(client, sign_in(client)["access_token"])
    ended = session.scalars(select(AuthSession.revoked_reason)).all()
    assert ended == ["signed-out-everywhere"]


def test_a_refresh_token_cannot_sign_out_everywhere(client, world):
    tokens = sign_in(client)
    assert logout_all(client, tokens["refresh_token"]).status_code == 401
    assert me(client, tokens["access_token"]).status_code == 200


# --- why a sign-in ended ---------------------------------------------------------------------
# The app told a worker whose sign-in an admin ended "登录已过期" (expired): they signed in with
# the password they knew and heard it was wrong (reset), or could never sign in again without
# knowing why, the visits on their phone waiting for a sign-in that never comes (switched off).
# The 401 of a token whose sign-in was ended says why (`session_ended`).
def reset_by_admin(client, world, user_id):
    response = client.post(
        f"/api/v1/users/{user_id}/password",
        json={"new_password": "a-new-password-1"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 204, response.json


def switched_off(client, world, user_id):
    response = client.patch(
        f"/api/v1/users/{user_id}", json={"active": False}, headers=world.auth("admin_a")
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    ("end", "why"),
    [
        (lambda c, w, t: reset_by_admin(c, w, w.users["worker_a1"].id), "password-reset"),
        (lambda c, w, t: switched_off(c, w, w.users["worker_a1"].id), "switched-off"),
        (lambda c, w, t: logout_all(c, sign_in(c)["access_token"]), "signed-out-everywhere"),
        (
            lambda c, w, t: c.post(
                "/api/v1/auth/password",
                json={"current_password": PASSWORD, "new_password": "a-new-password-1"},
                headers=bearer(sign_in(c)["access_token"]),
            ),
            "password-changed",
        ),
    ],
    ids=["reset by an admin", "switched off", "signed out everywhere", "password changed"],
)
def test_a_refresh_of_a_sign_in_ended_says_why(client, world, end, why):
    tokens = sign_in(client)
    end(client, world, tokens)
    for response in (refresh(client, tokens["refresh_token"]), me(client, tokens["access_token"])):
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.json["session_ended"] == why


def test_a_refresh_token_past_its_days_says_only_that_it_expired(app, client, world):
    tokens = sign_in(client)
    app.config["FIXED_NOW"] = datetime.now(UTC) + timedelta(days=31)
    response = refresh(client, tokens["refresh_token"])
    assert response.json["type"].endswith("/token-expired")
    assert "session_ended" not in response.json


def test_a_replayed_refresh_token_says_the_sign_in_ended_as_reused(client, world):
    tokens = sign_in(client)
    refresh(client, tokens["refresh_token"])
    assert refresh(client, tokens["refresh_token"]).status_code == 401
    assert refresh(client, tokens["refresh_token"]).json["session_ended"] == "reused"


# --- refresh rotation -----------------------------------------------------------------------
def test_refresh_returns_a_new_refresh_token(client, world):
    tokens = sign_in(client)
    body = refresh(client, tokens["refresh_token"]).json
    assert body["refresh_token"] != tokens["refresh_token"]
    assert me(client, body["access_token"]).json["username"] == "worker_a1"
    assert refresh(client, body["refresh_token"]).status_code == 200


def test_a_reused_refresh_token_is_refused(client, world):
    tokens = sign_in(client)
    refresh(client, tokens["refresh_token"])
    response = refresh(client, tokens["refresh_token"])
    assert response.status_code == 401
    assert "already used" in response.json["detail"]


def test_a_reused_refresh_token_revokes_the_whole_session(client, session, world):
    tokens = sign_in(client)
    rotated = refresh(client, tokens["refresh_token"]).json  # the legitimate client
    refresh(client, tokens["refresh_token"])  # a stolen copy comes back
    assert me(client, rotated["access_token"]).status_code == 401
    assert refresh(client, rotated["refresh_token"]).status_code == 401
    row = session.scalars(select(AuthSession).order_by(AuthSession.created_at.desc())).first()
    assert row.revoked_reason == "refresh-token-reuse"


# --- purge -----------------------------------------------------------------------------------
def test_purge_removes_revoked_tokens_once_they_would_have_expired(client, session, world):
    tokens = sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens["access_token"]))
    (expires_at,) = session.execute(select(RevokedToken.expires_at)).one()
    assert sessions.purge_ended(session, expires_at - timedelta(seconds=1))[0] == 0
    assert sessions.purge_ended(session, expires_at + timedelta(seconds=1))[0] == 1
    assert session.scalar(select(RevokedToken.jti)) is None


def test_purge_keeps_live_sessions_and_recently_ended_ones(client, session, world):
    live, ended = sign_in(client), sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(ended["access_token"]))
    assert sessions.purge_ended(session, datetime.now(UTC)) == (0, 0)
    assert session.query(AuthSession).count() == 2
    assert me(client, live["access_token"]).status_code == 200


def test_purge_removes_sessions_ended_a_month_ago_and_their_tokens_stay_dead(
    client, session, world
):
    tokens = sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens["access_token"]))
    later = datetime.now(UTC) + timedelta(days=sessions.ENDED_SESSION_DAYS, minutes=1)
    assert sessions.purge_ended(session, later) == (1, 1)
    assert session.query(AuthSession).count() == 0
    # Neither the logged-out token nor the refresh token comes back to life.
    assert me(client, tokens["access_token"]).status_code == 401
    assert refresh(client, tokens["refresh_token"]).status_code == 401


def test_purge_removes_sessions_whose_refresh_token_expired_a_month_ago(client, session, world):
    sign_in(client)
    (expires_at,) = session.execute(select(AuthSession.expires_at)).one()
    month = timedelta(days=sessions.ENDED_SESSION_DAYS)
    assert sessions.purge_ended(session, expires_at + month - timedelta(minutes=1)) == (0, 0)
    assert sessions.purge_ended(session, expires_at + month + timedelta(minutes=1)) == (0, 1)


def test_an_access_token_cannot_be_used_to_refresh(client, world):
    tokens = sign_in(client)
    assert refresh(client, tokens["access_token"]).status_code in (401, 422)


# --- password change ------------------------------------------------------------------------
def change(client, token, current=PASSWORD, new="a-new-long-password"):
    return client.post(
        "/api/v1/auth/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


def test_changing_the_password_signs_out_every_other_session(client, world):
    here, elsewhere = sign_in(client), sign_in(client)
    response = change(client, here["access_token"])
    assert response.status_code == 200
    assert me(client, elsewhere["access_token"]).status_code == 401
    assert refresh(client, elsewhere["refresh_token"]).status_code == 401
    assert me(client, response.json["access_token"]).status_code == 200
    assert refresh(client, response.json["refresh_token"]).status_code == 200


def test_after_a_password_change_only_the_new_password_signs_in(client, world):
    change(client, sign_in(client)["access_token"])
    assert (
        client.post(
            "/api/v1/auth/token", json={"username": "worker_a1", "password": PASSWORD}
        ).status_code
        == 401
    )
    sign_in(client, password="a-new-long-password")


def test_a_wrong_current_password_is_403_and_changes_nothing(client, world):
    tokens = sign_in(client)
    response = change(client, tokens["access_token"], current="not-my-password")
    assert response.status_code == 403
    assert "current_password" in response.json["errors"]["json"]
    assert me(client, tokens["access_token"]).status_code == 200
    sign_in(client)


def test_a_short_new_password_is_422(client, world):
    tokens = sign_in(client)
    response = change(client, tokens["access_token"], new="short")
    assert response.status_code == 422
    assert "new_password" in response.json["errors"]["json"]


@pytest.mark.parametrize("new", [" " * 12, "a b c d e f g ", "\u3000" * 10 + "ab"])
def test_spaces_do_not_count_towards_a_passwords_length(client, world, new):
    """Eight spaces passed the eight-character rule: a password nobody needs to guess."""
    tokens = sign_in(client)
    response = change(client, tokens["access_token"], new=new)
    assert response.status_code == 422, response.json
    assert "new_password" in response.json["errors"]["json"]
    assert me(client, tokens["access_token"]).status_code == 200  # still signed in: unchanged


def test_the_same_password_again_is_422(client, world):
    tokens = sign_in(client)
    assert change(client, tokens["access_token"], new=PASSWORD).status_code == 422


def test_guessing_the_current_password_is_throttled(client, world):
    tokens = sign_in(client)
    for _ in range(5):
        change(client, tokens["access_token"], current="guess-guess")
    assert change(client, tokens["access_token"]).status_code == 429


def test_a_throttled_password_change_answers_429_problem_with_retry_after(client, world):
    tokens = sign_in(client)
    for _ in range(5):
        change(client, tokens["access_token"], current="guess-guess")
    response = change(client, tokens["access_token"])
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0


def test_failed_sign_ins_by_anyone_do_not_block_the_owners_password_change(client, world):
    """Knowing a username was enough to keep its owner from changing their password: failed
    sign-ins and wrong current passwords shared one count."""
    tokens = sign_in(client)
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    assert change(client, tokens["access_token"]).status_code == 200


def test_guessing_the_current_password_does_not_lock_signing_in(client, world):
    tokens = sign_in(client)
    for _ in range(5):
        assert change(client, tokens["access_token"], current="guess-guess").status_code == 403
    sign_in(client)


def test_the_password_change_throttle_counts_per_session(client, world):
    """A thief holding one stolen sign-in guesses at the current password: the owner's own
    sign-in may still change it (and so end the thief's)."""
    stolen, owners = sign_in(client), sign_in(client)
    for _ in range(5):
        change(client, stolen["access_token"], current="guess-guess")
    assert change(client, stolen["access_token"]).status_code == 429
    assert change(client, owners["access_token"]).status_code == 200
    assert me(client, stolen["access_token"]).status_code == 401


def test_refreshing_does_not_reset_the_password_change_throttle(client, world):
    tokens = sign_in(client)
    for _ in range(5):
        change(client, tokens["access_token"], current="guess-guess")
    renewed = refresh(client, tokens["refresh_token"]).json
    assert change(client, renewed["access_token"]).status_code == 429


def test_wrong_current_passwords_are_recorded_as_password_change_attempts(client, session, world):
    tokens = sign_in(client)
    change(client, tokens["access_token"], current="guess-guess")
    attempt = session.scalars(select(LoginAttempt).order_by(LoginAttempt.id.desc())).first()
    assert (attempt.kind, attempt.success) == ("password-change", False)
    assert attempt.user_id == world.users["worker_a1"].id
    assert attempt.session_id == session.scalar(select(AuthSession.id))  # the one sign-in


# --- throttled sign-in ----------------------------------------------------------------------
def test_too_many_failed_sign_ins_answer_429_problem_with_retry_after(client, world):
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    response = client.post(
        "/api/v1/auth/token", json={"username": "worker_a1", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["status"] == 429


def test_the_throttle_is_per_username(client, world):
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    sign_in(client, "worker_a2")


def test_the_throttle_lifts_after_its_window(app, client, session, world):
    from api.models import LoginAttempt

    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    for attempt in session.scalars(select(LoginAttempt)):
        attempt.at = attempt.at - timedelta(minutes=16)
    session.flush()
    sign_in(client)


def test_purge_removes_sign_in_attempts_past_six_months_and_keeps_the_rest(session):
    now = datetime.now(UTC)
    for days in (10, 183, 185, 400):
        session.add(LoginAttempt(username="x", success=False, at=now - timedelta(days=days)))
    session.flush()
    assert audit.purge_login_attempts(session, now) == 2
    kept = session.scalars(select(LoginAttempt.at).order_by(LoginAttempt.at.desc())).all()
    assert [(now - at).days for at in kept] == [10, 183]


# --- a rotated signing key (GRIDWORK_SECRET_KEY_FALLBACKS) -----------------------------------
def test_a_token_signed_with_the_old_key_works_while_it_is_a_fallback(
    client, world, database_url, connection
):
    tokens = sign_in(client)
    app = restart_with_rotated_key(database_url, connection, keep_old=True)
    assert me(app.test_client(), tokens["access_token"]).status_code == 200


def test_a_token_signed_with_the_old_key_is_401_without_the_fallback(
    client, world, database_url, connection
):
    tokens = sign_in(client)
    app = restart_with_rotated_key(database_url, connection, keep_old=False)
    response = me(app.test_client(), tokens["access_token"])
    assert response.status_code == 401
    assert "Signature verification failed" in response.json["detail"]


def test_a_refresh_token_signed_with_the_old_key_refreshes_to_tokens_of_the_new_key(
    client, world, database_url, connection
):
    """The refresh token is the longest-lived thing signed (REFRESH_TOKEN_DAYS): what it is
    exchanged for is signed with the new key only, and outlives the fallback."""
    tokens = sign_in(client)
    rotated = restart_with_rotated_key(database_url, connection, keep_old=True)
    fresh = refresh(rotated.test_client(), tokens["refresh_token"])
    assert fresh.status_code == 200
    app = restart_with_rotated_key(database_url, connection, keep_old=False)
    assert me(app.test_client(), fresh.json["access_token"]).status_code == 200
    assert refresh(app.test_client(), fresh.json["refresh_token"]).status_code == 200


def test_a_revoked_token_signed_with_the_old_key_stays_revoked(
    client, world, database_url, connection
):
    tokens = sign_in(client)
    client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens["access_token"]))
    app = restart_with_rotated_key(database_url, connection, keep_old=True)
    assert me(app.test_client(), tokens["access_token"]).status_code == 401
    assert refresh(app.test_client(), tokens["refresh_token"]).status_code == 401


def test_an_expired_token_signed_with_the_old_key_is_told_expired(
    app, world, database_url, connection
):
    user = world.users["worker_a1"]
    with app.app_context():
        token = create_access_token(
            user, additional_claims=claims_for(user), expires_delta=timedelta(seconds=-1)
        )
    rotated = restart_with_rotated_key(database_url, connection, keep_old=True)
    response = me(rotated.test_client(), token)
    assert response.status_code == 401
    assert response.json["type"].endswith("/token-expired")


def test_a_separate_jwt_secret_falls_back_to_its_own_old_keys(
    client, world, database_url, connection
):
    """GRIDWORK_JWT_SECRET_FALLBACKS, read only beside a GRIDWORK_JWT_SECRET of its own."""
    from api.extensions import db

    old, new = "old-jwt-secret-" + "o" * 32, "new-jwt-secret-" + "n" * 32
    signing = build_app(database_url, JWT_SECRET_KEY=old)
    db.bind(connection)
    tokens = sign_in(signing.test_client())
    for fallbacks, status in (([old], 200), ([], 401)):
        app = build_app(database_url, JWT_SECRET_KEY=new, JWT_SECRET_KEY_FALLBACKS=fallbacks)
        db.bind(connection)
        assert me(app.test_client(), tokens["access_token"]).status_code == status
