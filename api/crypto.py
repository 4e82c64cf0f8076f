"""Encryption at rest for sensitive columns (phones): AES-256-GCM behind a SQLAlchemy type."""

from __future__ import annotations

import base64
import hashlib
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("gridwork.crypto")

PREFIX = "v1:"
# Used only when no key is configured: a fixed development key, loudly logged, so a demo works
# out of the box and production never runs on it by accident unnoticed.
_DEV_KEY = hashlib.sha256(b"gridwork development data key - not for production").digest()
_key: bytes = _DEV_KEY
_warned = False


class DataKeyError(ValueError):
    pass


def configure(key: str | None) -> None:
    """Set the data key (base64 of 32 bytes); None falls back to the development key."""
    global _key, _warned
    if not key:
        if not _warned:
            log.warning("GRIDWORK_DATA_KEY is not set: sensitive columns use the development key")
            _warned = True
        _key = _DEV_KEY
        return
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except ValueError as exc:
        raise DataKeyError("GRIDWORK_DATA_KEY must be base64") from exc
    if len(raw) != 32:
        raise DataKeyError("GRIDWORK_DATA_KEY must encode 32 bytes")
    _key = raw


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def encrypt(text: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key).encrypt(nonce, text.encode(), None)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption was enabled; `gridwork security encrypt`
    blob = base64.urlsafe_b64decode(stored[len(PREFIX) :])
    try:
        return AESGCM(_key).decrypt(blob[:12], blob[12:], None).decode()
    except InvalidTag as exc:
        raise DataKeyError(
            "cannot decrypt a sensitive column: GRIDWORK_DATA_KEY is not the key it was "
            "written with"
        ) from exc


class EncryptedString(TypeDecorator):
    """A string stored encrypted; SQL cannot filter on it, by design."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 -> 138****5678, as Chinese services print phone numbers."""
    if not phone:
        return phone
    if len(phone) <= 4:
        return "*" * len(phone)
    return phone[:3] + "*" * max(len(phone) - 7, 1) + phone[-4:]
