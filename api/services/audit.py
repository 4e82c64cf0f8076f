"""Audit trail of personal-information access, and throttling of password guessing."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    and_,
    any_,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import CIDR
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from api import clock, errors
from api.db import set_local
from api.models import AuditEntry, Household, LoginAttempt, Task, User, Visit
from api.models.audit import PASSWORD_CHANGE, SIGN_IN
from api.scope import Scope

# A household record's personal fields, as audit entries name them (a caller who is not shown
# contacts is disclosed all but the phone).
HOUSEHOLD_FIELDS = ("address", "location", "members", "tags", "phone")
# The personal-information law asks for logs kept at least six months: the longest six
# calendar months are 184 days (1 July to 1 January, 1 August to 1 February). At 183 an entry
# of 1 July went on 31 December.
MIN_RETENTION = timedelta(days=184)
PATH_CHARS = 300  # audit_log.path
# The general list's two views: entries by the caller's users (who read), or entries about the
# records in the caller's scope, whoever read them (whose data was read).
VIEWS = ("readers", "records")
# Resources whose entries name residents' records, and where the record ids are.
_VISIT_RESOURCES = ("visit", "visit_photo")  # a photo's entry names its visit's UUID
# A task photo's entry names its task (the photo's id is in the entry's path).
_TASK_RESOURCES = ("task", "task_photo")
# The GIN index of entries by record id (households, tasks), searched by `record_id`.
RECORD_INDEX = "ix_audit_log_resource_ids"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reader:
    """Who reads, and from where: the actor of an audit entry."""

    user_id: int | None
    ip: str | None = None
    path: str | None = None

    @classmethod
    def of(cls, user_id: int | None, ip: str | None, path: str | None) -> Reader:
        return cls(user_id, ip, _clip(path))


def _clip(path: str | None) -> str | None:
    return path[:PATH_CHARS] if path else None


def record(
    session: Session,
    *,
    user_id: int | None,
    action: str,
    resource: str,
    resource_ids: Iterable[int | uuid.UUID],
    fields: Iterable[str],
    ip: str | None = None,
    path: str | None = None,
    at: datetime | None = None,
) -> AuditEntry | None:
    """One row per request touching personal data (nothing when no record was touched).

    Integer ids go to `resource_ids`, UUIDs (visits) to `resource_uuids`.
    """
    ids, uuids = _keys(resource_ids)
    if not ids and not uuids:
        return None
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        resource=resource,
        resource_ids=ids,
        resource_uuids=uuids,
        fields=list(fields),
        ip=ip,
        path=_clip(path),
    )
    if at is not None:
        entry.at = at
    session.add(entry)
    session.flush()
    return entry


# A read's entry and its transaction's asynchronous commit in one statement: a read's only
# write is not worth a WAL flush of its own (an asynchronous commit is still atomic and ordered;
# a database crash may lose the last ~0.6 s of entries, never part of one), and the SET LOCAL
# it took was a round trip of its own on every audited request.
_READ_ENTRY = text(
    """
    INSERT INTO audit_log (user_id, action, resource, resource_ids, resource_uuids, fields,
                           ip, path)
    SELECT :user_id, :action, :resource, CAST(:ids AS bigint[]), CAST(:uuids AS uuid[]),
           CAST(:fields AS varchar[]), CAST(:ip AS inet), :path
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit
    """
)


def record_read(
    session: Session,
    reader: Reader,
    action: str,
    resource: str,
    resource_ids: Iterable[int | uuid.UUID],
    fields: Iterable[str],
) -> None:
    """`record`'s entry for an answer that disclosed records to `reader`, written with its
    transaction's commit made asynchronous, in one statement (nothing when none was)."""
    ids, uuids = _keys(resource_ids)
    if not ids and not uuids:
        return
    params = {"action": action, "resource": resource, "ids": ids, "uuids": uuids}
    params |= {"fields": list(fields), "user_id": reader.user_id, "ip": reader.ip}
    session.execute(_READ_ENTRY, {**params, "path": _clip(reader.path)})


def _keys(resource_ids: Iterable[int | uuid.UUID]) -> tuple[list[int], list[uuid.UUID]]:
    """Integer ids for `resource_ids`, UUIDs (visits) for `resource_uuids`."""
    ids: list[int] = []
    uuids: list[uuid.UUID] = []
    for key in resource_ids:
        (uuids if isinstance(key, uuid.UUID) else ids).append(key)
    return ids, uuids


def _visible_actors(scope: Scope):
    """Community admins read their community's entries, district viewers their district's."""
    if scope.role == "community_admin":
        return User.community_code == scope.community_code
    if scope.role == "district_viewer":
        return or_(
            User.district_code == scope.district_code,
            User.community_code.startswith(scope.district_code or "-", autoescape=True),
        )
    raise errors.Forbidden("Only community admins and district viewers read the audit log.")


def list_entries(
    session: Session,
    scope: Scope,
    *,
    user_id: int | None = None,
    action: str | None = None,
    resource: str | None = None,
    record_id: int | None = None,
    record_uuid: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    household_id: int | None = None,
    view: str = "readers",
    before: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[tuple[AuditEntry, str | None]], int]:
    """Entries in the caller's reach, newest first, with each actor's username.

    - `view="readers"` (the default): entries by the users of the caller's community
      (district).
    - `view="records"`: entries about the households, visits (and their photos) and tasks in
      the caller's scope, whoever the reader: the district's viewers, relievers from other
      communities, the console (no user: imports, the photo scrub).
    - `household_id`: entries about that household, its visits, their photos and its tasks,
      whoever the reader; 404 when the household is not in the caller's scope.
    - Asked about one record of their own (a household, task or visit in their scope, with its
      `resource`), the caller sees every entry about it, whoever the reader: "who read this
      resident's record?" must count the district's viewers and relievers from other
      communities too, whose reads the reader-based view leaves out.
    - `action="purge"`: the purges of the log (`purge`), whoever the caller: what was deleted
      and up to when, where every other view's answer begins.
    The other filters narrow any of these. `before`: only the entries after that one in the
    listing's order (at, id descending), so paging on from the last entry read is not shifted
    by entries written meanwhile.
    """
    visible = _visible_actors(scope)
    # Entries shown for being about the caller's records, whoever read them, name only the
    # records in the caller's scope (`_named_in_scope`); entries by the caller's users, whole.
    about_records = True
    records_view = False
    if action == "purge":
        # The log's own purges (the console's, no user), for every reader of the log: where
        # its answers begin. Found through the index on (user, at), the console's few entries.
        visible = and_(AuditEntry.user_id.is_(None), AuditEntry.resource == "audit_log")
        about_records = False
    elif household_id is not None:
        visible = _about_household(session, scope, household_id)
    elif _own_record(session, scope, resource, record_id, record_uuid):
        visible = true()
    elif view == "records":
        records_view = True
    else:
        about_records = False
    filters = []
    if user_id is not None:
        filters.append(AuditEntry.user_id == user_id)
    if action:
        filters.append(AuditEntry.action == action)
    if resource:
        filters.append(AuditEntry.resource == resource)
    if record_id is not None:
        filters.append(AuditEntry.resource_ids.contains([record_id]))
    if record_uuid is not None:
        filters.append(AuditEntry.resource_uuids.contains([record_uuid]))
    filters += _period(since, until)
    if before is not None:
        at = session.scalar(select(AuditEntry.at).where(AuditEntry.id == before))
        if at is None:
            raise errors.Unprocessable(f"Audit entry {before} is not in the log.", field="before")
        # A row comparison: one range of the (at, id) index (migration 0056).
        filters.append(tuple_(AuditEntry.at, AuditEntry.id) < tuple_(at, before))
    offset = (page - 1) * page_size
    if records_view:
        rows, total = _records_page(session, scope, filters, offset, page_size)
    else:
        # An outer join: entries written at the console have no user (none of them is by the
        # caller's users, so the readers view never lists them).
        stmt = _newest(visible, *filters)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.execute(stmt.offset(offset).limit(page_size)).all()
    if about_records:
        _named_in_scope(session, scope, [entry for entry, _ in rows])
    return [(entry, username) for entry, username in rows], total


def _newest(*conditions):
    """Entries meeting `conditions` with their actor's username, newest first (at, id
    descending: a backward scan of the (at, id) index)."""
    return (
        select(AuditEntry, User.username)
        .outerjoin(User, AuditEntry.user_id == User.id)
        .where(*conditions)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )


# The records view tests the newest entries one by one (`_names_records_in`), at most this many
# (those that pass the other filters), before it matches older ones as a set.
RECORDS_WALK = 20_000


def _records_page(
    session: Session, scope: Scope, filters: list, offset: int, page_size: int
) -> tuple[list, int]:
    """The records view's page, and its count: the entries up to the next page's first.

    Entries about the caller's records are not found by an index (an entry's records belong
    to the scope through their grids, as they are now), so the log is walked newest first and
    each entry tested against the scope (`_names_records_in`), stopping once the page and one
    entry more are found: a page costs what it reads, however long the log. Matching the
    whole log and sorting it (and counting it, for the total) took 2-7 s on 500,000 entries.
    The walk tests at most RECORDS_WALK entries: where the scope's entries are sparser than
    that (a community seldom read), the older entries are matched as a set
    (`_about_records_in`), as every page was before.

    The count goes no further than the page after this one's first entry: `total` is exact
    when there is no next page, and else says only that there is one (X-Pagination's
    `next_page`)."""
    wanted = offset + page_size + 1
    # The walk's cost is estimated as if it read the whole log, past jit_above_cost:
    # PostgreSQL spent 0.3-1.5 s compiling it for a statement that runs in milliseconds.
    set_local(session, jit="off")
    edge = session.execute(
        select(AuditEntry.at, AuditEntry.id)
        .where(*filters)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset(RECORDS_WALK - 1)
        .limit(1)
    ).first()
    walked = [tuple_(AuditEntry.at, AuditEntry.id) >= tuple_(*edge)] if edge else []
    rows = session.execute(_newest(_names_records_in(scope), *filters, *walked).limit(wanted)).all()
    if len(rows) < wanted and edge is not None:
        older = [*filters, tuple_(AuditEntry.at, AuditEntry.id) < tuple_(*edge)]
        rows += session.execute(
            _newest(_about_records_in(scope, older), *older).limit(wanted - len(rows))
        ).all()
    return rows[offset : offset + page_size], len(rows)


def _named_in_scope(session: Session, scope: Scope, entries: list[AuditEntry]) -> None:
    """Leave in the entries' record lists only the households, visits and tasks in the
    caller's scope: one entry may name another community's records too (a district viewer's
    list of the district's households), whose ids the caller is answered 404 for everywhere
    else. The entries are taken out of the session first: what is trimmed is the answer, never
    the log."""
    wanted: dict[str, set] = {"household": set(), "visit": set(), "task": set()}
    for entry in entries:
        if entry.resource == "household":
            wanted["household"].update(entry.resource_ids or ())
        elif entry.resource in _TASK_RESOURCES:
            wanted["task"].update(entry.resource_ids or ())
        elif entry.resource in _VISIT_RESOURCES:
            wanted["visit"].update(entry.resource_uuids or ())
    seen: dict[str, set] = {}
    for name, model, condition in (
        ("household", Household, scope.households()),
        ("visit", Visit, scope.visits()),
        ("task", Task, scope.tasks()),
    ):
        ids = wanted[name]
        seen[name] = (
            set(session.scalars(select(model.id).where(model.id.in_(ids), condition)))
            if ids
            else set()
        )
    for entry in entries:
        session.expunge(entry)
        if entry.resource == "household":
            entry.resource_ids = [i for i in entry.resource_ids if i in seen["household"]]
        elif entry.resource in _TASK_RESOURCES:
            entry.resource_ids = [i for i in entry.resource_ids if i in seen["task"]]
        elif entry.resource in _VISIT_RESOURCES:
            entry.resource_uuids = [u for u in entry.resource_uuids if u in seen["visit"]]


def _period(since: datetime | None, until: datetime | None) -> list:
    """Conditions on AuditEntry.at: since <= at < until, each bound when given."""
    conditions = []
    if since is not None:
        conditions.append(AuditEntry.at >= since)
    if until is not None:
        conditions.append(AuditEntry.at < until)
    return conditions


def _names_records_in(scope: Scope):
    """A condition on AuditEntry: it names a household, visit (photo) or task in scope,
    tested entry by entry, as a newest-first walk reads them.

    A community's households and tasks (a few thousand) are hashed once per query and each
    entry's ids looked up in them: a few microseconds an entry, a tile's 3,000 ids included.
    Otherwise each id is probed by its table's primary key until one is in scope, tens of
    microseconds an entry: a district's households are too many to hash (a hash past the
    query's memory is not built, and PostgreSQL would scan the list for every id), and a
    community's visits too costly to gather (every visit of its grids, read anew each
    request, grows with the weeks: 150 ms for 7,700 of 310,000)."""
    tests = []
    for resources, ids_column, model, condition, hashable in (
        (("household",), AuditEntry.resource_ids, Household, scope.households(), True),
        (_VISIT_RESOURCES, AuditEntry.resource_uuids, Visit, scope.visits(), False),
        (_TASK_RESOURCES, AuditEntry.resource_ids, Task, scope.tasks(), True),
    ):
        if hashable and scope.role == "community_admin":
            named = func.unnest(ids_column).table_valued("id").render_derived()
            records = select(model.id).where(condition)
            # `IS TRUE`: an `IN (subquery)` standing alone in the WHERE is made a join,
            # probing the records' primary key for every id; wrapped, it stays a subplan,
            # hashed once.
            test = exists().select_from(named).where(named.c.id.in_(records).is_(true()))
        else:
            test = exists().where(model.id == any_(ids_column), condition)
        tests.append(and_(AuditEntry.resource.in_(resources), test))
    return or_(*tests)


def _about_records_in(scope: Scope, conditions: list):
    """A condition on AuditEntry: it names a household, visit (photo) or task in scope.

    Set-based, over the entries meeting `conditions`: each entry's ids are unnested and joined
    to the caller's records (hashed once per query); a correlated test per entry probed the
    tables' indexes once per id (several times slower over a long log). Still one pass over
    those entries."""
    parts = []
    for resources, ids_column, records in (
        (("household",), AuditEntry.resource_ids, select(Household.id).where(scope.households())),
        (_VISIT_RESOURCES, AuditEntry.resource_uuids, select(Visit.id).where(scope.visits())),
        (_TASK_RESOURCES, AuditEntry.resource_ids, select(Task.id).where(scope.tasks())),
    ):
        named = func.unnest(ids_column).table_valued("id").render_derived().lateral()
        parts.append(
            select(AuditEntry.id)
            .join(named, true())
            .where(AuditEntry.resource.in_(resources), named.c.id.in_(records), *conditions)
        )
    return AuditEntry.id.in_(union(*parts))


def _about_household(session: Session, scope: Scope, household_id: int):
    """A condition on AuditEntry: it names the household, one of its visits (or their
    photos) or one of its tasks. 404 for a household the caller may not read."""
    seen = session.scalar(
        select(Household.id).where(Household.id == household_id, scope.households())
    )
    if seen is None:
        raise errors.NotFound(f"Household {household_id} not found.")
    return or_(
        and_(
            AuditEntry.resource == "household",
            AuditEntry.resource_ids.contains([household_id]),
        ),
        and_(
            AuditEntry.resource.in_(_VISIT_RESOURCES),
            exists().where(
                Visit.household_id == household_id, Visit.id == any_(AuditEntry.resource_uuids)
            ),
        ),
        and_(
            AuditEntry.resource.in_(_TASK_RESOURCES),
            exists().where(
                Task.household_id == household_id, Task.id == any_(AuditEntry.resource_ids)
            ),
        ),
    )


def _own_record(
    session: Session,
    scope: Scope,
    resource: str | None,
    record_id: int | None,
    record_uuid: uuid.UUID | None,
) -> bool:
    """Whether the query names one record the caller may read (by its resource)."""
    if resource == "household" and record_id is not None:
        query = select(Household.id).where(Household.id == record_id, scope.households())
    elif resource == "task" and record_id is not None:
        query = select(Task.id).where(Task.id == record_id, scope.tasks())
    elif resource == "visit" and record_uuid is not None:
        query = select(Visit.id).where(Visit.id == record_uuid, scope.visits())
    else:
        return False
    return session.scalar(query) is not None


# A purge deletes at most this many entries a transaction: a year's entries (millions) in one
# DELETE held them all locked to its commit and kept vacuum from the whole database meanwhile.
PURGE_BATCH = 5_000
PURGE_PATH = "gridwork purge-audit"  # the path of the entry a purge leaves


def purge_cutoff(older_than: timedelta, now: datetime | None = None) -> datetime:
    """The time before which a purge deletes entries; 422 when that is younger than six
    months."""
    if older_than < MIN_RETENTION:
        raise errors.Unprocessable(
            f"Audit entries are kept at least {MIN_RETENTION.days} days; "
            f"refusing to purge those younger than that."
        )
    return (now or clock.now()) - older_than


def purge(
    session: Session,
    older_than: timedelta,
    now: datetime | None = None,
    *,
    batch: int | None = None,
) -> int:
    """Delete up to `batch` (PURGE_BATCH) of the oldest audit rows older than `older_than`,
    never younger than six months; how many. Rows another purge holds are skipped.

    The deletion leaves its own entry (no user: the console; how many went and up to when),
    in the same transaction: no entry goes without a trace of it."""
    cutoff = purge_cutoff(older_than, now)
    due = session.scalars(
        select(AuditEntry.id)
        # Older than the floor on the database's clock too, which refuses younger (0049).
        .where(AuditEntry.at < cutoff, AuditEntry.at < func.now() - MIN_RETENTION)
        .order_by(AuditEntry.at)
        .limit(batch or PURGE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return 0
    session.execute(delete(AuditEntry).where(AuditEntry.id.in_(due)))
    session.add(
        AuditEntry(
            user_id=None,
            action="purge",
            resource="audit_log",
            resource_ids=[],
            fields=[f"removed {len(due)}", f"before {cutoff.isoformat(timespec='seconds')}"],
            path=PURGE_PATH,
        )
    )
    session.flush()
    return len(due)


def merge_pending_index(session: Session) -> int | None:
    """Merge the audit log's record index's pending list into the index (migration 0032);
    the pages it held, or None when this database user may not (only the index's owner may:
    autovacuum then does it alone).

    Run by the push worker every AUDIT_MERGE_SECONDS, so that no INSERT of an entry (a map
    tile's) has to."""
    try:
        with session.begin_nested():
            return session.scalar(
                text("SELECT gin_clean_pending_list(CAST(:index AS regclass))"),
                {"index": RECORD_INDEX},
            )
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege
            raise
        log.warning("the audit index's pending list is left to autovacuum: %s", exc.orig)
        return None


def purge_login_attempts(session: Session, now: datetime) -> int:
    """Delete sign-in attempts older than the six months a security log is kept. The rate
    limit reads only the last minutes of them; nothing else needs older ones."""
    cutoff = now - MIN_RETENTION
    return session.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount


# An IPv6 client is handed a whole /64 (a home line, a cloud server): 2^64 addresses of its
# own, one as good as another to send from. The sign-in throttle counts the /64 as one
# address: counted per address, a password spray took the next one every few guesses.
IPV6_CLIENT_PREFIX = 64


def throttled_network(ip: str) -> str | None:
    """The network the sign-in throttle counts `ip` in, when not the address alone: an IPv6
    address's /64 (an IPv4 address, IPv4-mapped ones and ::1 too, is counted alone)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if address.version != 6:
        return None
    network = ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False)
    # ::/64 is no subscriber's: it holds the loopback ::1 and every IPv4 client as a
    # dual-stack server sees it (::ffff:a.b.c.d), each counted alone.
    return None if network.network_address == ipaddress.IPv6Address("::") else str(network)


def check_login_allowed(
    session: Session,
    username: str,
    ip: str | None,
    *,
    window: timedelta,
    max_per_user: int,
    max_per_ip: int,
    now: datetime | None = None,
) -> None:
    """429 when recent failures for this username or this address (an IPv6 one's /64:
    `throttled_network`) pass their limits.

    Attempts on one username, and from one address, queue on transaction-scoped advisory
    locks (keyspaces 1 and 2, always in that order) held until the caller commits the
    attempt: guesses sent in parallel are counted one after another, not all against the
    same old count.
    """
    session.execute(
        text("SELECT pg_advisory_xact_lock(1, hashtext(:username))"), {"username": username}
    )
    network = throttled_network(ip) if ip else None
    if ip:
        session.execute(
            text("SELECT pg_advisory_xact_lock(2, hashtext(:ip))"), {"ip": network or ip}
        )
    since = (now or clock.now()) - window
    # A password change's wrong guesses are counted apart (`check_password_change_allowed`).
    failed = ~LoginAttempt.success & (LoginAttempt.at >= since) & (LoginAttempt.kind == SIGN_IN)
    by_user = session.scalar(
        select(func.count(LoginAttempt.id)).where(failed, LoginAttempt.username == username)
    )
    # `<<=` (within the network) reads the (ip, at) index as a range, as `=` does.
    same_address = (
        LoginAttempt.ip.op("<<=")(cast(network, CIDR)) if network else LoginAttempt.ip == ip
    )
    by_ip = (
        session.scalar(select(func.count(LoginAttempt.id)).where(failed, same_address)) if ip else 0
    )
    if by_user >= max_per_user or by_ip >= max_per_ip:
        raise errors.TooManyRequests(
            "Too many failed sign-ins; wait a few minutes and try again.",
            headers={"Retry-After": str(int(window.total_seconds()))},
        )


def record_login(
    session: Session, username: str, ip: str | None, success: bool, user_id: int | None
) -> None:
    session.add(LoginAttempt(username=username, ip=ip, success=success, user_id=user_id))
    session.flush()


def _password_change_guesses(user_id: int, sid: str | None) -> ColumnElement[bool]:
    same_session = LoginAttempt.session_id == sid if sid else LoginAttempt.session_id.is_(None)
    return (
        (LoginAttempt.kind == PASSWORD_CHANGE)
        & (LoginAttempt.user_id == user_id)
        & same_session
        & ~LoginAttempt.success
    )


def check_password_change_allowed(
    session: Session,
    user_id: int,
    sid: str | None,
    *,
    window: timedelta,
    max_failures: int,
    now: datetime | None = None,
) -> None:
    """429 when recent wrong current passwords in sign-in session `sid` of the account (None:
    its tokens of no session) pass `max_failures`.

    Counted apart from sign-ins, and per session: with one count, anyone who knew a username
    kept its owner from changing the password by failing sign-ins, and a thief guessing with a
    stolen sign-in kept the owner from the change that ends it; the owner's own mistyped
    current password locked them out of signing in. A session is had only by signing in, so
    its guesses are no more than a username's. The caller holds the account's row
    (`sessions.hold_account`): guesses sent in parallel are counted one after another."""
    since = (now or clock.now()) - window
    failed = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            _password_change_guesses(user_id, sid), LoginAttempt.at >= since
        )
    )
    if failed >= max_failures:
        raise errors.TooManyRequests(
            "Too many wrong current passwords; wait a few minutes and try again.",
            headers={"Retry-After": str(int(window.total_seconds()))},
        )


def record_wrong_current_password(
    session: Session, user: User, sid: str | None, ip: str | None
) -> None:
    """A failed password change, kept in the security log with the sign-ins."""
    session.add(
        LoginAttempt(
            username=user.username,
            ip=ip,
            success=False,
            user_id=user.id,
            kind=PASSWORD_CHANGE,
            session_id=sid,
        )
    )
    session.flush()
