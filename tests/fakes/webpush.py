"""A fake Web Push service on loopback that can hold a request (answer it late), for tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeWebPush:
    """Accepts every push (201 with a Location) at http://127.0.0.1:port/push/<name>.

    `.received` lists the paths of the requests, in arrival order. `hold_first()` makes the next
    request wait, unanswered, until `release()`: a push service (or a relay) answering slowly
    while the worker's round goes on. `answer(name, status, headers)` scripts what the pushes
    to one subscription get instead (a 429 with its Retry-After, a 410). `hang(name)` holds
    every push to `endpoint(name)` until `release()`: a host that never answers in time (a
    user may register any https host as a push endpoint). `wait_for(n)` waits until `n` requests
    have arrived. `on_request`, when
    set, is called with each request's path before it is answered (a test's clock moved by
    the time the push service took).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[str] = []
        self._answers: dict[str, tuple[int, dict[str, str]]] = {}
        self._hanging: set[str] = set()
        self._arrivals = threading.Condition(self._lock)
        self.on_request: Callable[[str], None] | None = None
        self._hold_next = False
        self._released = threading.Event()
        self._released.set()
        self.holding = threading.Event()  # set once a held request has arrived
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeWebPush:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    @property
    def received(self) -> list[str]:
        with self._lock:
            return list(self._received)

    def hold_first(self) -> None:
        with self._lock:
            self._hold_next = True
            self._released.clear()

    def hang(self, name: str) -> None:
        """Hold every push to `endpoint(name)`, unanswered, until `release()`."""
        with self._lock:
            self._hanging.add(f"/push/{name}")
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether `count` requests have arrived within `timeout` seconds (held ones count)."""
        with self._arrivals:
            return self._arrivals.wait_for(lambda: len(self._received) >= count, timeout)

    def answer(self, name: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer every push to `endpoint(name)` with `status` and `headers`, not 201."""
        with self._lock:
            self._answers[f"/push/{name}"] = (status, dict(headers or {}))

    def _arrived(self, path: str) -> tuple[int, dict[str, str]]:
        with self._lock:
            self._received.append(path)
            self._arrivals.notify_all()
            held, self._hold_next = self._hold_next or path in self._hanging, False
            answer = self._answers.get(path, (201, {"Location": f"{path}/msg"}))
        if held:
            self.holding.set()
            self._released.wait(timeout=60)
        if self.on_request is not None:
            self.on_request(path)
        return answer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers = self.server.fake._arrived(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def subscription(endpoint: str) -> dict:
    """A browser's push subscription to `endpoint`, with fresh P-256 and auth keys."""
    import base64
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(os.urandom(16))}}
