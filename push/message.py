"""The data types of push delivery: a Message to one device and the DeliveryResult it gets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Platform = Literal["android", "ios", "web"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)

Outcome = Literal["delivered", "retry", "invalid_target", "failed"]
DELIVERED: Outcome = "delivered"
RETRY: Outcome = "retry"  # try again later, not before retry_after
INVALID_TARGET: Outcome = "invalid_target"  # the device is gone: the caller deactivates it
FAILED: Outcome = "failed"  # permanent for this message; the device is kept

# The key under which message_id travels in the data payload, so apps can drop duplicates.
MESSAGE_ID_KEY = "message_id"

DEFAULT_TTL_SECONDS = 24 * 60 * 60

# A push shows a notice's preview; the inbox has it whole. FCM refuses a message over 4 KB and a
# Web Push service a payload over ~4 KB (413): a long body (a short-staffed week's every gap)
# was refused for good, the notice never pushed. Characters, not bytes: a CJK one is 3 in UTF-8.
TITLE_PREVIEW_CHARS = 60
BODY_PREVIEW_CHARS = 200


def preview(text: str, limit: int) -> str:
    """`text` as a push shows it: whole when it fits in `limit` characters, else cut, with an
    ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Message:
    """One notification to one device.

    `target` is the FCM registration token / Firebase installation ID for android and ios, or
    the Web Push subscription (``{"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}``) for
    web. `message_id` is stable across retries and reaches the app as ``data["message_id"]``.
    `urgent` asks for immediate delivery (Android high priority, APNs priority 10 and
    time-sensitive, Web Push Urgency high). Messages with the same `collapse_key` replace each
    other on the device while undelivered (updates to one task). A `personal` body is not
    handed to a provider that reads it (FCM: `push.fcm.PERSONAL_BODY` goes in its place).
    """

    message_id: str
    target: str | Mapping[str, Any] = field(repr=False)  # a credential of sorts: keep out of logs
    platform: Platform
    title: str
    body: str
    data: Mapping[str, str] = field(default_factory=dict)
    urgent: bool = False
    collapse_key: str | None = None
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    # The body may carry residents' personal information (a task's title, typed from a hotline
    # call): it travels only through channels that encrypt it for the device (Web Push).
    personal: bool = False

    def __post_init__(self) -> None:
        if not self.message_id:
            raise ValueError("message_id must not be empty")
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, not {self.platform!r}")
        expected = Mapping if self.platform == "web" else str
        if not isinstance(self.target, expected):
            raise ValueError(f"a {self.platform} target must be a {expected.__name__}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.data.items()):
            raise ValueError("data keys and values must be strings")
        if MESSAGE_ID_KEY in self.data:
            raise ValueError(f"data key {MESSAGE_ID_KEY!r} is reserved for message_id")
        if not isinstance(self.ttl_seconds, int) or self.ttl_seconds < 0:
            raise ValueError("ttl_seconds must be a non-negative int")

    def display_key(self) -> str:
        """What the device shows the notification under, replacing what it showed under the
        same key (Android's tag, APNs' collapse id, the Web Push payload's tag): the collapse
        key (a task's later news replaces its earlier), else the message id. Either way a
        message sent again (at least once: a worker killed after the provider took its batch)
        replaces itself instead of showing twice."""
        return self.collapse_key or self.message_id

    def payload_data(self) -> dict[str, str]:
        """The data payload as sent: `data` plus the message_id."""
        return {**self.data, MESSAGE_ID_KEY: self.message_id}


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one Message."""

    message_id: str
    outcome: Outcome
    retry_after: float | None = None  # seconds the provider asked us to wait (Retry-After)
    provider_id: str | None = None  # the provider's id for the sent message (FCM message name)
    error: str | None = None  # short text for logs and the delivery record
    # A "retry" (or a "failed") the target's side may be to blame for: no answer in time, a
    # connection that failed, a 5xx; a Web Push subscription refusing our VAPID key (made
    # under another). The caller counts it in the device's send history (a device failing so
    # for days is retired). False for one that is ours: our quota or sending rate (429), our
    # FCM credentials or project (401, 403), our resolver; every device gets those alike.
    transient: bool = False


def short_error(text: str, limit: int = 200) -> str:
    """Shorten a provider's error text for the delivery record."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
