"""FcmChannel against the fake FCM server, through the real firebase-admin client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import firebase_admin
import pytest
import requests
from firebase_admin import messaging

from push import Message
from push.fcm import FCM_BASE_URL, FcmChannel, _point_at
from tests.fakes.fcm import PROJECT_ID, FakeFcm

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def account(fake: FakeFcm, tmp_path: Path) -> str:
    return str(fake.service_account(tmp_path / "service-account.json"))


@pytest.fixture
def channel(fake: FakeFcm, account: str) -> Iterator[FcmChannel]:
    channel = FcmChannel(account, url=fake.url)
    yield channel
    channel.close()


def android(target: str = "token-1", message_id: str = "m-1", **fields) -> Message:  # type: ignore[no-untyped-def]
    fields = {"title": "新任务", "body": "3号楼楼道灯不亮", **fields}
    return Message(message_id=message_id, target=target, platform="android", **fields)


def ios(target: str = "token-1", message_id: str = "m-1", **fields) -> Message:  # type: ignore[no-untyped-def]
    fields = {"title": "新任务", "body": "3号楼楼道灯不亮", **fields}
    return Message(message_id=message_id, target=target, platform="ios", **fields)


def test_message_is_delivered_with_the_fcm_message_name(channel: FcmChannel, fake: FakeFcm) -> None:
    [result] = channel.send([android("token-1")])

    assert result.outcome == "delivered"
    assert result.provider_id == f"projects/{PROJECT_ID}/messages/1"
    assert fake.messages[0]["fid"] == "token-1"
    assert fake.messages[0]["notification"] == {"title": "新任务", "body": "3号楼楼道灯不亮"}


def test_message_id_travels_in_the_data_payload(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send([android(message_id="task-7-v2", data={"task_id": "7"})])

    assert fake.messages[0]["data"] == {"task_id": "7", "message_id": "task-7-v2"}


def test_urgent_android_message_has_high_priority(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send([android(urgent=True)])

    assert fake.messages[0]["android"]["priority"] == "high"


def test_ordinary_android_message_has_normal_priority(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send([android()])

    assert fake.messages[0]["android"]["priority"] == "normal"


def test_urgent_ios_message_is_apns_priority_10_and_time_sensitive(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    channel.send([ios(urgent=True)])

    apns = fake.messages[0]["apns"]
    assert apns["headers"]["apns-priority"] == "10"
    assert apns["payload"]["aps"]["interruption-level"] == "time-sensitive"


def test_ordinary_ios_message_is_apns_priority_5(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send([ios()])

    apns = fake.messages[0]["apns"]
    assert apns["headers"]["apns-priority"] == "5"
    assert apns["payload"]["aps"]["interruption-level"] == "active"


def test_collapse_key_reaches_android_and_apns(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send(
        [android("a", "m-1", collapse_key="task-7"), ios("i", "m-2", collapse_key="task-7")]
    )

    by_target = {m["fid"]: m for m in fake.messages}
    assert by_target["a"]["android"]["collapse_key"] == "task-7"
    assert by_target["i"]["apns"]["headers"]["apns-collapse-id"] == "task-7"


def test_a_message_sent_again_replaces_itself_on_the_phone_instead_of_showing_twice(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    """At least once: a worker killed after FCM took its batch sends it again, same message
    id. A notification message is shown by Android itself while the app is in the background
    (the app never sees it to drop the duplicate): its tag makes the second replace the first,
    as apns-collapse-id does on iOS, for a message without a collapse key too."""
    channel.send(
        [
            android("a", "n7", collapse_key="task:7"),
            android("b", "n8"),
            ios("i", "n8"),
        ]
    )

    by_target = {m["fid"]: m for m in fake.messages}
    assert by_target["a"]["android"]["notification"]["tag"] == "task:7"
    assert by_target["b"]["android"]["notification"]["tag"] == "n8"
    assert by_target["i"]["apns"]["headers"]["apns-collapse-id"] == "n8"


def test_ttl_reaches_android_and_apns_expiry(fake: FakeFcm, account: str) -> None:
    channel = FcmChannel(account, url=fake.url, clock=lambda: 1_700_000_000.0)
    try:
        channel.send([android("a", "m-1", ttl_seconds=600), ios("i", "m-2", ttl_seconds=600)])
    finally:
        channel.close()

    by_target = {m["fid"]: m for m in fake.messages}
    assert by_target["a"]["android"]["ttl"] == "600s"
    assert by_target["i"]["apns"]["headers"]["apns-expiration"] == "1700000600"


@pytest.mark.parametrize("target", ["unregistered-1", "invalid-1"], ids=["404", "400"])
def test_dead_token_is_an_invalid_target(channel: FcmChannel, target: str) -> None:
    [result] = channel.send([android(target)])

    assert result.outcome == "invalid_target"


def test_a_sender_mismatch_is_retried_and_keeps_the_token(channel: FcmChannel) -> None:
    """SENDER_ID_MISMATCH says the token and the sending account are of two Firebase projects:
    FCM answers it for every token when the server holds the wrong project's account, a
    configuration fault of ours as a 403 PERMISSION_DENIED is (retried, not lost). It is no
    proof the token is dead (Firebase counts only UNREGISTERED and INVALID_ARGUMENT so): the
    device is kept."""
    [result] = channel.send([android("mismatch-1")])

    assert result.outcome == "retry"
    assert result.error is not None and result.error.startswith("SENDER_ID_MISMATCH")


def test_unregistered_token_reports_the_fcm_error_code(channel: FcmChannel) -> None:
    [result] = channel.send([android("unregistered-1")])

    assert result.error is not None and result.error.startswith("UNREGISTERED")


def test_invalid_payload_fails_without_blaming_the_token(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    fake.fail_next("token-1", kind="bad_payload")

    [result] = channel.send([android("token-1")])

    assert result.outcome == "failed"


@pytest.mark.parametrize(
    "target", ["quota-1", "unavailable-1", "internal-1"], ids=["429", "503", "500"]
)
def test_provider_trouble_is_retried(channel: FcmChannel, target: str) -> None:
    [result] = channel.send([android(target)])

    assert result.outcome == "retry"


def test_a_bad_request_answered_by_a_proxy_does_not_blame_the_token(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    """Only FCM can say a token is bad (its FcmError detail). A relay's or proxy's 400 page
    (GRIDWORK_FCM_URL) was read as INVALID_ARGUMENT naming no payload field: every device of
    the round was deactivated."""
    fake.fail_next("token-1", kind="proxy_bad_request")

    [result] = channel.send([android("token-1")])

    assert result.outcome == "failed"


@pytest.mark.parametrize("kind", ["bad_gateway", "gateway_timeout"], ids=["502", "504"])
def test_a_gateway_error_before_fcm_answers_is_retried(
    channel: FcmChannel, fake: FakeFcm, kind: str
) -> None:
    """firebase-admin knows no code for 502 and 504 (UNKNOWN, with the response): the message
    was failed for good, though FCM never saw it."""
    fake.fail_next("token-1", kind=kind)

    [result] = channel.send([android("token-1")])

    assert result.outcome == "retry"


@pytest.mark.parametrize("target", ["quota-1", "unavailable-1"], ids=["429", "503"])
def test_retry_after_header_is_honoured(channel: FcmChannel, fake: FakeFcm, target: str) -> None:
    fake.retry_after = "17"

    [result] = channel.send([android(target)])

    assert result.retry_after == 17.0


def test_retry_without_retry_after_header_has_no_delay(channel: FcmChannel) -> None:
    [result] = channel.send([android("internal-1")])

    assert result.retry_after is None


def test_an_unreadable_retry_after_costs_the_others_nothing_and_delays_its_own_by_none(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    """A Retry-After of '²' raised ValueError out of send (str.isdigit() is true of it, float()
    is not): the push worker retried every message of the batch, those FCM had taken too."""
    fake.retry_after = "\u00b2"

    results = channel.send([android("token-1", "m-1"), android("quota-1", "m-2")])

    assert [(r.outcome, r.retry_after) for r in results] == [("delivered", None), ("retry", None)]


def test_fcm_unavailable_answer_returns_at_once_without_hidden_retries(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    channel.send([android("unavailable-1")])

    assert fake.send_requests == 1


def test_an_apns_auth_error_is_retried_not_lost(channel: FcmChannel) -> None:
    """The APNs key refused is the operator's to mend: every iOS push meanwhile waits for it
    (retried with backoff within its life) instead of failing for good."""
    [result] = channel.send([ios("third-party-auth-1")])

    assert result.outcome == "retry"


def test_an_apns_auth_error_comes_back_at_once_without_hidden_retries_or_new_tokens(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    """THIRD_PARTY_AUTH_ERROR is an HTTP 401. google-auth's session took every 401 for a stale
    access token of ours: each message fetched a new token and was posted again, twice. An
    APNs key expired (a yearly chore) made each iOS push of a round cost three sends and two
    token requests, 500 at once: the project's FCM quota spent threefold, and the OAuth
    endpoint asked a thousand times a round, for an answer no token changes."""
    messages = [ios(f"third-party-auth-{i}", f"m-{i}") for i in range(20)]

    results = channel.send(messages)

    assert {r.outcome for r in results} == {"retry"}
    assert (fake.send_requests, fake.token_requests) == (20, 1)


def test_an_access_token_fcm_refuses_is_renewed_once_for_the_whole_batch(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    """Our access token refused (401 UNAUTHENTICATED, revoked before it ran out): one new
    token, and the batch goes again with it, in the same call."""
    channel.send([android("token-0", "m-0")])
    fake.revoke_access_tokens()

    results = channel.send([android(f"token-{i}", f"m-{i}") for i in range(1, 21)])

    assert {r.outcome for r in results} == {"delivered"}
    assert fake.token_requests == 2
    assert fake.send_requests == 1 + 20 + 20  # the first message; the batch refused; again


def test_a_project_fcm_refuses_us_is_retried_not_lost(fake: FakeFcm, tmp_path: Path) -> None:
    """A service account of another project (403 PERMISSION_DENIED, no sender mismatch): a
    configuration fault of ours, not the device's; the whole batch waits, no device is
    deactivated."""
    from tests.fakes.fcm import fake_service_account

    wrong = fake_service_account(tmp_path / "other.json", fake.token_uri, "another-project")
    channel = FcmChannel(str(wrong), url=fake.url)
    try:
        results = channel.send([android("token-1"), android("token-2", message_id="m-2")])
    finally:
        channel.close()

    assert [r.outcome for r in results] == ["retry", "retry"]


def test_scripted_failure_clears_and_the_retry_delivers(channel: FcmChannel, fake: FakeFcm) -> None:
    fake.fail_next("token-1", times=2, kind="unavailable")

    outcomes = [channel.send([android("token-1")])[0].outcome for _ in range(3)]

    assert outcomes == ["retry", "retry", "delivered"]


def test_results_keep_the_order_of_the_messages(channel: FcmChannel) -> None:
    targets = ["token-1", "unregistered-1", "quota-1", "token-2"]
    messages = [android(t, f"m-{i}") for i, t in enumerate(targets)]

    results = channel.send(messages)

    assert [r.message_id for r in results] == ["m-0", "m-1", "m-2", "m-3"]
    assert [r.outcome for r in results] == ["delivered", "invalid_target", "retry", "delivered"]


@pytest.mark.parametrize(
    ("kind", "transient"),
    [
        ("unavailable", True),
        ("internal", True),
        ("bad_gateway", True),
        ("gateway_timeout", True),
        ("quota", False),
        ("mismatch", False),
        ("third_party_auth", False),
    ],
)
def test_a_retry_is_transient_for_the_device_only_when_fcms_side_failed(
    channel: FcmChannel, fake: FakeFcm, kind: str, transient: bool
) -> None:
    """A 5xx or no answer may be the token's side (counted in the device's send history); our
    quota, project or APNs key is ours, every phone's alike."""
    fake.fail_next("token-1", kind=kind)

    [result] = channel.send([android("token-1")])

    assert (result.outcome, result.transient) == ("retry", transient)


def _bad_request(violations) -> dict:
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}
    return {"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [detail]}}


# Answers FCM never gives, a relay or a broken front end may: each is odd in its own way for
# firebase-admin, which assumed `error` an object, `details` a list of objects, a 200's body an
# object and every body UTF-8.
ODD_ANSWERS = {
    "relay_429_error_a_string": (429, {"error": "Too Many Requests"}, {"Retry-After": "30"}),
    "error_a_list": (503, {"error": ["x"]}, {}),
    "details_not_objects": (500, {"error": {"message": "x", "details": ["bad"]}}, {}),
    "200_a_list": (200, ["ok"], {}),
    "not_utf8": (502, b"\xff\xfe error \xc3", {}),
    # Read by our judging of a 400 (which fields it names), after firebase-admin's.
    "violations_not_objects": (400, _bad_request(["x"]), {}),
    "violations_null": (400, _bad_request(None), {}),
}


@pytest.mark.parametrize("answer", ODD_ANSWERS.values(), ids=ODD_ANSWERS.keys())
def test_an_odd_answer_for_one_message_leaves_the_others_delivered(
    channel: FcmChannel, fake: FakeFcm, answer: tuple
) -> None:
    """send_each parsed every answer in its threads and raised one UnknownError for the whole
    call on the first it could not read: every message of the batch came back a retry, those
    FCM had taken too, and went again each round (the good phones got every push again)."""
    status, body, headers = answer
    fake.answer("odd", status, body, headers)

    results = channel.send(
        [android("token-1", "m-1"), android("odd", "m-2"), android("token-2", "m-3")]
    )

    assert [results[0].outcome, results[2].outcome] == ["delivered", "delivered"]
    assert sorted(m["fid"] for m in fake.messages) == ["token-1", "token-2"]


@pytest.mark.parametrize(
    ("name", "outcome", "retry_after", "transient"),
    [
        ("relay_429_error_a_string", "retry", 30.0, False),
        ("error_a_list", "retry", None, True),
        ("details_not_objects", "retry", None, True),
        ("200_a_list", "failed", None, False),
        ("not_utf8", "retry", None, True),
        # A 400 is the message's own fault, whatever it names: not sent again.
        ("violations_not_objects", "failed", None, False),
        ("violations_null", "failed", None, False),
    ],
)
def test_an_odd_answer_is_judged_by_its_status(
    channel: FcmChannel,
    fake: FakeFcm,
    name: str,
    outcome: str,
    retry_after: float | None,
    transient: bool,
) -> None:
    """An answer firebase-admin cannot read is judged by its HTTP status and Retry-After, as a
    proxy's HTML page is: a 429 waits as asked, a 5xx is retried. A 2xx means the message was
    taken: sent again, it would show twice, so it is failed with what came back."""
    status, body, headers = ODD_ANSWERS[name]
    fake.answer("odd", status, body, headers)

    [result] = channel.send([android("odd", "m-1")])

    assert (result.outcome, result.retry_after, result.transient) == (
        outcome,
        retry_after,
        transient,
    )


def test_more_than_500_messages_go_no_more_than_500_at_once(
    channel: FcmChannel, fake: FakeFcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    in_flight, most = 0, 0
    real_send = messaging.send

    def counting_send(message, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            return real_send(message, *args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(messaging, "send", counting_send)
    messages = [android(f"token-{i}", f"m-{i}") for i in range(1203)]

    results = channel.send(messages)

    assert most <= 500
    assert [r.outcome for r in results] == ["delivered"] * 1203
    assert sorted(m["data"]["message_id"] for m in fake.messages) == sorted(
        m.message_id for m in messages
    )


def test_one_access_token_serves_a_whole_batch(channel: FcmChannel, fake: FakeFcm) -> None:
    channel.send([android(f"token-{i}", f"m-{i}") for i in range(50)])

    assert fake.token_requests == 1


def test_unreachable_fcm_makes_every_message_retry(fake: FakeFcm, account: str) -> None:
    channel = FcmChannel(account, url=fake.url)
    fake.stop()  # the token endpoint goes with it
    try:
        results = channel.send([android("token-1", "m-1"), ios("token-2", "m-2")])
    finally:
        channel.close()

    assert [r.outcome for r in results] == ["retry", "retry"]


def test_lost_connection_after_authenticating_is_retried(fake: FakeFcm, account: str) -> None:
    channel = FcmChannel(account, url=fake.url)
    try:
        channel.send([android("token-1", "m-1")])
        fake.stop()
        results = channel.send([android("token-1", "m-2"), android("token-2", "m-3")])
    finally:
        channel.close()

    assert [r.outcome for r in results] == ["retry", "retry"]


def test_web_message_is_not_sent_through_fcm(channel: FcmChannel, fake: FakeFcm) -> None:
    subscription = {"endpoint": "https://push.example/x", "keys": {"p256dh": "k", "auth": "a"}}
    web = Message("m-1", subscription, "web", "title", "body")

    [result] = channel.send([web])

    assert result.outcome == "failed"
    assert fake.send_requests == 0


def test_empty_token_is_an_invalid_target_without_a_request(
    channel: FcmChannel, fake: FakeFcm
) -> None:
    [result] = channel.send([android("")])

    assert result.outcome == "invalid_target"
    assert fake.send_requests == 0


def test_channels_use_named_apps_and_leave_the_default_app_alone(
    fake: FakeFcm, account: str
) -> None:
    first, second = FcmChannel(account, url=fake.url), FcmChannel(account, url=fake.url)
    try:
        outcomes = [c.send([android(message_id=c.app.name)])[0].outcome for c in (first, second)]

        assert outcomes == ["delivered", "delivered"]
        assert first.app.name != second.app.name
        with pytest.raises(ValueError):
            firebase_admin.get_app()
    finally:
        first.close()
        second.close()


def test_close_deletes_the_app(fake: FakeFcm, account: str) -> None:
    channel = FcmChannel(account, url=fake.url, app_name="push-close-test")

    channel.close()

    with pytest.raises(ValueError):
        firebase_admin.get_app("push-close-test")


def test_canary_firebase_admin_keeps_the_fcm_url_where_point_at_looks(
    fake: FakeFcm, account: str
) -> None:
    # If this fails after upgrading firebase-admin, its messaging service moved its endpoint:
    # update push.fcm._point_at, the one place that overrides it.
    app = firebase_admin.initialize_app(
        firebase_admin.credentials.Certificate(account), name="push-canary"
    )
    try:
        service = messaging._get_messaging_service(app)
        assert service._fcm_url == f"{FCM_BASE_URL}/v1/projects/{PROJECT_ID}/messages:send"
        assert service._fcm_url == messaging._MessagingService.FCM_URL.format(PROJECT_ID)
        assert isinstance(service._client.session, requests.Session)

        assert service._client.session._refresh_status_codes == (401,)

        _point_at(service, fake.url)

        assert service._fcm_url == f"{fake.url}/v1/projects/{PROJECT_ID}/messages:send"
        assert service._client.session._refresh_status_codes == ()  # a 401 comes back at once
    finally:
        firebase_admin.delete_app(app)


def test_point_at_refuses_a_service_without_the_url_attribute() -> None:
    class MovedService:
        fcm_endpoint = "https://fcm.googleapis.com/v2/projects/p/messages:send"

    with pytest.raises(RuntimeError, match="_point_at"):
        _point_at(MovedService(), "http://127.0.0.1:1")


def test_channel_without_url_sends_to_google(account: str) -> None:
    channel = FcmChannel(account)
    try:
        service = messaging._get_messaging_service(channel.app)

        assert service._fcm_url == f"{FCM_BASE_URL}/v1/projects/{PROJECT_ID}/messages:send"
    finally:
        channel.close()
