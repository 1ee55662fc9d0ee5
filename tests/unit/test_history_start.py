"""Which dates of SQL5's alert history a run computes: one rule (``detection.history_start``)
for the DuckDB runs (``extend_history``) and the BigQuery DAG's SQL5 job
(``history_from_date``, its ``@from_date``). Hand-worked dates; the warehouse is a stand-in
that answers the history marker and records what would be written."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from retentionops import detection
from retentionops.settings import load_settings

D = dt.date(2011, 5, 13)


@pytest.mark.parametrize(
    ("covered", "expected"),
    [
        (None, dt.date.min),  # no marker: the whole history
        (dt.date(2011, 5, 12), D),  # a daily run: stored up to D-1, compute D only
        (dt.date(2011, 5, 6), dt.date(2011, 5, 7)),  # a week missed: 05-07..D
        (D, None),  # a rerun of D: nothing to compute
        (dt.date(2011, 9, 9), None),  # a backfill of D after 09-09's run: nothing either
    ],
)
def test_history_start(covered, expected):
    assert detection.history_start(covered, D) == expected


class Markers:
    """A warehouse holding only the history marker, covering ``covered``."""

    def __init__(self, covered: dt.date | None) -> None:
        self.covered, self.written = covered, []

    def query(self, sql_name, params):
        assert sql_name == "markers/read_history_coverage"
        return [{"covered_to": self.covered}]

    def ensure_tables(self, names=()):
        pass

    def atomic(self):
        return contextlib.nullcontext()

    def execute_file(self, sql_name, params, types=None):
        self.written.append((sql_name, params))

    def replace_partition(self, sql_name, *, table, params):
        self.written.append((sql_name, params))
        return 1


@pytest.mark.parametrize(
    ("covered", "from_date"),
    [
        # nothing stored: date.min raised by baseline_days + at_risk_days (7 + 90 = 97
        # days: 0001-01-01 + 97 = 0001-04-08), so that SQL5's order window from_date - 97
        # days is a valid date
        (None, dt.date(1, 4, 8)),
        (dt.date(2011, 5, 12), D),
        (dt.date(2011, 5, 6), dt.date(2011, 5, 7)),
        (D, None),
        (dt.date(2011, 9, 9), None),
    ],
)
def test_duckdb_and_bigquery_compute_the_same_dates(covered, from_date):
    settings = load_settings(env={})
    # BigQuery: the from-date task's answer, the SQL5 job's @from_date
    assert detection.history_from_date(Markers(covered), settings, D) == from_date
    # DuckDB: extend_history writes SQL5 from that same date, or nothing at all
    warehouse = Markers(covered)
    start = detection.extend_history(warehouse, settings, D)
    assert start == detection.history_start(covered, D)
    if from_date is None:
        assert warehouse.written == []
        return
    [(_, params)] = [(n, p) for n, p in warehouse.written if n == "detection/05_alert_logic"]
    assert (params["from_date"], params["run_date"]) == (from_date, D)
    marked = [p for n, p in warehouse.written if n == "markers/mark_step_complete"]
    assert marked == [{"run_date": D, "step": detection.history_marker(settings)}]


def test_the_whole_history_starts_after_the_order_window_of_other_settings():
    # at_risk_days 60 + baseline_days 14 = 74 days after 0001-01-01 (31 in January, 28 in
    # February, 15 in March): 0001-03-16
    settings = load_settings(env={}, at_risk_days=60, baseline_days=14)
    assert detection.history_from_date(Markers(None), settings, D) == dt.date(1, 3, 16)
