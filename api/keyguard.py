"""The data key guard: a process refuses a database holding data sealed by keys it was not given.

Which keys have sealed data here is recorded in the small `data_keys` table (never found by
reading the sealed columns, which are 10 M visits at city scale):

- at start-up (`init_app`, in `create_app`: the API, the push worker, every CLI command) the
  table is read, and a key recorded there that neither GRIDWORK_DATA_KEY nor
  GRIDWORK_OLD_DATA_KEYS holds stops the start with `crypto.DataKeyMismatch`, naming key ids;
- when the database cannot be reached at start-up the process starts anyway (it answers 503s
  through an outage) and the check runs when the first session is opened; until it passes,
  requests get a 503 problem (`api.errors`), never a 500;
- the first transaction that commits a value sealed by this process's key records that key,
  under an advisory lock, and fails if another key this process lacks got there first (two
  deployments with different keys starting on an empty database);
- every later transaction that sealed a value checks, before it commits, that a rotation has
  not retired this process's key (`gridwork security encrypt` retires the old key before it
  re-seals): a process not restarted with the new key gets `crypto.DataKeyRetired` (a 503
  problem) instead of leaving values behind the re-sealing. A start-up on a retired key is
  refused the same way;
- a process that only reads would never seal, so never learn of the retirement: once the check
  passed, the gate reads the key table again once a minute (`RECHECK_SECONDS`, on the first
  session opened after it; no query per request in between), and at once after a stored value
  failed to open (`crypto.failed_open_count` grew: a rotation may have re-sealed it under a
  key this process lacks; a streamed answer cut short counts too). A retired key (or a key
  recorded since that this process lacks) is then refused at the gate, reads too: the 503
  data-key problem for every request, the push worker stops. A process on a retired key serves
  for at most that minute after the retirement committed, and no longer than its first failed
  open.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from api import crypto
from api.services import encryption

log = logging.getLogger("gridwork.crypto")

_RECORDED = "gridwork.data_key_recorded"
_SEALS = "gridwork.seals_at_begin"

# How often a process whose check passed reads the key table again (a rotation may have
# retired its key since): once a minute, like the offset to the database's clock (api/clock.py).
RECHECK_SECONDS = 60.0


class KeyGuard:
    """The check's state in one process: checked once, then free."""

    def __init__(self) -> None:
        self.checked = False  # the table was read and every key in it is held
        self.recorded = False  # the current key is in the table (committed)
        self.retirement = False  # the table records retired keys (migration 0024)
        self.enforced = False  # DATA_KEY_CHECK: off for `security check-key`, which reports
        self.read_at = float("-inf")  # time.monotonic() of the last reading of the table
        self.failed_opens = 0  # crypto.failed_open_count() at that reading

    def check(self, connection: Connection) -> None:
        """Read `data_keys`: DataKeyMismatch when it holds a key this process lacks. Before
        migration 0022 there is nothing to read: the check stays pending."""
        table = encryption.key_table(connection)
        if table is None:
            return
        records = table.records
        # Retired first: after a rotation the new key is recorded too, which this process
        # lacks, but "restart with the new key" is the advice that fixes it.
        if encryption.retired(records, crypto.current_key_id()):
            raise crypto.DataKeyRetired(crypto.current_key_id())
        bad = encryption.unusable(records)
        if bad:
            raise crypto.DataKeyMismatch(bad)  # logged where it lands (api.errors, the CLI)
        self.recorded = crypto.current_key_id() in {r.kid for r in records}
        self.retirement = table.retirement
        self.checked = True

    def gate(self, session: Session) -> None:
        """Run on every new session: the check until it passed (deferred from start-up), then
        again once a minute (a rotation may have retired this process's key meanwhile)."""
        if self.checked and not self._due():
            return
        # Before reading: concurrent sessions do not pile in.
        self.read_at, self.failed_opens = time.monotonic(), crypto.failed_open_count()
        try:
            self.check(session.connection())
        except crypto.DataKeyRefused:
            self.checked = False  # refused from now on: every session, reads too
            raise
        finally:
            session.rollback()  # the check's transaction: leave the session as new

    def _due(self) -> bool:
        """A minute since the last reading, or a stored value failed to open since."""
        return self.enforced and (
            time.monotonic() - self.read_at >= RECHECK_SECONDS
            or crypto.failed_open_count() != self.failed_opens
        )

    def after_transaction_create(self, session: Session, transaction) -> None:
        # The seal count when the session's transaction began (it begins on first use): a
        # commit that finds it grown has sealed values (or another thread of this process has:
        # then it checks for nothing).
        if transaction.parent is None:
            session.info[_SEALS] = crypto.seal_count()

    def before_commit(self, session: Session) -> None:
        # A savepoint's release commits nothing yet: the outer commit checks.
        if not self.checked or session.in_nested_transaction():
            return
        session.flush()  # seal what the commit would (its flush comes after this hook)
        began = session.info.get(_SEALS)  # None: no transaction began since the last commit
        if began is None or crypto.seal_count() == began:
            return  # this transaction sealed nothing: nothing to record or check
        try:
            connection = session.connection()
            # Recorded: one row locked FOR SHARE, so a rotation's retirement waits for this
            # commit (before migration 0024 there is no retirement to check).
            if self.recorded and (
                not self.retirement or encryption.require_sealing_key(connection)
            ):
                return
            encryption.record_key(connection)
            session.info[_RECORDED] = True
        except crypto.DataKeyError:
            self.checked = False  # every later session is refused at the gate, reads too
            raise

    def after_transaction_end(self, session: Session, transaction) -> None:
        # Only the session's own transaction: a savepoint rolled back (the visit batch's
        # row-by-row fallback) leaves the transaction, and its count, as they were.
        if transaction.parent is None:
            session.info.pop(_SEALS, None)

    def after_commit(self, session: Session) -> None:
        if session.info.pop(_RECORDED, False):
            self.recorded = True

    def after_rollback(self, session: Session) -> None:
        session.info.pop(_RECORDED, None)


def init_app(app: Flask) -> None:
    from api.extensions import db

    guard = KeyGuard()
    app.extensions["gridwork_keyguard"] = guard
    db.guard = guard.gate
    db.listen("after_transaction_create", guard.after_transaction_create)
    db.listen("after_transaction_end", guard.after_transaction_end)
    db.listen("before_commit", guard.before_commit)
    db.listen("after_commit", guard.after_commit)
    db.listen("after_rollback", guard.after_rollback)
    if not app.config["DATA_KEY_CHECK"]:
        guard.checked = True  # `gridwork security check-key` reports instead of refusing
        return
    guard.enforced = True
    assert db.engine is not None
    try:
        with db.engine.connect() as connection:
            guard.read_at, guard.failed_opens = time.monotonic(), crypto.failed_open_count()
            guard.check(connection)
    except (OperationalError, InterfaceError) as exc:
        log.warning(
            "database unreachable at start-up (%s): the data key check runs when it is back",
            exc.__class__.__name__,
        )
    finally:
        # No connection kept from before the server forks its workers (or for a test's app).
        db.engine.dispose()
