"""Retention runs: photo bytes deleted after the commit; visits coarsened without touching
their households' last visit; audit entries younger than six months kept by the database.

1. `photo_deletions`: the bytes of deleted photos, deleted from storage after the commit.
   Retention deleted a photo's file before its transaction committed (under the hash's lock):
   a run that failed after that (a later step's error, the database restarting) kept the row,
   which pointed at nothing until a later run deleted it. The rows' deletion now queues their
   hashes here, in its transaction; the next transaction takes each hash's lock, deletes the
   file if no photo points at it any more, and takes the hash off the queue. A crash between
   the two keeps the queue, drained by the next run; a rollback queues nothing.

2. The last-visit trigger on UPDATE of visits (migration 0011) refreshes only the households
   of visits whose household, time or outcome changed: the only columns the last visit is
   made of. It refreshed every updated visit's household, deleting its row and inserting it
   again: retention's coarsening (which changes none of them) paid that for nothing, and two
   runs coarsening visits of one household at once (two push workers) failed, the second
   inserting the row the first had inserted meanwhile (duplicate key), or deadlocked.

3. The database refuses to delete an audit entry younger than 184 days (six calendar months
   at their longest: `audit.MIN_RETENTION`), on its own clock, whatever deletes it: a
   script, a statement typed at psql, a purge on a host clock ahead. Only `purge-audit`
   checked the floor. The trigger's condition is read per deleted row; a purge deletes only
   older ones, for which it never fires.

Revision ID: 0049
Revises: 0048
Create Date: 2027-01-02 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0049"
down_revision: str | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A visit's id never changes; a row found on one side only (it would) counts as changed.
AFTER_CHANGE = """
CREATE OR REPLACE FUNCTION gw_last_visit_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids integer[];
BEGIN
  IF TG_OP = 'UPDATE' THEN
    ids := ARRAY(
      SELECT DISTINCT x.household_id
      FROM old_visits o FULL JOIN new_visits n ON n.id = o.id,
           LATERAL (VALUES (o.household_id), (n.household_id)) AS x(household_id)
      WHERE x.household_id IS NOT NULL
        AND (o.id IS NULL OR n.id IS NULL
             OR (o.household_id, o.visited_at, o.outcome)
                IS DISTINCT FROM (n.household_id, n.visited_at, n.outcome)));
  ELSE
    ids := ARRAY(SELECT household_id FROM old_visits WHERE household_id IS NOT NULL);
  END IF;
  IF cardinality(ids) > 0 THEN
    PERFORM gw_last_visit_refresh(ids);
  END IF;
  RETURN NULL;
END $$;
"""

OLD_AFTER_CHANGE = """
CREATE OR REPLACE FUNCTION gw_last_visit_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM gw_last_visit_refresh(ARRAY(
      SELECT household_id FROM old_visits WHERE household_id IS NOT NULL
      UNION SELECT household_id FROM new_visits WHERE household_id IS NOT NULL));
  ELSE
    PERFORM gw_last_visit_refresh(ARRAY(
      SELECT household_id FROM old_visits WHERE household_id IS NOT NULL));
  END IF;
  RETURN NULL;
END $$;
"""


# 184 days as hours: an interval in days follows the session's time zone across a DST change.
AUDIT_KEPT = """
CREATE FUNCTION gw_audit_log_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit entry % is younger than 184 days: audit entries are kept at least six months',
    OLD.id USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER trg_audit_log_kept BEFORE DELETE ON audit_log
  FOR EACH ROW WHEN (OLD.at >= now() - interval '4416 hours')
  EXECUTE FUNCTION gw_audit_log_kept();
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE photo_deletions ("
        " sha256 varchar(64) CONSTRAINT pk_photo_deletions PRIMARY KEY,"
        " queued_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(AFTER_CHANGE)
    op.execute(AUDIT_KEPT)


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_audit_log_kept ON audit_log")
    op.execute("DROP FUNCTION gw_audit_log_kept()")
    op.execute(OLD_AFTER_CHANGE)
    # Hashes still queued keep their files: `gridwork photos scrub` finds files no photo
    # points at (it removes those carrying metadata).
    op.execute("DROP TABLE photo_deletions")
