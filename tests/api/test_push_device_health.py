"""A device's send history (last success, failing since, failures in a row) kept by the push
worker, and the retirement of a device that has answered nothing for days."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Device
from api.services.delivery import PushWorker
from api.services.devices import register_device
from api.services.notifications import notify
from push import Router, build_channels
from push.webpush import WebPushChannel
from tests.factories import make_device
from tests.fakes.fcm import FakeFcm
from tests.fakes.webpush import FakeWebPush, subscription

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm() as server:
        yield server


@pytest.fixture
def push_service() -> Iterator[FakeWebPush]:
    with FakeWebPush() as service:
        yield service


@pytest.fixture
def router(app, fake, tmp_path) -> Iterator[Router]:
    """The fake FCM for phones, real Web Push (a short deadline) for browsers, on loopback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    account = fake.service_account(tmp_path / "sa.json")
    channels = build_channels(
        {"GRIDWORK_FCM_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": fake.url}
    )
    channels["web"] = WebPushChannel(
        vapid.decode(), "mailto:ops@gridwork.example", timeout=0.3, allow_private_endpoints=True
    )
    router = Router(channels)
    yield router
    router.close()


@pytest.fixture
def worker(router) -> PushWorker:
    return PushWorker(db.begin, router, batch_size=100, lease_seconds=60)


def _device(session, token: str) -> Device:
    session.expire_all()
    return session.scalar(select(Device).where(Device.token == token))


def _told(session, world, user="worker_a1", now=T0) -> None:
    notify(session, [world.users[user].id], "task_updated", "t", now=now)


def _web_device(session, user, endpoint) -> Device:
    return register_device(session, user.id, "web", subscription=subscription(endpoint), now=T0)


def test_a_push_delivered_records_the_devices_last_success(session, world, worker):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    _told(session, world)
    assert worker.run_once(T0).sent == 1
    device = _device(session, "fcm-1")
    assert device.last_success_at == T0
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_a_new_device_has_no_send_history(session, world):
    device = make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    assert (device.last_success_at, device.failing_since, device.consecutive_failures) == (
        None,
        None,
        0,
    )


@pytest.mark.parametrize("kind", ["unavailable", "internal", "gateway_timeout"])
def test_fcm_server_errors_count_as_the_devices_failures_from_the_first(
    session, world, worker, fake, kind
):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=2, kind=kind)
    _told(session, world)
    worker.run_once(T0)
    later = T0 + timedelta(minutes=20)
    worker.run_once(later)
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (T0, 2)
    assert device.last_success_at is None and device.active


def test_a_success_after_failures_resets_the_failing_history(session, world, worker, fake):
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=2, kind="unavailable")
    _told(session, world)
    now = T0
    for _ in range(3):
        worker.run_once(now)
        now += timedelta(minutes=20)
    device = _device(session, "fcm-1")
    assert device.last_success_at == T0 + timedelta(minutes=40)
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


@pytest.mark.parametrize("kind", ["quota", "mismatch", "third_party_auth"])
def test_our_own_quota_or_configuration_is_not_the_devices_failure(
    session, world, worker, fake, kind
):
    """A 429 (our sending rate), a service account of another project, an APNs key refused:
    every phone gets them alike, and none of them says the phone is gone."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", kind=kind)
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_a_web_push_service_answering_503_counts_as_the_devices_failure(
    session, world, worker, push_service
):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("down"))
    push_service.answer("down", 503)
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("down"))
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_service_that_never_answers_counts_as_the_devices_failure(
    session, world, worker, push_service
):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("hangs"))
    push_service.hang("hangs")
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("hangs"))
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_endpoint_refusing_connections_counts_as_the_devices_failure(
    session, world, worker
):
    with socket.socket() as closed:  # a port bound and never listened on: refused
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}/push/gone"
        _web_device(session, world.users["worker_a1"], endpoint)
        _told(session, world)
        assert worker.run_once(T0).retried == 1
    device = _device(session, endpoint)
    assert (device.failing_since, device.consecutive_failures) == (T0, 1)


def test_a_web_push_429_is_not_the_devices_failure(session, world, worker, push_service):
    _web_device(session, world.users["worker_a1"], push_service.endpoint("busy"))
    push_service.answer("busy", 429, {"Retry-After": "60"})
    _told(session, world)
    assert worker.run_once(T0).retried == 1
    device = _device(session, push_service.endpoint("busy"))
    assert (device.failing_since, device.consecutive_failures) == (None, 0)


def test_every_failed_send_of_a_round_counts_and_failing_since_is_kept(
    session, world, worker, fake
):
    """Three pushes to one phone in one round, all 503: three failures, one start."""
    make_device(session, world.users["worker_a1"], "fcm-1", now=T0)
    fake.fail_next("fcm-1", times=4, kind="unavailable")
    for _ in range(3):
        _told(session, world)
    worker.run_once(T0)
    device = _device(session, "fcm-1")
    assert (device.failing_since, device.consecutive_failures) == (T0, 3)
