"""Push delivery to workers' devices (FCM, Web Push, log) behind one Channel interface."""

from push.channels import Channel, LogChannel, NullChannel, Router
from push.message import (
    DELIVERED,
    FAILED,
    INVALID_TARGET,
    MESSAGE_ID_KEY,
    PLATFORMS,
    RETRY,
    DeliveryResult,
    Message,
    Outcome,
    Platform,
)
from push.retry import backoff, parse_retry_after
from push.settings import build_channels

__all__ = [
    "DELIVERED",
    "FAILED",
    "INVALID_TARGET",
    "MESSAGE_ID_KEY",
    "PLATFORMS",
    "RETRY",
    "Channel",
    "DeliveryResult",
    "LogChannel",
    "Message",
    "NullChannel",
    "Outcome",
    "Platform",
    "Router",
    "backoff",
    "build_channels",
    "parse_retry_after",
]
