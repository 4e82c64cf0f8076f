"""Personal data protection: encryption at rest, masking, the audit log, login throttling, CORS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from api import errors
from api.cli import main
from api.models import AuditEntry, LoginAttempt
from api.services import audit
from tests.factories import A1, PASSWORD, centre


def test_phones_are_stored_encrypted(client, session, world):
    lon, lat = centre(A1)
    created = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": lon, "lat": lat, "phone": "13812345678"},
        headers=world.auth("admin_a"),
    ).json
    raw = session.execute(
        text("SELECT phone FROM households WHERE id = :i"), {"i": created["id"]}
    ).scalar()
    assert raw.startswith("v1:") and "13812345678" not in raw
    assert created["phone"] == "13812345678"


def test_district_viewers_see_phones_masked(client, session, world):
    household = world.households[A1][0]
    household.phone = "13812345678"
    session.flush()
    body = client.get(
        f"/api/v1/households/{household.id}", headers=world.auth("viewer_110101")
    ).json
    assert body["phone"] == "138****5678"


def test_workers_see_phones_in_full(client, session, world):
    household = world.households[A1][0]
    household.phone = "13812345678"
    session.flush()
    body = client.get(f"/api/v1/households/{household.id}", headers=world.auth("worker_a1")).json
    assert body["phone"] == "13812345678"


def test_reading_a_household_is_audited(client, session, world):
    household = world.households[A1][0]
    client.get(f"/api/v1/households/{household.id}", headers=world.auth("worker_a1"))
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.user_id, entry.action, entry.resource) == (
        world.users["worker_a1"].id,
        "read",
        "household",
    )
    assert entry.resource_ids == [household.id]
    assert "phone" in entry.fields


def test_listing_households_audits_every_id_returned(client, session, world):
    body = client.get(f"/api/v1/households?grid={A1}", headers=world.auth("admin_a")).json
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert sorted(entry.resource_ids) == sorted(h["id"] for h in body)


def test_audit_entries_younger_than_six_months_cannot_be_purged(session):
    with pytest.raises(errors.Unprocessable):
        audit.purge(session, timedelta(days=30))


def test_repeated_failed_sign_ins_are_throttled(client, world):
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    response = client.post(
        "/api/v1/auth/token", json={"username": "worker_a1", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_failed_sign_ins_are_recorded_even_though_the_request_fails(client, session, world):
    client.post("/api/v1/auth/token", json={"username": "worker_a1", "password": "nope"})
    attempt = session.scalars(select(LoginAttempt).order_by(LoginAttempt.id.desc())).first()
    assert (attempt.username, attempt.success) == ("worker_a1", False)


def test_cors_answers_a_configured_origin(client, world):
    response = client.options(
        "/api/v1/grids",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "GET"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.org"


def test_cors_ignores_other_origins(client, world):
    response = client.get(
        "/api/v1/grids", headers={"Origin": "https://evil.example.com", **world.auth("admin_a")}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_api_answers_are_not_cached(client, world):
    response = client.get("/api/v1/grids", headers=world.auth("admin_a"))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_security_encrypt_command_encrypts_legacy_plaintext(app, session, world):
    household = world.households[A1][0]
    session.execute(
        text("UPDATE households SET phone = '13900000000' WHERE id = :i"), {"i": household.id}
    )
    with app.app_context():
        result = CliRunner().invoke(main, ["security", "encrypt"], catch_exceptions=False)
    assert "encrypted 1" in result.output
    raw = session.execute(
        text("SELECT phone FROM households WHERE id = :i"), {"i": household.id}
    ).scalar()
    assert raw.startswith("v1:")


def test_a_wrong_data_key_is_named_not_silently_wrong():
    from api import crypto

    sealed = crypto.encrypt("13812345678")
    crypto.configure(crypto.new_key())
    try:
        with pytest.raises(crypto.DataKeyError, match="GRIDWORK_DATA_KEY"):
            crypto.decrypt(sealed)
    finally:
        crypto.configure(None)


# --- CORS and security headers (issue 8) ------------------------------------------------------
ALLOWED = "https://app.example.org"
EVIL = "https://evil.example.com"


def preflight(client, origin, method="POST", path="/api/v1/visits/batch"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )


def test_a_preflight_from_a_configured_origin_is_answered_without_a_token(client, world):
    response = preflight(client, ALLOWED)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_a_preflight_from_another_origin_gets_no_cors_grant(client, world):
    response = preflight(client, EVIL)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_a_configured_origin_reads_answers_and_pagination(client, world):
    response = client.get("/api/v1/grids", headers={"Origin": ALLOWED, **world.auth("admin_a")})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Pagination" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers  # bearer tokens only


def test_an_origin_is_matched_exactly_not_by_prefix(client, world):
    for origin in (ALLOWED + ".evil.com", "http://app.example.org", ALLOWED + ":8443"):
        response = client.get("/api/v1/grids", headers={"Origin": origin, **world.auth("admin_a")})
        assert "Access-Control-Allow-Origin" not in response.headers


def test_answers_vary_on_origin_allowed_or_not(client, world):
    for origin in (ALLOWED, EVIL):
        response = client.get("/api/v1/grids", headers={"Origin": origin, **world.auth("admin_a")})
        assert "Origin" in response.headers["Vary"]


def test_cors_keeps_a_views_own_vary(client, world):
    from tests.api.test_tiles import url

    response = client.get(
        url("grids", 116.4025, 39.9225), headers={"Origin": ALLOWED, **world.auth("admin_a")}
    )
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert {"Origin", "Authorization"} <= vary


def test_no_origin_is_allowed_unless_configured(database_url, connection):
    from api import create_app
    from api.extensions import db

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "CORS_ORIGINS": ""})
    db.bind(connection)
    response = app.test_client().options(
        "/api/v1/grids", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_api_answers_carry_the_security_headers(client, world):
    for response in (
        client.get("/api/v1/grids", headers=world.auth("admin_a")),
        client.get("/api/v1/grids"),  # errors too
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"


def test_the_api_docs_page_is_not_locked_by_the_json_csp(client):
    response = client.get("/api/v1/docs")
    assert "default-src 'none'" not in response.headers.get("Content-Security-Policy", "")


def test_hsts_is_sent_over_https_only(client, world):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    secure = client.get("/healthz", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def _sign_in(client, client_address: str, username: str, password: str):
    """A sign-in reaching the API through a proxy at 10.0.0.9 for `client_address`."""
    return client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": client_address},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_address_a_request_comes_from_is_the_proxys_unless_it_is_trusted(
    database_url, connection, world, proxies
):
    """Behind a load balancer every request came from its address: the sign-in throttle per
    address (30 failures in 15 min) then locked out everyone, and audit entries and sessions
    recorded the balancer. GRIDWORK_TRUSTED_PROXIES=N takes the client's address from the
    X-Forwarded-For the last N proxies appended; unset, the header is ignored (a client could
    write anything there)."""
    from api.extensions import db
    from api.models import AuthSession
    from tests.factories import build_app

    app = build_app(database_url, TRUSTED_PROXIES=proxies, LOGIN_MAX_FAILURES_PER_IP=3)
    db.bind(connection)
    client = app.test_client()
    for n in range(3):
        _sign_in(client, "203.0.113.7", f"nobody{n}", "guess")
    assert _sign_in(client, "203.0.113.7", "worker_a1", PASSWORD).status_code == 429
    other = _sign_in(client, "203.0.113.8", "worker_a1", PASSWORD)
    with db.new_session() as session:
        ips = session.scalars(select(AuthSession.ip).where(AuthSession.ip.is_not(None))).all()
    if proxies:
        assert other.status_code == 200
        assert [str(ip) for ip in ips] == ["203.0.113.8"]
    else:
        assert other.status_code == 429  # one address: the proxy's
        assert ips == []


def signing_in_from_addresses(database_url, connection):
    """Sign-ins from a client address of one's choosing, throttled after 3 failures an
    address: sign_in_from(address, username, password)."""
    from api.extensions import db
    from tests.factories import build_app

    app = build_app(database_url, LOGIN_MAX_FAILURES_PER_IP=3)
    db.bind(connection)
    client = app.test_client()

    def sign_in_from(address: str, username: str, password: str):
        return client.post(
            "/api/v1/auth/token",
            json={"username": username, "password": password},
            environ_base={"REMOTE_ADDR": address},
        )

    return sign_in_from


def test_the_address_throttle_counts_an_ipv6_clients_whole_slash_64_as_one_address(
    database_url, connection, world
):
    """An IPv6 subscriber (a home line, a cloud server) is handed a /64: 2^64 addresses of
    their own. Counted per full address, a password spray moved to the next address every
    few guesses and was never throttled; the /64 is counted as one address, as an IPv4
    client's single address is."""
    sign_in_from = signing_in_from_addresses(database_url, connection)

    for n in range(3):
        assert sign_in_from(f"2001:db8:7:1::{n + 1}", f"nobody{n}", "guess").status_code == 401
    sprayed = sign_in_from("2001:db8:7:1:ffff::9", "worker_a1", PASSWORD)
    assert sprayed.status_code == 429
    # The neighbouring /64 is another subscriber's, and IPv4 clients are counted as before.
    assert sign_in_from("2001:db8:7:2::1", "worker_a1", PASSWORD).status_code == 200
    assert sign_in_from("203.0.113.5", "worker_a1", PASSWORD).status_code == 200


def test_ipv4_clients_seen_as_ipv4_mapped_ipv6_are_still_counted_one_by_one(
    database_url, connection, world
):
    """A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d: their /64 (::/64) holds every
    IPv4 client, and must not be one address for the throttle."""
    sign_in_from = signing_in_from_addresses(database_url, connection)

    for n in range(3):
        sign_in_from("::ffff:198.51.100.1", f"nobody{n}", "guess")
    assert sign_in_from("::ffff:198.51.100.1", "worker_a1", PASSWORD).status_code == 429
    assert sign_in_from("::ffff:198.51.100.2", "worker_a1", PASSWORD).status_code == 200


def test_the_loopback_is_counted_apart_from_ipv4_clients_a_dual_stack_server_sees():
    from api.services.audit import throttled_network

    assert throttled_network("::1") is None
    assert throttled_network("::ffff:198.51.100.1") is None
    assert throttled_network("2001:db8:7:1:abcd::9") == "2001:db8:7:1::/64"
