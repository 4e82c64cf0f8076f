"""A fake FCM HTTP v1 service with its OAuth2 token endpoint, served on loopback for tests."""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import re
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PROJECT_ID = "gridwork-test"
CLIENT_EMAIL = f"push@{PROJECT_ID}.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs every assertion for Google's token endpoint, whatever token_uri says.
JWT_AUDIENCE = "https://oauth2.googleapis.com/token"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_SEND_PATH = re.compile(r"/v1/projects/(?P<project>[^/]+)/messages:send")


@dataclass(frozen=True)
class ErrorKind:
    """How FCM answers one kind of failure: HTTP status, RPC status and FCM error code."""

    status: int
    rpc_status: str
    error_code: str
    message: str
    retry_after: bool = False  # sends Retry-After, as FCM does with 429 and 503
    bad_field: str | None = None  # names a payload field in a google.rpc.BadRequest detail
    html: bool = False  # answered by a front end or proxy, not FCM: an HTML page, no JSON


# The bodies FCM HTTP v1 sends, per https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
ERRORS: dict[str, ErrorKind] = {
    "unregistered": ErrorKind(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "invalid": ErrorKind(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "mismatch": ErrorKind(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    "quota": ErrorKind(
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Quota exceeded for quota metric 'Send requests'.",
        retry_after=True,
    ),
    "unavailable": ErrorKind(
        503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.", True
    ),
    "internal": ErrorKind(500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "bad_payload": ErrorKind(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "Invalid value at 'message.data[0].value' (TYPE_STRING)",
        bad_field="message.data[0].value",
    ),
    "third_party_auth": ErrorKind(
        401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push"
    ),
    # Google's front end (or a relay in front of FCM) when the backend does not answer in time.
    "bad_gateway": ErrorKind(502, "", "", "Error 502 (Server Error)!!1", html=True),
    "gateway_timeout": ErrorKind(504, "", "", "Error 504 (Gateway Timeout)!!1", html=True),
    "proxy_bad_request": ErrorKind(400, "", "", "400 Bad Request", html=True),
}

# A target starting with one of these prefixes always fails with that kind.
PREFIXES: dict[str, str] = {f"{kind.replace('_', '-')}-": kind for kind in ERRORS}


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    # One key per test session: generating RSA keys is the slow part of a fake account.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fake_service_account(path: str | Path, token_uri: str, project_id: str = PROJECT_ID) -> Path:
    """Write a service-account JSON with a real RSA key whose token_uri is `token_uri`."""
    key = _private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "fake-key-1",
        "private_key": pem.decode(),
        "client_email": CLIENT_EMAIL.replace(PROJECT_ID, project_id),
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    path = Path(path)
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def fcm_error_body(kind: ErrorKind) -> dict[str, Any] | str:
    """The JSON body FCM returns for `kind` (the HTML page, for an answer not from FCM)."""
    if kind.html:
        return f"<!DOCTYPE html><html><title>{kind.message}</title></html>"
    details: list[dict[str, Any]] = [{"@type": _FCM_ERROR, "errorCode": kind.error_code}]
    if kind.bad_field:
        violation = {"field": kind.bad_field, "description": kind.message}
        details.append({"@type": _BAD_REQUEST, "fieldViolations": [violation]})
    error = {"code": kind.status, "message": kind.message, "status": kind.rpc_status}
    return {"error": {**error, "details": details}}


class FakeFcm:
    """FCM HTTP v1 `messages:send` and the OAuth2 token endpoint on 127.0.0.1, in a thread.

    Use as a context manager or call start()/stop(). Accepted messages are in `.messages` (the
    `message` objects as sent, in arrival order); requests are counted in `.send_requests` and
    `.token_requests`. Failures are scripted by target prefix (see PREFIXES) or with fail_next().

    Every registration token belongs to `project_id`, the app's Firebase project. A send under
    another project is refused as FCM refuses it: 403 SENDER_ID_MISMATCH for each token when
    that project is one of `other_projects` (a Firebase project with FCM on: the staging one),
    403 PERMISSION_DENIED for the whole request otherwise.
    """

    def __init__(
        self,
        project_id: str = PROJECT_ID,
        retry_after: str | None = "30",
        other_projects: tuple[str, ...] = (),
    ) -> None:
        self.project_id = project_id
        self.other_projects = set(other_projects)
        self.retry_after = retry_after  # Retry-After sent with 429/503; None sends none
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._failures: dict[str, list[str]] = {}
        self._answers: dict[str, tuple[int, dict[str, str], Any]] = {}
        self._tokens: set[str] = set()
        self._token_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._counts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # hold(): sends past `_hold_after` wait at `_gate` (in flight) until release().
        self._hold_after: int | None = None
        self._passed = 0
        self._held = 0
        self._gate = threading.Event()
        self._gate.set()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeFcm:
        self._server = _Server(("127.0.0.1", 0), _Handler, fake=self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.release()  # held handler threads would keep their connections open
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> FakeFcm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to use in place of https://fcm.googleapis.com."""
        assert self._server is not None, "FakeFcm is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def service_account(self, path: str | Path) -> Path:
        """Write a fake service-account JSON whose tokens come from this server."""
        return fake_service_account(path, self.token_uri, self.project_id)

    # -- scripting and assertions ---------------------------------------------------------------
    def fail_next(self, target: str, times: int = 1, kind: str = "unavailable") -> None:
        """Answer the next `times` sends to `target` with the error `kind` (a key of ERRORS)."""
        if kind not in ERRORS:
            raise ValueError(f"unknown error kind {kind!r}; choose from {sorted(ERRORS)}")
        with self._lock:
            self._failures.setdefault(target, []).extend([kind] * times)

    def answer(
        self, target: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        """Answer every send to `target` with `status`, `headers` and `body`, whatever its shape.

        `body` goes as JSON, or as it is if bytes: what a relay or a broken front end may say
        (`{"error": "Too Many Requests"}`, a 200 whose body is a list, bytes not UTF-8). The
        message is not recorded in `.messages`.
        """
        with self._lock:
            self._answers[target] = (status, dict(headers or {}), body)

    def revoke_access_tokens(self) -> None:
        """Refuse every access token issued so far (401 UNAUTHENTICATED): Google revoked them."""
        with self._lock:
            self._tokens.clear()

    def clear_failures(self) -> None:
        """Answer every later send normally again (an outage ends)."""
        with self._lock:
            self._failures.clear()

    def hold(self, after: int = 0) -> None:
        """Let `after` more sends through, then keep every later send waiting, unanswered.

        A held send is in flight: FCM has the request, the sender has no answer. On release()
        each held send is accepted (recorded in `.messages`) and answered, whether or not its
        sender is still there to read the answer: what FCM does when a sender dies mid-send.
        """
        with self._lock:
            self._hold_after, self._passed, self._held = after, 0, 0
            self._gate.clear()

    def release(self) -> None:
        """Answer the held sends and stop holding."""
        with self._lock:
            self._hold_after = None
        self._gate.set()

    @property
    def held(self) -> int:
        """Sends waiting in flight now."""
        with self._lock:
            return self._held

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    @property
    def send_requests(self) -> int:
        with self._lock:
            return self._counts["send"]

    @property
    def token_requests(self) -> int:
        with self._lock:
            return self._counts["token"]

    # -- request handling (called from server threads) -----------------------------------------
    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        if path == "/token":
            return self._token(body)
        match = _SEND_PATH.fullmatch(path)
        if match is None:
            return 404, {}, _rpc_error(404, "NOT_FOUND", f"no such path {path}")
        return self._send(match["project"], headers, body)

    def _token(self, body: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self._counts["token"] += 1
        form = parse_qs(body.decode())
        grant_type = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant_type != JWT_BEARER or not _valid_assertion(assertion):
            return 400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        token = f"fake-access-token-{next(self._token_ids)}"
        with self._lock:
            self._tokens.add(token)
        return 200, {}, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _send(self, project: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self._counts["send"] += 1
            authorized = headers.get("Authorization", "") in {f"Bearer {t}" for t in self._tokens}
        if not authorized:
            return 401, {}, _rpc_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        if project != self.project_id and project not in self.other_projects:
            return 403, {}, _rpc_error(403, "PERMISSION_DENIED", "Permission denied.")
        try:
            message = json.loads(body)["message"]
            [target] = [message[k] for k in ("token", "fid", "topic", "condition") if k in message]
        except (ValueError, KeyError, TypeError):
            return 400, {}, _rpc_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if project != self.project_id:  # the token is this project's, the sender another's
            return 403, {}, fcm_error_body(ERRORS["mismatch"])
        with self._lock:
            answer = self._answers.get(str(target))
        if answer is not None:
            return answer
        kind = self._scripted_failure(str(target))
        if kind is not None:
            error = ERRORS[kind]
            extra = (
                {"Retry-After": self.retry_after} if error.retry_after and self.retry_after else {}
            )
            return error.status, extra, fcm_error_body(error)
        self._wait_if_held()
        with self._lock:
            self._messages.append(message)
            name = f"projects/{project}/messages/{next(self._message_ids)}"
        return 200, {}, {"name": name}

    def _wait_if_held(self) -> None:
        with self._lock:
            if self._hold_after is None:
                return
            if self._passed < self._hold_after:
                self._passed += 1
                return
            self._held += 1
        self._gate.wait()
        with self._lock:
            self._held -= 1

    def _scripted_failure(self, target: str) -> str | None:
        with self._lock:
            queue = self._failures.get(target)
            if queue:
                return queue.pop(0)
        for prefix, kind in PREFIXES.items():
            if target.startswith(prefix):
                return kind
        return None


def _rpc_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _valid_assertion(assertion: str) -> bool:
    """Check the RS256 JWT google-auth signs with the fake account's key."""
    try:
        header, payload, signature = assertion.split(".")
        _private_key().public_key().verify(
            _b64decode(signature),
            f"{header}.{payload}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        claims = json.loads(_b64decode(payload))
    except (ValueError, InvalidSignature):
        return False
    return claims.get("aud") == JWT_AUDIENCE and bool(claims.get("scope"))


class _Server(ThreadingHTTPServer):
    # send_each opens up to 500 connections at once; the default backlog of 5 would make the
    # kernel drop SYNs and the client wait seconds to retry them.
    request_queue_size = 1024
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, fake: FakeFcm) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """End kept-alive connections so their handler threads finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is not the fake's problem; anything else is.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, payload = self.server.fake.handle(self.path, self.headers, body)
        self._reply(status, headers, payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._reply(404, {}, _rpc_error(404, "NOT_FOUND", f"no such path {self.path}"))

    def _reply(self, status: int, headers: dict[str, str], payload: Any) -> None:
        html = isinstance(payload, str)
        if isinstance(payload, bytes):
            data = payload
        else:
            data = payload.encode() if html else json.dumps(payload).encode()
        self.send_response(status)
        kind = "text/html" if html else "application/json"
        self.send_header("Content-Type", f"{kind}; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
