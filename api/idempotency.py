"""`Idempotency-Key` for creates that have no natural key: a retry gets the first answer.

A phone that sends `POST /households` and loses the answer cannot tell whether the household
was made; sent again, it made a second one. With an `Idempotency-Key` header (1-200 visible
ASCII characters, chosen by the client per intended create), the key's row is written in the
request's own transaction, so it is committed with the record or not at all, and the answer
is kept (sealed) once given. A request with a key already used by this user:

- the same request, answered: the stored answer again (`Idempotent-Replayed: true`), no second
  record;
- the same request, committed but not yet (or never, after a crash) answered: 409, with
  `"idempotency_key": "carried_out"` (the record exists; its answer cannot be given);
- another request (method, path, query or body differ): 422;
- the same request, answered, but the records the answer shows are no longer the caller's to
  read (a worker moved off the grid since), or the account's role or community is not the one
  the request was made as (an admin made a worker since): 409 `carried_out`, without the
  answer. It was masked and scoped for the caller as they were then, and holds a phone or a
  complainant.

Keys live 24 hours (`KEEP`); each new key clears the user's expired ones, and the push
worker's tick clears everyone's (`purge_expired`): a kept answer holds a household's phone or a
complainant, sealed, and no user may be relied on to send another key. Without the header
nothing changes. Views wrapped here commit their effects themselves, after which the answer is
stored by `after_this_request`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Response, after_this_request, current_app, request
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from api import clock, errors
from api.auth import current_scope
from api.extensions import Blueprint, db
from api.limits import request_body
from api.models import Household, IdempotencyKey, Task
from api.scope import Scope

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
# The header in the OpenAPI document of each view wrapped here.
PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Chosen by the client per intended create: a retry with the same key gets "
    "the first answer instead of making a second record (kept 24 hours)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}


def idempotent(
    blp: Blueprint, audited: str | None = None, listed: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a create view of `blp` (under its flask-smorest decorators, above `audited`):
    the header is honoured and documented. `audited` names the resource the answer discloses:
    a replayed answer (the view does not run, nor its `audited`) is written to the audit log
    as a read of the record it shows (of the records listed under `listed`, when it lists
    several)."""
    return lambda view: blp.header(PARAMETER)(_idempotent(view, audited, listed))


def _idempotent(
    view: Callable[..., Any], audited: str | None = None, listed: str | None = None
) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _KEY.fullmatch(key):
            raise errors.BadRequest(f"{HEADER} must be 1-200 visible ASCII characters.")
        scope = current_scope()
        user_id, made_as = scope.user_id, _made_as(scope)
        digest = _request_hash()
        session = db.session
        stored = _claim(session, user_id, key, digest, made_as)
        if stored is not None:
            answer = _replay(stored, digest, made_as)
            if audited is not None and answer.status_code < 300:
                ids = _shown(stored.body, listed)
                _require_readable(session, audited, ids)
                if ids:
                    from api import privacy  # needs the app's request context, as this does

                    privacy.record_disclosure(audited, ids)
            return answer
        result = view(*args, **kwargs)  # commits the record and the key's row together

        @after_this_request
        def remember(response: Response) -> Response:
            if response.status_code < 300:
                session.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                    .values(
                        status=response.status_code,
                        mimetype=response.mimetype,
                        body=response.get_data(as_text=True),
                    )
                )
                session.commit()
            return response

        return result

    return wrapper


def _made_as(scope: Scope) -> str:
    """What a kept answer was made for besides the account: its role and where it acts (a
    change of grids alone is `_require_readable`'s)."""
    return f"{scope.role}:{scope.community_code or ''}:{scope.district_code or ''}"


def _claim(session, user_id: int, key: str, digest: str, made_as: str) -> IdempotencyKey | None:
    """Write the key's row in this transaction (None), or give the row already there."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.created_at < clock.now() - KEEP,
        )
    )
    # A concurrent twin's uncommitted row makes this wait; once it commits, nothing is written.
    written = session.execute(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=digest, made_as=made_as)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if written is not None:
        return None
    return session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )


def purge_expired(session, now: datetime) -> int:
    """Delete every user's keys older than `KEEP` (none of them can be replayed any more);
    how many. Run by the push worker's tick."""
    return session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP)
    ).rowcount


def _replay(stored: IdempotencyKey, digest: str, made_as: str) -> Response:
    if not _same_request(stored.request_hash, digest):
        raise errors.Unprocessable(
            f"This {HEADER} was used with another request; make a new key for a new request.",
            # Machine-readable: a client that kept its key for an edit after a lost answer
            # (the window page) learns the first request was carried out.
            idempotency_key="reused",
        )
    if stored.status is None:
        raise errors.Conflict(
            f"A request with this {HEADER} was carried out but its answer is not (yet) kept; "
            "look the record up instead of sending it again.",
            # Machine-readable: the key's row is only there once its request committed, so
            # the record exists. A phone's kept report is done (a twin still answering, or a
            # crash before the answer was kept): sent on until the key expired, it opened a
            # second one.
            idempotency_key="carried_out",
        )
    if stored.made_as is not None and stored.made_as != made_as:
        # Carried out, so not run again; its answer was for the account's role then (until
        # 2026-12-07 an admin made a worker since got an account's phone back with it).
        raise errors.Conflict(
            f"The request with this {HEADER} was carried out while your account had another "
            "role or community; its answer is not given to it now.",
            idempotency_key="carried_out",
        )
    return Response(
        stored.body,
        status=stored.status,
        mimetype=stored.mimetype,
        headers={"Idempotent-Replayed": "true"},
    )


def _shown(body: str | bytes | None, listed: str | None = None) -> list[int]:
    """The ids of the records a stored answer shows: the record's, or with `listed` those of
    each record the answer lists under that key (none when the answer names none)."""
    try:
        answer = json.loads(body or "null")
        shown = answer[listed] if listed is not None else [answer]
        ids = [record["id"] for record in shown]
    except (ValueError, TypeError, KeyError):
        return []
    return ids if all(isinstance(i, int) for i in ids) else []


# What a stored answer about each audited resource shows, and who may read it now: the scope's
# condition on its records (api/scope.py).
_READABLE: dict[str, tuple[type, Callable[[Scope], ColumnElement[bool]]]] = {
    "household": (Household, Scope.households),
    "task": (Task, Scope.tasks),
}


def _require_readable(session, resource: str, ids: list[int]) -> None:
    """409 when the caller may no longer read every record the stored answer shows: it was
    made for them as they were (a worker moved off the grid since gets no phone back). The
    request was carried out, so the client stops sending it, as after a lost answer."""
    model, readable = _READABLE[resource]
    wanted = set(ids)
    if not wanted:
        return
    seen = session.scalar(
        select(func.count())
        .select_from(model)
        .where(model.id.in_(wanted), readable(current_scope()))
    )
    if seen != len(wanted):
        raise errors.Conflict(
            f"The request with this {HEADER} was carried out, but what it answered is no "
            "longer yours to read.",
            idempotency_key="carried_out",
        )


# A kept request hash is keyed (HMAC with the app's SECRET_KEY): the request's body is a
# household's address, point and phone, and a dump holds all but the phone in clear, so an
# unkeyed hash gave the phone back to a search over a prefix's ~10^9 numbers. Hashes kept
# before (64 hex digits, unkeyed) are compared as they were until their 24 hours are over.
# A new hash is keyed with SECRET_KEY; a kept one also matches under SECRET_KEY_FALLBACKS,
# so a retry across a key rotation gets its first answer, not a 422.
_KEYED = "k1:"


def _request_hash() -> str:
    """What makes two requests the same one, keyed: see `_KEYED`."""
    return _keyed(_request_digest().digest(), current_app.config["SECRET_KEY"])


def _keyed(digest: bytes, secret: str) -> str:
    keyed = hmac.new(secret.encode(), digest, hashlib.sha256).digest()
    return _KEYED + base64.urlsafe_b64encode(keyed).decode().rstrip("=")


def _same_request(stored: str, digest: str) -> bool:
    if stored.startswith(_KEYED):
        if hmac.compare_digest(stored, digest):
            return True
        fallbacks = current_app.config.get("SECRET_KEY_FALLBACKS") or ()
        if not fallbacks:
            return False
        plain = _request_digest().digest()  # read again (a register's file) only here
        return any(hmac.compare_digest(stored, _keyed(plain, old)) for old in fallbacks)
    return hmac.compare_digest(stored, _request_digest().hexdigest())  # kept unkeyed, before


def _request_digest():
    """What makes two requests the same one: method, path, query, and the body or the files."""
    h = hashlib.sha256()
    h.update(f"{request.method} {request.path}?{request.query_string.decode()}\n".encode())
    if request.files:
        for name in sorted(request.files):
            for upload in request.files.getlist(name):
                h.update(f"{name}:{upload.filename}\n".encode())
                for chunk in iter(lambda u=upload: u.stream.read(1 << 20), b""):
                    h.update(chunk)  # a register file is read a MiB at a time
                upload.stream.seek(0)
        for name in sorted(request.form):
            h.update(f"{name}={request.form.getlist(name)}\n".encode())
    else:
        h.update(request_body(request))
    return h
