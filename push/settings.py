"""build_channels: the channel for each platform, chosen from a plain mapping of settings."""

from __future__ import annotations

from collections.abc import Mapping

from push.channels import Channel, LogChannel, NullChannel
from push.message import PLATFORMS

BACKEND = "GRIDWORK_PUSH_BACKEND"  # "fcm" (the default), "log" or "off"
FCM_CREDENTIALS = ("GRIDWORK_FCM_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS")  # first wins
FCM_URL = "GRIDWORK_FCM_URL"
VAPID_PRIVATE_KEY = "GRIDWORK_VAPID_PRIVATE_KEY"
VAPID_SUBJECT = "GRIDWORK_VAPID_SUBJECT"
# "1"/"true"/"yes"/"on": Web Push may send to endpoints on loopback and private networks (tests
# against a push service on 127.0.0.1). Off by default: subscriptions are user input.
ALLOW_PRIVATE_ENDPOINTS = "GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS"

FCM_DISABLED = "fcm disabled"
WEB_PUSH_DISABLED = "web push disabled"


def build_channels(settings: Mapping[str, str]) -> dict[str, Channel]:
    """Map each platform to its channel, from `settings` (os.environ or the app's config).

    Backend "fcm": FCM for android and ios (one channel), Web Push for web. A provider without
    its credentials is switched off: its platforms get a NullChannel, whose messages come back
    "failed" with error "fcm disabled" / "web push disabled", and a warning is logged once,
    here. Credentials that are set but unreadable raise: that is a broken deployment.
    Backend "log": every platform logs instead of sending. Backend "off": nothing is sent.
    """
    backend = (settings.get(BACKEND) or "fcm").strip().lower()
    if backend == "log":
        log = LogChannel()
        return dict.fromkeys(PLATFORMS, log)
    if backend == "off":
        off = NullChannel("push disabled", warning=f"Push is off ({BACKEND}=off)")
        return dict.fromkeys(PLATFORMS, off)
    if backend != "fcm":
        raise ValueError(f"{BACKEND} must be fcm, log or off, not {backend!r}")
    return {"android": (mobile := _fcm(settings)), "ios": mobile, "web": _web_push(settings)}


def _fcm(settings: Mapping[str, str]) -> Channel:
    path = next((settings[k] for k in FCM_CREDENTIALS if settings.get(k)), None)
    if not path:
        names = " or ".join(FCM_CREDENTIALS)
        return NullChannel(FCM_DISABLED, warning=f"FCM is off: no credentials ({names} unset)")
    from push.fcm import FcmChannel  # firebase-admin loads only when FCM is used

    name = next(k for k in FCM_CREDENTIALS if settings.get(k))
    try:
        return FcmChannel(path, url=settings.get(FCM_URL) or None)
    except (OSError, ValueError) as exc:  # missing, unreadable, not a service account's JSON
        problem = f"not a readable service-account JSON file ({exc})"
        raise ValueError(f"{name}={path}: {problem}") from exc


def _web_push(settings: Mapping[str, str]) -> Channel:
    key, subject = settings.get(VAPID_PRIVATE_KEY), settings.get(VAPID_SUBJECT)
    if not (key and subject):
        names = f"{VAPID_PRIVATE_KEY} and {VAPID_SUBJECT}"
        return NullChannel(WEB_PUSH_DISABLED, warning=f"Web Push is off: set {names}")
    allow_private = _flag(settings, ALLOW_PRIVATE_ENDPOINTS)
    from push.webpush import WebPushChannel  # pywebpush loads only when Web Push is used

    return WebPushChannel(key, subject, allow_private_endpoints=allow_private)


def _flag(settings: Mapping[str, str], name: str) -> bool:
    value = (settings.get(name) or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, not {value!r}")
