"""The log and null channels, the Router, and build_channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from push import DeliveryResult, LogChannel, Message, NullChannel, Router, build_channels
from push.fcm import FcmChannel
from push.webpush import WebPushChannel
from tests.fakes.fcm import fake_service_account

SUBSCRIPTION = {"endpoint": "https://push.example/x", "keys": {"p256dh": "k", "auth": "a"}}


def message(platform: str = "android", message_id: str = "m-1") -> Message:
    target = SUBSCRIPTION if platform == "web" else "token-1"
    return Message(message_id, target, platform, "新任务", "3号楼楼道灯不亮")  # type: ignore[arg-type]


class Recording:
    """A channel that delivers everything and remembers each call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        self.calls.append([m.message_id for m in messages])
        return [DeliveryResult(m.message_id, "delivered") for m in messages]

    def close(self) -> None:
        self.calls.append(["closed"])


def test_log_channel_delivers() -> None:
    [result] = LogChannel().send([message()])

    assert result.outcome == "delivered"


def test_log_channel_logs_the_message_but_not_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="push.channels"):
        LogChannel().send([message(message_id="task-7-v2")])

    assert "task-7-v2" in caplog.text
    assert "3号楼楼道灯不亮" in caplog.text
    assert "token-1" not in caplog.text


def test_log_channel_keeps_a_personal_body_out_of_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """A task's push carries its title, typed from a hotline call, which may name a resident
    (`personal`): FCM gets a placeholder, and the log channel (the demo's, or a deployment's
    before it has FCM) wrote it into the push worker's log as it was."""
    personal = Message(
        "task-9-v1",
        "token-1",
        "android",
        "新任务",
        "王秀英 13812345678 独居老人摔倒",
        personal=True,
    )
    with caplog.at_level(logging.INFO, logger="push.channels"):
        [result] = LogChannel().send([personal])

    assert result.outcome == "delivered"
    assert "task-9-v1" in caplog.text
    assert "王秀英" not in caplog.text and "13812345678" not in caplog.text


def test_null_channel_fails_every_message_with_its_reason() -> None:
    results = NullChannel("fcm disabled").send([message(message_id="a"), message(message_id="b")])

    assert [(r.outcome, r.error) for r in results] == [("failed", "fcm disabled")] * 2


def test_router_keeps_the_order_across_platforms() -> None:
    mobile, web = Recording(), Recording()
    router = Router({"android": mobile, "ios": mobile, "web": web})
    messages = [message("web", "w1"), message("android", "a1"), message("ios", "i1")]

    results = router.send(messages)

    assert [r.message_id for r in results] == ["w1", "a1", "i1"]


def test_router_calls_a_shared_channel_once_per_send() -> None:
    mobile = Recording()
    router = Router({"android": mobile, "ios": mobile})

    router.send([message("android", "a1"), message("ios", "i1")])

    assert mobile.calls == [["a1", "i1"]]


def test_router_fails_messages_for_a_platform_without_channel() -> None:
    [result] = Router({"android": Recording()}).send([message("web")])

    assert (result.outcome, result.error) == ("failed", "no channel for platform web")


def test_router_closes_a_shared_channel_once() -> None:
    mobile = Recording()

    Router({"android": mobile, "ios": mobile}).close()

    assert mobile.calls == [["closed"]]


def test_log_backend_logs_every_platform() -> None:
    channels = build_channels({"GRIDWORK_PUSH_BACKEND": "log"})

    assert {type(c) for c in channels.values()} == {LogChannel}
    assert set(channels) == {"android", "ios", "web"}


def test_off_backend_sends_nothing() -> None:
    channels = build_channels({"GRIDWORK_PUSH_BACKEND": "off"})

    assert {type(c) for c in channels.values()} == {NullChannel}


def test_fcm_without_credentials_is_disabled_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        channels = build_channels({})
        channels["android"].send([message()])
        channels["ios"].send([message("ios")])

    fcm_warnings = [r for r in caplog.records if "FCM is off" in r.getMessage()]
    assert len(fcm_warnings) == 1
    assert channels["android"].send([message()])[0].error == "fcm disabled"


def test_web_push_without_vapid_key_is_disabled() -> None:
    channels = build_channels({"GRIDWORK_VAPID_SUBJECT": "mailto:ops@gridwork.example"})

    assert channels["web"].send([message("web")])[0].error == "web push disabled"


def test_fcm_credentials_make_one_fcm_channel_for_android_and_ios(tmp_path: Path) -> None:
    account = fake_service_account(tmp_path / "sa.json", "http://127.0.0.1:9/token")

    channels = build_channels(
        {"GRIDWORK_FCM_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": "http://127.0.0.1:9"}
    )
    try:
        assert isinstance(channels["android"], FcmChannel)
        assert channels["ios"] is channels["android"]
    finally:
        Router(channels).close()


def test_google_application_credentials_is_read_too(tmp_path: Path) -> None:
    account = fake_service_account(tmp_path / "sa.json", "http://127.0.0.1:9/token")

    channels = build_channels(
        {"GOOGLE_APPLICATION_CREDENTIALS": str(account), "GRIDWORK_FCM_URL": "http://127.0.0.1:9"}
    )
    try:
        assert isinstance(channels["android"], FcmChannel)
    finally:
        Router(channels).close()


@pytest.mark.parametrize("content", [None, "not json"])
def test_an_unreadable_credentials_file_is_an_error_naming_the_setting_and_the_file(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "sa.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=f"GRIDWORK_FCM_CREDENTIALS={path}: not a readable"):
        build_channels({"GRIDWORK_FCM_CREDENTIALS": str(path)})


def test_vapid_settings_make_a_web_push_channel() -> None:
    from py_vapid import Vapid02

    key = Vapid02()
    key.generate_keys()

    channels = build_channels(
        {
            "GRIDWORK_VAPID_PRIVATE_KEY": key.private_pem().decode(),
            "GRIDWORK_VAPID_SUBJECT": "mailto:ops@gridwork.example",
        }
    )
    try:
        assert isinstance(channels["web"], WebPushChannel)
    finally:
        Router(channels).close()


def test_allow_private_endpoints_must_be_a_yes_or_a_no() -> None:
    with pytest.raises(ValueError, match="GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS"):
        build_channels(
            {
                "GRIDWORK_VAPID_PRIVATE_KEY": "unused",
                "GRIDWORK_VAPID_SUBJECT": "mailto:ops@gridwork.example",
                "GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS": "maybe",
            }
        )


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError, match="GRIDWORK_PUSH_BACKEND"):
        build_channels({"GRIDWORK_PUSH_BACKEND": "apns"})
