"""`gridwork report verify`: the kept report aggregates against a rebuild from the raw rows.

On the three weeks of `history` (tests/api/test_reports.py): the triggers' rows equal a
rebuild; a kept row made wrong by hand is found, named by table and week, and left alone
unless `--repair`; `--since` compares and repairs only the weeks from it on.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.services import report_verify
from tests.api.test_cli import gridwork  # noqa: F401  (the fixture)
from tests.api.test_reports import R1, _aggregates, history  # noqa: F401  (the fixture)


def spoil(session, grid_id: int, week: str) -> None:
    """A kept count made wrong, as a trigger bug or a hand edit would leave it."""
    done = session.execute(
        text("UPDATE report_grid_weeks SET visits = visits + 1 WHERE grid_id = :g AND week = :w"),
        {"g": grid_id, "w": week},
    )
    assert done.rowcount == 1


def visits_kept(session, grid_id: int, week: str) -> int:
    return session.scalar(
        text("SELECT visits FROM report_grid_weeks WHERE grid_id = :g AND week = :w"),
        {"g": grid_id, "w": week},
    )


def test_the_kept_aggregates_of_the_history_verify_equal(session, history, gridwork):  # noqa: F811
    before = _aggregates(session)
    result = gridwork("report", "verify")
    assert result.exit_code == 0, result.output
    assert "the kept aggregates equal a rebuild (every week)" in result.stdout
    assert "report_grid_weeks: equal" in result.stdout
    assert _aggregates(session) == before


def test_a_wrong_kept_row_is_named_by_table_and_week_and_left_as_it_is(session, history, gridwork):  # noqa: F811
    r1 = history.grids[R1].id
    before = visits_kept(session, r1, "2026-W46")
    spoil(session, r1, "2026-W46")
    spoiled = _aggregates(session)
    result = gridwork("report", "verify")
    assert result.exit_code == 1
    assert (
        "report_grid_weeks: 1 kept rows not in the rebuild, 1 rebuilt rows not kept "
        "(weeks 2026-W46)" in result.stdout
    )
    assert "report_household_weeks: equal" in result.stdout
    assert "--repair" in result.stderr
    assert _aggregates(session) == spoiled  # nothing changed, the copies are gone
    assert visits_kept(session, r1, "2026-W46") == before + 1
    assert session.scalar(text("SELECT to_regclass('kept_report_grid_weeks')")) is None


def test_repair_replaces_the_wrong_rows_with_the_rebuilt_ones(session, history, gridwork):  # noqa: F811
    r1 = history.grids[R1].id
    before = _aggregates(session)
    spoil(session, r1, "2026-W45")
    spoil(session, r1, "2026-W47")
    result = gridwork("report", "verify", "--repair")
    assert result.exit_code == 0, result.output
    assert "repaired" in result.stdout
    assert _aggregates(session) == before
    assert gridwork("report", "verify").exit_code == 0


def test_since_leaves_the_weeks_before_it_out_of_the_comparison_and_the_repair(
    session,
    history,  # noqa: F811
    gridwork,  # noqa: F811
):
    r1 = history.grids[R1].id
    w45 = visits_kept(session, r1, "2026-W45")
    w47 = visits_kept(session, r1, "2026-W47")
    spoil(session, r1, "2026-W45")
    spoil(session, r1, "2026-W47")
    result = gridwork("report", "verify", "--since", "2026-W46")
    assert result.exit_code == 1
    assert "(weeks 2026-W47)" in result.stdout
    result = gridwork("report", "verify", "--since", "2026-W46", "--repair")
    assert result.exit_code == 0, result.output
    assert visits_kept(session, r1, "2026-W47") == w47
    assert visits_kept(session, r1, "2026-W45") == w45 + 1  # before --since: kept as it was
    assert gridwork("report", "verify", "--since", "2026-W46").exit_code == 0


def test_a_since_that_is_not_an_iso_week_is_refused_and_nothing_runs(session, history, gridwork):  # noqa: F811
    result = gridwork("report", "verify", "--since", "2026-47")
    assert result.exit_code == 1
    assert "week" in result.stderr
    with pytest.raises(Exception, match="ISO week|week"):
        report_verify.verify(session, since="W47")


def test_the_check_leaves_none_of_its_tables_behind(session, history, gridwork):  # noqa: F811
    spoil(session, history.grids[R1].id, "2026-W46")
    assert gridwork("report", "verify").exit_code == 1
    for prefix in ("rebuilt_", "kept_only_", "rebuilt_only_"):
        for table in report_verify.AGGREGATES:
            assert session.scalar(text("SELECT to_regclass(:t)"), {"t": prefix + table}) is None


def test_repair_is_not_started_when_the_check_finds_them_equal(
    session,
    history,  # noqa: F811
    gridwork,  # noqa: F811
    monkeypatch,
):
    """The repair's locks hold visit ingest: they are taken only for something to repair."""

    def no_repair(*args, **kwargs):
        raise AssertionError("a repair ran with nothing to repair")

    monkeypatch.setattr(report_verify, "repair_differences", no_repair)
    result = gridwork("report", "verify", "--repair")
    assert result.exit_code == 0, result.output
    assert "the kept aggregates equal a rebuild (every week)" in result.stdout


def test_repair_rewrites_only_the_rows_that_differ(session, history, gridwork):  # noqa: F811
    r1 = history.grids[R1].id

    def versions() -> dict[str, list]:
        # Each row's key and the transaction that wrote it (xmin): a rewritten row has a new one.
        return {
            table: sorted(
                tuple(r)
                for r in session.execute(
                    text(f"SELECT {', '.join(report_verify.KEYS[table])}, xmin::text FROM {table}")
                )
            )
            for table in report_verify.AGGREGATES
        }

    spoil(session, r1, "2026-W46")
    before = versions()
    result = gridwork("report", "verify", "--repair")
    assert result.exit_code == 0, result.output
    after = versions()
    changed = {t: set(before[t]) ^ set(after[t]) for t in report_verify.AGGREGATES}
    assert {t for t, rows in changed.items() if rows} == {"report_grid_weeks"}
    assert {row[:2] for row in changed["report_grid_weeks"]} == {(r1, "2026-W46")}
