"""The FCM channel: Android and iOS notifications through firebase-admin's HTTP v1 client."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import requests
from firebase_admin import _utils, credentials, exceptions, messaging
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from push.message import (
    DELIVERED,
    FAILED,
    INVALID_TARGET,
    RETRY,
    DeliveryResult,
    Message,
    Outcome,
    short_error,
)
from push.retry import parse_retry_after

logger = logging.getLogger(__name__)

FCM_BASE_URL = "https://fcm.googleapis.com"
BATCH_LIMIT = 500  # messages sent side by side, as many as firebase-admin's send_each sends

_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_TARGET_FIELDS = {"message.token", "message.fid"}
_RETRY_CODES = {
    exceptions.RESOURCE_EXHAUSTED,  # 429, QUOTA_EXCEEDED among them
    exceptions.UNAVAILABLE,  # 503, and connections that failed
    exceptions.INTERNAL,  # 500
    exceptions.DEADLINE_EXCEEDED,  # timeouts
    # Our side's configuration, not the message: credentials FCM refuses (401), the project's
    # API disabled or its service account without the role (403; a sender mismatch, caught
    # before, is retried too), the APNs key or certificate refused (THIRD_PARTY_AUTH_ERROR,
    # 401). Failed for good, every push of the outage was lost (a whole batch of 500 at once);
    # retried with backoff within the message's life, they go once the operator mends it.
    exceptions.UNAUTHENTICATED,
    exceptions.PERMISSION_DENIED,
}

# Of the retried codes, those that may be the device's side (FCM's or APNs' server failing for
# this token, no answer in time): the others are our quota or our configuration.
_TRANSIENT_CODES = {
    exceptions.UNAVAILABLE,
    exceptions.INTERNAL,
    exceptions.DEADLINE_EXCEEDED,
    exceptions.UNKNOWN,  # retried only without an answer, or a gateway's 5xx / 408
}

# firebase-admin retries 500/503 inside the call (4 times, sleeping for Retry-After if sent).
# Retrying is the caller's job, with backoff() and across restarts, so here a request is only
# repeated when the connection failed: what the provider answered comes back at once.
_TRANSPORT_RETRY = Retry(
    connect=1,
    read=1,
    status=0,
    status_forcelist=(),
    allowed_methods=None,
    respect_retry_after_header=False,
    raise_on_status=False,
)


class FcmChannel:
    """Sends through FCM HTTP v1 with a named firebase_admin App of its own.

    `credentials_path` is a service-account JSON. `url` replaces https://fcm.googleapis.com
    (a test server or a private relay). Several channels may live in one process; the default
    firebase App is never touched. Call close() to release the App.
    """

    def __init__(
        self,
        credentials_path: str,
        url: str | None = None,
        app_name: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        certificate = credentials.Certificate(credentials_path)
        name = app_name or f"gridwork-push-{uuid.uuid4().hex[:8]}"
        self._app = firebase_admin.initialize_app(
            certificate, options={"httpTimeout": timeout}, name=name
        )
        self._clock = clock
        self._credential = certificate.get_credential()
        self._auth_session = requests.Session()
        self._auth_request = google.auth.transport.requests.Request(self._auth_session)
        if url:
            # The boundary lookup asks iamcredentials.googleapis.com where Google's own APIs
            # may serve this account; a relay or test server is not one of them (and from
            # mainland China, or a closed test network, that host cannot be reached).
            _skip_access_boundary_lookup(self._credential)
        service = messaging._get_messaging_service(self._app)
        _point_at(service, url or FCM_BASE_URL)
        self._answers = threading.local()
        service._client.session.hooks["response"].append(self._remember_answer)

    @property
    def app(self) -> firebase_admin.App:
        return self._app

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        results: list[DeliveryResult | None] = [None] * len(messages)
        pending: list[tuple[int, messaging.Message]] = []
        for index, message in enumerate(messages):
            prepared = self._prepare(message)
            if isinstance(prepared, DeliveryResult):
                results[index] = prepared
            else:
                pending.append((index, prepared))
        if pending:
            self._send_pending(messages, pending, results)
        return [r for r in results if r is not None]

    def close(self) -> None:
        firebase_admin.delete_app(self._app)
        self._auth_session.close()

    # -- internals --------------------------------------------------------------------------
    def _prepare(self, message: Message) -> messaging.Message | DeliveryResult:
        if message.platform not in ("android", "ios"):
            error = f"fcm does not send to {message.platform}"
            return DeliveryResult(message.message_id, FAILED, error=error)
        if not message.target:
            return DeliveryResult(message.message_id, INVALID_TARGET, error="empty target")
        try:
            prepared = to_firebase(message, self._clock())
            # Encoded here, a bad message is failed (not retried as a send that raised).
            str(prepared)
        except ValueError as exc:
            return DeliveryResult(message.message_id, FAILED, error=short_error(exc))
        return prepared

    def _send_pending(
        self,
        messages: Sequence[Message],
        pending: list[tuple[int, messaging.Message]],
        results: list[DeliveryResult | None],
    ) -> None:
        def retry_all(chunk: list[tuple[int, messaging.Message]], error: str) -> None:
            for index, _ in chunk:
                results[index] = DeliveryResult(messages[index].message_id, RETRY, error=error)

        try:
            self._ensure_token()
        except google.auth.exceptions.GoogleAuthError as exc:
            logger.error("FCM: cannot get an access token: %s", exc)
            retry_all(pending, short_error(f"auth: {exc}"))
            return
        for start in range(0, len(pending), BATCH_LIMIT):
            chunk = pending[start : start + BATCH_LIMIT]
            for attempt in (1, 2):
                responses = self._send_each([m for _, m in chunk])
                refused = []
                for item, response in zip(chunk, responses, strict=True):
                    results[item[0]] = _result_of(messages[item[0]].message_id, response)
                    if _token_refused(response):
                        refused.append(item)
                # Our access token refused (revoked before it ran out): one new token for the
                # batch, and what it refused goes again with it, once (google-auth's session
                # did that per message, and for any 401: `_no_refresh_on_401`).
                if not refused or attempt == 2 or not self._renew_token():
                    break
                chunk = refused

    def _send_each(self, batch: list[messaging.Message]) -> list[messaging.SendResponse]:
        """Send `batch` in parallel, one request per message, as messaging.send_each does.

        send_each reads every answer in its threads and raises one UnknownError for the whole
        call when it cannot read one (an `error` that is a string, `details` not objects, a 200
        whose body is a list, bytes not UTF-8): each message came back a retry, those FCM had
        taken too. Sent one by one, an answer it cannot read is that message's alone.
        """
        with ThreadPoolExecutor(max_workers=len(batch)) as executor:
            return list(executor.map(self._send_one, batch))

    def _send_one(self, message: messaging.Message) -> messaging.SendResponse:
        self._answers.response = None
        try:
            name = messaging.send(message, app=self._app)
        except exceptions.FirebaseError as exc:
            return messaging.SendResponse(None, exc)
        except Exception as exc:  # noqa: BLE001 - whatever firebase-admin raised reading it
            return messaging.SendResponse(None, _unreadable(exc, self._answers.response))
        return messaging.SendResponse({"name": name}, None)

    def _remember_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # A response hook of firebase-admin's session: each send runs in a thread of its own,
        # so the thread's last answer is its message's, there to judge when firebase-admin
        # cannot read it.
        self._answers.response = response

    def _renew_token(self) -> bool:
        """Drop the access token FCM refused and fetch another; False if none comes."""
        self._credential.token = None
        try:
            self._ensure_token()
        except google.auth.exceptions.GoogleAuthError as exc:
            logger.error("FCM: cannot renew the access token FCM refused: %s", exc)
            return False
        return True

    def _ensure_token(self) -> None:
        # Refresh once here: left to the sends, each of up to 500 threads would find the
        # token missing and fetch its own.
        if not self._credential.valid:
            self._credential.refresh(self._auth_request)


# What FCM carries in place of a `personal` body: Google reads its payloads (no end-to-end
# encryption), and a task's title may name a resident and their circumstances. The phone reads
# the task (`data["task_id"]`) from the API; the inbox keeps the whole text.
PERSONAL_BODY = "详情请打开网格通查看"


def to_firebase(message: Message, now: float) -> messaging.Message:
    """The firebase-admin message for `message` (android or ios), built at time `now`."""
    body = PERSONAL_BODY if message.personal else message.body
    notification = messaging.Notification(title=message.title, body=body)
    data = message.payload_data()
    # Android shows a notification message itself while the app is in the background: the
    # app never sees a duplicate to drop it, so the tag has the second replace the first.
    replaces = message.display_key()
    if message.platform == "android":
        android = messaging.AndroidConfig(
            priority="high" if message.urgent else "normal",
            ttl=message.ttl_seconds,
            collapse_key=message.collapse_key,
            notification=messaging.AndroidNotification(tag=replaces),
        )
        return messaging.Message(
            fid=message.target, data=data, notification=notification, android=android
        )
    headers = {
        "apns-priority": "10" if message.urgent else "5",
        "apns-push-type": "alert",
        # 0 means "deliver now or never", as a TTL of 0 does.
        "apns-expiration": str(int(now) + message.ttl_seconds if message.ttl_seconds else 0),
    }
    headers["apns-collapse-id"] = replaces
    aps = messaging.Aps(
        sound="default" if message.urgent else None,
        custom_data={"interruption-level": "time-sensitive" if message.urgent else "active"},
    )
    apns = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=aps))
    return messaging.Message(fid=message.target, data=data, notification=notification, apns=apns)


def _token_refused(response: messaging.SendResponse) -> bool:
    """FCM refused our access token itself (401 UNAUTHENTICATED); not APNs refusing our key
    (THIRD_PARTY_AUTH_ERROR, a 401 too, which no new token mends)."""
    exc = response.exception
    return (
        isinstance(exc, exceptions.UnauthenticatedError)
        and not isinstance(exc, messaging.ThirdPartyAuthError)
        and _error_details(exc)[0] is None
    )


def _result_of(message_id: str, response: messaging.SendResponse) -> DeliveryResult:
    """`to_result`, or a retry of this message alone when its answer could not be judged: an
    error raised judging one answer (a part of it not as FCM writes it) left the channel's
    send, and every message of the batch was retried, those FCM had taken too."""
    try:
        return to_result(message_id, response)
    except Exception as exc:  # noqa: BLE001 - any answer's oddity stays with its message
        logger.warning("FCM: an answer not judged (%r): the message is retried", exc)
        return DeliveryResult(message_id, RETRY, error=short_error(f"unjudged answer: {exc!r}"))


def to_result(message_id: str, response: messaging.SendResponse) -> DeliveryResult:
    """Map the response to one message's send onto a DeliveryResult."""
    if response.success:
        return DeliveryResult(message_id, DELIVERED, provider_id=response.message_id)
    exc = response.exception
    if not isinstance(exc, exceptions.FirebaseError):
        return DeliveryResult(message_id, FAILED, error=short_error(repr(exc)))
    outcome, label = classify(exc)
    retry_after = None
    if outcome == RETRY and exc.http_response is not None:
        retry_after = parse_retry_after(exc.http_response.headers.get("Retry-After"))
    return DeliveryResult(
        message_id,
        outcome,
        retry_after=retry_after,
        error=short_error(f"{label}: {exc}"),
        transient=outcome == RETRY and exc.code in _TRANSIENT_CODES,
    )


def _unreadable(exc: Exception, response: requests.Response | None) -> exceptions.FirebaseError:
    """The FirebaseError for an answer firebase-admin raised `exc` reading, judged as a proxy's
    page is: by its HTTP status alone (a 2xx, a status firebase-admin has no code for:
    UNKNOWN), its body kept for the error text."""
    message = short_error(f"unreadable answer: {exc!r}")
    if response is None:
        return exceptions.UnknownError(message, cause=exc)
    error = requests.HTTPError(message, response=response)
    return _utils.handle_requests_error(error, message=message)


def classify(exc: exceptions.FirebaseError) -> tuple[Outcome, str]:
    """The outcome for an FCM error, and the error code to report it by."""
    fcm_code, violations = _error_details(exc)
    label = fcm_code or exc.code
    if isinstance(exc, messaging.UnregisteredError):
        return INVALID_TARGET, label
    if isinstance(exc, messaging.SenderIdMismatchError):
        # The token and our account are of two Firebase projects. FCM says so for every token
        # when the server holds another project's account (the staging JSON; another
        # project's GOOGLE_APPLICATION_CREDENTIALS), and deactivating each switched off every
        # phone in one round, for good once mended. Firebase retires tokens on UNREGISTERED
        # and INVALID_ARGUMENT only: the device is kept. And it is our configuration, as the
        # 403 PERMISSION_DENIED of the same mistake with a project without FCM: retried within
        # the message's life, not failed (every push of the mistake was lost).
        return RETRY, label
    if exc.code == exceptions.INVALID_ARGUMENT:
        # FCM says INVALID_ARGUMENT for a malformed token and for a bad payload alike. Only
        # the token's fault should deactivate a device: a payload fault names its field. And
        # only FCM can blame the token: a 400 without its FcmError detail came from a proxy or
        # relay in between (GRIDWORK_FCM_URL), and would switch off every phone of the round.
        if fcm_code is None or violations - _TARGET_FIELDS:
            return FAILED, label
        return INVALID_TARGET, label
    if exc.code in _RETRY_CODES:
        return RETRY, label
    if exc.code == exceptions.UNKNOWN:
        # No answer (the transport broke), or a status firebase-admin has no code for: a
        # gateway's 502 or 504, a 408. FCM did not judge the message; it may well take it later.
        status = None if exc.http_response is None else exc.http_response.status_code
        if status is None or status >= 500 or status == 408:
            return RETRY, label
    return FAILED, label


def _error_details(exc: exceptions.FirebaseError) -> tuple[str | None, set[str]]:
    """The FcmError errorCode and the fields named by BadRequest violations, if any."""
    if exc.http_response is None:
        return None, set()
    try:
        details = json.loads(exc.http_response.content)["error"].get("details", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, set()
    code = None
    fields: set[str] = set()
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == _FCM_ERROR:
            code = detail.get("errorCode")
        elif detail.get("@type") == _BAD_REQUEST:
            violations = detail.get("fieldViolations")
            for violation in violations if isinstance(violations, list) else []:
                if isinstance(violation, dict):
                    fields.add(str(violation.get("field")))
    return code, fields


def _point_at(service: Any, base_url: str) -> None:
    """Make firebase-admin's messaging `service` send to `base_url` instead of FCM's host.

    firebase-admin has no setting for its endpoint: _MessagingService.__init__ formats the
    class constant FCM_URL into the instance attribute `_fcm_url`, which send reads, and
    mounts a pooled adapter for https://fcm.googleapis.com on its requests session.
    This function is the one place that knows; tests/push fail if an upgrade moves it.
    """
    current = getattr(service, "_fcm_url", None)
    session = getattr(getattr(service, "_client", None), "session", None)
    if not isinstance(current, str) or "/v1/projects/" not in current or session is None:
        raise RuntimeError(
            "firebase-admin no longer keeps its FCM endpoint in _MessagingService._fcm_url "
            "and _client.session; update push.fcm._point_at"
        )
    base = base_url.rstrip("/")
    service._fcm_url = base + current[current.index("/v1/projects/") :]
    # A batch runs up to 500 requests at once: pool as firebase-admin does for its host.
    adapter = HTTPAdapter(pool_connections=100, pool_maxsize=100, max_retries=_TRANSPORT_RETRY)
    session.mount(base + "/", adapter)
    _no_refresh_on_401(session)


def _no_refresh_on_401(session: Any) -> None:
    """Make google-auth's AuthorizedSession (firebase-admin's) hand a 401 back at once.

    It takes every 401 for a stale access token: it fetches a new one and posts the request
    again, up to twice, in each sending thread. FCM's 401 is as often APNs refusing
    our key (THIRD_PARTY_AUTH_ERROR), which no token mends: each iOS push cost three sends
    and two token requests. FcmChannel renews a refused token itself, once per batch.
    """
    if not hasattr(session, "_refresh_status_codes"):
        raise RuntimeError(
            "google-auth's AuthorizedSession no longer keeps _refresh_status_codes; update "
            "push.fcm._no_refresh_on_401"
        )
    session._refresh_status_codes = ()


def _skip_access_boundary_lookup(credential: Any) -> None:
    """Stop google-auth from looking up the account's access boundary at Google.

    google-auth (2.5x+) asks iamcredentials.googleapis.com in a background thread after it
    fetches a token; the answer only matters for Google's own endpoints.
    """
    if not hasattr(credential, "_is_regional_access_boundary_lookup_required"):
        return  # an older google-auth: no lookup to skip
    credential._is_regional_access_boundary_lookup_required = lambda: False
