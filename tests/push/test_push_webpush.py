"""WebPushChannel against a small fake push service on loopback.

The channel refuses endpoints on loopback and private networks unless told otherwise: the
fixture `channel` is told (allow_private_endpoints), the fixture `strict` is not.

DNS rebinding is played out on loopback: `dns` stands in for the resolver (every lookup in the
process goes through it, the channel's and any urllib3 would make), `network` routes a public
address to a loopback one (Linux routes all of 127.0.0.0/8 to loopback), and two TLS push
services holding a certificate for the same name listen on 127.0.0.2 ("good") and 127.0.0.3
("evil").
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import pytest
import requests
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from push import Message, Router, build_channels
from push.webpush import PinnedAddressAdapter, WebPushChannel, is_public_address, topic_for
from tests.fakes.tls import CertificateAuthority

SUBJECT = "mailto:ops@gridwork.example"
PUSH_HOST = "push.test"
PUBLIC = "142.250.72.10"  # public addresses; `network` routes them to loopback
OTHER_PUBLIC = "142.250.72.11"

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
    """A push service on `host` (an IPv4 or IPv6 loopback address), plain HTTP or, given a
    server context, HTTPS; it records each request and the TLS server name (SNI) it was asked."""

    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None, *, port: int = 0
    ) -> None:
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.tls = tls is not None
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def origin(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


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


@contextlib.contextmanager
def serving(server: FakePushService) -> Iterator[FakePushService]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def service() -> Iterator[FakePushService]:
    with serving(FakePushService()) as server:
        yield server


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CertificateAuthority:
    """A test CA, trusted by the channel's requests (REQUESTS_CA_BUNDLE, as an operator's CA
    bundle would be)."""
    authority = CertificateAuthority(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(authority.bundle))
    return authority


@pytest.fixture
def good(ca: CertificateAuthority) -> Iterator[FakePushService]:
    """The real push service for push.test: HTTPS on 127.0.0.2."""
    with serving(FakePushService("127.0.0.2", ca.server_context(PUSH_HOST))) as server:
        yield server


@pytest.fixture
def evil(ca: CertificateAuthority, good: FakePushService) -> Iterator[FakePushService]:
    """Where a rebinding DNS answer points: HTTPS on 127.0.0.3, on `good`'s port, with a
    certificate for push.test too (the worst case: it passes verification)."""
    server = FakePushService("127.0.0.3", ca.server_context(PUSH_HOST), port=good.port)
    with serving(server):
        yield server


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
    """Any HTTP request fails the test: for tests whose endpoints resolve off loopback.

    It stops the request at urllib3's connection pool, below the channel's own transport
    adapter, which is where the endpoint's address is checked."""

    def urlopen(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the channel sent a request")

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", urlopen)


class FakeDns:
    """The process's resolver. A name in `answers` gets one list of addresses per lookup, the
    last list repeating: a rebinding server answers the first lookup one way and later ones
    another. A name not in it does not resolve; IP address literals resolve as usual."""

    def __init__(self, real: Any) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.queries: list[str] = []
        self._real = real

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return self._real(host, port, *args, **kwargs)
        self.queries.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        port = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class FakeNetwork:
    """Routes a connection to an address in `routes` to a loopback address instead, so public
    addresses lead to the fake push services; any other connection off loopback is refused, so
    nothing leaves the machine. A connection by name resolves it through `dns`, as urllib3's
    own does."""

    routes: dict[str, str]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch, dns: FakeDns) -> FakeNetwork:
    fake = FakeNetwork({})
    real = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address
        [*_, sockaddr] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        target = fake.routes.get(sockaddr[0], sockaddr[0])
        if not ipaddress.ip_address(target).is_loopback:
            raise ConnectionRefusedError(f"{target} is off loopback")
        return real((target, port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return fake


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
        "tag": "task-7-v2",
        "data": {"task_id": "7", "message_id": "task-7-v2"},
    }


def test_a_message_sent_again_replaces_itself_in_the_browser_instead_of_showing_twice(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    """At least once: a message sent again (its worker killed mid-round) carries the same tag,
    which the service worker (web/src/sw.js) shows it under, so the browser replaces the first
    instead of showing both; with a collapse key, the key is the tag (a task's later news
    replaces its earlier, as on iOS). The service worker read a tag the payload never had."""
    subscription = browser.subscription(f"{service.origin}/push/ok")

    channel.send([web(subscription, "n7"), web(subscription, "n8", collapse_key="task:8")])

    tags = [browser.decrypt(r.body)["tag"] for r in service.received]
    assert tags == ["n7", "task:8"]
    worker = (Path(__file__).resolve().parents[2] / "web" / "src" / "sw.js").read_text()
    assert "tag: data.tag" in worker


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
    assert not result.transient  # our sending rate: not the subscription's failure


def test_push_service_error_is_retried(
    channel: WebPushChannel, service: FakePushService, browser: Browser
) -> None:
    [result] = channel.send([web(browser.subscription(f"{service.origin}/push/down"))])

    assert (result.outcome, result.transient) == ("retry", True)


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

    assert (result.outcome, result.transient) == ("retry", True)


class TricklingPushService:
    """A push service (or any host a user registered as one) that answers a byte at a time,
    each within the client's read timeout, for as long as `lasts` seconds, on 127.0.0.1.
    `.trickled` is set once it has been answering for `mark_after` seconds."""

    def __init__(self, every: float, lasts: float, mark_after: float | None = None) -> None:
        self.every, self.lasts, self.mark_after = every, lasts, mark_after
        self.trickled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> TricklingPushService:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()
        self.thread.join(timeout=self.lasts + 5)

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1")  # the status is yet to come
                started = time.monotonic()
                while time.monotonic() - started < self.lasts:
                    time.sleep(self.every)  # the fake's pace, not the test's: it waits on none
                    connection.sendall(b" ")
                    if (
                        self.mark_after is not None
                        and time.monotonic() - started >= self.mark_after
                    ):
                        self.trickled.set()
                connection.sendall(b"201 Created\r\nContent-Length: 0\r\n\r\n")
            except OSError:  # the channel hung up: what it should do
                pass


def test_a_push_service_trickling_its_answer_is_given_up_on_after_a_deadline(
    vapid: Vapid02, browser: Browser
) -> None:
    """The timeout bounds each read, not the answer: a host answering a byte every few seconds
    (a broken relay; any https host a user registers) held the send as long as it liked, and
    with it the push worker, which sends one message at a time: nobody's push, an escalation's
    neither, went out meanwhile. A send now ends after a deadline (twice the timeout, by
    default), retried later like any send without an answer."""
    channel = WebPushChannel(  # a deadline of 4 s
        vapid.private_pem().decode(), SUBJECT, timeout=2.0, allow_private_endpoints=True
    )
    try:
        with TricklingPushService(every=0.2, lasts=20.0) as slow:
            started = time.monotonic()
            [result] = channel.send([web(browser.subscription(f"{slow.origin}/push/slow"))])
            took = time.monotonic() - started
    finally:
        channel.close()

    assert took < 10.0  # not the 20 s it trickles for
    assert result.outcome == "retry"
    assert "did not answer within" in (result.error or "")


def test_a_send_cut_at_its_deadline_cuts_no_other_send_in_flight_beside_it(
    vapid: Vapid02, browser: Browser
) -> None:
    """The push worker sends a round's Web Push messages side by side through one channel. A
    send cut at its deadline shut down every connection of the channel's one transport: the
    answer of a slow but honest push service, in flight beside it, was cut too (retried, and
    so sent twice). Each thread sends through a transport of its own: only the late send is
    cut."""
    channel = WebPushChannel(
        vapid.private_pem().decode(),
        SUBJECT,
        timeout=2.0,
        deadline=6.0,
        allow_private_endpoints=True,
    )
    # The honest send starts 3 s into the late one's 6 s and answers after 4 s: it is in flight
    # (for at least 1 s more) when the late one is cut, and it has 2 s to spare of its own 6 s.
    try:
        with (
            TricklingPushService(every=0.2, lasts=20.0, mark_after=3.0) as hangs,
            TricklingPushService(every=0.2, lasts=4.0) as slow,
            ThreadPoolExecutor(2) as pool,
        ):
            late = pool.submit(channel.send, [web(browser.subscription(f"{hangs.origin}/p/x"))])
            assert hangs.trickled.wait(20)  # half its deadline gone: the other starts now
            honest = pool.submit(channel.send, [web(browser.subscription(f"{slow.origin}/p/y"))])
            [cut], [answered] = late.result(timeout=20), honest.result(timeout=20)
    finally:
        channel.close()

    assert cut.outcome == "retry" and "did not answer within" in (cut.error or "")
    assert answered.outcome == "delivered"


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


@pytest.mark.parametrize(
    "subject", ["ops@gridwork.example", "mailto:ops", "https://", "https:/gridwork.example"]
)
def test_subject_must_be_a_mailto_address_or_an_https_url(vapid: Vapid02, subject: str) -> None:
    # Refused at start-up: py_vapid would refuse to sign it, so every message would fail.
    with pytest.raises(ValueError, match="vapid_subject"):
        WebPushChannel(vapid.private_pem().decode(), subject)


@pytest.mark.parametrize("subject", ["mailto:ops@gridwork.example", "https://gridwork.example"])
def test_subject_a_push_service_can_reach_is_taken(vapid: Vapid02, subject: str) -> None:
    WebPushChannel(vapid.private_pem().decode(), subject).close()


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
    ("code", "text"),
    [
        (socket.EAI_AGAIN, "Temporary failure in name resolution"),
        (socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    ],
    ids=["try-again", "resolver-broken"],
)
def test_a_resolver_that_fails_for_a_while_costs_the_message_a_retry_not_the_message(
    strict: WebPushChannel,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    no_requests: None,
    code: int,
    text: str,
) -> None:
    """The server's resolver down for a minute (restarting, its upstream unreachable) says
    "try again", not "no such host": every Web Push message of that minute was failed for
    good, never sent, though the push service's name resolved again a minute later."""

    def getaddrinfo(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(code, text)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    [result] = strict.send([web(browser.subscription("https://push.example/sub/1"))])

    assert result.outcome == "retry"  # the device is kept, the message goes when it resolves
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


def test_connection_goes_to_the_address_that_was_checked_not_to_a_later_answer(
    strict: WebPushChannel,
    dns: FakeDns,
    network: FakeNetwork,
    good: FakePushService,
    evil: FakePushService,
    browser: Browser,
) -> None:
    dns.answers[PUSH_HOST] = [[PUBLIC], ["127.0.0.3"]]  # DNS rebinding: public, then loopback
    network.routes[PUBLIC] = "127.0.0.2"

    [result] = strict.send([web(browser.subscription(f"https://{PUSH_HOST}:{good.port}/push/ok"))])

    assert evil.received == []
    assert result.outcome == "delivered"
    assert [r.path for r in good.received] == ["/push/ok"]
    assert dns.queries == [PUSH_HOST]


def test_connection_to_the_checked_address_names_the_host_in_tls_and_the_host_header(
    strict: WebPushChannel,
    dns: FakeDns,
    network: FakeNetwork,
    good: FakePushService,
    browser: Browser,
) -> None:
    dns.answers[PUSH_HOST] = [[PUBLIC]]
    network.routes[PUBLIC] = "127.0.0.2"

    strict.send([web(browser.subscription(f"https://{PUSH_HOST}:{good.port}/push/ok"))])

    assert good.server_names == [PUSH_HOST]
    assert good.received[0].headers["host"] == f"{PUSH_HOST}:{good.port}"


def test_certificate_must_name_the_host_not_the_address_connected_to(
    strict: WebPushChannel,
    dns: FakeDns,
    network: FakeNetwork,
    ca: CertificateAuthority,
    browser: Browser,
) -> None:
    dns.answers[PUSH_HOST] = [[PUBLIC]]
    network.routes[PUBLIC] = "127.0.0.2"
    tls = ca.server_context(PUBLIC, "127.0.0.2")  # valid for the addresses, not for push.test

    with serving(FakePushService("127.0.0.2", tls)) as server:
        endpoint = f"https://{PUSH_HOST}:{server.port}/push/ok"
        [result] = strict.send([web(browser.subscription(endpoint))])

    assert result.outcome == "retry"
    assert "certificate" in (result.error or "").lower()
    assert server.received == []


def test_host_with_several_public_addresses_is_reached_at_the_first(
    strict: WebPushChannel,
    dns: FakeDns,
    network: FakeNetwork,
    good: FakePushService,
    evil: FakePushService,
    browser: Browser,
) -> None:
    dns.answers[PUSH_HOST] = [[PUBLIC, OTHER_PUBLIC]]
    network.routes.update({PUBLIC: "127.0.0.2", OTHER_PUBLIC: "127.0.0.3"})

    [result] = strict.send([web(browser.subscription(f"https://{PUSH_HOST}:{good.port}/push/ok"))])

    assert result.outcome == "delivered"
    assert (len(good.received), len(evil.received)) == (1, 0)


def test_host_with_a_public_and_a_private_address_is_refused(
    strict: WebPushChannel, dns: FakeDns, browser: Browser, no_requests: None
) -> None:
    dns.answers[PUSH_HOST] = [[PUBLIC, "169.254.169.254"]]

    [result] = strict.send([web(browser.subscription(f"https://{PUSH_HOST}/push/ok"))])

    assert result.outcome == "invalid_target"
    assert dns.queries == [PUSH_HOST]


def test_channel_allowed_private_endpoints_also_connects_to_the_address_it_resolved(
    channel: WebPushChannel,
    dns: FakeDns,
    good: FakePushService,
    evil: FakePushService,
    browser: Browser,
) -> None:
    dns.answers[PUSH_HOST] = [["127.0.0.2"], ["127.0.0.3"]]

    [result] = channel.send([web(browser.subscription(f"https://{PUSH_HOST}:{good.port}/push/ok"))])

    assert result.outcome == "delivered"
    assert (len(good.received), len(evil.received)) == (1, 0)
    assert dns.queries == [PUSH_HOST]


@pytest.mark.parametrize(
    "host", ["10.0.0.5", "[fd00::5]", "[::ffff:169.254.169.254]", "[2a00:1450:4001:80b::200a]"]
)
def test_endpoint_at_an_ip_address_literal_that_cannot_be_sent_to_is_refused(
    strict: WebPushChannel, browser: Browser, no_requests: None, host: str
) -> None:
    # Private addresses are refused; so is any IPv6 literal, which VAPID cannot sign for.
    [result] = strict.send([web(browser.subscription(f"https://{host}/push/ok"))])

    assert result.outcome == "invalid_target"


def test_host_resolving_to_an_ipv6_address_is_reached_at_that_address(
    channel: WebPushChannel, dns: FakeDns, browser: Browser
) -> None:
    dns.answers[PUSH_HOST] = [["::1"]]

    with serving(FakePushService("::1")) as server:
        endpoint = f"http://{PUSH_HOST}:{server.port}/push/ok"
        [result] = channel.send([web(browser.subscription(endpoint))])

    assert result.outcome == "delivered"
    assert server.received[0].headers["host"] == f"{PUSH_HOST}:{server.port}"


def test_the_pinned_transport_writes_an_ipv6_literal_host_in_brackets() -> None:
    """The channel refuses IPv6 literal endpoints (VAPID cannot sign for them), but its
    transport connects by address and writes the Host header itself, for any URL: an IPv6
    literal is `[::1]:port` there, as RFC 9110 and http.client have it, not `::1:port`."""
    session = requests.Session()
    session.mount("http://", PinnedAddressAdapter(allow_private=True))

    with serving(FakePushService("::1")) as server:
        response = session.post(f"http://[::1]:{server.port}/push/ok", data=b"{}", timeout=5)

    session.close()
    assert response.status_code == 201
    assert server.received[0].headers["host"] == f"[::1]:{server.port}"


def test_endpoint_is_checked_when_an_outgoing_proxy_is_configured(
    strict: WebPushChannel,
    dns: FakeDns,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    no_requests: None,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dns.answers[PUSH_HOST] = [["169.254.169.254"]]

    [result] = strict.send([web(browser.subscription(f"https://{PUSH_HOST}/push/ok"))])

    assert result.outcome == "invalid_target"
    assert dns.queries == [PUSH_HOST]
