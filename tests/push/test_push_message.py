"""push.Message: what a message must hold to be sent."""

from __future__ import annotations

import dataclasses

import pytest

from push import Message


def make(**fields) -> Message:  # type: ignore[no-untyped-def]
    values = {"message_id": "m-1", "target": "token-1", "platform": "android"}
    values |= {"title": "t", "body": "b", **fields}
    return Message(**values)


def test_payload_data_adds_the_message_id() -> None:
    assert make(data={"task_id": "7"}).payload_data() == {"task_id": "7", "message_id": "m-1"}


def test_message_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().title = "changed"  # type: ignore[misc]


def test_repr_leaves_out_the_target() -> None:
    assert "secret-token" not in repr(make(target="secret-token"))


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="platform"):
        make(platform="harmony")


def test_web_target_must_be_a_subscription_mapping() -> None:
    with pytest.raises(ValueError, match="web target"):
        make(platform="web", target="token-1")


def test_mobile_target_must_be_a_token_string() -> None:
    with pytest.raises(ValueError, match="android target"):
        make(target={"endpoint": "https://push.example/x"})


def test_data_values_must_be_strings() -> None:
    with pytest.raises(ValueError, match="strings"):
        make(data={"task_id": 7})


def test_message_id_key_in_data_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):
        make(data={"message_id": "other"})


def test_negative_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        make(ttl_seconds=-1)


def test_empty_message_id_is_refused() -> None:
    with pytest.raises(ValueError, match="message_id"):
        make(message_id="")
