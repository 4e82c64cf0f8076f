"""The Web Push channel: notifications to browsers, signed with VAPID, through pywebpush."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from py_vapid import Vapid02, VapidException
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from push.message import (
    DELIVERED,
    FAILED,
    INVALID_TARGET,
    RETRY,
    DeliveryResult,
    Message,
    short_error,
)
from push.retry import parse_retry_after

logger = logging.getLogger(__name__)

# RFC 8030 §5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
# getaddrinfo's answers that the name has no address (NXDOMAIN, no A/AAAA record): the DNS
# answered. Any other failure (EAI_AGAIN: try again; EAI_FAIL; a socket error) is the resolver's.
_NO_SUCH_HOST = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


class WebPushChannel:
    """Sends to Web Push subscriptions, signing each request with the server's VAPID key.

    `vapid_private_key` is a PEM text, a path to a PEM/DER file, or the base64url raw/DER
    key that py_vapid prints. `vapid_subject` is the contact push services may use:
    "mailto:..." or "https://...".

    A subscription is user input, and the endpoint is where this channel POSTs: it refuses an
    endpoint whose host resolves to any address that is not public (loopback, private,
    link-local, reserved, multicast), so no one aims it at the cloud's metadata service or the
    database, and it connects to the address it checked (`PinnedAddressAdapter`), so a second
    DNS answer cannot send it elsewhere. `allow_private_endpoints` lifts the check, for a push
    service on loopback (tests); the connection still goes to the one address resolved.

    `timeout` bounds each connect and each read; `deadline` (twice `timeout` by default) the
    whole send: a send still unanswered then is cut (`PinnedAddressAdapter.abort`) and retried.

    `send` may be called from several threads at once (the push worker sends a round's
    messages side by side): each thread has a transport of its own, so a send cut at its
    deadline cuts no other thread's connection.
    """

    def __init__(
        self,
        vapid_private_key: str,
        vapid_subject: str,
        timeout: float = 10.0,
        *,
        allow_private_endpoints: bool = False,
        deadline: float | None = None,
    ) -> None:
        if not vapid_subject.startswith(("mailto:", "https:")):
            raise ValueError("vapid_subject must be a mailto: or https: URL")
        self._vapid = load_vapid_key(vapid_private_key)
        try:  # py_vapid's own check of the subject, at start-up rather than on every message
            self._vapid.sign({"sub": vapid_subject, "aud": "https://push.invalid"})
        except VapidException as exc:
            raise ValueError(f"vapid_subject is not one py_vapid accepts: {exc}") from None
        self._subject = vapid_subject
        self._timeout = timeout
        # `timeout` bounds each connect and each read, not the answer: a host sending a byte
        # within every timeout held a send (and the push worker, which sent one at a time until
        # 2026-12-05: everybody's pushes) as long as it liked. A send ends after `deadline` in all.
        self._deadline = 2 * timeout if deadline is None else deadline
        self._allow_private = allow_private_endpoints
        # A session and transport per thread: `abort` shuts every connection of a transport
        # down, and with one shared, a send cut at its deadline cut the sends of the other
        # threads in flight too (retried: sent twice, perhaps).
        self._local = threading.local()
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._sessions_lock = threading.Lock()

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        return [self._send_one(message) for message in messages]

    def close(self) -> None:
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()

    def _transport(self) -> tuple[requests.Session, PinnedAddressAdapter]:
        """This thread's session and its transport (made at its first send)."""
        made = getattr(self._local, "transport", None)
        if made is None:
            session = requests.Session()
            # A push service answers; it does not redirect. Following a redirect would POST to
            # whatever address it names, past the endpoint check.
            session.max_redirects = 0
            adapter = PinnedAddressAdapter(allow_private=self._allow_private)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            made = self._local.transport = (session, adapter)
            with self._sessions_lock:
                self._sessions.add(session)
            # A thread that ends (the worker's slots live for one round) takes its connections
            # with it rather than leaving them open until the channel closes.
            weakref.finalize(threading.current_thread(), session.close)
        return made

    def _send_one(self, message: Message) -> DeliveryResult:
        mid = message.message_id
        if message.platform != "web":
            return DeliveryResult(
                mid, FAILED, error=f"web push does not send to {message.platform}"
            )
        if not _looks_like_subscription(message.target):
            return DeliveryResult(mid, INVALID_TARGET, error="not a web push subscription")
        if refused := _refuse_host(mid, message.target):
            return refused
        expired = threading.Event()
        session, adapter = self._transport()

        def give_up() -> None:
            expired.set()
            adapter.abort()

        timer = threading.Timer(self._deadline, give_up)
        timer.daemon = True
        timer.start()
        try:
            result = self._post(message, session)
        finally:
            timer.cancel()
        if expired.is_set() and result.outcome != DELIVERED:
            error = f"the push service did not answer within {self._deadline:g} s"
            return DeliveryResult(mid, RETRY, error=error, transient=True)
        return result

    def _post(self, message: Message, session: requests.Session) -> DeliveryResult:
        mid = message.message_id
        headers = {"Urgency": "high" if message.urgent else "normal"}
        if message.collapse_key:
            headers["Topic"] = topic_for(message.collapse_key)
        try:
            response = webpush(
                subscription_info=dict(message.target),
                data=payload(message),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},  # webpush adds aud and exp to it
                ttl=message.ttl_seconds,
                headers=headers,
                timeout=self._timeout,
                requests_session=session,
            )
        except RefusedEndpoint as exc:
            return DeliveryResult(mid, exc.outcome, error=exc.error)
        except WebPushException as exc:
            return _failure(mid, exc)
        except requests.TooManyRedirects:
            return DeliveryResult(mid, FAILED, error="the push service redirected: not followed")
        except requests.RequestException as exc:
            # No connection to the push service, or no answer in time: the endpoint's host.
            return DeliveryResult(mid, RETRY, error=short_error(f"network: {exc}"), transient=True)
        except (ValueError, TypeError) as exc:
            # Keys that do not decode or are not points on P-256.
            return DeliveryResult(
                mid, INVALID_TARGET, error=short_error(f"bad subscription: {exc}")
            )
        return DeliveryResult(mid, DELIVERED, provider_id=response.headers.get("Location"))


def _refuse_host(message_id: str, subscription: Mapping[str, Any]) -> DeliveryResult | None:
    """A result refusing the subscription if its endpoint has no host VAPID can sign for."""
    try:
        host = urlsplit(subscription["endpoint"]).hostname
    except ValueError:  # an unclosed [ipv6
        host = None
    if not host:
        return DeliveryResult(message_id, INVALID_TARGET, error="endpoint has no host")
    if ":" in host:
        # py_vapid refuses an audience such as https://[2001:db8::1] (its check wants no ':'
        # in the host), so such an endpoint can never be sent to.
        error = "endpoint is an IPv6 address, which VAPID cannot sign for"
        return DeliveryResult(message_id, INVALID_TARGET, error=error)
    return None


class RefusedEndpoint(Exception):
    """The endpoint's host does not resolve, or resolves to an address that is not public:
    raised by `PinnedAddressAdapter` before it connects, with the outcome to report."""

    def __init__(self, outcome: str, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


def checked_address(host: str, *, allow_private: bool = False) -> str:
    """The address to connect to for `host`, from one lookup: the first public one, once every
    address the host resolves to is found public.

    Raises RefusedEndpoint. An address that is not public: invalid_target, like any
    subscription that can never be sent to (the device is deactivated). A host the DNS says
    does not exist (or is no name at all): failed, this message only; the device is kept,
    since a resolver's bad minute must not switch off every browser. A resolver that cannot
    answer now (try again, or broken: ours, not the endpoint's fault): retry, or every push of
    its bad minute was lost. With `allow_private`, any address goes (the first public one
    still first).
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        error = short_error(f"endpoint host does not resolve: {exc}")
        no_such_host = isinstance(exc, UnicodeError) or (
            isinstance(exc, socket.gaierror) and exc.errno in _NO_SUCH_HOST
        )
        raise RefusedEndpoint(FAILED if no_such_host else RETRY, error) from exc
    addresses = [info[4][0] for info in infos]
    public = [address for address in addresses if is_public_address(address)]
    if not addresses or (len(public) < len(addresses) and not allow_private):
        raise RefusedEndpoint(INVALID_TARGET, "endpoint resolves to an address that is not public")
    return (public or addresses)[0]


class PinnedAddressAdapter(HTTPAdapter):
    """A transport that resolves the URL's host once, checks it (`checked_address`) and
    connects to the very address it checked.

    Checking one lookup and letting urllib3 connect after a lookup of its own would let a DNS
    server answer the check with a public address and the connection with 127.0.0.1 or
    169.254.169.254 (DNS rebinding). The request is still for the host: TLS sends its name
    (SNI) and verifies the certificate against it (`server_hostname`), and the Host header
    names it. Through a proxy (HTTPS_PROXY and the like) the host is checked all the same, but
    the proxy connects by name: pinning is the proxy's business there.
    """

    def __init__(self, *, allow_private: bool = False) -> None:
        # Every connection this transport opened (weakly: a closed one goes with its pool):
        # `abort` ends them. Made before HTTPAdapter's init, which builds the pool manager.
        self._connections: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()
        super().__init__()
        self._allow_private = allow_private

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _recording_pools(self._connections)

    def abort(self) -> None:
        """Shut every connection of this transport down (from any thread): a request reading an
        answer that trickles in ends at once, failed. Through a proxy (its own pools) nothing
        is cut: the per-read timeout alone bounds it there."""
        for connection in list(self._connections):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        try:
            host_params, pool_kwargs = self.build_connection_pool_key_attributes(
                request, verify, cert
            )
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(exc, request=request) from exc
        host = host_params["host"]
        address = checked_address(host, allow_private=self._allow_private)
        if select_proxy(request.url, proxies):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host  # SNI and certificate checks use the name
        # urllib3 keys its pools by address (and, over TLS, server name): a kept-alive connection
        # serves later requests only at the address checked for them.
        return self.poolmanager.connection_from_host(
            **{**host_params, "host": address}, pool_kwargs=pool_kwargs
        )

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        request.headers["Host"] = _host_header(request.url or "")


def _recording_pools(connections: weakref.WeakSet) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections add themselves to `connections` as they connect."""

    class Http(HTTPConnection):
        def connect(self) -> None:
            connections.add(self)
            super().connect()

    class Https(HTTPSConnection):
        def connect(self) -> None:
            connections.add(self)
            super().connect()

    class HttpPool(HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(HTTPSConnectionPool):
        ConnectionCls = Https

    return {"http": HttpPool, "https": HttpsPool}


def _host_header(url: str) -> str:
    """The Host header for `url`, as http.client would write it for a connection by name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        # An IPv6 literal, brackets and all (RFC 9110 §7.2). The channel never sends to one
        # (`_refuse_host`: VAPID cannot sign for it), but this transport takes any URL.
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def is_public_address(text: str) -> bool:
    """Whether the IP address `text` is one on the public internet (not loopback, private,
    link-local, shared, reserved, unspecified or multicast)."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _failure(message_id: str, exc: WebPushException) -> DeliveryResult:
    status = exc.status_code
    error = short_error(f"{status}: {exc.message}" if status else exc.message)
    if status is None:
        return DeliveryResult(message_id, INVALID_TARGET, error=error)  # rejected before sending
    if status in (404, 410):
        return DeliveryResult(message_id, INVALID_TARGET, error=error)
    if status == 429 or status >= 500:
        # A 429 is our sending rate; a 5xx the push service failing for this endpoint.
        return DeliveryResult(
            message_id,
            RETRY,
            retry_after=parse_retry_after(exc.retry_after),
            error=error,
            transient=status >= 500,
        )
    # 401/403: the subscription refuses our VAPID key. Made under another one (the key rotated
    # since), it is refused every push for good: counted in the device's history (`transient`),
    # it is retired and its owner told to subscribe again, while a push still reaches another
    # browser (a key of ours broken refuses every one alike: an outage, nobody retired). Until
    # 2026-12-07 counted as nothing: the browser listed healthy, silent for good.
    if status in (401, 403):
        return DeliveryResult(message_id, FAILED, error=error, transient=True)
    return DeliveryResult(message_id, FAILED, error=error)  # 400, 413: the message's own


def payload(message: Message) -> str:
    """The JSON the service worker receives: title, body, the tag it shows the notification
    under (`Message.display_key`) and the data with message_id."""
    return json.dumps(
        {
            "title": message.title,
            "body": message.body,
            "tag": message.display_key(),
            "data": message.payload_data(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def topic_for(collapse_key: str) -> str:
    """A valid Topic header for `collapse_key`: itself if it fits, else a digest of it."""
    if _TOPIC.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def load_vapid_key(key: str) -> Vapid02:
    """A VAPID signer from a PEM text, a key file path, or a base64url raw/DER key."""
    if "-----BEGIN" in key:
        return Vapid02.from_pem(key.encode())
    if os.path.isfile(key):
        # Checked first: py_vapid's from_file makes and saves a new key when the file is missing.
        return Vapid02.from_file(key)
    return Vapid02.from_string(key)


def _looks_like_subscription(target: Any) -> bool:
    if not isinstance(target, Mapping):
        return False
    keys = target.get("keys")
    endpoint = target.get("endpoint")
    return (
        isinstance(endpoint, str)
        and endpoint.startswith(("https://", "http://"))
        and isinstance(keys, Mapping)
        and isinstance(keys.get("p256dh"), str)
        and isinstance(keys.get("auth"), str)
    )
