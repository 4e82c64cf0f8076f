"""Encryption at rest for sensitive columns and photo files: AES-256-GCM, with key rotation.

Stored form: ``v1:<kid>:<base64url(nonce | ciphertext | tag)>`` where ``kid`` names the key (the
first 8 hex digits of its SHA-256). Values written before key ids existed (``v1:<base64>``) are
still read, by trying every configured key. Empty strings and empty JSON objects are stored as
they are: AES-GCM reveals a value's length anyway, and most visits carry no notes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("gridwork.crypto")

PREFIX = "v1:"
# Used only when no key is configured: a fixed development key, loudly logged, so a demo works
# out of the box and production never runs on it by accident unnoticed.
_DEV_KEY = hashlib.sha256(b"gridwork development data key - not for production").digest()


class DataKeyError(ValueError):
    pass


class DataKeyRefused(DataKeyError):
    """The database refuses this process's data keys: no request or round can succeed until it
    is restarted with the right ones."""


class DataKeyMismatch(DataKeyRefused):
    """The database holds data sealed by keys this process was not given (a wrong or missing
    GRIDWORK_DATA_KEY / GRIDWORK_OLD_DATA_KEYS). It names key ids, never keys."""

    def __init__(self, key_ids: list[str]) -> None:
        self.key_ids = list(key_ids)
        listed = ", ".join(self.key_ids)
        configured = ", ".join(configured_key_ids())
        super().__init__(
            f"the database holds data sealed by data key id(s) {listed}, which neither "
            f"GRIDWORK_DATA_KEY nor GRIDWORK_OLD_DATA_KEYS holds (configured key ids: "
            f"{configured}). Set GRIDWORK_DATA_KEY to the right key, or during a rotation list "
            "the previous key in GRIDWORK_OLD_DATA_KEYS; `gridwork security check-key` reports."
        )


class DataKeyRetired(DataKeyRefused):
    """This process's GRIDWORK_DATA_KEY was retired by a rotation (`gridwork security encrypt`
    with a new key): a value it sealed now would be left behind the re-sealing."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"GRIDWORK_DATA_KEY (key id {key_id}) was retired by a rotation: `gridwork security "
            "encrypt` re-seals every value under the new key. Restart this process with the new "
            "key in GRIDWORK_DATA_KEY (and, until the re-sealing is done, this one in "
            "GRIDWORK_OLD_DATA_KEYS)."
        )


def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


class _Ring:
    """The current key (encrypts) and the previous ones (still decrypt, during a rotation)."""

    def __init__(self, current: bytes, old: list[bytes] | None = None) -> None:
        self.current_id = key_id(current)
        self.aeads: dict[str, AESGCM] = {self.current_id: AESGCM(current)}
        for raw in old or []:
            self.aeads.setdefault(key_id(raw), AESGCM(raw))
        # Values sealed by the current key: a transaction that sees it change has sealed and
        # checks, before it commits, that its key is recorded and not retired (api/keyguard.py).
        self.sealed = 0

    @property
    def current(self) -> AESGCM:
        return self.aeads[self.current_id]


_ring = _Ring(_DEV_KEY)
_warned = False
# Stored values this process failed to open (`decrypt`): a sign that a rotation may have
# re-sealed them under a key it lacks, on which the key guard reads the key table at once.
_failed_opens = 0


def _decode_key(key: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except (ValueError, binascii.Error) as exc:
        raise DataKeyError(f"{name} must be base64") from exc
    if len(raw) != 32:
        raise DataKeyError(f"{name} must encode 32 bytes")
    return raw


def configure(
    key: str | None, old_keys: str | None = None, *, development_key_allowed: bool = True
) -> None:
    """Set the data key (base64 of 32 bytes) and, while rotating, the previous keys
    (comma-separated). No key falls back to the development key where that is allowed, and
    is a DataKeyError where it is not (the app outside development and tests)."""
    global _ring, _warned
    current, old = check_keys(key, old_keys, development_key_allowed=development_key_allowed)
    if current is None:
        if not _warned:
            log.warning("GRIDWORK_DATA_KEY is not set: sensitive columns use the development key")
            _warned = True
        _ring = _Ring(_DEV_KEY, old)
        return
    _ring = _Ring(current, old)


def check_keys(
    key: str | None, old_keys: str | None = None, *, development_key_allowed: bool = True
) -> tuple[bytes | None, list[bytes]]:
    """The keys `configure` would set, decoded (None: no key, the development key where it is
    allowed), or the DataKeyError it would raise; nothing is set."""
    if not key and not development_key_allowed:
        raise DataKeyError(
            "GRIDWORK_DATA_KEY is not set: residents' phones and notes would be sealed with the "
            "development key, which is in the source. Set it (`gridwork security new-key`), or "
            "GRIDWORK_ENV=development for a demo without real residents' data."
        )
    old = [
        _decode_key(k.strip(), "GRIDWORK_OLD_DATA_KEYS")
        for k in (old_keys or "").split(",")
        if k.strip()
    ]
    if not key:
        return None, old
    current = _decode_key(key, "GRIDWORK_DATA_KEY")
    if current == _DEV_KEY and not development_key_allowed:
        # docs/security.md prints it (as the old key that moves a demo's data onto a real one):
        # given as the data key, it quieted the refusal above and sealed residents' data with it.
        raise DataKeyError(
            "GRIDWORK_DATA_KEY is the development key, which is in the source. Make a key "
            "(`gridwork security new-key`) for GRIDWORK_DATA_KEY; data sealed by the "
            "development key is read with it in GRIDWORK_OLD_DATA_KEYS and moved onto the new "
            "key by `gridwork security encrypt`."
        )
    return current, old


def current_key_id() -> str:
    return _ring.current_id


def configured_key_ids() -> list[str]:
    """The current key's id first, then the old keys' (GRIDWORK_OLD_DATA_KEYS)."""
    return list(_ring.aeads)


def seal_count() -> int:
    """How many values this process has sealed with its current key (only ever grows)."""
    return _ring.sealed


def failed_open_count() -> int:
    """How many stored values this process failed to open (only ever grows)."""
    return _failed_opens


# A known plaintext sealed by each key that sealed data (table data_keys): opening it proves a
# configured key with that id really is the key, not merely one whose id collides.
CANARY = "gridwork data key canary"


def seal_canary(kid: str | None = None) -> str:
    """The canary sealed by the key `kid` (the current key by default), which must be held."""
    kid = kid or _ring.current_id
    nonce = os.urandom(12)
    sealed = _ring.aeads[kid].encrypt(nonce, CANARY.encode(), None)
    return f"{PREFIX}{kid}:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def opens_canary(stored: str) -> bool:
    """Whether the key named in a stored canary is held and opens it."""
    try:  # not `decrypt`: a canary that does not open is no stored value that failed
        return stored.startswith(PREFIX) and _open(stored)[1] == CANARY
    except (DataKeyError, ValueError, binascii.Error):
        return False


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def encrypt(text: str) -> str:
    ring = _ring
    ring.sealed += 1
    nonce = os.urandom(12)
    sealed = ring.current.encrypt(nonce, text.encode(), None)
    return f"{PREFIX}{ring.current_id}:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def is_current(stored: str) -> bool:
    """Sealed with the current key (nothing for `gridwork security encrypt` to do)."""
    return stored.startswith(f"{PREFIX}{_ring.current_id}:")


def decrypt(stored: str) -> str:
    global _failed_opens
    if not stored.startswith(PREFIX):
        return stored  # written before encryption was enabled; `gridwork security encrypt`
    try:
        return _open(stored)[1]
    except DataKeyError:
        _failed_opens += 1
        raise


def opener(stored: str) -> str | None:
    """The id of the held key that opens a sealed value; None when none does."""
    try:
        return _open(stored)[0]
    except DataKeyError:
        return None


def _open(stored: str) -> tuple[str, str]:
    body = stored[len(PREFIX) :]
    kid, sep, b64 = body.partition(":")
    if sep:
        candidates = [(kid, _ring.aeads[kid])] if kid in _ring.aeads else []
    else:  # the first format, without a key id: try every key
        b64, candidates = body, list(_ring.aeads.items())
    blob = base64.urlsafe_b64decode(b64)
    for kid, aead in candidates:
        try:
            return kid, aead.decrypt(blob[:12], blob[12:], None).decode()
        except InvalidTag:
            continue
    raise DataKeyError(
        "cannot decrypt a sensitive column: GRIDWORK_DATA_KEY is not the key it was written "
        "with (during a rotation, list the previous key in GRIDWORK_OLD_DATA_KEYS)"
    )


# --- bytes (photo files) -------------------------------------------------------------------------
# Stored form of sealed bytes: BYTES_MAGIC | kid (8 ASCII hex digits) | nonce (12) | ciphertext |
# tag (16). The magic and the key id are the associated data: a file names the key that opens
# it (rotation re-seals by it) and that name cannot be changed without the tag failing. The
# magic starts with no image's magic (JPEG FF D8, PNG 89 50, WebP RIFF), so a file written
# before photos were sealed is told apart by its first bytes.
BYTES_MAGIC = b"GWS1"
BYTES_HEADER = len(BYTES_MAGIC) + 8  # what `sealed_bytes_key_id` needs to read
BYTES_OVERHEAD = BYTES_HEADER + 12 + 16


class SealedBytesDamaged(ValueError):
    """Sealed bytes that the key they name does not open: changed or cut on disk, not a key
    problem (a missing key is a DataKeyError, as for columns)."""


def is_sealed_bytes(data: bytes) -> bool:
    return data.startswith(BYTES_MAGIC)


def sealed_bytes_key_id(data: bytes) -> str | None:
    """The id of the key named in sealed bytes (their first BYTES_HEADER bytes suffice); None
    when `data` is not sealed bytes."""
    if not is_sealed_bytes(data) or len(data) < BYTES_HEADER:
        return None
    kid = data[len(BYTES_MAGIC) : BYTES_HEADER]
    try:
        return kid.decode("ascii")
    except UnicodeDecodeError:
        return None


def seal_bytes(data: bytes) -> bytes:
    """`data` sealed by the current key (counted like `encrypt`: the key guard checks, before
    the transaction that sealed commits, that a rotation has not retired the key)."""
    ring = _ring
    ring.sealed += 1
    header = BYTES_MAGIC + ring.current_id.encode("ascii")
    nonce = os.urandom(12)
    return header + nonce + ring.current.encrypt(nonce, data, header)


def open_bytes(stored: bytes) -> bytes:
    """The bytes `seal_bytes` sealed. DataKeyError when the key they name is not held;
    SealedBytesDamaged when it is held and does not open them (or they are not sealed bytes)."""
    global _failed_opens
    kid = sealed_bytes_key_id(stored)
    if kid is None or len(stored) < BYTES_OVERHEAD:
        raise SealedBytesDamaged("not sealed bytes (no header, or cut short)")
    aead = _ring.aeads.get(kid)
    if aead is None:
        _failed_opens += 1
        raise DataKeyError(
            f"cannot open a sealed file: it names data key id {kid}, which neither "
            "GRIDWORK_DATA_KEY nor GRIDWORK_OLD_DATA_KEYS holds"
        )
    header, nonce = stored[:BYTES_HEADER], stored[BYTES_HEADER : BYTES_HEADER + 12]
    try:
        return aead.decrypt(nonce, stored[BYTES_HEADER + 12 :], header)
    except InvalidTag:
        raise SealedBytesDamaged(
            f"the sealed bytes do not open with data key id {kid} (changed or cut short)"
        ) from None


class EncryptedString(TypeDecorator):
    """A string stored encrypted; SQL cannot filter on it, by design."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


class EncryptedJSON(TypeDecorator):
    """A JSON value stored encrypted, as a JSON string inside a jsonb column.

    The column stays jsonb, so no schema change is needed and plaintext objects written before
    encryption (or empty ones) are still read as they are.
    """

    impl = JSONB
    cache_ok = True

    def __init__(self, *args, **kwargs):
        super().__init__(none_as_null=True)

    def process_bind_param(self, value, dialect):
        if value is None or value == {} or value == []:
            return value
        return encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value, dialect):
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(decrypt(value))
        return value


# A Chinese mobile (11 digits) prints as 138****5678: 3 + 4 shown, the 4 that matter hidden.
PHONE_SHOWN_HEAD, PHONE_SHOWN_TAIL = 3, 4


def mask_phone(phone: str | None) -> str | None:
    """13812345678 -> 138****5678, as Chinese services print phone numbers; shorter numbers
    (landlines, extensions) show only their last third: 65123456 -> ******56, 110 -> ***.

    The 3 + 4 of a mobile shown on a 7- or 8-digit landline overlapped or nearly did: it showed
    every digit, or all but one.
    """
    if not phone:
        return phone
    head, tail = PHONE_SHOWN_HEAD, PHONE_SHOWN_TAIL
    if len(phone) < 11:
        head, tail = 0, len(phone) // 3 if len(phone) > 4 else 0
    return phone[:head] + "*" * (len(phone) - head - tail) + phone[len(phone) - tail :]


def mask_name(name: str | None) -> str | None:
    """张三丰 -> 张**, Alice -> A****: the first character only."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)
