"""WebPushChannel against a small fake push service on loopback."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from push import Message
from push.webpush import WebPushChannel, topic_for

SUBJECT = "mailto:ops@gridwork.example"

# Path of the subscription endpoint -> (status, extra headers) the fake push service answers.
ANSWERS: dict[str, tuple[int, dict[str, str]]] = {
    "/push/gone": (410, {}),
    "/push/unknown": (404, {}),
    "/push/busy": (429, {"Retry-After": "12"}),
    "/push/down": (503, {}),
    "/push/bad": (400, {}),
    "/push/forbidden": (403, {}),
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
    channel = WebPushChannel(vapid.private_pem().decode(), SUBJECT)
    yield channel
    channel.close()


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
    channel = WebPushChannel(_b64(der), SUBJECT)
    try:
        [result] = channel.send([web(browser.subscription(f"{service.origin}/push/ok"))])
    finally:
        channel.close()

    assert result.outcome == "delivered"


def test_subject_must_be_mailto_or_https(vapid: Vapid02) -> None:
    with pytest.raises(ValueError, match="vapid_subject"):
        WebPushChannel(vapid.private_pem().decode(), "ops@gridwork.example")
