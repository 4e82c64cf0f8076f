"""The Channel interface, the log and null channels, and a Router that sends by platform."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from push.message import DELIVERED, FAILED, DeliveryResult, Message

logger = logging.getLogger(__name__)


class Channel(Protocol):
    """Delivers messages through one provider.

    send() returns one result per message, in the same order. It never raises for a failure
    of one message; when the provider cannot be reached at all, every message gets "retry".
    The push worker calls send() for Web Push from several threads at once (one message a
    call): a channel that may carry web messages is safe to call so.
    """

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]: ...

    def close(self) -> None: ...


def target_fingerprint(message: Message) -> str:
    """A short stable stand-in for the target, fit for logs (tokens are credentials)."""
    raw = (
        message.target
        if isinstance(message.target, str)
        else json.dumps(dict(message.target), sort_keys=True, default=str)
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


class LogChannel:
    """Development channel: logs each message and reports it delivered. A `personal` body (a
    task's title, which may name a resident) is not written: the log is no place for it, and
    the inbox keeps the text."""

    def __init__(self, log: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._log = log or logger
        self._level = level

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        results = []
        for message in messages:
            self._log.log(
                self._level,
                "push %s to %s %s%s: %s — %s data=%s",
                message.message_id,
                message.platform,
                target_fingerprint(message),
                " (urgent)" if message.urgent else "",
                message.title,
                f"(personal, {len(message.body)} characters)" if message.personal else message.body,
                message.payload_data(),
            )
            results.append(
                DeliveryResult(
                    message.message_id, DELIVERED, provider_id=f"log:{message.message_id}"
                )
            )
        return results

    def close(self) -> None:
        pass


class NullChannel:
    """A channel that is switched off: every message "failed" with `error`, nothing is sent.

    "failed" rather than "retry": nothing will change until the server is reconfigured, and
    the device is kept. `warning`, when given, is logged once, when the channel is made.
    """

    def __init__(self, error: str, warning: str | None = None) -> None:
        self.error = error
        if warning:
            logger.warning(warning)

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        return [DeliveryResult(m.message_id, FAILED, error=self.error) for m in messages]

    def close(self) -> None:
        pass


class Router:
    """A Channel over the channels of each platform: splits by platform, keeps the order."""

    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self.channels = dict(channels)

    def send(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        results: list[DeliveryResult | None] = [None] * len(messages)
        # Group by channel, not platform: android and ios usually share one FCM channel.
        groups: dict[int, tuple[Channel, list[int]]] = {}
        for index, message in enumerate(messages):
            channel = self.channels.get(message.platform)
            if channel is None:
                error = f"no channel for platform {message.platform}"
                results[index] = DeliveryResult(message.message_id, FAILED, error=error)
            else:
                groups.setdefault(id(channel), (channel, []))[1].append(index)
        for channel, indexes in groups.values():
            sent = channel.send([messages[i] for i in indexes])
            for index, result in zip(indexes, sent, strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def close(self) -> None:
        closed: set[int] = set()
        for channel in self.channels.values():
            if id(channel) not in closed:
                closed.add(id(channel))
                channel.close()
