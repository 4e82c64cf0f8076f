"""Weekly coverage reports: stored reports and files, household history, visit aggregates.

The aggregates (report_*) are kept by triggers on visits (one set-based pass per INSERT
statement) and households (history rows and per-week count deltas), and backfilled here.

Revision ID: 0005
Revises: 0013
Create Date: 2026-11-23 13:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AGGREGATES_SQL = r"""
-- Weekly report aggregates: helper functions, triggers on visits and households, full rebuild.
-- Loaded by migration 0005 (and by bench/report.py through api.services.report_aggregates).

CREATE OR REPLACE FUNCTION gw_week_of(at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(at AT TIME ZONE 'Asia/Shanghai', 'IYYY-"W"IW')
$$;

CREATE OR REPLACE FUNCTION gw_week_shift(week text, n integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(to_date(week || '-1', 'IYYY-"W"IW-ID') + 7 * n, 'IYYY-"W"IW')
$$;

-- A percentage with one decimal, NULL when there is nothing to divide by.
CREATE OR REPLACE FUNCTION gw_pct(part numeric, whole numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN whole > 0 THEN round(100.0 * part / whole, 1) END
$$;

-- Visits per week a household needs under a community's settings (mirror of ledger.Cadence).
CREATE OR REPLACE FUNCTION gw_per_week(settings jsonb, tags text[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH c AS (
    SELECT COALESCE(
      NULLIF(NULLIF(settings -> 'visit_cadence', 'null'::jsonb), '{}'::jsonb),
      '{"default": 1, "tags": {"living_alone": 2}}'::jsonb) AS cad)
  SELECT GREATEST(
    COALESCE((cad ->> 'default')::int, 1),
    (SELECT max((cad -> 'tags' ->> t)::int) FROM unnest(tags) t))
  FROM c
$$;

-- Households: history rows and per-week count deltas, on insert / move / kind or tag change.
CREATE OR REPLACE FUNCTION gw_household_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz;
  wk text;
BEGIN
  -- `gridwork.effective_at` lets an import or a test date a change; else the row's creation
  -- time (insert) or the transaction's time (move, delete).
  at := COALESCE(
    NULLIF(current_setting('gridwork.effective_at', true), '')::timestamptz,
    CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE now() END);
  wk := gw_week_of(at);
  IF TG_OP <> 'INSERT' THEN
    UPDATE household_history SET valid_to = at
      WHERE household_id = OLD.id AND valid_to IS NULL;
    INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
      SELECT DISTINCT OLD.grid_id, wk, OLD.kind, t, -1 FROM unnest(array_prepend('', OLD.tags)) t
      ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from)
      VALUES (NEW.id, NEW.grid_id, NEW.kind, NEW.tags, at);
    INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
      SELECT DISTINCT NEW.grid_id, wk, NEW.kind, t, 1 FROM unnest(array_prepend('', NEW.tags)) t
      ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS trg_households_report_ins_del ON households;
CREATE TRIGGER trg_households_report_ins_del AFTER INSERT OR DELETE ON households
  FOR EACH ROW EXECUTE FUNCTION gw_household_changed();
DROP TRIGGER IF EXISTS trg_households_report_upd ON households;
CREATE TRIGGER trg_households_report_upd AFTER UPDATE OF grid_id, kind, tags ON households
  FOR EACH ROW
  WHEN (OLD.grid_id IS DISTINCT FROM NEW.grid_id OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.tags IS DISTINCT FROM NEW.tags)
  EXECUTE FUNCTION gw_household_changed();

-- Visits: one set-based pass per INSERT statement over the rows it really inserted (a replayed
-- UUID skipped by ON CONFLICT DO NOTHING never reaches the transition table).
CREATE OR REPLACE FUNCTION gw_visits_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- One writer per grid at a time (in grid order: no deadlocks), so the distinct counts below
  -- read every committed neighbour week.
  PERFORM pg_advisory_xact_lock(20261123, g)
    FROM (SELECT DISTINCT grid_id AS g FROM nv ORDER BY 1) s;

  INSERT INTO report_grid_weeks AS r (grid_id, week, visits, met, grade_ok, grade_doubtful,
                                      grade_suspect, relief_visits, unregistered_visits)
  SELECT grid_id, week, count(*),
         count(*) FILTER (WHERE outcome <> 'nobody_home'),
         count(*) FILTER (WHERE grade = 'ok'),
         count(*) FILTER (WHERE grade = 'doubtful'),
         count(*) FILTER (WHERE grade = 'suspect'),
         count(*) FILTER (WHERE relief),
         count(*) FILTER (WHERE household_id IS NULL)
  FROM nv GROUP BY grid_id, week ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met,
    grade_ok = r.grade_ok + EXCLUDED.grade_ok,
    grade_doubtful = r.grade_doubtful + EXCLUDED.grade_doubtful,
    grade_suspect = r.grade_suspect + EXCLUDED.grade_suspect,
    relief_visits = r.relief_visits + EXCLUDED.relief_visits,
    unregistered_visits = r.unregistered_visits + EXCLUDED.unregistered_visits;

  WITH agg AS (
    SELECT grid_id, week, household_id, count(*) AS n,
           count(*) FILTER (WHERE outcome <> 'nobody_home') AS m
    FROM nv WHERE household_id IS NOT NULL GROUP BY 1, 2, 3),
  old AS (
    SELECT a.*, COALESCE(o.met, 0) AS old_met
    FROM agg a LEFT JOIN report_household_weeks o USING (grid_id, week, household_id)),
  up AS (
    INSERT INTO report_household_weeks AS r (grid_id, week, household_id, visits, met)
    SELECT grid_id, week, household_id, n, m FROM agg ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, household_id) DO UPDATE
      SET visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met
    RETURNING 1),
  trans AS (SELECT * FROM old WHERE old_met = 0 AND m > 0),
  visited AS (SELECT grid_id, week, count(*) AS n FROM trans GROUP BY 1, 2),
  cand AS (
    SELECT DISTINCT t.grid_id, t.household_id, x.week
    FROM trans t CROSS JOIN LATERAL (VALUES (t.week), (gw_week_shift(t.week, 1))) x(week)),
  two AS (
    SELECT c.grid_id, c.week, count(*) AS n FROM cand c
    WHERE NOT EXISTS (
      SELECT 1 FROM report_household_weeks o
      WHERE o.grid_id = c.grid_id AND o.household_id = c.household_id
        AND o.week IN (c.week, gw_week_shift(c.week, -1)) AND o.met > 0)
    GROUP BY 1, 2),
  tagged AS (
    SELECT o.grid_id, o.week, t.tag, count(*) AS n
    FROM old o
    JOIN households h ON h.id = o.household_id
    JOIN grids g ON g.id = h.grid_id
    JOIN communities c ON c.code = g.community_code
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(h.tags) AS tag) t
    WHERE o.old_met < gw_per_week(c.settings, h.tags)
      AND o.old_met + o.m >= gw_per_week(c.settings, h.tags)
    GROUP BY 1, 2, 3),
  tags_up AS (
    INSERT INTO report_grid_week_tags AS r (grid_id, week, tag, done)
    SELECT grid_id, week, tag, n FROM tagged ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, tag) DO UPDATE SET done = r.done + EXCLUDED.done
    RETURNING 1)
  INSERT INTO report_grid_weeks AS r (grid_id, week, visited, visited_2w)
  SELECT COALESCE(v.grid_id, w.grid_id), COALESCE(v.week, w.week),
         COALESCE(v.n, 0), COALESCE(w.n, 0)
  FROM visited v FULL JOIN two w ON w.grid_id = v.grid_id AND w.week = v.week
  ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visited = r.visited + EXCLUDED.visited, visited_2w = r.visited_2w + EXCLUDED.visited_2w;

  WITH agg AS (SELECT worker_id, week, grid_id, count(*) AS n FROM nv GROUP BY 1, 2, 3),
  keys AS (
    INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
    SELECT DISTINCT worker_id, week, grid_id, household_id FROM nv
    WHERE household_id IS NOT NULL AND outcome <> 'nobody_home' ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING worker_id, week, grid_id),
  fresh AS (SELECT worker_id, week, grid_id, count(*) AS k FROM keys GROUP BY 1, 2, 3)
  INSERT INTO report_worker_weeks AS r (worker_id, week, grid_id, visits, households)
  SELECT a.worker_id, a.week, a.grid_id, a.n, COALESCE(f.k, 0)
  FROM agg a LEFT JOIN fresh f USING (worker_id, week, grid_id) ORDER BY 1, 2, 3
  ON CONFLICT (worker_id, week, grid_id) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, households = r.households + EXCLUDED.households;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS trg_visits_report ON visits;
CREATE TRIGGER trg_visits_report AFTER INSERT ON visits
  REFERENCING NEW TABLE AS nv FOR EACH STATEMENT EXECUTE FUNCTION gw_visits_inserted();

-- Everything recomputed from raw visits and household history (backfill, repair, tests).
CREATE OR REPLACE FUNCTION gw_report_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE report_household_weeks, report_grid_weeks, report_grid_week_tags,
           report_worker_weeks, report_worker_households, report_household_deltas;

  INSERT INTO report_household_deltas (grid_id, week, kind, tag, delta)
  SELECT grid_id, week, kind, tag, sum(delta) FROM (
    SELECT hh.grid_id, gw_week_of(hh.valid_from) AS week, hh.kind, t.tag, 1 AS delta
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    UNION ALL
    SELECT hh.grid_id, gw_week_of(hh.valid_to), hh.kind, t.tag, -1
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    WHERE hh.valid_to IS NOT NULL) d
  GROUP BY 1, 2, 3, 4;

  INSERT INTO report_household_weeks (grid_id, week, household_id, visits, met)
  SELECT grid_id, week, household_id, count(*), count(*) FILTER (WHERE outcome <> 'nobody_home')
  FROM visits WHERE household_id IS NOT NULL GROUP BY 1, 2, 3;

  INSERT INTO report_grid_weeks (grid_id, week, visits, met, grade_ok, grade_doubtful,
                                 grade_suspect, relief_visits, unregistered_visits,
                                 visited, visited_2w)
  WITH v AS (
    SELECT grid_id, week, count(*) AS visits,
           count(*) FILTER (WHERE outcome <> 'nobody_home') AS met,
           count(*) FILTER (WHERE grade = 'ok') AS ok,
           count(*) FILTER (WHERE grade = 'doubtful') AS doubtful,
           count(*) FILTER (WHERE grade = 'suspect') AS suspect,
           count(*) FILTER (WHERE relief) AS relief,
           count(*) FILTER (WHERE household_id IS NULL) AS unregistered
    FROM visits GROUP BY 1, 2),
  hv AS (
    SELECT grid_id, week, count(*) AS visited FROM report_household_weeks
    WHERE met > 0 GROUP BY 1, 2),
  two AS (
    SELECT grid_id, week, count(*) AS n FROM (
      SELECT DISTINCT grid_id, week, household_id FROM (
        SELECT grid_id, week, household_id FROM report_household_weeks WHERE met > 0
        UNION ALL
        SELECT grid_id, gw_week_shift(week, 1), household_id FROM report_household_weeks
        WHERE met > 0) u) d
    GROUP BY 1, 2),
  keys AS (SELECT grid_id, week FROM v UNION SELECT grid_id, week FROM two)
  SELECT k.grid_id, k.week, COALESCE(v.visits, 0), COALESCE(v.met, 0), COALESCE(v.ok, 0),
         COALESCE(v.doubtful, 0), COALESCE(v.suspect, 0), COALESCE(v.relief, 0),
         COALESCE(v.unregistered, 0), COALESCE(hv.visited, 0), COALESCE(two.n, 0)
  FROM keys k
  LEFT JOIN v USING (grid_id, week)
  LEFT JOIN hv USING (grid_id, week)
  LEFT JOIN two USING (grid_id, week);

  INSERT INTO report_grid_week_tags (grid_id, week, tag, done)
  SELECT o.grid_id, o.week, t.tag, count(*)
  FROM report_household_weeks o
  JOIN households h ON h.id = o.household_id
  JOIN grids g ON g.id = h.grid_id
  JOIN communities c ON c.code = g.community_code
  CROSS JOIN LATERAL (SELECT DISTINCT unnest(h.tags) AS tag) t
  WHERE h.tags <> '{}' AND o.met >= gw_per_week(c.settings, h.tags)
  GROUP BY 1, 2, 3;

  INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
  SELECT DISTINCT worker_id, week, grid_id, household_id FROM visits
  WHERE household_id IS NOT NULL AND outcome <> 'nobody_home';

  INSERT INTO report_worker_weeks (worker_id, week, grid_id, visits, households)
  SELECT v.worker_id, v.week, v.grid_id, v.n, COALESCE(k.n, 0)
  FROM (SELECT worker_id, week, grid_id, count(*) AS n FROM visits GROUP BY 1, 2, 3) v
  LEFT JOIN (SELECT worker_id, week, grid_id, count(*) AS n FROM report_worker_households
             GROUP BY 1, 2, 3) k USING (worker_id, week, grid_id);
END
$$;
"""


def _int(name, **kw):
    return sa.Column(name, sa.Integer(), nullable=False, **kw)


def _week():
    return sa.Column("week", sa.String(length=8), nullable=False)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        _week(),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), server_default="", nullable=False),
        _int("households", server_default="0"),
        _int("visited", server_default="0"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("week ~ '^[0-9]{4}-W[0-9]{2}$'", name=op.f("ck_reports_week_format")),
        sa.CheckConstraint(
            "level IN ('grids', 'community', 'street', 'district')",
            name=op.f("ck_reports_level_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("week", "level", "code", name="uq_reports_week_level_code"),
    )
    op.create_index("ix_reports_code_week", "reports", ["code", "week"])
    op.create_table(
        "report_files",
        _int("report_id"),
        sa.Column("format", sa.String(length=5), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        _int("size_bytes"),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "format IN ('json', 'csv', 'xlsx', 'pdf')", name=op.f("ck_report_files_format_valid")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_files_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "format", name=op.f("pk_report_files")),
    )
    op.create_table(
        "household_history",
        sa.Column("id", sa.Integer(), nullable=False),
        _int("household_id"),
        _int("grid_id"),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_history")),
    )
    op.create_index(
        "ix_household_history_household", "household_history", ["household_id", "valid_from"]
    )
    op.create_index("ix_household_history_grid", "household_history", ["grid_id", "valid_from"])
    op.create_table(
        "report_household_deltas",
        _int("grid_id"),
        _week(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("tag", sa.String(length=30), nullable=False),
        _int("delta"),
        sa.PrimaryKeyConstraint(
            "grid_id", "week", "kind", "tag", name=op.f("pk_report_household_deltas")
        ),
    )
    op.create_table(
        "report_household_weeks",
        _int("grid_id"),
        _week(),
        _int("household_id"),
        _int("visits"),
        _int("met"),
        sa.PrimaryKeyConstraint(
            "grid_id", "week", "household_id", name=op.f("pk_report_household_weeks")
        ),
    )
    op.create_table(
        "report_grid_weeks",
        _int("grid_id"),
        _week(),
        *[
            _int(c, server_default="0")
            for c in (
                "visits",
                "met",
                "visited",
                "visited_2w",
                "grade_ok",
                "grade_doubtful",
                "grade_suspect",
                "relief_visits",
                "unregistered_visits",
            )
        ],
        sa.PrimaryKeyConstraint("grid_id", "week", name=op.f("pk_report_grid_weeks")),
    )
    op.create_table(
        "report_grid_week_tags",
        _int("grid_id"),
        _week(),
        sa.Column("tag", sa.String(length=30), nullable=False),
        _int("done", server_default="0"),
        sa.PrimaryKeyConstraint("grid_id", "week", "tag", name=op.f("pk_report_grid_week_tags")),
    )
    op.create_table(
        "report_worker_weeks",
        _int("worker_id"),
        _week(),
        _int("grid_id"),
        _int("visits", server_default="0"),
        _int("households", server_default="0"),
        sa.PrimaryKeyConstraint(
            "worker_id", "week", "grid_id", name=op.f("pk_report_worker_weeks")
        ),
    )
    op.create_index("ix_report_worker_weeks_week_grid", "report_worker_weeks", ["week", "grid_id"])
    op.create_table(
        "report_worker_households",
        _int("worker_id"),
        _week(),
        _int("grid_id"),
        _int("household_id"),
        sa.PrimaryKeyConstraint(
            "worker_id", "week", "grid_id", "household_id", name=op.f("pk_report_worker_households")
        ),
    )
    # The three rates select tasks opened in the report's week.
    op.create_index("ix_tasks_created_at", "tasks", ["created_at"])
    op.execute(AGGREGATES_SQL)
    # Backfill: every household's current grid since its registration, then the aggregates.
    op.execute(
        "INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from) "
        "SELECT id, grid_id, kind, tags, created_at FROM households"
    )
    op.execute("SELECT gw_report_rebuild()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_visits_report ON visits")
    op.execute("DROP TRIGGER IF EXISTS trg_households_report_ins_del ON households")
    op.execute("DROP TRIGGER IF EXISTS trg_households_report_upd ON households")
    for fn in (
        "gw_report_rebuild()",
        "gw_visits_inserted()",
        "gw_household_changed()",
        "gw_per_week(jsonb, text[])",
        "gw_pct(numeric, numeric)",
        "gw_week_shift(text, integer)",
        "gw_week_of(timestamptz)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_index("ix_tasks_created_at", table_name="tasks")
    for table in (
        "report_worker_households",
        "report_worker_weeks",
        "report_grid_week_tags",
        "report_grid_weeks",
        "report_household_weeks",
        "report_household_deltas",
        "household_history",
        "report_files",
        "reports",
    ):
        op.drop_table(table)
