"""The push worker: claim due deliveries from the outbox, send them through push/, mark them."""

from __future__ import annotations

import logging
import threading
import time as clock
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.errors import database_unavailable
from api.models.notifications import PERSONAL_KINDS
from api.models.push import RETIRED_REASON, UNREGISTERED_REASON
from api.services.devices import tell_retired, tell_unregistered
from api.services.sessions import device_signed_in
from push import (
    DELIVERED,
    FAILED,
    INVALID_TARGET,
    RETRY,
    Channel,
    DeliveryResult,
    Message,
    backoff,
)
from push.message import (
    BODY_PREVIEW_CHARS,
    DEFAULT_TTL_SECONDS,
    TITLE_PREVIEW_CHARS,
    preview,
)

logger = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Shanghai"
SessionScope = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what the message needs."""

    id: int
    notification_id: int
    device_id: int
    platform: str
    token: str
    subscription: dict | None
    device_active: bool
    attempts: int
    kind: str
    title: str
    body: str
    data: dict
    urgent: bool
    collapse_key: str | None
    quiet_start: time | None
    quiet_end: time | None
    timezone: str | None
    created_at: datetime  # the notification's: its message lives a day from then


@dataclass
class RoundStats:
    """What a round did: each figure counts the rows its marks changed. A row it claimed and no
    longer held when it sent or marked (another worker took it over after the lease passed, or
    marked it dead) is counted in `lost_claims` only, whatever the round's own result for it:
    `claimed` = `sent` + `retried` + `failed` + `deferred` + `lost_claims` for a round that
    marked."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    lost_claims: int = 0


@dataclass
class _Round:
    """What a round in flight has done so far: what `_stopped` needs if it is cut short."""

    claim_id: uuid.UUID
    claimed: list[Claimed] = field(default_factory=list)
    outcome: dict[int, DeliveryResult | datetime | str] = field(default_factory=dict)
    handed: set[int] = field(default_factory=set)  # given to a channel: may have gone
    marking: bool = False


def _db_text(value: str | None, limit: int) -> str | None:
    """`value` fit for a column of `limit` characters: what a provider answers (an error body,
    a Location) is any text of any length, and PostgreSQL refuses a NUL. A value the database
    refused would lose the whole round's marks, and the round would be sent again."""
    return None if value is None else value.replace("\x00", "\ufffd")[:limit]


_EXPIRED = "expired: not delivered within its time to live"
# Whether a claimed row's device may still be sent to (SQL over `d` deliveries, `n` notifications,
# `v` devices, at the time `:now`): a phone signed in by someone else since (its token's row
# changed hands) is no longer this notification's user's; a user switched off since (they left)
# gets nothing more; nor does a phone whose sign-in expired since (held by quiet hours, retried
# through an outage).
_SIGNED_IN = device_signed_in("v", ":now")
_SENDABLE = f"""
    v.active AND v.user_id = n.user_id
    AND (SELECT u.active FROM users u WHERE u.id = n.user_id)
    AND {_SIGNED_IN}
"""
# A round renews its lease while it sends, for at most this long: a send stuck past it (a
# socket without a timeout) lets the lease pass, and another worker takes the rows over.
MAX_RENEWED = timedelta(minutes=15)
# Channels that send one message at a time (Web Push: one request each, 20 s at most): their
# messages go to the channel one per call, `web_concurrency` calls side by side, and before
# each the round checks that it still holds its row and may send to its device (once a third
# of a lease has passed, the rows not yet sent all at once). FCM's channel sends a batch at
# once, in parallel: it goes whole, in one call.
ONE_AT_A_TIME = frozenset({"web"})
# How many Web Push sends a round has in flight at once (GRIDWORK_PUSH_WEB_CONCURRENCY), and
# for how long it hands out new ones (GRIDWORK_PUSH_SEND_BUDGET_SECONDS).
WEB_CONCURRENCY = 16
SEND_BUDGET_SECONDS = 30.0
# A device is retired once its sends have failed with none going for this long, this many in a
# row (GRIDWORK_PUSH_RETIRE_FAILING_DAYS, GRIDWORK_PUSH_RETIRE_MIN_FAILURES).
RETIRE_FAILING_AFTER = timedelta(days=7)
RETIRE_MIN_FAILURES = 10


def message_id(notification_id: int) -> str:
    """Stable across retries and devices: the app drops a message it has already shown."""
    return f"n{notification_id}"


def _zone(name: str | None) -> ZoneInfo:
    """The user's zone; Asia/Shanghai (the default) for one this server's tz database lacks (a
    row stored before zones were checked, a tzdata upgrade): the quiet hours still hold."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (KeyError, ValueError, OSError) as exc:  # not found; a path; a directory
        logger.warning(
            "push: quiet hours in unknown zone %r read in %s: %s", name, DEFAULT_ZONE, exc
        )
        return ZoneInfo(DEFAULT_ZONE)


def quiet_until(claimed: Claimed, now: datetime) -> datetime | None:
    """When the user's quiet hours end, if `now` falls inside them and the message can wait."""
    if claimed.urgent or claimed.quiet_start is None or claimed.quiet_end is None:
        return None
    zone = _zone(claimed.timezone)
    local = now.astimezone(zone)
    start, end, clock = claimed.quiet_start, claimed.quiet_end, local.time()
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if not inside:
        return None
    end_today = datetime.combine(local.date(), end, tzinfo=zone)
    return end_today if end_today > local else end_today + timedelta(days=1)


class PushWorker:
    """One round = claim a batch (a lease, committed), send it, mark the results (committed).

    A worker killed between send and mark leaves its rows claimed; once the lease passes
    another round claims and sends them again (at least once: the stable message id lets the
    app drop the duplicate). Nothing is lost: a row leaves "pending" only when marked.

    How long a push is tried: a provider's "retry" (an outage, a quota) is retried with backoff
    for as long as the message lives (`ttl_seconds` from the notification, a day), then the
    delivery is dead as expired; each send carries what is left of that day as its TTL. Two
    limits guard the rest: `max_lost_rounds` rounds that died between send and mark (a crash
    loop re-sending the same batch), and `max_attempts` claims in all.

    Which rounds count: a round records in the database that it is sending a row
    (`sending_at`, written as it takes its rows again just before sending, `_hold`) before it
    hands the row to a channel. A lease that passes unmarked with that record was a round that
    may have sent (or crashed sending: a poison message), and counts as a lost round and an
    attempt; one without it never sent, and its claim is taken over with nothing counted,
    whatever became of the worker that made it.
    """

    def __init__(
        self,
        session_scope: SessionScope,
        channel: Channel,
        *,
        batch_size: int = 500,
        lease_seconds: int = 120,
        max_attempts: int = 200,
        max_lost_rounds: int = 3,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        max_renewed: timedelta = MAX_RENEWED,
        web_concurrency: int = WEB_CONCURRENCY,
        send_budget_seconds: float = SEND_BUDGET_SECONDS,
        retire_failing_after: timedelta = RETIRE_FAILING_AFTER,
        retire_min_failures: int = RETIRE_MIN_FAILURES,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        if web_concurrency < 1 or send_budget_seconds <= 0:
            raise ValueError("web_concurrency must be at least 1, send_budget_seconds above 0")
        self.session_scope = session_scope
        self.channel = channel
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.max_lost_rounds = max_lost_rounds
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_renewed = max_renewed
        # Web Push sends one request per message, up to 20 s each: the round has this many in
        # flight at once, so a host that hangs (any user may register one) costs its own slot,
        # not everybody's pushes; and it hands out none after the budget (`_send_one_by_one`).
        self.web_concurrency = web_concurrency
        self.send_budget_seconds = send_budget_seconds
        # A device whose sends have failed (its side: timeouts, refusals, 5xx) with none going
        # for `retire_failing_after`, at least `retire_min_failures` in a row, is deactivated
        # as an unregistered one is (`mark`), while pushes reach other devices of its platform.
        self.retire_failing_after = retire_failing_after
        self.retire_min_failures = retire_min_failures
        # How long a claim has been held, for renewing its lease from the round's `now`: the
        # real time that has passed since (tests pass a clock they move).
        self.monotonic = monotonic
        self._claimed_at: dict[uuid.UUID, float] = {}
        # Claims a round lost before it sent all of them (a database outage before sending;
        # the worker stopped at once mid-round, `_stopped`), each with the rows it had handed
        # to a channel (kept: they may have gone): the rest are handed back (free again at
        # once, the attempt not counted) as soon as the database answers. Only a shortcut: a
        # worker that dies first leaves them to their lease, and since they carry no
        # `sending_at`, the next claim counts nothing for them either.
        self._unsent: dict[uuid.UUID, frozenset[int]] = {}

    def run_once(self, now: datetime | None = None) -> RoundStats:
        """One round at `now`: by default the database's clock. Leases are compared across
        workers, so they are read against the one clock every worker shares: a host whose own
        clock ran ahead saw the others' leases as passed and took their rows over mid-send
        (and marked pushes dead early); one behind held its rows past their lease."""
        round_ = _Round(uuid.uuid4())
        try:
            if now is None:
                now = self.database_now()
            return self._run(round_, now)
        except KeyboardInterrupt:  # stopped at once (a second signal to the worker)
            self._stopped(round_, now)
            raise

    def _run(self, round_: _Round, now: datetime) -> RoundStats:
        self.hand_back()
        claim_id, claimed = self.claim(now, round_.claim_id)
        round_.claimed = claimed
        stats = RoundStats(claimed=len(claimed))
        if not claimed:
            return stats
        try:
            try:
                results = self.send(
                    claimed,
                    now,
                    stats,
                    claim_id=claim_id,
                    outcome=round_.outcome,
                    handed=round_.handed,
                )
            except DBAPIError as exc:
                if database_unavailable(exc):
                    self._lost_before_sending(claim_id, len(claimed), exc)
                raise
            round_.marking = True
            self.mark(claim_id, claimed, results, now, stats)
        finally:  # a round that raised keeps no claim time (the rows' leases run out)
            self._claimed_at.pop(claim_id, None)
        return stats

    def _stopped(self, round_: _Round, now: datetime | None) -> None:
        """The round was cut short (the worker told to stop at once: a second Ctrl-C or
        SIGTERM), wherever it was: claiming, sending or marking. Left as they were, its rows
        waited out the whole lease before another worker took them (an escalation among them),
        and the answered sends among them went again. So, unless the marks were under way
        (they may have committed; if not, the lease and `sending_at` say what to do), the
        results known are marked; and the rows never handed to a channel are handed back, due
        at once and their attempt not counted. A row handed to a channel with no answer yet
        may have gone: it keeps its claim and its `sending_at`, and goes again only when the
        lease passes (at least once). Whatever fails here is left to the leases."""
        handed = frozenset(round_.handed)
        try:
            if round_.outcome and not round_.marking and now is not None:
                known = [row for row in round_.claimed if row.id in round_.outcome]
                self.mark(round_.claim_id, known, round_.outcome, now)
            self._unsent[round_.claim_id] = handed
            self.hand_back()
        except Exception:  # noqa: BLE001 - stopping: the leases are the fallback
            logger.exception("push: stopped mid-round; its claimed deliveries wait for their lease")
            return
        finally:
            self._claimed_at.pop(round_.claim_id, None)
        unanswered = len(handed - round_.outcome.keys())
        logger.warning(
            "push: stopped mid-round; %d claimed deliveries not yet sent handed back, %d sent "
            "without an answer left to their lease",
            len(round_.claimed) - len(handed | round_.outcome.keys()),
            unanswered,
        )

    def _lost_before_sending(self, claim_id: uuid.UUID, count: int, exc: DBAPIError) -> None:
        """The database went away after the claim, as the round took its rows again before
        sending (`send` reaches the database before the channel only there): nothing was sent.
        Left to its lease, the claim would hold the push back for a whole lease (then be taken
        over, uncounted: the rows carry no `sending_at`). It is handed back instead, now or, the
        database still down, at the start of the next round."""
        self._unsent[claim_id] = frozenset()
        logger.error(
            "push: database unavailable (%s) before sending; nothing sent, %d claimed "
            "deliveries handed back when it answers",
            exc.__class__.__name__,
            count,
        )
        try:
            self.hand_back()
        except DBAPIError as again:
            if not database_unavailable(again):
                raise

    def hand_back(self) -> None:
        """Free the rows of claims lost before they were sent (`_lost_before_sending`,
        `_stopped`), but those handed to a channel: pending and due again at once, their
        attempt not counted, unless another worker took them over after the lease (their claim
        id says so) or they were marked. Their `sending_at` is cleared too: the re-hold's write
        may have reached the database though its answer did not, and they were not sent."""
        if not self._unsent:
            return
        claims = dict(self._unsent)
        with self.session_scope() as session:
            for claim_id, handed in claims.items():
                session.execute(
                    text(
                        "UPDATE deliveries SET claimed_until = NULL, attempts = attempts - 1, "
                        "sending_at = NULL WHERE claim_id = CAST(:claim AS uuid) "
                        "AND state = 'pending' AND claimed_until IS NOT NULL "
                        "AND NOT (id = ANY(:handed))"
                    ),
                    {"claim": claim_id, "handed": sorted(handed)},
                )
        for claim_id in claims:
            self._unsent.pop(claim_id, None)

    def database_now(self) -> datetime:
        """The database's clock (the real time, not its transaction's start)."""
        with self.session_scope() as session:
            return session.scalar(text("SELECT clock_timestamp()"))

    def claim(
        self, now: datetime, claim_id: uuid.UUID | None = None
    ) -> tuple[uuid.UUID, list[Claimed]]:
        claim_id = claim_id or uuid.uuid4()
        started = self.monotonic()  # the lease's clock: the claim's real start
        with self.session_scope() as session:
            # Dead before claiming: a message past its day to live (stale: it is in the inbox),
            # and a row whose lease passed unmarked after its round took it to send it
            # (`sending_at`: its round died after sending, perhaps) for the max_lost_rounds-th
            # time, or a round that dies every time (a crash, an OOM kill) would send it again
            # at every lease; or claimed max_attempts times in all. A lease that passed without
            # `sending_at` was never sent: its claim is not counted (below), nor swept.
            # A row under a live lease is left to its holder, expired or not: its send may be
            # on the wire, and the holder's mark records what became of it (a retry past the
            # message's day is dead as expired there).
            # Rows another transaction has locked (a round marking or renewing them, a
            # worker beside this one sweeping) are skipped, never waited on: the sweep met
            # rows in its scan's order while a late mark locked them in its own, and each
            # waited on the other (a deadlock: one round aborted, its rows sent again). A
            # skipped row is swept by the next round.
            session.execute(
                text(
                    """
                    WITH lapsed AS (
                        SELECT d.id FROM deliveries d
                        JOIN notifications n ON n.id = d.notification_id
                        WHERE d.state = 'pending' AND d.next_attempt_at <= :now
                          AND (d.claimed_until IS NULL OR d.claimed_until <= :now)
                          AND (n.created_at + :ttl <= :now
                               OR (d.claimed_until IS NOT NULL AND d.sending_at IS NOT NULL
                                   AND (d.lost_rounds + 1 >= :lost OR d.attempts >= :max)))
                        FOR UPDATE OF d SKIP LOCKED
                    )
                    UPDATE deliveries d
                    SET state = 'dead', claimed_until = NULL,
                        last_error = CASE
                          WHEN n.created_at + :ttl <= :now THEN :expired
                          ELSE 'no result recorded in ' || (d.lost_rounds + 1) || ' rounds, '
                               || d.attempts || ' attempts' END
                    FROM lapsed, notifications n
                    WHERE d.id = lapsed.id AND n.id = d.notification_id
                    """
                ),
                {
                    "now": now,
                    "ttl": self.ttl,
                    "lost": self.max_lost_rounds,
                    "max": self.max_attempts,
                    "expired": _EXPIRED,
                },
            )
            # Urgent first (escalations, danger-to-life tasks: `deliveries.urgent`, copied
            # from the notification), then by due time: an urgent push queued behind a
            # fan-out of thousands waited for all of it. `ix_deliveries_pending_due` is in
            # this order, so the batch is read off it without sorting the backlog.
            rows = session.execute(
                text(
                    """
                    WITH due AS (
                        SELECT id FROM deliveries
                        WHERE state = 'pending' AND next_attempt_at <= :now
                          AND (claimed_until IS NULL OR claimed_until <= :now)
                        ORDER BY urgent DESC, next_attempt_at, id
                        LIMIT :n
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE deliveries d
                    SET claim_id = :claim, claimed_until = :until, sending_at = NULL,
                        -- A lease still set was never marked. If its round had taken the rows
                        -- to send them (sending_at), that round was lost; if not, it sent
                        -- nothing (the worker died before sending) and its claim, counted
                        -- when it was made, is not counted after all.
                        attempts = d.attempts + 1
                          - (d.claimed_until IS NOT NULL AND d.sending_at IS NULL)::int,
                        lost_rounds = d.lost_rounds
                          + (d.claimed_until IS NOT NULL AND d.sending_at IS NOT NULL)::int
                    FROM due, notifications n, devices v
                    WHERE d.id = due.id AND n.id = d.notification_id AND v.id = d.device_id
                    RETURNING d.id, d.notification_id, d.device_id, v.platform, v.token,
                              v.subscription, """
                    + _SENDABLE
                    + """ AS device_active, d.attempts, n.kind, n.title,
                              n.body, n.data, n.urgent, n.collapse_key,
                              (SELECT s.quiet_start FROM notification_settings s
                               WHERE s.user_id = n.user_id) AS quiet_start,
                              (SELECT s.quiet_end FROM notification_settings s
                               WHERE s.user_id = n.user_id) AS quiet_end,
                              (SELECT s.timezone FROM notification_settings s
                               WHERE s.user_id = n.user_id) AS timezone,
                              n.created_at
                    """
                ),
                {"now": now, "until": now + self.lease, "n": self.batch_size, "claim": claim_id},
            ).all()
        if rows:
            self._claimed_at[claim_id] = started
        return claim_id, [Claimed(**row._mapping) for row in sorted(rows, key=lambda r: r.id)]

    def _held_for(self, claim_id: uuid.UUID) -> timedelta:
        """The real time since `claim_id` was claimed (nothing for a claim this worker did not
        make)."""
        started = self._claimed_at.get(claim_id)
        return timedelta(0) if started is None else timedelta(seconds=self.monotonic() - started)

    def send(
        self,
        claimed: Sequence[Claimed],
        now: datetime,
        stats: RoundStats | None = None,
        *,
        claim_id: uuid.UUID | None = None,
        outcome: dict[int, DeliveryResult | datetime | str] | None = None,
        handed: set[int] | None = None,
    ) -> dict[int, DeliveryResult | datetime | str]:
        """Send what may go now. Per delivery: its result, a datetime to defer to (quiet
        hours), or a string: the reason it is dropped without sending.

        With the `claim_id` the rows were claimed under, the rows are first taken again
        (`_hold`): one no longer the claim's (another worker took it over after the lease, or
        marked it dead) is neither sent nor given an outcome, and a device or user switched off
        since the claim gets nothing. Then the claim's lease is renewed while the channel sends,
        and a long batch checks between messages that its rows are still its own
        (`_send_held`). A database outage raised from here came before anything was sent.

        Either way the rows are recorded as sending (`sending_at`) before any of them is looked
        at or sent: a round that dies from here on counts as lost (`claim`).

        `outcome` and `handed`, when given, are filled as the round goes (each result; the rows
        given to a channel), for a round cut short (`_stopped`)."""
        outcome = {} if outcome is None else outcome
        handed = set() if handed is None else handed
        ready: list[tuple[int, Message]] = []
        ids = [r.id for r in claimed]
        if claim_id is None:
            held = None
            self._record_sending(ids, now)
        else:
            held = self._hold(claim_id, ids, now)
        for row in claimed:
            if held is not None and row.id not in held:
                continue
            if not (row.device_active if held is None else held[row.id]):
                outcome[row.id] = "device inactive"
                continue
            if (until := quiet_until(row, now)) is not None:
                outcome[row.id] = until
                continue
            try:
                ready.append((row.id, self._message(row, now)))
            except ValueError as exc:
                outcome[row.id] = f"bad message: {exc}"[:300]
                continue
        if ready:
            self._send_held(ready, outcome, claim_id, now, handed)
        return outcome

    def _send_held(
        self,
        ready: list[tuple[int, Message]],
        outcome: dict[int, DeliveryResult | datetime | str],
        claim_id: uuid.UUID | None,
        now: datetime,
        handed: set[int],
    ) -> None:
        """Send `ready` (rows just taken again by `_hold`), recording each result in `outcome`.

        FCM's messages go in one call (the channel sends them in parallel). The messages of the
        channels in ONE_AT_A_TIME (Web Push) go one per call, `web_concurrency` at once
        (`_send_one_by_one`). While they go, the lease of the round's rows still its own (the
        answered ones too: they wait for the mark) is renewed (`_renewing`)."""
        batch = [item for item in ready if item[1].platform not in ONE_AT_A_TIME]
        # Urgent first (escalations): the claim put them first, the round keeps them first.
        one_by_one = sorted(
            (item for item in ready if item[1].platform in ONE_AT_A_TIME),
            key=lambda item: not item[1].urgent,
        )
        live = {delivery_id for delivery_id, _ in ready}  # the rows still the claim's
        with self._renewing(claim_id, lambda: sorted(live.copy()), now):
            if batch:
                handed.update(delivery_id for delivery_id, _ in batch)
                for (delivery_id, _), result in zip(
                    batch, self._send_part([m for _, m in batch]), strict=True
                ):
                    outcome[delivery_id] = result
            if one_by_one:
                self._send_one_by_one(one_by_one, outcome, claim_id, now, handed, live)

    def _send_part(self, messages: list[Message]) -> list[DeliveryResult]:
        try:
            return self.channel.send(messages)
        except Exception as exc:  # the contract says never; one bug must not lose the round
            logger.exception("push: the channel raised for %d messages", len(messages))
            error = f"channel raised: {exc!r}"[:300]
            return [DeliveryResult(m.message_id, RETRY, error=error) for m in messages]

    def _send_one_by_one(
        self,
        items: list[tuple[int, Message]],
        outcome: dict[int, DeliveryResult | datetime | str],
        claim_id: uuid.UUID | None,
        now: datetime,
        handed: set[int],
        live: set[int],
    ) -> None:
        """Send `items` one message per call, `web_concurrency` calls in flight at once: this
        thread is one slot, the others are threads of their own that end with the batch.

        They went one after another before: a host that hangs until the send's deadline (20 s;
        any user may register up to 10 such endpoints) held up every push behind it, an
        escalation's too. Now it holds one slot. Whichever slot takes the next message first:
          - once `send_budget_seconds` have passed since the batch began, hands out no more:
            the messages not yet sent are handed back (a deferral to `now`, not counted as an
            attempt), so the round ends (a budget's worth, plus a deadline) and the next claims
            again, urgent first;
          - once a third of a lease has passed since the last check, takes the rows not yet
            sent again (`_hold`: it renews their lease): a row no longer the claim's (another
            worker took it over after the lease passed while a send hung past the renewal
            limit, or renewals failed) is not sent. A database outage there stops the batch:
            the rows not sent are handed back;
          - takes the row of the message it hands out again on its own (`_hold`, one indexed
            UPDATE, under the lock as the check above: the slots share the round's database
            use): a row no longer the claim's, or whose device its user signed out of, handed
            over or was switched off from since, is not sent. An outage there stops the batch
            as above.
        A slot's result is recorded unless the round was stopped at once meanwhile (`_stopped`
        then sees a fixed record: a message in flight has no result, and waits for its lease).
        """
        queue = deque(items)
        lock = threading.Lock()
        stopped = threading.Event()
        errors: list[BaseException] = []
        started = self.monotonic()
        checked = [clock.monotonic()]

        def hand_back(reason: str, level: int = logging.WARNING) -> None:  # under `lock`
            unsent = [delivery_id for delivery_id, _ in queue]
            queue.clear()
            outcome.update(dict.fromkeys(unsent, now))
            logger.log(
                level, "push: %s; %d Web Push deliveries not sent, handed back", reason, len(unsent)
            )

        def take() -> tuple[int, Message] | None:
            with lock:
                while queue and not stopped.is_set():
                    if self.monotonic() - started >= self.send_budget_seconds:
                        hand_back(
                            f"the round's send budget ({self.send_budget_seconds:g} s) is spent"
                        )
                        return None
                    if claim_id is not None and (
                        clock.monotonic() - checked[0] >= self.lease.total_seconds() / 3
                    ):
                        try:
                            held = self._hold(claim_id, sorted(i for i, _ in queue), now)
                        except DBAPIError as exc:
                            if not database_unavailable(exc):
                                raise
                            name = exc.__class__.__name__
                            hand_back(f"database unavailable ({name}) mid-batch", logging.ERROR)
                            return None
                        checked[0] = clock.monotonic()
                        for item in list(queue):
                            if item[0] not in held:  # another worker's now, or marked dead
                                queue.remove(item)
                                live.discard(item[0])
                            elif not held[item[0]]:
                                queue.remove(item)
                                outcome[item[0]] = "device inactive"
                        continue
                    item = queue.popleft()
                    if claim_id is not None:
                        # Just before it goes, its row taken again on its own: still the
                        # claim's, its device still its user's, active, signed in. Checked a
                        # third of a lease apart only, a phone signed out or handed over
                        # mid-round got its push up to 20 s later.
                        try:
                            held = self._hold(claim_id, [item[0]], now)
                        except DBAPIError as exc:
                            if not database_unavailable(exc):
                                raise
                            queue.appendleft(item)
                            name = exc.__class__.__name__
                            hand_back(f"database unavailable ({name}) mid-batch", logging.ERROR)
                            return None
                        if item[0] not in held:
                            live.discard(item[0])
                            continue
                        if not held[item[0]]:
                            outcome[item[0]] = "device inactive"
                            continue
                    handed.add(item[0])
                    return item
                return None

        def slot() -> None:
            while (item := take()) is not None:
                [result] = self._send_part([item[1]])
                with lock:
                    if not stopped.is_set():
                        outcome[item[0]] = result

        def slot_thread() -> None:
            try:
                slot()
            except BaseException as exc:  # noqa: BLE001 - raised again in the round's thread
                with lock:
                    errors.append(exc)
                    stopped.set()

        threads = [
            threading.Thread(target=slot_thread, name=f"push-web-{n}", daemon=True)
            for n in range(1, min(self.web_concurrency, len(items)))
        ]
        try:
            for thread in threads:
                thread.start()
            slot()
            for thread in threads:
                thread.join()
        except BaseException:  # stopped at once (KeyboardInterrupt), or this slot failed
            with lock:
                stopped.set()
            raise
        if errors:
            raise errors[0]

    def _hold(self, claim_id: uuid.UUID, ids: list[int], now: datetime) -> dict[int, bool]:
        """Of `ids`, the rows still pending under `claim_id`, each with whether its device may
        still be sent to (`_SENDABLE`, as at the claim); their lease renewed from `now`.

        A holder that stalled between claim and send (a pause, a database blip) past its lease
        may find its rows taken over or marked dead by a worker beside it: sending them then
        sent a dead push, or one twice. A row is taken again even if its lease has passed, as
        long as nobody else took it: its claim id and state say so; the new lease runs from
        the real time (`now` plus the time the claim has been held), or a lease renewed from
        a stale `now` would already have passed.

        The rows taken are recorded as sending (`sending_at`, kept from the first take): from
        this commit on, the claim's lease passing unmarked counts as a lost round."""
        real_now = now + self._held_for(claim_id)
        until = real_now + self.lease
        with self.session_scope() as session:
            rows = session.execute(
                text(
                    """
                    UPDATE deliveries d SET claimed_until = :until,
                      sending_at = COALESCE(d.sending_at, :sending)
                    FROM notifications n, devices v
                    WHERE d.id = ANY(:ids) AND d.claim_id = CAST(:claim AS uuid)
                      AND d.state = 'pending' AND d.claimed_until IS NOT NULL
                      AND n.id = d.notification_id AND v.id = d.device_id
                    RETURNING d.id, """
                    + _SENDABLE
                    + " AS device_active"
                ),
                {
                    "until": until,
                    "sending": real_now,
                    "now": real_now,
                    "ids": ids,
                    "claim": claim_id,
                },
            ).all()
        return {row.id: bool(row.device_active) for row in rows}

    def _record_sending(self, ids: list[int], now: datetime) -> None:
        """`_hold`'s record for a caller sending rows without their claim id: the rows still
        pending under a lease are recorded as sending (whoever's claim it is: counting a lost
        round too many is the safe side)."""
        with self.session_scope() as session:
            session.execute(
                text(
                    "UPDATE deliveries SET sending_at = COALESCE(sending_at, :now) "
                    "WHERE id = ANY(:ids) AND state = 'pending' AND claimed_until IS NOT NULL"
                ),
                {"now": now, "ids": ids},
            )

    @contextmanager
    def _renewing(
        self, claim_id: uuid.UUID | None, ids: Callable[[], list[int]], now: datetime
    ) -> Iterator[None]:
        """Keep the round's lease while it sends. Web Push sends one message per call (20 s
        at most each), a relay may answer slowly: a round could outlast its lease, and a worker
        beside it would claim the rows still being sent and send them again. Every third of a
        lease, from a thread on its own session, the claim's rows still held (`ids()`: those
        answered too, which wait for the mark) get a new lease (the round's `now` plus the real
        time since the claim), for at most `max_renewed` from the first send. Without a claim
        id (a caller sending rows it did not claim through `run_once`) there is no lease to
        keep."""
        if claim_id is None:
            yield
            return
        stop = threading.Event()
        started = clock.monotonic()

        def renew() -> None:
            while not stop.wait(self.lease.total_seconds() / 3):
                elapsed = timedelta(seconds=clock.monotonic() - started)
                if elapsed > self.max_renewed:
                    logger.warning("push: a send has run for %s; its lease is let go", elapsed)
                    return
                try:
                    with self.session_scope() as session:
                        session.execute(
                            text(
                                "UPDATE deliveries SET claimed_until = :until "
                                "WHERE id = ANY(:ids) AND claim_id = CAST(:claim AS uuid) "
                                "AND claimed_until IS NOT NULL AND state = 'pending'"
                            ),
                            {
                                "until": now + self._held_for(claim_id) + self.lease,
                                "ids": ids(),
                                "claim": claim_id,
                            },
                        )
                except Exception:  # noqa: BLE001 - the next renewal tries again
                    logger.exception("push: could not renew the round's lease")

        thread = threading.Thread(target=renew, name="push-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _message(self, row: Claimed, now: datetime) -> Message:
        data = {k: str(v) for k, v in (row.data or {}).items()}
        data.setdefault("notification_id", str(row.notification_id))
        return Message(
            message_id=message_id(row.notification_id),
            target=row.subscription if row.platform == "web" else row.token,
            platform=row.platform,  # type: ignore[arg-type]
            title=preview(row.title, TITLE_PREVIEW_CHARS),
            body=preview(row.body, BODY_PREVIEW_CHARS),
            data=data,
            urgent=row.urgent,
            collapse_key=row.collapse_key,
            personal=row.kind in PERSONAL_KINDS,
            # What is left of its day: a provider must not hold it past then (nor FCM a day
            # from the last retry).
            ttl_seconds=max(0, int((self._expires(row) - now).total_seconds())),
        )

    def _expires(self, row: Claimed) -> datetime:
        return row.created_at + self.ttl

    def mark(
        self,
        claim_id: uuid.UUID,
        claimed: Sequence[Claimed],
        outcome: dict[int, DeliveryResult | datetime | str],
        now: datetime,
        stats: RoundStats | None = None,
    ) -> None:
        stats = stats or RoundStats()
        # A retry waits from when it was answered, not from the round's start: a Web Push
        # round sends one message per call (a few side by side), and a 429's Retry-After (or a
        # 503's backoff) that came minutes in was counted from a time already past, so the push
        # went again in the next round. The real time since the claim, read now, is no earlier
        # than any answer.
        answered = now + self._held_for(claim_id)
        self._claimed_at.pop(claim_id, None)
        by_id = {row.id: row for row in claimed}
        sent, failed, deferred, retry, dead, deactivate = [], [], [], [], [], []
        # Each device's send history (`devices.last_success_at`, ...): a push that went, and a
        # retry or failure its side may be to blame for (`DeliveryResult.transient`). What was
        # sent is a fact about the device whoever's claim the row is by now: it counts anyway.
        history: dict[int, dict] = {}
        for delivery_id, result in outcome.items():
            row = by_id[delivery_id]
            if isinstance(result, DeliveryResult) and (
                result.outcome == DELIVERED
                or (result.outcome in (RETRY, FAILED) and result.transient)
            ):
                seen = history.setdefault(row.device_id, {"d": row.device_id, "ok": False, "n": 0})
                seen["ok"] = seen["ok"] or result.outcome == DELIVERED
                seen["n"] += result.outcome != DELIVERED
            if isinstance(result, datetime):
                # Quiet hours: not an attempt; wait until they end (unless it is stale by then).
                if result >= self._expires(row):
                    dead.append({"i": delivery_id, "e": _EXPIRED})
                else:
                    deferred.append({"i": delivery_id, "at": result})
            elif isinstance(result, str):
                failed.append({"i": delivery_id, "e": _db_text(result, 300), "s": "failed"})
            elif result.outcome == DELIVERED:
                sent.append({"i": delivery_id, "p": _db_text(result.provider_id, 200)})
            elif result.outcome == RETRY:
                error = _db_text(result.error, 300)
                at = answered + timedelta(seconds=backoff(row.attempts, result.retry_after))
                if row.attempts >= self.max_attempts:
                    dead.append({"i": delivery_id, "e": error or "retries exhausted"})
                elif at >= self._expires(row):  # its next try would come after it is stale
                    dead.append({"i": delivery_id, "e": _db_text(f"{_EXPIRED}; {error}", 300)})
                else:
                    retry.append({"i": delivery_id, "at": at, "e": error or ""})
            else:
                failed.append(
                    {"i": delivery_id, "e": _db_text(result.error or "", 300), "s": "failed"}
                )
                if result.outcome == INVALID_TARGET:
                    reason = f"{UNREGISTERED_REASON}: {result.error or ''}"
                    deactivate.append({"d": row.device_id, "e": _db_text(reason, 200)})
        # Only the claim's own rows, and only while pending: a worker beside it may have marked
        # one dead after the lease passed (its round looked lost). A result other than "sent"
        # leaves that as it is; a message that went is recorded "sent", dead or not, since it
        # was sent: the send was already in flight.
        # Each statement locks its rows in id order, deliveries before devices: results come
        # back in any order (Web Push answers side by side), and two rounds marking at once
        # deactivated the same two devices in opposite orders: each held one and waited on the
        # other, and PostgreSQL aborted one round (its rows sent again after the lease).
        for rows in (sent, failed, dead, retry, deferred):
            rows.sort(key=lambda row: row["i"])
        deactivate = sorted({row["d"]: row for row in deactivate}.values(), key=lambda r: r["d"])
        guard = "WHERE id = :i AND claim_id = CAST(:claim AS uuid) AND state = 'pending'"
        sent_guard = (
            "WHERE id = :i AND claim_id = CAST(:claim AS uuid) AND state IN ('pending', 'dead')"
        )
        with self.session_scope() as session:

            def run(sql: str, rows: list[dict]) -> int:
                """The rows changed: a guard that no longer matches changes none."""
                if not rows:
                    return 0
                params = [{**r, "claim": claim_id, "now": now} for r in rows]
                return session.execute(text(sql), params).rowcount

            changed_sent = run(
                "UPDATE deliveries SET state = 'sent', sent_at = :now, provider_id = :p, "
                f"claimed_until = NULL, last_error = NULL {sent_guard}",
                sent,
            )
            changed_failed = run(
                "UPDATE deliveries SET state = :s, last_error = :e, claimed_until = NULL " + guard,
                failed,
            )
            changed_failed += run(
                "UPDATE deliveries SET state = 'dead', last_error = :e, claimed_until = NULL "
                + guard,
                dead,
            )
            changed_retry = run(
                "UPDATE deliveries SET next_attempt_at = :at, last_error = :e, "
                f"claimed_until = NULL {guard}",
                retry,
            )
            changed_deferred = run(
                "UPDATE deliveries SET next_attempt_at = :at, attempts = attempts - 1, "
                f"claimed_until = NULL {guard}",
                deferred,
            )
            # Every device the mark writes (its send history, its deactivation) is locked first,
            # in one pass in id order: written statement by statement, each in id order, one
            # round held phone A (its history) waiting on B (its deactivation) while another
            # held B (history) waiting on A, and PostgreSQL aborted one round. The statements
            # below then touch rows already held.
            touched = sorted({*history, *(row["d"] for row in deactivate)})
            if touched:
                session.execute(
                    text(
                        "SELECT id FROM devices WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"
                    ),
                    {"ids": touched},
                )
            # A push that went in the round resets the device's failing history, whatever else
            # of the round failed (its sends answer in any order: it is reachable). Counted in
            # SQL, so two rounds writing the same device add up.
            run(
                "UPDATE devices SET "
                "last_success_at = CASE WHEN :ok THEN GREATEST(last_success_at, :now) "
                "ELSE last_success_at END, "
                "failing_since = CASE WHEN :ok THEN NULL "
                "ELSE COALESCE(failing_since, :now) END, "
                "consecutive_failures = CASE WHEN :ok THEN 0 "
                "ELSE consecutive_failures + :n END "
                "WHERE id = :d",
                sorted(history.values(), key=lambda r: r["d"]),
            )
            # Retired the way an unregistered device is: the same statement, each device once
            # (an invalid target's reason first), in id order.
            retired = self._retiring(session, history, now)
            deactivate = sorted(
                {row["d"]: row for row in [*retired, *deactivate]}.values(), key=lambda r: r["d"]
            )
            # The devices it switched off, each once (still active under the lock): a round
            # beside this one that switched one off first tells its owner, this one nobody.
            switched_off = set()
            if deactivate:
                switched_off = set(
                    session.scalars(
                        text(
                            "UPDATE devices v SET active = false, deactivated_at = :now, "
                            "deactivation_reason = r.e FROM unnest(CAST(:ids AS integer[]), "
                            "CAST(:reasons AS text[])) AS r(d, e) "
                            "WHERE v.id = r.d AND v.active RETURNING v.id"
                        ),
                        {
                            "now": now,
                            "ids": [row["d"] for row in deactivate],
                            "reasons": [row["e"] for row in deactivate],
                        },
                    )
                )
            # Their owners told, in the same transaction: a device retired as unreachable, and
            # one its push service answered is gone (unregistered, a bad token, a 404/410: the
            # app reinstalled or its data cleared; `tell_unregistered` says when the app's new
            # registration stands in for it).
            unregistered = {row["d"] for row in deactivate if row not in retired}
            tell_retired(session, [r["d"] for r in retired if r["d"] not in unregistered], now)
            tell_unregistered(session, sorted(unregistered & switched_off), now)
        # Counted as changed: a row taken over before its mark is lost to this round whatever
        # its result here, as is one taken over before it was sent (it has no result).
        stats.sent += changed_sent
        stats.failed += changed_failed
        stats.retried += changed_retry
        stats.deferred += changed_deferred
        lost = len(claimed) - (changed_sent + changed_failed + changed_retry + changed_deferred)
        stats.lost_claims += lost
        if lost:
            logger.info("push: %d claimed deliveries were no longer this round's to mark", lost)
        if deactivate:
            logger.info(
                "push: %d devices deactivated (invalid target, or retired as unreachable)",
                len(deactivate),
            )

    def _retiring(self, session: Session, history: dict[int, dict], now: datetime) -> list[dict]:
        """Of the devices whose sends failed in this round (their history just written), those
        to retire: failing with no push going for `retire_failing_after`, at least
        `retire_min_failures` sends in a row, while a push has reached some other device of
        its platform since it began failing. Every device failing alike is an outage (the
        provider's, our network's, a relay's) and retiring them would leave everybody
        without push once it ends. Each as a row for `mark`'s deactivation."""
        failing = sorted(d for d, seen in history.items() if not seen["ok"] and seen["n"])
        if not failing:
            return []
        rows = session.execute(
            text(
                """
                SELECT v.id, v.failing_since, v.consecutive_failures FROM devices v
                WHERE v.id = ANY(:ids) AND v.active AND v.failing_since <= :cutoff
                  AND v.consecutive_failures >= :min
                  AND EXISTS (SELECT 1 FROM devices w WHERE w.platform = v.platform
                              AND w.last_success_at > v.failing_since)
                ORDER BY v.id
                """
            ),
            {
                "ids": failing,
                "cutoff": now - self.retire_failing_after,
                "min": self.retire_min_failures,
            },
        ).all()
        return [
            {
                "d": row.id,
                "e": _db_text(
                    f"{RETIRED_REASON}: no push went since {row.failing_since:%Y-%m-%d %H:%M} "
                    f"UTC, {row.consecutive_failures} sends failed in a row",
                    200,
                ),
            }
            for row in rows
        ]
