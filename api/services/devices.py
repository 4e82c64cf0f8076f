"""Devices that receive pushes: register (upsert by token), list, remove; quiet hours; logout."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import Row, and_, case, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from api import errors
from api.db import row_id
from api.models import Device, NotificationSettings, RevokedToken, User
from api.models.push import RETIRED_REASONS
from api.services import sessions
from api.services.notifications import notify

# A worker has a phone or two and a browser; more active devices than this is a leak (an app
# registering a fresh token without removing the old one) or abuse: every notification fans
# out to each of them, and the worker sends them ahead of everybody else's.
MAX_ACTIVE_DEVICES = 10


def register_device(
    session: Session,
    user_id: int,
    platform: str,
    *,
    token: str | None = None,
    subscription: dict | None = None,
    now: datetime,
    token_version: int | None = None,
    session_id: str | None = None,
    label: str | None = None,
) -> Device:
    """Register or refresh a device, keyed by its token (a web subscription by its endpoint).

    Re-registering the same token refreshes it, reactivates it and moves it to this user (a
    phone that changed hands belongs to whoever signed in last). A user keeps at most
    MAX_ACTIVE_DEVICES active devices: beyond, the longest unseen is deactivated.

    `token_version` is that of the caller's token (a request's; None from the console): the
    account must still be active at that version once its row is locked, else 401.
    `session_id` is its sign-in session: ending it ends the device (`sessions.revoke`).
    `label` is what its owner calls it: registering again without one keeps the one it has,
    unless the device passes to another user.
    """
    if platform == "web":
        if not subscription or token:
            raise errors.Unprocessable(
                "A web device registers a Web Push subscription, not a token.",
                errors={"json": {"subscription": ["Required for platform web."]}},
            )
        key = subscription["endpoint"]
    else:
        if not token or subscription:
            raise errors.Unprocessable(
                f"An {platform} device registers its FCM token, not a subscription.",
                errors={"json": {"token": [f"Required for platform {platform}."]}},
            )
        key = token
    # One user's registrations queue on their row, so each counts the others' devices once
    # they are committed: two at once each counted without the other's and kept 11. (FOR NO
    # KEY UPDATE: the devices' foreign key checks take KEY SHARE, which it lets through.)
    sessions.hold_account(session, user_id, token_version)
    # Whom it leaves, if it passes from another account that it was pushing to: told below.
    leaving = _leaving_holder(session, key, user_id, now)
    values = {
        "user_id": user_id,
        "platform": platform,
        "token": key,
        "subscription": subscription,
        "active": True,
        "last_seen_at": now,
        "deactivated_at": None,
        "deactivation_reason": None,
        "session_id": session_id,
    }
    stmt = insert(Device).values(created_at=now, label=label, **values)
    # The send history goes on while the device stays its user's and active (an app refreshing
    # its registration at each start must not hide a push service that never answers); a
    # device reactivated (retired, removed, signed out) starts afresh, and one passing to
    # another user (a phone that changed hands) does not show them its last owner's pushes.
    kept = and_(Device.active, Device.user_id == user_id)
    history = {
        "last_success_at": case((kept, Device.last_success_at), else_=None),
        "failing_since": case((kept, Device.failing_since), else_=None),
        "consecutive_failures": case((kept, Device.consecutive_failures), else_=0),
    }
    # The label goes with the device while it stays its user's (removed and registered again
    # on the same phone, it is still "华为 Mate 40"); a phone that changed hands loses it.
    history["label"] = (
        label if label is not None else case((Device.user_id == user_id, Device.label), else_=None)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Device.token], set_={**values, **history}
    ).returning(Device.id)
    device_id = session.scalar(stmt)
    # The device just registered stays; of the user's others, the longest unseen give way.
    others = (
        select(Device.id)
        .where(Device.user_id == user_id, Device.active, Device.id != device_id)
        .order_by(Device.last_seen_at.desc(), Device.id.desc())
        .offset(MAX_ACTIVE_DEVICES - 1)
    )
    session.execute(
        update(Device)
        .where(Device.id.in_(others))
        .values(
            active=False,
            deactivated_at=now,
            deactivation_reason=f"replaced: more than {MAX_ACTIVE_DEVICES} devices",
        )
    )
    if leaving is not None:
        tell_moved(session, leaving, now)
    session.expire_all()
    return session.get(Device, device_id)


def _leaving_holder(session: Session, key: str, user_id: int, now: datetime) -> Row | None:
    """The device of token `key` as another account holds it, locked, if it passes from it to
    `user_id` while that account is active and the device is getting its pushes: active, its
    sign-in live. A device its owner signed out of, removed, whose sign-in ran out, or which
    was retired (they were told then) got nothing for them already: taking it over is the next
    holder's ordinary sign-in, and tells nobody."""
    return session.execute(
        select(Device.id, Device.user_id, Device.platform, Device.label)
        .join(User, User.id == Device.user_id)
        .where(
            Device.token == key,
            Device.user_id != user_id,
            Device.active,
            User.active,
            sessions.device_session_live(now),
        )
        .with_for_update(of=Device, key_share=True)
    ).one_or_none()


def _listed(user_id: int):
    """The user's devices they see: those not deactivated, and those the push worker retired
    as unreachable or as unregistered (nothing goes to them; listed so that their owner
    knows, and registers the device again or removes it)."""
    retired = and_(
        ~Device.active,
        or_(*(Device.deactivation_reason.startswith(reason) for reason in RETIRED_REASONS)),
    )
    return and_(Device.user_id == user_id, or_(Device.active, retired)), retired


def list_devices(session: Session, user_id: int, now: datetime) -> list[Row]:
    """The user's devices not removed (nor deactivated), each with whether its sign-in is live
    at `now` (`signed_in`, `sessions.device_signed_in`) and whether pushes go to it (`active`:
    the same, for a listed device not retired). A phone whose sign-in ran out was listed
    active, though the push worker sent it nothing (its holder must sign in again); it stays
    listed (it can be removed), inactive, until its ended session is purged and it is
    deactivated. A device the worker retired as unreachable is listed too, `retired`, with
    its send history (when a push last went, since when its sends fail, how many in a row):
    it was dropped from the list before, its owner left without push unawares."""
    signed_in = sessions.device_session_live(now)
    listed, retired = _listed(user_id)
    return list(
        session.execute(
            select(
                Device.id,
                Device.platform,
                Device.label,
                and_(Device.active, signed_in).label("active"),
                signed_in.label("signed_in"),
                retired.label("retired"),
                Device.created_at,
                Device.last_seen_at,
                Device.last_success_at,
                Device.failing_since,
                Device.consecutive_failures,
                case((retired, Device.deactivated_at)).label("retired_at"),
                case((retired, Device.deactivation_reason)).label("retired_reason"),
            )
            .where(listed)
            .order_by(Device.id)
        )
    )


def remove_device(session: Session, user_id: int, device_id: int, now: datetime) -> None:
    """Deactivate one of the user's devices: nothing more is pushed to it. A retired one
    (listed) is removed from the list."""
    device = session.scalar(select(Device).where(Device.id == device_id, _listed(user_id)[0]))
    if device is None:
        raise errors.NotFound(f"Device {device_id} not found.")
    deactivate(device, "removed by the user", now)
    session.flush()


def deactivate(device: Device, reason: str, now: datetime) -> None:
    device.active = False
    device.deactivated_at = now
    device.deactivation_reason = reason[:200]


def logout(
    session: Session,
    user_id: int,
    jti: str,
    expires_at: datetime,
    *,
    device_id: int | None = None,
    token: str | None = None,
    now: datetime,
) -> None:
    """Revoke this access token (only this one: the user's other phones stay signed in) and
    deactivate the device named by id or token, if it is the caller's."""
    session.merge(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))
    stmt = select(Device).where(Device.user_id == user_id, Device.active)
    if device_id is not None:
        stmt = stmt.where(Device.id == device_id)
    elif token is not None:
        stmt = stmt.where(Device.token == token)
    else:
        stmt = None
    # An id past the database's integers or a token with a NUL names no device, as another's
    # does: sent, the database refused it, and the sign-out went with it (the sign-in live).
    if (device_id is not None and row_id(device_id) is None) or "\x00" in (token or ""):
        stmt = None
    if stmt is not None:
        for device in session.scalars(stmt):
            deactivate(device, "signed out", now)
    session.flush()


# How a worker knows their devices: by kind, then by the label the app gave.
PLATFORM_NAMES = {"android": "安卓手机", "ios": "苹果手机", "web": "浏览器"}
RETIRED_TITLE = "有一台设备收不到推送了"
BEIJING = ZoneInfo("Asia/Shanghai")


def device_name(platform: str, label: str | None) -> str:
    """ "安卓手机「华为 Mate 40」", or the kind alone without a label."""
    kind = PLATFORM_NAMES.get(platform, platform)
    return f"{kind}「{label}」" if label else kind


def _beijing(at: datetime) -> str:
    """ "11月17日 10:00": an instant as its owner reads it, in Beijing time."""
    local = at.astimezone(BEIJING)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def retired_notice(platform: str, label: str | None, last_success_at: datetime | None) -> str:
    """The notice of a retired device, in the words its owner reads in the inbox: which
    device, since when, and what to do."""
    name = device_name(platform, label)
    if last_success_at is None:
        since = f"您的{name}从未收到过推送，已停止向它推送。"
    else:
        when = _beijing(last_success_at)
        since = f"您的{name}上次收到推送是在{when}，此后一直收不到，已停止向它推送。"
    return (
        f"{since}新任务和时限提醒不会再到达这台设备。请在这台设备上打开网格员应用并重新登录"
        "（浏览器请点“开启推送”），即可重新接收；不再使用的设备可在“账号安全 · 接收通知的设备”"
        "中移除。"
    )


def tell_retired(session: Session, device_ids: list[int], now: datetime) -> None:
    """Tell the owners of devices just retired as unreachable (`PushWorker.mark`, in its
    transaction): an inbox notice each (the app reads the inbox as it opens) and its push to
    their devices pushes still reach (the retired one is inactive already). A worker whose
    phone stopped getting pushes believed tasks would reach them. Nobody is told of a device
    whose account is switched off. Each device once per retirement: the worker retires only
    an active device, under its row's lock."""
    if not device_ids:
        return
    rows = session.execute(
        select(Device.id, Device.user_id, Device.platform, Device.label, Device.last_success_at)
        .join(User, User.id == Device.user_id)
        .where(Device.id.in_(device_ids), User.active)
        .order_by(Device.id)
    ).all()
    for row in rows:
        body = retired_notice(row.platform, row.label, row.last_success_at)
        _tell_retired(session, row, body, now)


def unregistered_notice(platform: str, label: str | None, at: datetime) -> str:
    """The notice of a device its push service answered is gone: which, when, what to do."""
    name = device_name(platform, label)
    return (
        f"{_beijing(at)}，推送服务答复您的{name}的推送登记已失效（应用重装、清除了数据，或浏览器"
        "取消了订阅），已停止向它推送。新任务和时限提醒不会再到达这台设备。请在这台设备上打开"
        "网格员应用（浏览器请点“重新开启推送”），即可重新登记接收；不再使用的设备可在"
        "“账号安全 · 接收通知的设备”中移除。"
    )


def tell_unregistered(session: Session, device_ids: list[int], now: datetime) -> None:
    """Tell the owners of devices just deactivated because their push service answered that
    they are gone (`PushWorker.mark`, in its transaction; only the devices its statement
    switched off, so each once per deactivation): an inbox notice as `tell_retired`'s, and
    its push to their devices pushes still reach. A worker whose only phone lost its
    registration (the app reinstalled, its data cleared) got nothing, unawares.

    Nobody is told of a device whose account is switched off; nor when its owner has since
    registered one that stands in for it, active and signed in: of its platform, registered
    after the dropped one was last, not named otherwise (the app reinstalled registers its
    new token as it opens, often before a push finds the old one gone: it gets pushes, and a
    notice would alarm for nothing); nor while the notice of that device's last deactivation
    is unread (an app registering the token it cached at each start, dead or not, would have
    its worker told at each opening)."""
    if not device_ids:
        return
    rows = session.execute(
        text(
            """
            SELECT d.id, d.user_id, d.platform, d.label FROM devices d
            JOIN users u ON u.id = d.user_id AND u.active
            WHERE d.id = ANY(:ids)
              AND NOT EXISTS (
                SELECT 1 FROM devices w
                WHERE w.user_id = d.user_id AND w.id <> d.id AND w.active
                  AND w.platform = d.platform AND w.created_at > d.last_seen_at
                  AND (w.label IS NULL OR d.label IS NULL OR w.label = d.label)
                  AND """
            + sessions.device_signed_in("w", ":now")
            + """)
              AND NOT EXISTS (
                SELECT 1 FROM notifications n
                WHERE n.user_id = d.user_id AND n.read_at IS NULL
                  AND n.collapse_key = 'device-retired-' || d.id)
            ORDER BY d.id
            """
        ),
        {"ids": sorted(device_ids), "now": now},
    ).all()
    for row in rows:
        _tell_retired(session, row, unregistered_notice(row.platform, row.label, now), now)


def _tell_retired(session: Session, device: Row, body: str, now: datetime) -> None:
    """The notice to its owner of a device retired (unreachable, or its registration gone),
    collapsed with the device's earlier ones (`collapse_key`)."""
    notify(
        session,
        [device.user_id],
        "device_retired",
        RETIRED_TITLE,
        body,
        data={"device_id": device.id},
        collapse_key=f"device-retired-{device.id}",
        now=now,
    )


MOVED_TITLE = "有一台设备不再接收您的推送"


def moved_notice(platform: str, label: str | None, at: datetime) -> str:
    """The notice of a device another account registered: which, when, and what to do. The
    other account is not named: whose phone it is now is not its last owner's to read."""
    name = device_name(platform, label)
    return (
        f"{_beijing(at)}，您的{name}在另一个账号下登记接收推送，此后您的新任务和时限提醒不会"
        "再推送到这台设备。如果这台设备仍由您使用，请在它上面打开网格员应用并重新登录，即可"
        "重新接收；如果您没有把它交给别人使用，请告知管理员。"
    )


def tell_moved(session: Session, leaving: Row, now: datetime) -> None:
    """Tell the account a device just left (`register_device`, another account registering its
    token) in its inbox, and by push on its devices pushes still reach (the one that left is
    the new holder's already). It passes all the same (a phone that changed hands is whoever
    signed in last's), but a phone registered by mistake, or its token leaked and registered
    elsewhere, stopped getting its owner's task notices unawares. No device id: the device is
    no longer theirs to look up."""
    notify(
        session,
        [leaving.user_id],
        "device_moved",
        MOVED_TITLE,
        moved_notice(leaving.platform, leaving.label, now),
        collapse_key=f"device-moved-{leaving.id}",
        now=now,
    )


def expiry(exp: int | None) -> datetime:
    return datetime.fromtimestamp(exp, UTC) if exp else datetime.now(UTC)


# --- quiet hours -----------------------------------------------------------------------------
def get_settings(session: Session, user_id: int) -> NotificationSettings:
    row = session.get(NotificationSettings, user_id)
    return row or NotificationSettings(user_id=user_id, timezone="Asia/Shanghai")


def set_quiet_hours(
    session: Session, user_id: int, start: time | None, end: time | None, timezone: str
) -> NotificationSettings:
    if (start is None) != (end is None):
        raise errors.Unprocessable(
            "Give both quiet_start and quiet_end, or neither.",
            errors={"json": {"quiet_end": ["Set with quiet_start."]}},
        )
    if start is not None and start == end:
        # The window start <= clock < end is empty: no quiet hours at all, answered 200.
        raise errors.Unprocessable(
            "Quiet hours end when they start: give an end other than the start.",
            errors={"json": {"quiet_end": ["Equal to quiet_start."]}},
        )
    row = session.get(NotificationSettings, user_id)
    if row is None:
        row = NotificationSettings(user_id=user_id)
        session.add(row)
    row.quiet_start, row.quiet_end, row.timezone = start, end, timezone
    session.flush()
    return row
