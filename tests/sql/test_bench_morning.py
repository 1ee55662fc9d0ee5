"""The benchmark times a morning: before a timed step, ``bench.steps.prepare`` leaves the
warehouse as the morning of D finds it (D's rows and markers gone, the days before kept)."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from support import ROOT

from retentionops import actions, detection
from retentionops.sql import DERIVED_TABLES, table

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import steps  # noqa: E402

D = dt.date(2011, 5, 13)
BEFORE = D - dt.timedelta(days=1)


def rows_of(con, day: dt.date) -> dict[str, int]:
    return {
        name: con.execute(
            f"select count(*) from {name} where {table(name).partition_field} = ?", [day]
        ).fetchone()[0]
        for name in DERIVED_TABLES
    }


@pytest.fixture
def two_days(sample_settings):
    """Detection and the queue of D-1 and D, as two daily runs leave them."""
    from retentionops.warehouse import open_warehouse

    with open_warehouse(sample_settings) as warehouse:
        for day in (BEFORE, D):
            detection.run_detection(warehouse, sample_settings, day)
            actions.build_priority_queue(warehouse, sample_settings, day)
    return sample_settings


def test_the_pack_starts_from_the_morning_of_d(two_days):
    import duckdb

    spec = {"step": "daily_pack", "duckdb_path": str(two_days.duckdb_file), "run_date": str(D)}
    with duckdb.connect(spec["duckdb_path"]) as con:
        before = rows_of(con, BEFORE)
        assert all(rows_of(con, D).values())  # every derived table holds D's rows
    steps.prepare(spec)
    with duckdb.connect(spec["duckdb_path"]) as con:
        assert set(rows_of(con, D).values()) == {0}  # D's rows and markers: gone
        assert rows_of(con, BEFORE) == before  # the day before: untouched
    # the history is stored up to D-1: the run of D computes D alone, from SQL2's snapshot
    from retentionops.warehouse import open_warehouse

    with open_warehouse(two_days, read_only=True) as warehouse:
        assert detection.history_covered_to(warehouse, two_days) == BEFORE


def test_the_queue_step_starts_from_ds_detection(two_days):
    import duckdb

    spec = {"step": "priority", "duckdb_path": str(two_days.duckdb_file), "run_date": str(D)}
    with duckdb.connect(spec["duckdb_path"]) as con:
        kept = {k: v for k, v in rows_of(con, D).items() if k != "customer_priority"}
    steps.prepare(spec)
    with duckdb.connect(spec["duckdb_path"]) as con:
        after = rows_of(con, D)
        assert after.pop("customer_priority") == 0
        # detection's tables stay; of D's markers only the queue's is gone
        assert {k: v for k, v in after.items() if k != "run_markers"} == {
            k: v for k, v in kept.items() if k != "run_markers"
        }
        assert after["run_markers"] == kept["run_markers"] - 1
    from retentionops.warehouse import open_warehouse

    with open_warehouse(two_days, read_only=True) as warehouse:
        assert detection.completed_steps(warehouse, D) == {detection.DETECTION_MARKER}
