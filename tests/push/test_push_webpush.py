"""WebPushChannel against a small fake push service on loopback.

The channel refuses endpoints on loopback and private networks unless told otherwise: the
fixture `channel` is told (allow_private_endpoints), the fixture `strict` is not.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from push import Message, Router, build_channels
from push.webpush import WebPushChannel, is_public_address, topic_for

SUBJECT = "mailto:ops@gridwork.example"

# Path of the subscription endpoint -> (status, extra headers) the fake push service answers.
ANSWERS: dict[str, tuple[int, dict[str, str]]] = {
    "/push/gone": (410, {}),
    "/push/unknown": (404, {}),
    "/push/busy": (429, {"Retry-After": "12"}),
    "/push/down": (503, {}),
    "/push/bad": (400, {}),
    "/push/forbidden": (403, {}),
    "/push/redirect": (307, {"Location": "/push/ok"}),
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lowercased: HTTP header names ignore case
    body: bytes


class FakePushService(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[Received] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakePushService

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        status, headers = ANSWERS.get(self.path, (201, {"Location": f"{self.path}/msg-1"}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class Browser:
    """A browser's side of a subscription: the keys it made, to decrypt what arrives."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def subscription(self, endpoint: str) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "keys": {"p256dh": _b64(public), "auth": _b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth)
        return json.loads(plain)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def service() -> Iterator[FakePushService]:
    server = FakePushService()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def vapid() -> Vapid02:
    key = Vapid02()
    key.generate_keys()
    return key


@pytest.fixture
def channel(vapid: Vapid02) -> Iterator[WebPushChannel]:
    """A channel allowed to send to the fake push service on 127.0.0.1."""
    channel = WebPushChannel(vapid.private_pem().decode(), SUBJECT, allow_private_endpoints=True)
    yield channel
    channel.close()


@pytest.fixture
def strict(vapid: Vapid02) -> Iterator[WebPushChannel]:
    """A channel as deployed: endpoints on loopback and private networks are refused."""
    channel = WebPushChannel(vapid.private_pem().decode(), SUBJECT)
    yield channel
    channel.close()


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP request fails the test: for tests whose endpoints resolve off loopback."""

    def send(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the channel sent a request")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


@pytest.fixture
def browser() -> Browser:
    return Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))


def web(subscription: dict[str, Any], message_id: str = "m-1", **fields: Any) -> Message:
    fields = {"title": "新任务", "body": "3号楼楼道灯不亮", **fields}
    return Message(message_id=message_id, target=subscription, platform="web", **fields)


def test_message_is_delivered(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    [result] = channel.send([web(browser.subscription(f"{service.origin}/push/ok"))])

    assert result.outcome == "delivered"
    assert result.provider_id == "/push/ok/msg-1"


def test_request_carries_a_valid_vapid_signature_for_the_push_service(
    channel: WebPushChannel, service: FakePushService, browser: Browser, vapid: Vapid02
) -> None:
    channel.send([web(browser.subscription(f"{service.origin}/push/ok"))])

    authorization = service.received[0].headers["authorization"]
    assert authorization.startswith("vapid t=")
    assert Vapid02.verify(authorization)
    token = authorization.split("t=", 1)[1].split(",", 1)[0]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == service.origin
    assert claims["sub"] == SUBJECT


def test_payload_decrypts_to_title_body_and_data_with_message_id(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    subscription = browser.subscription(f"{service.origin}/push/ok")

    channel.send([web(subscription, "task-7-v2", data={"task_id": "7"})])

    assert browser.decrypt(service.received[0].body) == {
        "title": "新任务",
        "body": "3号楼楼道灯不亮",
        "data": {"task_id": "7", "message_id": "task-7-v2"},
    }


def test_ttl_header_is_the_message_ttl(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    channel.send([web(browser.subscription(f"{service.origin}/push/ok"), ttl_seconds=600)])

    assert service.received[0].headers["ttl"] == "600"


def test_urgent_message_has_urgency_high(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    channel.send([web(browser.subscription(f"{service.origin}/push/ok"), urgent=True)])

    assert service.received[0].headers["urgency"] == "high"


def test_ordinary_message_has_urgency_normal(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    channel.send([web(browser.subscription(f"{service.origin}/push/ok"))])

    assert service.received[0].headers["urgency"] == "normal"


def test_collapse_key_becomes_the_topic(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    channel.send([web(browser.subscription(f"{service.origin}/push/ok"), collapse_key="task-7")])

    assert service.received[0].headers["topic"] == "task-7"


def test_collapse_key_outside_the_topic_alphabet_becomes_a_stable_digest() -> None:
    topic = topic_for("task:7/状态")

    assert len(topic) == 32
    assert topic == topic_for("task:7/状态")
    assert topic.replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize("path", ["/push/gone", "/push/unknown"], ids=["410", "404"])
def test_expired_subscription_is_an_invalid_target(
    channel: WebPushChannel, service: FakePushService, browser: Browser, path: str
) -> None:
    [result] = channel.send([web(browser.subscription(service.origin + path))])

    assert result.outcome == "invalid_target"


def test_rate_limited_push_is_retried_after_retry_after(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    [result] = channel.send([web(browser.subscription(f"{service.origin}/push/busy"))])

    assert (result.outcome, result.retry_after) == ("retry", 12.0)


def test_push_service_error_is_retried(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    [result] = channel.send([web(browser.subscription(f"{service.origin}/push/down"))])

    assert result.outcome == "retry"


@pytest.mark.parametrize("path", ["/push/bad", "/push/forbidden"], ids=["400", "403"])
def test_rejected_request_fails_and_keeps_the_subscription(
    channel: WebPushChannel, service: FakePushService, browser: Browser, path: str
) -> None:
    [result] = channel.send([web(browser.subscription(service.origin + path))])

    assert result.outcome == "failed"


def test_unreachable_push_service_is_retried(channel: WebPushChannel, browser: Browser) -> None:
    closed = FakePushService()
    origin = closed.origin
    closed.server_close()

    [result] = channel.send([web(browser.subscription(f"{origin}/push/ok"))])

    assert result.outcome == "retry"


def test_subscription_without_keys_is_an_invalid_target(
    channel: WebPushChannel, service: FakePushService
) -> None:
    [result] = channel.send([web({"endpoint": f"{service.origin}/push/ok"})])

    assert result.outcome == "invalid_target"
    assert service.received == []


def test_subscription_with_undecodable_keys_is_an_invalid_target(
    channel: WebPushChannel, service: FakePushService
) -> None:
    subscription = {"endpoint": f"{service.origin}/push/ok", "keys": {"p256dh": "x", "auth": "y"}}

    [result] = channel.send([web(subscription)])

    assert result.outcome == "invalid_target"
    assert service.received == []


def test_vapid_key_may_be_given_as_py_vapid_base64(
    vapid: Vapid02, service: FakePushService, browser: Browser
) -> None:
    der = vapid.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    channel = WebPushChannel(_b64(der), SUBJECT, allow_private_endpoints=True)
    try:
        [result] = channel.send([web(browser.subscription(f"{service.origin}/push/ok"))])
    finally:
        channel.close()

    assert result.outcome == "delivered"


def test_subject_must_be_mailto_or_https(vapid: Vapid02) -> None:
    with pytest.raises(ValueError, match="vapid_subject"):
        WebPushChannel(vapid.private_pem().decode(), "ops@gridwork.example")


def test_redirect_from_the_push_service_is_not_followed(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    [result] = channel.send([web(browser.subscription(f"{service.origin}/push/redirect"))])

    assert result.outcome == "failed"
    assert [r.path for r in service.received] == ["/push/redirect"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_endpoint_on_loopback_is_refused_and_nothing_is_sent(
    strict: WebPushChannel, service: FakePushService, browser: Browser, host: str
) -> None:
    port = service.server_address[1]

    [result] = strict.send([web(browser.subscription(f"http://{host}:{port}/push/ok"))])

    assert result.outcome == "invalid_target"
    assert service.received == []


@pytest.mark.parametrize(
    ("flag", "outcome"), [(None, "invalid_target"), ("true", "delivered")], ids=["unset", "true"]
)
def test_the_setting_lets_web_push_send_to_loopback(
    service: FakePushService, browser: Browser, vapid: Vapid02, flag: str | None, outcome: str
) -> None:
    settings = {"GRIDWORK_VAPID_PRIVATE_KEY": vapid.private_pem().decode()}
    settings["GRIDWORK_VAPID_SUBJECT"] = SUBJECT
    if flag:
        settings["GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS"] = flag
    router = Router(build_channels(settings))
    try:
        [result] = router.send([web(browser.subscription(f"{service.origin}/push/ok"))])
    finally:
        router.close()

    assert result.outcome == outcome
    assert [r.path for r in service.received] == (["/push/ok"] if flag else [])


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "fd00::5", "::ffff:10.0.0.5"])
def test_endpoint_whose_name_resolves_to_a_private_address_is_refused(
    strict: WebPushChannel,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    no_requests: None,
    address: str,
) -> None:
    resolved = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        resolved.append(host)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, 443))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    [result] = strict.send([web(browser.subscription("https://push.example/sub/1"))])

    assert result.outcome == "invalid_target"
    assert resolved == ["push.example"]


def test_endpoint_whose_host_does_not_resolve_fails_that_message_only(
    strict: WebPushChannel, browser: Browser, monkeypatch: pytest.MonkeyPatch, no_requests: None
) -> None:
    def getaddrinfo(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    [result] = strict.send([web(browser.subscription("https://push.example/sub/1"))])

    assert result.outcome == "failed"  # permanent for this message; the device is kept
    assert "does not resolve" in (result.error or "")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("142.250.72.10", True),
        ("2a00:1450:4001:80b::200a", True),
        ("127.0.0.1", False),
        ("10.0.0.5", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::5", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_only_addresses_on_the_public_internet_are_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public
