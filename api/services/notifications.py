"""Notify users: one inbox row each, written in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.orm import Session

from api.models.notifications import NOTIFICATION_KINDS, Notification


def notify(
    session: Session,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    body: str = "",
    *,
    data: Mapping[str, object] | None = None,
    urgent: bool = False,
    collapse_key: str | None = None,
) -> list[Notification]:
    """Record a notification for each user; delivery (push) happens after the commit.

    `data` values are stringified: push payloads carry strings only.
    """
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    payload = {str(k): str(v) for k, v in (data or {}).items()}
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=payload,
            urgent=urgent,
            collapse_key=collapse_key,
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    session.add_all(rows)
    session.flush()
    return rows
