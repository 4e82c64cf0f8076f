"""What every request pays before its own work: a token's signature is verified once, not on
every request; the schemas of query arguments are built once; no cookie session is read.

What is skipped is only repeated work: revocation, the user and its token version are asked of
the database on every request (tests/api/test_auth*.py), and expiry is checked every time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import marshmallow as ma
from flask import session as flask_session
from flask.sessions import NullSession
from flask_jwt_extended import create_access_token
from jwt.api_jws import PyJWS

from api.auth import claims_for
from tests.factories import PASSWORD, TEST_SETTINGS


def verifications(monkeypatch) -> list[str]:
    """The signatures PyJWT verifies from now on."""
    seen: list[str] = []
    verify = PyJWS._verify_signature

    def spy(self, signing_input, header, signature, *args, **kwargs):
        seen.append(signature)
        return verify(self, signing_input, header, signature, *args, **kwargs)

    monkeypatch.setattr(PyJWS, "_verify_signature", spy)
    return seen


def test_a_tokens_signature_is_verified_on_its_first_request_only(client, world, monkeypatch):
    seen = verifications(monkeypatch)
    headers = world.auth("worker_a1")
    for _ in range(3):
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert len(seen) == 1


def test_a_token_altered_after_a_verified_one_is_verified_and_refused(client, world):
    token = world.auth("worker_a1")["Authorization"].removeprefix("Bearer ")
    genuine = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert genuine.status_code == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_token_verified_under_one_key_is_refused_once_the_key_changes(app, client, world):
    headers = world.auth("worker_a1")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    app.config["JWT_SECRET_KEY"] = "a-new-signing-key-" + "x" * 32
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert "Signature verification failed" in response.json["detail"]


def test_a_token_signed_with_a_fallback_key_is_verified_on_its_first_request_only(
    app, client, world, monkeypatch
):
    headers = world.auth("worker_a1")
    app.config["JWT_SECRET_KEY"] = "a-new-signing-key-" + "x" * 32
    app.config["JWT_SECRET_KEY_FALLBACKS"] = [TEST_SETTINGS["SECRET_KEY"]]
    seen = verifications(monkeypatch)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    first = len(seen)
    for _ in range(2):
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert len(seen) == first


def test_a_token_verified_under_a_fallback_key_is_refused_once_the_fallback_is_dropped(
    app, client, world
):
    """The kept verification is keyed by the fallbacks too: one kept while the old key was
    listed does not outlive the listing."""
    headers = world.auth("worker_a1")
    app.config["JWT_SECRET_KEY"] = "a-new-signing-key-" + "x" * 32
    app.config["JWT_SECRET_KEY_FALLBACKS"] = [TEST_SETTINGS["SECRET_KEY"]]
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    app.config["JWT_SECRET_KEY_FALLBACKS"] = []
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert "Signature verification failed" in response.json["detail"]


def test_a_verified_token_is_refused_once_it_expires_by_the_system_clock(app, client, world):
    """PyJWT checks `exp` against the system clock, the app against its own (FIXED_NOW here,
    frozen before the expiry): a token verified before is refused all the same."""
    app.config["FIXED_NOW"] = datetime.now(UTC)
    user = world.users["worker_a1"]
    with app.app_context():  # a token of two seconds (by the system clock)
        token = create_access_token(
            user, additional_claims=claims_for(user), expires_delta=timedelta(seconds=2)
        )
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    # `exp` is floored to the whole second: wait for the token's own expiry, not a fixed delta.
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json["type"].endswith("/token-expired")


def test_query_argument_schemas_are_built_once_not_per_request(client, world, monkeypatch):
    paths = ["/api/v1/tasks?page_size=5", "/api/v1/tiles/grids/15/26975/12400.mvt?week=2026-W40"]
    headers = world.auth("worker_a1")
    for path in paths:  # the first request of each builds them
        assert client.get(path, headers=headers).status_code in (200, 204)
    built: list[str] = []
    init = ma.Schema.__init__

    def spy(self, *args, **kwargs):
        built.append(type(self).__name__)
        init(self, *args, **kwargs)

    monkeypatch.setattr(ma.Schema, "__init__", spy)
    for path in paths:
        assert client.get(path, headers=headers).status_code in (200, 204)
    # flask-smorest still dumps the X-Pagination header with a schema of its own per request.
    assert [name for name in built if name != "PaginationMetadataSchema"] == []


def test_the_api_keeps_no_cookie_session(app, client, world):
    response = client.post(
        "/api/v1/auth/token", json={"username": "worker_a1", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    with app.test_request_context("/", headers={"Cookie": "session=eyJ4IjoxfQ.forged"}):
        assert isinstance(flask_session._get_current_object(), NullSession)
