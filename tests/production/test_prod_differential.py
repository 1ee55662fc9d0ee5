"""Differential execution: the same operations, the same inputs, DuckDB vs ZetaSQL's engine.

The DuckDB side is the package's ``DuckDBWarehouse``; the ZetaSQL side is the package's
``BigQueryWarehouse`` whose jobs run on ZetaSQL's reference engine (``ZetaBigQuery``). Both
are driven by the package's own functions: ``detection.run_detection`` (the five tables
and the run marker), ``actions.build_priority_queue``, ``actions.record_audience``,
``Warehouse.replace_orders``, ``service.apply_retention``, ``runlog.write``.

Inputs: the hand-worked rule fixtures of tests/sql/test_detection_rules.py (re-stated here,
with their hand-derived values asserted on the ZetaSQL side too), hand-made orders for the
markers, loads and retention, and a slice of 200 customers of the bundled sample across
both incidents. Each result is compared row by row: integers, strings, dates, booleans,
NUMERIC and rounded values exactly; other FLOAT64 values to 1e-9 relative.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from decimal import Decimal

import pandas as pd
import pytest
from support import make_orders

from retentionops import actions, detection, incidents, runlog, service
from retentionops.detection import DETECTION_STEPS, DetectionError
from retentionops.service import context as service_context
from retentionops.service import housekeeping
from retentionops.settings import load_settings
from retentionops.sql import DERIVED_TABLES, detection_parameters, table
from retentionops.warehouse import WHOLE_HISTORY, DuckDBWarehouse

from .prod_differential import ZetaBigQuery, compare, duckdb_rows

F = dt.date(2024, 1, 1)
D40 = F + dt.timedelta(days=40)


def plus(days: int, start: dt.date = F) -> str:
    return (start + dt.timedelta(days=days)).isoformat()


def population(groups, prefix: str = "c"):
    """``count`` customers per group, each ordering on F + every offset (as in the rules)."""
    rows, n = [], 0
    for count, offsets in groups:
        for _ in range(count):
            n += 1
            for k, offset in enumerate(offsets):
                rows.append((f"{prefix}{n:03d}", f"{prefix}{n:03d}-{k}", plus(offset), 10))
    return rows


#: The settings of a pair come from the code's defaults and the overrides, not from the
#: shipped include/retentionops.yaml: it sets nothing (every line is commented out, checked
#: by the fixture) and parsing it for each warehouse costs 20 ms.
NO_CONFIG = os.devnull


class Pair:
    """One DuckDB warehouse and one BigQuery (on ZetaSQL) warehouse holding the same orders.

    Every operation runs on DuckDB first: the ZetaSQL side takes the effect of a MERGE
    from it (``ZetaBigQuery``).
    """

    def __init__(self, tmp_path, service_, analysed, orders: pd.DataFrame, **overrides) -> None:
        self.duck_settings = load_settings(
            NO_CONFIG, env={}, duckdb_path=str(tmp_path / "pair.duckdb"),
            artifacts_dir=str(tmp_path / "duckdb-runs"), **overrides,
        )  # fmt: skip
        self.duck = DuckDBWarehouse(self.duck_settings)
        self.duck.replace_orders(orders)
        self.zeta_settings = load_settings(
            NO_CONFIG, env={}, warehouse_backend="bigquery", bigquery_project="retentionops-ci",
            artifacts_dir=str(tmp_path / "bigquery-runs"), **overrides,
        )  # fmt: skip
        self.zeta = ZetaBigQuery(service_, analysed, self.zeta_settings, twin=self.duck)
        self.bq = self.zeta.warehouse()
        # the same inputs: the orders exactly as DuckDB stored them; their summaries built
        # by the loader's statements on each engine, and compared
        self.zeta.set_rows("orders", duckdb_rows(self.duck, "orders"))
        self.bq.refresh_summaries(WHOLE_HISTORY)
        for name in ("first_orders", "cohort_activity"):
            self.same_table("the orders' summaries", name)

    def close(self) -> None:
        self.duck.close()

    def detect(self, day: dt.date, label: str) -> dict:
        """SQL1-SQL5 and the detection marker of the date through ``run_detection`` on both
        backends; each table's date, the decision and the date's markers compared."""
        duck_decision = detection.run_detection(self.duck, self.duck_settings, day)
        zeta_decision = detection.run_detection(self.bq, self.zeta_settings, day)
        for step in DETECTION_STEPS:
            self.same_table(label, step.table, day)
        compare(f"{label}: run_detection's decision at {day}", [duck_decision], [zeta_decision])
        self.same(label, "markers/read_run_markers", {"run_date": day})
        return zeta_decision

    def queue(self, day: dt.date, label: str) -> None:
        """The priority queue (and its marker), the context and the stored decision."""
        counts = actions.build_priority_queue(self.duck, self.duck_settings, day)
        assert actions.build_priority_queue(self.bq, self.zeta_settings, day) == counts
        self.same_table(label, "customer_priority", day)
        [previous] = self.same(label, "action/read_previous_run_date", {"run_date": day})
        context = {"run_date": day, "new_only": False, **previous}
        self.same(label, "action/get_operational_context", context)
        self.same(label, "detection/read_alert_decision", {"from_date": day, "run_date": day})
        self.same(label, "markers/read_run_markers", {"run_date": day})

    def build_on_duckdb(self, days) -> None:
        """Detection and the queue of each date on DuckDB only, then the derived tables
        handed to the engine as DuckDB wrote them (for tests of what later deletes them;
        ``detect`` and ``queue`` compare the building itself)."""
        for day in days:
            detection.run_detection(self.duck, self.duck_settings, day)
            actions.build_priority_queue(self.duck, self.duck_settings, day)
        for name in DERIVED_TABLES:
            self.zeta.set_rows(name, duckdb_rows(self.duck, name))

    def same_table(self, label: str, name: str, day: dt.date | None = None) -> None:
        """A table (one date of it) as each engine holds it, compared."""
        if day is None:
            duck = duckdb_rows(self.duck, name)
        else:
            field = table(name).partition_field
            duck = duckdb_rows(self.duck, name, f"where {field} = $d", {"d": day})
        compare(f"{label}: table {name}{f' at {day}' if day else ''}", duck,
                self.zeta.rows(name, day))  # fmt: skip

    def same(self, label: str, sql_name: str, values, *, ordered: bool = False):
        """One read query on both engines with the same parameter values, compared."""
        duck = self.duck.query(sql_name, values)
        zeta = self.bq.query(sql_name, values)
        compare(f"{label}: {sql_name} {values}", duck, zeta, ordered=ordered)
        return zeta


@pytest.fixture(scope="session")
def shipped_config_sets_nothing():
    assert load_settings(env={}) == load_settings(NO_CONFIG, env={})


@pytest.fixture
def pair(tmp_path, zetasql_service, analysed, shipped_config_sets_nothing):
    made = []

    def make(rows_or_frame, **overrides) -> Pair:
        orders = (
            rows_or_frame if isinstance(rows_or_frame, pd.DataFrame) else make_orders(rows_or_frame)
        )
        folder = tmp_path / str(len(made))
        folder.mkdir()
        made.append(Pair(folder, zetasql_service, analysed, orders, **overrides))
        return made[-1]

    yield make
    for p in made:
        p.close()


def zeta_by_customer(pair: Pair, name: str, day: dt.date, columns: list[str]) -> dict:
    return {r["customer_id"]: tuple(r[c] for c in columns) for r in pair.zeta.rows(name, day)}


def decision(row: dict) -> tuple:
    keys = ("current_value", "baseline_value", "delta_pct", "delta_relative_pct", "severity",
            "alert_flag", "sample_size")  # fmt: skip
    return tuple(row[k] for k in keys)


# -- the hand-worked fixtures ----------------------------------------------------------


def test_sql1_facts(pair):
    p = pair(
        [
            ("A", "A1", "2024-01-10", 10.25),
            ("A", "A2", "2024-01-10", 20.00),
            ("A", "A3", "2024-02-01", 30.50),
            ("A", "A4", "2024-03-02", 999.00),  # after D
            ("B", "B1", "2024-02-15", 7.00),
            ("C", "C1", "2024-03-05", 5.00),  # only after D
        ]
    )
    day = dt.date(2024, 3, 1)
    p.detect(day, "sql1 fixture")
    p.queue(day, "sql1 fixture")
    facts = zeta_by_customer(
        p, "base_customers", day,
        ["first_order_date", "last_order_date", "total_orders", "total_revenue",
         "avg_order_value"],
    )  # fmt: skip
    # A: 3 orders up to D, 10.25 + 20.00 + 30.50 = 60.75, 60.75 / 3 = 20.25 per order
    assert facts == {
        "A": (dt.date(2024, 1, 10), dt.date(2024, 2, 1), 3, Decimal("60.75"), Decimal("20.25")),
        "B": (dt.date(2024, 2, 15), dt.date(2024, 2, 15), 1, Decimal("7"), Decimal("7")),
    }


def test_sql2_status_boundaries(pair):
    day = dt.date(2024, 6, 30)
    p = pair([(f"k{a}", f"o{a}", plus(-a, day), 10) for a in (0, 30, 31, 90, 91)])
    p.detect(day, "sql2 fixture")
    # D - last order = age; <= 30 ACTIVE, <= 90 AT_RISK, else INACTIVE
    assert zeta_by_customer(p, "retention_snapshot", day, ["retention_status"]) == {
        "k0": ("ACTIVE",), "k30": ("ACTIVE",), "k31": ("AT_RISK",), "k90": ("AT_RISK",),
        "k91": ("INACTIVE",),
    }  # fmt: skip


SQL3_DAY = dt.date(2024, 6, 30)
SQL3_CUSTOMERS = {
    "freq_eq": [50, 30], "freq_gt": [51, 31], "high": [26, 16], "single_risk": [50],
    "single_active": [5], "same_day_old": [40, 40], "same_day_today": [0, 0],
    "three_orders": [100, 60, 20], "four_small": [95, 65, 35, 5], "four_eq07": [37, 27, 17, 7],
    "four_gt07": [38, 28, 18, 8], "four_eq15": [90, 70, 50, 30], "four_gt15": [91, 71, 51, 31],
    "inactive_3": [300, 200, 100], "inactive_drop": [150, 140],
}  # fmt: skip
# hand-derived in tests/sql/test_detection_rules.py::test_sql3_signals_score_and_level
SQL3_EXPECTED = {
    "freq_eq": (2, 30, 20.0, False, False, True, 20, "LOW"),
    "freq_gt": (2, 31, 20.0, True, False, False, 50, "MEDIUM"),
    "high": (2, 16, 10.0, True, False, True, 70, "HIGH"),
    "single_risk": (1, 50, None, False, False, False, 0, "LOW"),
    "single_active": (1, 5, None, False, False, True, 20, "LOW"),
    "same_day_old": (2, 40, 0.0, True, False, False, 50, "MEDIUM"),
    "same_day_today": (2, 0, 0.0, False, False, True, 20, "LOW"),
    "three_orders": (3, 20, 40.0, False, False, True, 20, "LOW"),
    "four_small": (4, 5, 30.0, False, False, False, 0, "LOW"),
    "four_eq07": (4, 7, 10.0, False, False, False, 0, "LOW"),
    "four_gt07": (4, 8, 10.0, False, False, True, 20, "LOW"),
    "four_eq15": (4, 30, 20.0, False, False, True, 20, "LOW"),
    "four_gt15": (4, 31, 20.0, True, False, False, 50, "MEDIUM"),
    "inactive_3": (3, 100, 100.0, False, False, False, 0, "LOW"),
    "inactive_drop": (2, 140, 10.0, True, False, False, 50, "MEDIUM"),
}


def test_sql3_signals_and_the_queue(pair):
    p = pair(
        [(name, f"{name}-{k}", plus(-age, SQL3_DAY), 10)
         for name, ages in SQL3_CUSTOMERS.items() for k, age in enumerate(ages)]
    )  # fmt: skip
    p.detect(SQL3_DAY, "sql3 fixture")
    p.queue(SQL3_DAY, "sql3 fixture")
    columns = ["total_orders", "days_since_last_order", "avg_days_between_orders",
               "is_frequency_drop", "is_value_drop", "is_status_inconsistent",
               "churn_risk_score", "churn_risk_level"]  # fmt: skip
    assert zeta_by_customer(p, "churn_detection", SQL3_DAY, columns) == SQL3_EXPECTED
    queue = {r["customer_id"]: r for r in p.zeta.rows("customer_priority", SQL3_DAY)}
    # only "high" is ACTIVE + HIGH (P1); no AT_RISK customer reaches MEDIUM/HIGH except
    # freq_gt, same_day_old and four_gt15 (50, MEDIUM) -> P2; INACTIVE never HIGH
    assert {c: r["priority_tier"] for c, r in queue.items()} == {
        "high": "P1",
        "freq_gt": "P2",
        "same_day_old": "P2",
        "four_gt15": "P2",
    }
    # high: 70 + min(20, 2 ln(1 + 20)) + min(10, 16 / 3) = 70 + 6.0890449 + 5.3333333
    assert queue["high"]["priority_score"] == pytest.approx(70 + 2 * math.log(21) + 16 / 3)
    # value proxy 0.3 x 20 = 6.00, NUMERIC
    assert queue["high"]["value_proxy"] == Decimal("6")


def test_sql4_cohorts(pair):
    p = pair(
        [("a", "a1", "2024-01-05", 10), ("a", "a2", "2024-03-02", 10),
         ("a", "a3", "2024-03-09", 10), ("a", "a4", "2024-04-01", 10),
         ("b", "b1", "2024-01-20", 10), ("b", "b2", "2024-03-20", 10),
         ("c", "c1", "2024-01-31", 10), ("c", "c2", "2024-03-15", 10),
         ("d", "d1", "2024-02-10", 10), ("d", "d2", "2024-03-01", 10),
         ("e", "e1", "2024-02-11", 10), ("e", "e2", "2024-02-28", 10),
         ("g", "g1", "2024-02-29", 10), ("f", "f1", "2024-03-01", 10),
         ("h", "h1", "2024-03-16", 10)]
    )  # fmt: skip
    day = dt.date(2024, 3, 15)
    p.detect(day, "sql4 fixture")
    rows = sorted(
        (r["cohort_month"], r["month_offset"], r["cohort_size"], r["active_customers"],
         r["retention_rate"])
        for r in p.zeta.rows("cohort_retention_evolution", day)
    )  # fmt: skip
    jan, feb, mar = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
    assert rows == [
        (jan, 0, 3, 3, 100.0), (jan, 1, 3, 0, 0.0), (jan, 2, 3, 2, 66.67),  # 2/3 -> 66.67
        (feb, 0, 3, 3, 100.0), (feb, 1, 3, 1, 33.33), (mar, 0, 1, 1, 100.0),
    ]  # fmt: skip


def test_summaries_another_writer_left_stale_are_rebuilt_on_both_engines(pair):
    """The orders' summaries emptied on both sides (a dataset loaded by a version without
    them, or orders written by another writer): run_detection's check after SQL1 finds
    that they count no customer, rebuilds them on each engine (the refresh script on the
    reference engine) and forgets the stored history; SQL4 and SQL5 then agree."""
    p = pair(
        [("a", "a1", "2024-01-05", 10), ("a", "a2", "2024-03-02", 10),
         ("b", "b1", "2024-01-20", 10), ("c", "c1", "2024-02-10", 10)]
    )  # fmt: skip
    p.duck.con.execute("delete from cohort_activity")
    p.duck.con.execute("delete from first_orders")
    for name in ("first_orders", "cohort_activity"):
        p.zeta.set_rows(name, [])
    day = dt.date(2024, 3, 15)
    decision = p.detect(day, "stale summaries")
    assert decision["sample_size"] == 3
    for name in ("first_orders", "cohort_activity"):
        p.same_table("rebuilt summaries", name)
    assert len(p.zeta.rows("first_orders")) == 3


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # baseline (10 + 11 + 11 + 12 + 12 + 13 + 15) / 7 = 12; 16 vs 12 -> +33.33 CRITICAL
        ([(10, (0,)), (1, (0, 3)), (1, (0, 5)), (1, (0, 7)), (2, (0, 8)), (1, (0, 9)),
          (84, (0, 30))], (16.0, 12.0, 4.0, 33.33, "CRITICAL", True, 100)),
        # rounded daily values: 66.67 vs 33.33 -> 100.03 (not 100.00); 3 < 100 customers
        ([(1, (0,)), (1, (0, 9)), (1, (0, 30))], (66.67, 33.33, 33.34, 100.03, "CRITICAL",
                                                  False, 3)),
        # 31 vs 32: -3.125 -> -3.13, half away from zero
        ([(31, (0,)), (1, (0, 40)), (68, (0, 30))], (31.0, 32.0, -1.0, -3.13, "INFO", False,
                                                     100)),
        # zero baseline: relative delta NULL
        ([(10, (0, 9)), (90, (0, 30))], (10.0, 0.0, 10.0, None, "INFO", False, 100)),
        # 99 customers: 23.23 vs 20.20 -> 15.00 WARNING but no alert below 100
        ([(20, (0,)), (3, (0, 9)), (76, (0, 30))], (23.23, 20.2, 3.03, 15.0, "WARNING", False,
                                                    99)),
    ],
)  # fmt: skip
def test_sql5_decisions(pair, groups, expected):
    """Both SQL5 files give the hand-worked decision on both engines: the daily run's (D40
    after the run of the day before: D from SQL2's snapshot, the baseline from the stored
    rows) and the orders-based pass."""
    p = pair(population(groups))
    p.detect(D40 - dt.timedelta(days=1), "sql5 fixture, the day before")
    p.detect(D40, "sql5 fixture")  # the history is stored up to D39: the daily file
    p.queue(D40, "sql5 fixture")
    (row,) = p.zeta.rows("alert_logic", D40)
    assert decision(row) == expected
    values = detection_parameters(p.duck_settings, D40)
    (row,) = p.same("sql5 fixture from the orders", "detection/05_alert_logic", values)
    assert decision(row) == expected


def test_sql5_range_with_warm_up(pair):
    p = pair(population([(10, (0, 9)), (90, (0, 30))]))
    # `retentionops alerts`: one SQL5 pass over a range starting before the first order
    values = detection_parameters(p.duck_settings, dt.date.fromisoformat(plus(40)),
                                  from_date=dt.date.fromisoformat(plus(-3)))  # fmt: skip
    rows = p.same("sql5 range", "detection/05_alert_logic", values)
    by_date = {r["alert_date"]: r for r in rows}
    assert len(rows) == 41  # F .. F+40: no row before the first order
    # warm-up: fewer than 7 previous days up to F+6 -> NULL baseline
    assert [by_date[F + dt.timedelta(days=i)]["baseline_value"] for i in range(8)] == (
        [None] * 7 + [0.0]
    )


# -- a slice of the sample across both incidents ---------------------------------------

#: The daily flow, as the DAG runs it, on two dates of the slice: the first day of the
#: first incident (CRITICAL) and its WARNING day. SQL5 is compared on every date of both
#: incidents, from the INFO day before each, in one range pass per incident, as
#: `retentionops alerts` runs it (one pass over May to September costs more than the two:
#: the reference engine joins each date with its baseline days in a loop, and a SQL5 run
#: in September costs twice one in May).
DAILY = {
    dt.date(2011, 5, 13): "CRITICAL",
    dt.date(2011, 5, 17): "WARNING",
}
SQL5_RANGES = (
    (dt.date(2011, 5, 12), dt.date(2011, 5, 17)),
    (dt.date(2011, 9, 8), dt.date(2011, 9, 12)),
)


@pytest.fixture
def sample_slice(sample_orders):
    """Every 22nd customer of the cleaned sample (about 200) and all their orders."""
    customers = sorted(sample_orders["customer_id"].unique())[::22]
    return sample_orders[sample_orders["customer_id"].isin(customers)].reset_index(drop=True)


#: The row limit of the slice's exports: P2 holds more customers outside the holdout on
#: the two dates, so the limit cuts it
EXPORT_LIMIT = 5


def test_sample_slice_across_the_incidents(pair, sample_slice):
    assert 190 <= sample_slice["customer_id"].nunique() <= 210
    # a holdout of 30 % without a minimum, so that INC-20110513's draw (at its first
    # export, 05-13, then the customers first seen on 05-17) and the impact queries' two
    # groups are exercised (the slice's tiers are small: P2 holds about ten customers)
    p = pair(sample_slice, holdout_pct=30, holdout_min_customers=0)
    severities = {}
    for first, last in SQL5_RANGES:
        alerts = p.same(
            "sample slice SQL5 range", "detection/05_alert_logic",
            detection_parameters(p.duck_settings, last, from_date=first),
        )  # fmt: skip
        assert len(alerts) == (last - first).days + 1
        severities.update({r["alert_date"]: r["severity"] for r in alerts})
    # on the slice: INFO the day before each incident, then CRITICAL, then WARNING
    assert [severities[first] for first, _ in SQL5_RANGES] == ["INFO", "INFO"]
    assert set(severities.values()) == {"INFO", "WARNING", "CRITICAL"}
    tiers_seen, treated, cut, previous = set(), 0, 0, None
    for day, severity in DAILY.items():
        label = f"sample slice {day}"
        # the engine keeps this date and the previous one of the per-customer tables
        p.zeta.keep_only({day, previous})
        decision = p.detect(day, label)
        assert decision["severity"] == severity
        p.queue(day, label)
        queue = p.zeta.rows("customer_priority", day)
        run_id = f"slice-{day}"
        # what an export run does: record every tier's audience at once (holdout and
        # cooldown applied, at most EXPORT_LIMIT per tier), then read the files' rows back
        # from the ledger
        tiers = ["P1", "P2", "P3"]
        recorded = actions.record_audiences(
            p.duck, p.duck_settings, day, tiers, run_id, EXPORT_LIMIT
        )
        audiences = actions.record_audiences(
            p.bq, p.zeta_settings, day, tiers, run_id, EXPORT_LIMIT
        )
        p.same(
            label, "action/read_audience", {"run_id": run_id, "tiers": tiers, "run_date": day},
            ordered=True,  # ranked: the order itself must agree
        )  # fmt: skip
        # the incident's holdout, drawn by the export on each engine alike (the hash too)
        p.same_table(label, "incident_holdouts")
        held = {r["customer_id"] for r in p.zeta.rows("incident_holdouts") if r["held_out"]}
        p.same(label, "holdout/read_holdouts", {"run_date": day})
        for tier in tiers:
            audience = audiences[tier]
            compare(f"{label}: record_audiences {tier}", recorded[tier], audience, ordered=True)
            # the rule's answer: the tier's best customers outside the holdout and the
            # contact cooldown (none here: nothing was delivered), cut at the limit
            best = sorted(
                (-r["priority_score"], r["customer_id"]) for r in queue
                if r["priority_tier"] == tier and r["customer_id"] not in held
                and r["cooldown_status"] != "suppressed"
            )  # fmt: skip
            assert [r["customer_id"] for r in audience] == [c for _, c in best[:EXPORT_LIMIT]]
            cut += len(best) > EXPORT_LIMIT
            tiers_seen |= {r["priority_tier"] for r in audience}
        p.same_table(label, "audience_exports", day)
        treated += sum(len(audience) for audience in audiences.values())
        customer = min(r["customer_id"] for r in queue)
        p.same(label, "impact/read_customer_priority", {"run_date": day, "customer_id": customer})
        # treated: what the run exported (the ledger), against the holdout of its date
        p.same(
            label, "impact/measure_impact",
            {"run_id": run_id, "run_date": day, "tiers": ["P1", "P2", "P3"],
             "horizon_days": 30},
        )  # fmt: skip
        previous = day
    assert tiers_seen == {"P1", "P2"}  # P3 is empty under the default weights (README)
    assert cut == 2  # P2 on both dates
    assert 0 < len(held) < treated
    assert {r["assigned_on"] for r in p.zeta.rows("incident_holdouts")} == set(DAILY)
    p.same("sample slice", "impact/last_order_date", {})
    incident = {"incident_id": "INC-20110513"}
    p.same("sample slice", "holdout/read_incident_holdout", incident)
    p.same(
        "sample slice", "impact/measure_incident_impact",
        {**incident, "from_date": min(DAILY), "to_date": max(DAILY), "horizon_days": 30},
    )  # fmt: skip
    # its release, recorded on both engines: the row of every customer it saw
    for warehouse in (p.duck, p.bq):
        warehouse.execute_file(
            "holdout/release_incident_holdout",
            {**incident, "resolved_on": dt.date(2011, 7, 13), "held_until": dt.date(2011, 8, 12)},
        )
    p.same_table("sample slice released", "incident_holdouts")
    p.same("sample slice", "holdout/read_unreleased_holdouts", {"run_date": max(DAILY)})


def test_incidents_over_the_sample_history(pair, sample_slice):
    """The incident layer (incidents/incident_days: WITH RECURSIVE over the stored alert
    history) on both engines, over the slice's whole history. SQL5's history is computed
    once on DuckDB (``detection.extend_history``, as an incident read on a fresh warehouse does) and
    handed to the engine with its marker: SQL5 itself is compared above, and the engine
    would spend minutes on a year of it."""
    p = pair(sample_slice)
    last = dt.date(2011, 12, 9)  # the sample's last order date
    detection.extend_history(p.duck, p.duck_settings, last)
    for name in ("alert_logic", "run_markers"):
        p.zeta.set_rows(name, duckdb_rows(p.duck, name))
    history = {"step": detection.history_marker(p.duck_settings)}
    assert p.same("incidents", "markers/read_history_coverage", history) == [{"covered_to": last}]
    # the BigQuery DAG's SQL5 from-date, read through BigQueryWarehouse: nothing to compute
    # for a covered date, the next day only for the day after (detection.history_start)
    after = last + dt.timedelta(days=1)
    for warehouse, settings in ((p.duck, p.duck_settings), (p.bq, p.zeta_settings)):
        assert detection.history_from_date(warehouse, settings, last) is None
        assert detection.history_from_date(warehouse, settings, after) == after
    first = dt.date(2011, 4, 20)
    rows = p.same("incidents", "incidents/incident_days",
                  incidents.parameters(p.duck_settings, first, last))  # fmt: skip
    assert len(rows) == (last - first).days + 1
    days = incidents.incident_days(p.bq, p.zeta_settings, first, last)
    # the slice's incidents, both opened CRITICAL and judged against their frozen
    # baselines: the one of 2011-05-13 stays CRITICAL until it resolves (SQL5's WARNING of
    # 05-17 does not ease it), the one of 2011-09-09 de-escalates after a week below +25 %
    events = [(r["day"], r["incident_id"], r["event"]) for r in days if r["event"]]
    assert [e for e in events if e[2] != "update"] == [
        ("2011-05-13", "INC-20110513", "open"), ("2011-07-13", "INC-20110513", "resolve"),
        ("2011-09-09", "INC-20110909", "open"), ("2011-12-06", "INC-20110909", "de-escalate"),
    ]  # fmt: skip


# -- run markers -----------------------------------------------------------------------


def test_run_markers_clear_mark_and_read(pair):
    """Detection marks the date, the queue marks its own step; a new detection run whose
    rows come out the same keeps the queue's marker, one whose rows changed removes it:
    readers then refuse the queue, on both backends (the fingerprint, read on each)."""
    day = dt.date(2024, 3, 1)
    p = pair([("A", "A1", "2024-01-10", 10), ("B", "B1", "2024-02-15", 7)])
    for warehouse in (p.duck, p.bq):
        assert detection.completed_steps(warehouse, day) == set()
        with pytest.raises(DetectionError, match="detection for 2024-03-01 is missing"):
            actions.build_priority_queue(warehouse, p.duck_settings, day)
    p.detect(day, "markers")
    p.queue(day, "markers")
    steps = {r["step"] for r in p.bq.query("markers/read_run_markers", {"run_date": day})}
    history = detection.history_marker(p.duck_settings)  # the alert history up to the day
    assert steps == {"detection", "customer_priority", history}
    p.detect(day, "markers, detection again")  # the same rows: the queue stays valid
    for warehouse in (p.duck, p.bq):
        assert detection.completed_steps(warehouse, day) == {"detection", "customer_priority"}
    # another writer adds an order of A (no load, which would clear the markers itself)
    p.duck.con.execute(
        "insert into orders by name select * replace ('A2' as order_id, "
        "date '2024-02-20' as order_date) from orders where order_id = 'A1'"
    )
    p.zeta.set_rows("orders", duckdb_rows(p.duck, "orders"))
    p.detect(day, "markers, detection changed")  # A's rows changed: the queue goes
    for warehouse, settings in ((p.duck, p.duck_settings), (p.bq, p.zeta_settings)):
        assert detection.completed_steps(warehouse, day) == {"detection"}
        with pytest.raises(DetectionError, match="no priority queue for 2024-03-01"):
            actions.record_audience(warehouse, settings, day, "P1", "markers-run")
    # a date never run has no markers on either engine
    assert p.same("markers", "markers/read_run_markers", {"run_date": F}) == []


# -- loads: orders_changed_from and the invalidation of derived rows -------------------

ORDERS = [
    ("A", "A1", "2024-01-10", 10.00),
    ("A", "A2", "2024-02-01", 20.00),
    ("B", "B1", "2024-01-20", 7.50),
    ("C", "C1", "2024-03-01", 5.00),
    # E and G give the queue rows (gaps of 10 days, then a frequency drop)
    ("E", "E1", "2024-01-10", 12.00),
    ("E", "E2", "2024-01-20", 12.00),
    ("G", "G1", "2024-03-01", 8.00),
    ("G", "G2", "2024-03-11", 8.00),
]


#: The first order of ORDERS. SQL5 is a history step: a run writes alert_logic for every date
#: from the first order to its run date (sql.alert_history_parameters).
FIRST_ORDER = dt.date(2024, 1, 10)


def every_day(first: dt.date, last: dt.date) -> set[dt.date]:
    return {first + dt.timedelta(days=n) for n in range((last - first).days + 1)}


def changed(order_id: str, **values) -> list[tuple]:
    """ORDERS with one order's date or amount replaced."""
    index = {"order_date": 2, "order_amount": 3}
    out = []
    for row in ORDERS:
        row = list(row)
        if row[1] == order_id:
            for key, value in values.items():
                row[index[key]] = value
        out.append(tuple(row))
    return out


#: Loads in sequence, each from the orders the previous one left: (what changes, the new
#: orders, the earliest changed date, hand-worked). Each change is undone by the next load,
#: so every difference is seen in both directions (an order added, then removed...).
LOADS = [
    ("identical, in another order", list(reversed(ORDERS)), None),
    # D1 is new on 2024-02-15
    ("an order added", [*ORDERS, ("D", "D1", "2024-02-15", 3.00)], dt.date(2024, 2, 15)),
    ("that order removed again", ORDERS, dt.date(2024, 2, 15)),
    # A2 (2024-02-01) is gone
    ("an order removed", [r for r in ORDERS if r[1] != "A2"], dt.date(2024, 2, 1)),
    ("that order back", ORDERS, dt.date(2024, 2, 1)),
    # B1 7.50 -> 7.51 on 2024-01-20
    ("an amount changed", changed("B1", order_amount=7.51), dt.date(2024, 1, 20)),
    ("the amount back", ORDERS, dt.date(2024, 1, 20)),
    # C1 moves from 2024-03-01 to 2024-02-20: the earlier of its two dates
    ("an order moved earlier", changed("C1", order_date="2024-02-20"), dt.date(2024, 2, 20)),
    ("that order moved back", ORDERS, dt.date(2024, 2, 20)),
    # A1 moves from 2024-01-10 to 2024-02-05: again the earlier one, its old date
    ("an order moved later", changed("A1", order_date="2024-02-05"), dt.date(2024, 1, 10)),
    ("the same orders again", changed("A1", order_date="2024-02-05"), None),
]


def test_orders_changed_from(pair):
    """``replace_orders`` on both backends: DuckDB stages and compares in one transaction;
    BigQuery loads orders_incoming, runs orders_changed_from and the transaction script
    (none when nothing changed)."""
    p = pair(ORDERS)
    for change, new_orders, expected in LOADS:
        scripts = len(p.zeta.jobs)
        duck = p.duck.replace_orders(make_orders(new_orders))
        zeta = p.bq.replace_orders(make_orders(new_orders))
        label = f"load: {change}"
        compare(label, [{"changed_from": duck}], [{"changed_from": zeta}])
        assert duck == expected, change
        p.same_table(label, "orders")
        assert len(p.zeta.rows("orders")) == len(new_orders)
        # the orders' summaries, refreshed from changed_from on by each engine's script
        for name in ("first_orders", "cohort_activity"):
            p.same_table(label, name)
        sent = [j for j in p.zeta.jobs[scripts:] if "begin transaction" in j["query"]["query"]]
        assert len(sent) == (expected is not None), change


def test_a_load_deletes_derived_rows_from_the_changed_date_on(pair):
    days = [dt.date(2024, 2, 10), dt.date(2024, 2, 20), dt.date(2024, 3, 1)]
    p = pair(ORDERS)
    p.build_on_duckdb(days)
    assert {r["alert_date"] for r in p.zeta.rows("alert_logic")} == every_day(FIRST_ORDER, days[2])
    # C1 moves from 2024-03-01 to 2024-02-20: rows and markers of 02-20 and 03-01 go
    new_orders = make_orders(changed("C1", order_date="2024-02-20"))
    assert p.duck.replace_orders(new_orders) == p.bq.replace_orders(new_orders) == days[1]
    # alert_logic keeps its history before the change: each date's row depends on the
    # orders up to that date only
    kept = {name: {days[0]} for name in DERIVED_TABLES}
    kept["alert_logic"] = every_day(FIRST_ORDER, days[1] - dt.timedelta(days=1))
    for name in DERIVED_TABLES:
        p.same_table("after the load", name)
        field = table(name).partition_field
        assert {r[field] for r in p.zeta.rows(name)} == kept[name], name
    for warehouse, settings in ((p.duck, p.duck_settings), (p.bq, p.zeta_settings)):
        assert detection.completed_steps(warehouse, days[0]) == {"detection", "customer_priority"}
        assert detection.completed_steps(warehouse, days[1]) == set()
        with pytest.raises(DetectionError, match="detection for 2024-02-20 is missing"):
            service_context.operational_context(warehouse, settings, days[1])
    # the date before the change can still be exported, the same on both
    keys = (days[0], "P1", "after-the-load", 10)
    audience = actions.record_audience(p.bq, p.zeta_settings, *keys)
    compare("after the load: record_audience P1",
            actions.record_audience(p.duck, p.duck_settings, *keys), audience,
            ordered=True)  # fmt: skip
    assert [r["customer_id"] for r in audience] == ["E"]  # E is P1 on 02-10


def test_orders_range_and_the_warnings_it_gives(pair):
    p = pair(ORDERS)
    [history] = p.same("orders range", "maintenance/orders_range", {})
    assert history == {
        "first_order_date": dt.date(2024, 1, 10),
        "last_order_date": dt.date(2024, 3, 11),
        "orders": 8,
    }
    for day, expected in (
        (dt.date(2024, 1, 9), ["2024-01-09 is before the first order (2024-01-10): the orders "
                               "cover 2024-01-10..2024-03-11"]),
        (dt.date(2024, 3, 11), []),
        # 03-11 + 91 days: 20 (to 03-31) + 30 + 31 + 10 -> 06-10, more than at_risk_days (90)
        (dt.date(2024, 6, 10), ["the orders end on 2024-03-11, 91 day(s) before 2024-06-10: "
                                "every customer ages without new orders; by now every customer "
                                "is INACTIVE. Is the order history up to date?"]),
    ):  # fmt: skip
        assert service.data_warnings(p.duck, p.duck_settings, day) == expected
        assert service.data_warnings(p.bq, p.zeta_settings, day) == expected
    # no orders at all: NULL dates and a zero count on both engines
    for name in ("orders", "first_orders", "cohort_activity"):
        p.duck.con.execute(f"delete from {name}")
        p.zeta.set_rows(name, [])
    assert p.same("orders range", "maintenance/orders_range", {}) == [
        {"first_order_date": None, "last_order_date": None, "orders": 0}
    ]


def stored_orders(rows) -> list[dict]:
    """Orders as a table holds them (NUMERIC amounts)."""
    return [
        {"customer_id": c, "order_id": o, "order_date": dt.date.fromisoformat(d),
         "order_amount": Decimal(str(a)), "country": "United Kingdom"}
        for c, o, d, a in rows
    ]  # fmt: skip


def test_the_bigquery_load_keeps_numeric(analysed, zetasql_service):
    """``BigQueryWarehouse.replace_orders`` loads ``orders_incoming`` with WRITE_TRUNCATE,
    which gives the table the load's schema. The load states the DDL's schema (NUMERIC
    ``order_amount``, NOT NULL as REQUIRED) and sends the amounts as ``Decimal`` to 9
    places, so the table stays as ``ddl/create_orders_incoming`` made it and the script's
    ``INSERT ... SELECT *`` into the NUMERIC ``orders`` goes through. (Without a schema the
    client infers FLOAT64 from the float64 column and that INSERT is refused: ``FLOAT64
    which cannot be inserted into column order_amount, which has type NUMERIC``; with the
    schema but float64 values, the client's conversion to Arrow refuses them.)"""
    from google.cloud.bigquery import SchemaField

    bigquery = ZetaBigQuery(zetasql_service, analysed, analysed.settings)
    bigquery.set_rows("orders", stored_orders(ORDERS))
    new_orders = changed("B1", order_amount=7.51)
    ref = bigquery.refs["orders_incoming"]
    ddl_schema = list(bigquery.tables[ref])
    assert bigquery.warehouse().replace_orders(make_orders(new_orders)) == dt.date(2024, 1, 20)
    [(frame, destination, config)] = bigquery.loads
    assert destination == ref
    assert (config.write_disposition, config.schema) == ("WRITE_TRUNCATE", [
        SchemaField("customer_id", "STRING", mode="REQUIRED"),
        SchemaField("order_id", "STRING", mode="REQUIRED"),
        SchemaField("order_date", "DATE", mode="REQUIRED"),
        SchemaField("order_amount", "NUMERIC", mode="REQUIRED"),
        SchemaField("country", "STRING", mode="NULLABLE"),
    ])  # fmt: skip
    # the amounts as the 2-decimal values they are, with NUMERIC's 9 places
    amounts = dict(zip(frame["order_id"], frame["order_amount"], strict=True))
    assert amounts["B1"] == Decimal("7.510000000") and str(amounts["B1"]) == "7.510000000"
    assert all(type(a) is Decimal and a.as_tuple().exponent == -9 for a in amounts.values())
    # the table keeps the DDL's schema, and the orders are replaced
    assert bigquery.tables[ref] == ddl_schema
    assert dict(ddl_schema)["order_amount"] == "NUMERIC"
    assert bigquery.rows("orders") == stored_orders(new_orders)


def test_exact_decimal_is_what_duckdb_stores():
    """The amounts the BigQuery load sends equal what DuckDB's cast of the same float64 to
    ``decimal(38, 9)`` stores (the DuckDB load), halves rounded away from zero."""
    import duckdb

    from retentionops.warehouse import exact_decimal

    values = [7.51, 14.805, 0.1, 5e-10, 1.5e-9, 2.5e-9, 2.0000000025, -2.0000000025,
              123456.7890123455, 1e-10, 99999.9999]  # fmt: skip
    con = duckdb.connect()
    for value in values:
        [(stored,)] = con.execute(
            "select cast($v::double as decimal(38, 9))", {"v": value}
        ).fetchall()
        assert exact_decimal(value, 9) == stored, value
    assert exact_decimal(float("nan"), 9) is None and exact_decimal(None, 9) is None
    assert exact_decimal(Decimal("1.2345678905"), 9) == Decimal("1.234567891")


def test_the_stand_in_refuses_what_bigquery_refuses(analysed, zetasql_service):
    """ZetaBigQuery's own rules can fail: a row outside the partition a job writes, a MERGE
    without the twin that stands in for it."""
    from retentionops import bigquery as jobs
    from retentionops.sql import render

    stand_in = ZetaBigQuery(zetasql_service, analysed, analysed.settings)
    settings = analysed.settings
    ref = stand_in.refs["run_markers"]
    outside = jobs.partition_job(
        settings,
        query="select date '2011-05-14' as run_date, 'detection' as step, "
        "current_timestamp() as completed_at from unnest([1])",
        parameters=[], table="run_markers", partition_field="run_date", partition="20110513",
    )  # fmt: skip
    with pytest.raises(AssertionError, match=r"a row of 2011-05-14 outside \$20110513"):
        stand_in.run_job(outside)
    assert stand_in.contents[ref] == []
    text = render("markers/mark_step_complete", settings)
    merge = jobs.query_job(
        text,
        [{"name": "run_date", "parameterType": {"type": "DATE"},
          "parameterValue": {"value": "2011-05-13"}},
         {"name": "step", "parameterType": {"type": "STRING"},
          "parameterValue": {"value": "detection"}}],
    )  # fmt: skip
    with pytest.raises(AssertionError, match="cannot execute MERGE and no DuckDB twin"):
        stand_in.run_job(merge)


# -- retention by write time -----------------------------------------------------------


def test_retention_by_write_time(pair, monkeypatch):
    """``service.apply_retention`` on both backends, with hand-set marker times.

    now 2024-06-30 12:00 UTC, retention 90 days: cutoff 2024-04-01 12:00 (date 2024-04-01).
    d1 2024-03-01: both markers written 2024-03-02 -> every row goes, and its markers.
    d2 2024-03-05: detection rewritten 2024-06-01 (a recent backfill) -> detection rows
        stay; its queue was written 2024-03-06 -> customer_priority goes, and that marker.
    d3 2024-03-10: no marker (a run killed half-way), date before the cutoff -> rows go.
    d4 2024-05-01: no marker, date after the cutoff -> rows stay.
    alert_logic is never retained: its history stays, every date from the first order
    (2024-01-10) to d4, which SQL5's history pass of d4 wrote.

    Rows per date (ORDERS): five customers have ordered by 2024-03-01; cohorts January (A,
    B, E) and March (C, G): offsets 0-2 and 0 in March (4 rows), 0-4 and 0-2 in May (8).
    The queue (gap 10 days for E and G, 22 for A; frequency drop after 1.5 gaps):
    d1 E (AT_RISK 41 days, MEDIUM: P2), d2 E, d3 E and A (38 > 33 days: P2), d4 A (90
    days, AT_RISK) and G (51 days).
    """
    d1, d2, d3, d4 = (dt.date(2024, 3, 1), dt.date(2024, 3, 5), dt.date(2024, 3, 10),
                      dt.date(2024, 5, 1))  # fmt: skip
    p = pair(ORDERS)
    p.build_on_duckdb((d1, d2, d3, d4))
    written = {
        (d1, "detection"): dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
        (d1, "customer_priority"): dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
        (d2, "detection"): dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        (d2, "customer_priority"): dt.datetime(2024, 3, 6, tzinfo=dt.UTC),
    }
    for (day, step), moment in written.items():
        p.duck.con.execute(
            "update run_markers set completed_at = $t where run_date = $d and step = $s",
            {"t": moment, "d": day, "s": step},
        )
    for day in (d3, d4):
        detection.clear_markers(p.duck, day)
    p.zeta.set_rows("run_markers", duckdb_rows(p.duck, "run_markers"))  # the same inputs
    opened = {"duckdb": p.duck, "bigquery": p.bq}
    monkeypatch.setattr(
        housekeeping, "open_warehouse",
        lambda settings, **_: contextlib.nullcontext(opened[settings.warehouse_backend]),
    )  # fmt: skip
    now = dt.datetime(2024, 6, 30, 12, 0, tzinfo=dt.UTC)
    deleted = service.apply_retention(p.duck_settings, now=now)
    assert service.apply_retention(p.zeta_settings, now=now) == deleted
    # d1 and d3: 5 customers and 4 cohort rows each; the queue of d1 (E), d2 (E), d3 (E, A)
    assert deleted == {
        "base_customers": 10, "retention_snapshot": 10, "churn_detection": 10,
        "cohort_retention_evolution": 8, "customer_priority": 4, "run_markers": 3,
    }  # fmt: skip
    # on BigQuery the data goes as whole partitions, through the tables API (free): no DML
    # DELETE, which would bill every column of each partition, reaches a retained table
    detection_tables = ("base_customers", "retention_snapshot", "churn_detection",
                        "cohort_retention_evolution")  # fmt: skip
    dropped = [(name, day) for name in detection_tables for day in (d1, d3)]
    dropped += [("customer_priority", day) for day in (d1, d2, d3)]
    assert sorted(p.zeta.deleted_partitions) == sorted(
        f"{p.zeta.refs[name]}${day:%Y%m%d}" for name, day in dropped
    )
    statements = [job["query"]["query"] for job in p.zeta.jobs if "query" in job]
    assert [q for q in statements if q.lstrip().lower().startswith("delete")] == [
        f"delete from `{p.zeta.refs['run_markers']}` where completed_at < @cutoff_ts"
    ]
    for name in DERIVED_TABLES:
        p.same_table("after retention", name)
    kept = {
        "base_customers": {d2, d4}, "retention_snapshot": {d2, d4}, "churn_detection": {d2, d4},
        "cohort_retention_evolution": {d2, d4}, "customer_priority": {d4},
        "alert_logic": every_day(FIRST_ORDER, d4),
    }  # fmt: skip
    for name, days in kept.items():
        field = table(name).partition_field
        assert {r[field] for r in p.zeta.rows(name)} == days, name
    # the alert-history markers are not retained either (written now, after the cutoff): each
    # run stored the history up to its date, and clear_markers keeps them
    history = detection.history_marker(p.duck_settings)
    assert sorted((r["run_date"], r["step"]) for r in p.zeta.rows("run_markers")) == [
        (d1, history), (d2, history), (d2, "detection"), (d3, history), (d4, history)
    ]  # fmt: skip
    assert {r["customer_id"] for r in p.zeta.rows("customer_priority")} == {"A", "G"}


# -- run log and health ----------------------------------------------------------------


#: The day's playbook plans (playbook.playbook_plan with the delivery decision), as
#: tests/unit/test_runlog.py states them: whether a daily run is skipped is the plan's call
#: (no incident event to deliver), not the alert flag's.
OPENS = {"event": "open", "incident_id": "INC-20110513", "alerting": True, "send": True,
         "reason": None}  # fmt: skip
QUIET = {"event": None, "incident_id": None, "alerting": False, "send": False,
         "reason": "no alert: nothing to send"}  # fmt: skip
JUNE = {**OPENS, "incident_id": "INC-20110602"}
#: The context's tiers of r1 (new / still / left against the last delivered run, and what
#: the contact cooldown kept back): the run log's cooldown_p1..3 and audience_changes
AUDIENCE = {
    "P1": {"count": 7, "new": 4, "still": 3, "left": 1, "cooldown_suppressed": 2},
    "P2": {"count": 30, "new": 30, "still": 0, "left": 0, "cooldown_suppressed": 0},
    "P3": {"count": 0, "new": 0, "still": 0, "left": 0, "cooldown_suppressed": 0},
}  # fmt: skip


def test_run_log_and_health(pair):
    """``runlog.write`` (the MERGE: analysed by ZetaSQL, its effect taken from DuckDB), then
    the run-log reads, the health view and the health query on both engines."""
    p = pair([("A", "A1", "2011-05-01", 10)])
    start = dt.datetime(2011, 5, 14, 0, 5, tzinfo=dt.UTC)
    link = [{"tier": "P1", "link": "gs://b/p/audience_p1.csv", "row_count": 5}]
    answer = {"slack_message_ts": "1715644800.000100", "ticket_id": "RET-0001"}
    critical = {"severity": "CRITICAL", "alert_flag": True}

    def outcome(run_id, day, **known):
        return runlog.RunOutcome(run_id, day, "dag", daily=True, **known)

    runs = [
        # r1: an incident opens, playbook sent, export ok, 65 s -> success
        (outcome("r1", dt.date(2011, 5, 13), started_at=start, decision=critical, plan=OPENS,
                 audience=AUDIENCE, previous_run_date="2011-05-06",
                 anomalies=["P2 appeared: 30 against none on 2011-05-06"], exports=link,
                 answer=answer), start + dt.timedelta(seconds=65)),
        # r2: the failure callback's row first (only the failed step is known)
        (outcome("r2", dt.date(2011, 5, 13)).fail("export_audience_P1", "disk full"), start),
        # r2 completed by the final write: alert, webhook failed -> failed, no timing
        (outcome("r2", dt.date(2011, 5, 13), decision=critical, plan=OPENS, exports=link,
                 playbook_failed=True).fail("trigger_playbook", "HTTP 500"), start),
        # r3: no alert, no event to deliver -> skipped, nothing sent, nothing exported, 1.5 s
        (outcome("r3", dt.date(2011, 5, 14), started_at=start, plan=QUIET,
                 decision={"severity": "INFO", "alert_flag": False}),
         start + dt.timedelta(milliseconds=1500)),
        # r4: WARNING alert, sent, the export failed -> success (export_status failed), 2 s
        (outcome("r4", dt.date(2011, 6, 2), started_at=start, plan=JUNE,
                 decision={"severity": "WARNING", "alert_flag": True}, exports=link,
                 export_failed=True, answer=answer), start + dt.timedelta(seconds=2)),
    ]  # fmt: skip
    for run, now in runs:
        row = runlog.summarize(run, now=now)
        assert runlog.write(p.duck, p.duck_settings, row) == runlog.write(
            p.bq, p.zeta_settings, row
        )
    stored = duckdb_rows(p.duck, "ops_runs_log")
    assert len(stored) == 4
    # the MERGE kept the callback's error and added the final one (a NULL keeps what is stored)
    r2 = runlog.read(p.bq, "r2")
    assert (r2["status"], r2["playbook_status"], r2["error_message"]) == (
        "failed", "failed",
        "step export_audience_P1 failed: disk full; step trigger_playbook failed: HTTP 500",
    )  # fmt: skip
    p.same_table("run log", "ops_runs_log")
    compare("health view", duckdb_rows(p.duck, "ops_health_daily"), p.zeta.health_view())
    health = p.same(
        "health", "action/get_health",
        {"from_date": dt.date(2011, 5, 1), "to_date": dt.date(2011, 6, 30)}, ordered=True,
    )  # fmt: skip
    # May: r1 success, r2 failed, r3 skipped; 2 webhook calls (r1 sent, r2 failed), 1
    # failed; alert days: 05-13 only (r3 on 05-14 did not alert). June: r4.
    assert [(r["month"], r["runs"], r["successful_runs"], r["failed_runs"], r["skipped_runs"],
             r["webhook_calls"], r["webhook_failures"], r["alert_days"]) for r in health] == [
        (dt.date(2011, 5, 1), 3, 1, 1, 1, 2, 1, 1), (dt.date(2011, 6, 1), 1, 1, 0, 0, 1, 0, 1)
    ]  # fmt: skip
    # the columns of the incident layer and of audiences across days, read on the engine
    r1 = p.same("run log", "action/read_run_log", {"run_id": "r1"})[0]
    assert (r1["incident_id"], r1["incident_event"], r1["note"]) == ("INC-20110513", "open", None)
    assert [r1[f"exported_p{n}"] for n in (1, 2, 3)] == [5, None, None]
    assert [r1[f"cooldown_p{n}"] for n in (1, 2, 3)] == [2, 0, 0]
    assert r1["audience_changes"] == (
        "since 2011-05-06: P1 4 new, 3 still, 1 left; P2 30 new, 0 still, 0 left; "
        "P3 0 new, 0 still, 0 left"
    )
    assert r1["anomalies"] == "P2 appeared: 30 against none on 2011-05-06"
    r3 = p.same("run log", "action/read_run_log", {"run_id": "r3"})[0]
    assert (r3["status"], r3["playbook_status"], r3["export_status"], r3["note"]) == (
        "skipped", "not_needed", "none", "no alert: nothing to send",
    )  # fmt: skip
    p.same("run log", "action/read_run_log", {"run_id": "r2"})
    p.same("run log", "action/read_run_logs_for_date", {"run_date": dt.date(2011, 5, 13)},
           ordered=True)  # fmt: skip


def test_value_proxy_is_exact_cents(pair):
    # 24.00 + 25.35 = 49.35 revenue; 0.3 x 49.35 = 14.805 exactly in decimal, which rounds
    # half away from zero to 14.81. In FLOAT64 the product is 14.80499999999999971578..., so
    # ROUND(FLOAT64, 2) gives 14.80 on BigQuery (ZetaSQL) and 14.81 on DuckDB: the queue
    # once computed value_proxy that way and the engines disagreed by a cent.
    p = pair(
        [("high", "h1", plus(-26, SQL3_DAY), 24.00), ("high", "h2", plus(-16, SQL3_DAY), 25.35)]
    )
    p.detect(SQL3_DAY, "value proxy")
    p.queue(SQL3_DAY, "value proxy")
    (row,) = p.zeta.rows("customer_priority", SQL3_DAY)
    assert (row["priority_tier"], row["value_proxy"]) == ("P1", Decimal("14.81"))
