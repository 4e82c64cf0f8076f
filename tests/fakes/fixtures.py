"""Fixtures for the tests that push: the fake FCM server and a fake Web Push service on
loopback, routers to them, and a guard that a test reaches nothing beyond loopback.

Registered for the whole suite by `tests/conftest.py`; a module that pushes asks for the guard
with `pytestmark = pytest.mark.usefixtures("loopback_only")`, and may define its own `router`
(browsers too, say) in place of the FCM-only one here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from push import Router, build_channels
from push.webpush import WebPushChannel
from tests.fakes.fcm import FakeFcm
from tests.fakes.webpush import FakeWebPush

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any name lookup beyond loopback, and the test that attempted it (even one that
    caught the error: a client that retries or falls back would hide the attempt)."""
    attempted: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in LOOPBACK:
            attempted.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempted
    assert attempted == [], f"tried to reach {attempted}"


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    """The fake FCM server, on a loopback port of its own."""
    with FakeFcm() as server:
        yield server


@pytest.fixture
def push_service() -> Iterator[FakeWebPush]:
    """A fake Web Push service (browsers' push endpoints), on a loopback port of its own."""
    with FakeWebPush() as service:
        yield service


def fcm_channels(fake: FakeFcm, tmp_path) -> dict:  # type: ignore[no-untyped-def]
    """The channels `build_channels` makes of the settings, FCM pointed at the fake."""
    account = fake.service_account(tmp_path / "sa.json")
    return build_channels({"GRIDWORK_FCM_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": fake.url})


def web_push_channel(**options) -> WebPushChannel:  # type: ignore[no-untyped-def]
    """Real Web Push with a fresh VAPID key, allowed onto loopback (where the fake listens)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return WebPushChannel(
        vapid.decode(), "mailto:ops@gridwork.example", allow_private_endpoints=True, **options
    )


@pytest.fixture
def router(fake: FakeFcm, tmp_path) -> Iterator[Router]:  # type: ignore[no-untyped-def]
    """FCM (the fake) for phones."""
    router = Router(fcm_channels(fake, tmp_path))
    yield router
    router.close()
