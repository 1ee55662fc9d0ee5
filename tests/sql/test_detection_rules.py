"""SQL1-SQL5 against the rules of shared/spec/rules.md, on tiny hand-made order sets.

Every expected number is derived by hand from the spec; the arithmetic is in the comment
next to the assertion. Conventions used below:

* ``F`` is the first order day of a SQL5 population (2024-01-01) and ``plus(n)`` is F + n.
* A customer whose last order is on day L is ACTIVE on L..L+30, AT_RISK on L+31..L+90 and
  INACTIVE from L+91 (SQL2 with the default 30 / 90).
* SQL5 populations are built with ``population([(count, offsets), ...])``: ``count``
  customers, each ordering on every day F + offset. Everyone orders on F, so the sample
  size is the number of customers on every day >= F.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import duckdb
import numpy as np
import pytest
from support import make_orders

from retentionops import detection, service
from retentionops.orders import LoadResult, OrdersFileError
from retentionops.settings import load_settings

F = dt.date(2024, 1, 1)
D40 = F + dt.timedelta(days=40)  # 2024-02-10: its 7 previous days are F+33 .. F+39

TABLE_KEYS = {
    "base_customers": "snapshot_date",
    "retention_snapshot": "snapshot_date",
    "churn_detection": "snapshot_date",
    "cohort_retention_evolution": "snapshot_date",
    "alert_logic": "alert_date",
}


def plus(days: int, start: dt.date = F) -> str:
    return on(days, start).isoformat()


def on(days: int, start: dt.date = F) -> dt.date:
    return start + dt.timedelta(days=days)


def population(groups, prefix: str = "c"):
    """Orders of ``count`` customers per group, each ordering on F + every offset."""
    rows, n = [], 0
    for count, offsets in groups:
        for _ in range(count):
            n += 1
            for k, offset in enumerate(offsets):
                rows.append((f"{prefix}{n:03d}", f"{prefix}{n:03d}-{k}", plus(offset), 10))
    return rows


def by_customer(warehouse, table: str, columns: str, day: dt.date) -> dict:
    result = warehouse.con.execute(
        f"select customer_id, {columns} from {table} where snapshot_date = ?", [day]
    ).fetchall()
    return {row[0]: row[1:] for row in result}


def table_dump(warehouse, day: dt.date) -> dict:
    return {
        table: warehouse.con.execute(
            f"select * from {table} where {key} = ? order by all", [day]
        ).fetchall()
        for table, key in TABLE_KEYS.items()
    }


def with_settings(settings, **overrides):
    return load_settings(duckdb_path=settings.duckdb_path, **overrides)


def decision(row: dict) -> tuple:
    return (
        row["current_value"],
        row["baseline_value"],
        row["delta_pct"],
        row["delta_relative_pct"],
        row["severity"],
        row["alert_flag"],
        row["sample_size"],
    )


def _round_half_up(value: Fraction) -> int:
    """Round a non-negative fraction to an integer, halves up (= away from zero)."""
    return int((value * 2 + 1) // 2)


# --------------------------------------------------------------------------------------
# SQL1 base_customers
# --------------------------------------------------------------------------------------


def test_sql1_facts_per_customer_up_to_d(load_orders, settings):
    warehouse = load_orders(
        [
            ("A", "A1", "2024-01-10", 10.25),
            ("A", "A2", "2024-01-10", 20.00),  # same day as A1: still a separate order
            ("A", "A3", "2024-02-01", 30.50),
            ("A", "A4", "2024-03-02", 999.00),  # after D: invisible
            ("B", "B1", "2024-02-15", 7.00),
            ("C", "C1", "2024-03-05", 5.00),  # only after D: C does not exist at D
        ]
    )
    day = dt.date(2024, 3, 1)
    detection.run_detection(warehouse, settings, day)
    facts = by_customer(
        warehouse,
        "base_customers",
        "first_order_date, last_order_date, total_orders, total_revenue, avg_order_value",
        day,
    )
    assert set(facts) == {"A", "B"}
    # A: orders A1, A2 (2024-01-10) and A3 (2024-02-01); A4 (2024-03-02) is after D
    #    total_orders = |{A1, A2, A3}| = 3, revenue = 10.25 + 20.00 + 30.50 = 60.75,
    #    avg per order = 60.75 / 3 = 20.25
    assert facts["A"] == (
        dt.date(2024, 1, 10), dt.date(2024, 2, 1), 3, Decimal("60.75"), Decimal("20.25")
    )  # fmt: skip
    # B: one order of 7.00 -> 1 order, 7.00 revenue, 7.00 per order
    assert facts["B"] == (dt.date(2024, 2, 15), dt.date(2024, 2, 15), 1, Decimal("7"), Decimal("7"))


def test_sql1_two_orders_same_day_same_amount_are_two_orders(load_orders, settings):
    warehouse = load_orders([("A", "A1", "2024-01-10", 10), ("A", "A2", "2024-01-10", 10)])
    day = dt.date(2024, 1, 10)
    detection.run_detection(warehouse, settings, day)
    facts = by_customer(warehouse, "base_customers", "total_orders, total_revenue", day)
    # two distinct order ids -> 2 orders, 10 + 10 = 20
    assert facts == {"A": (2, Decimal("20"))}


def test_a_repeated_order_id_cannot_reach_the_orders_table(load_orders, settings):
    # SQL1 counts rows as orders, so the table itself refuses a second row for an order_id
    day = dt.date(2024, 1, 31)
    warehouse = load_orders([("A", "A1", "2024-01-10", 10), ("A", "A2", "2024-01-10", 20)])
    detection.run_detection(warehouse, settings, day)
    before = by_customer(warehouse, "base_customers", "total_orders, total_revenue", day)
    # two orders on one day are two orders: 2, 10 + 20 = 30
    assert before == {"A": (2, Decimal("30"))}
    # A1 again (another day, another amount): counted as rows it would make A's total 3
    repeated = [("A", "A1", "2024-01-10", 10), ("A", "A1", "2024-01-12", 5)]
    with pytest.raises(duckdb.ConstraintException, match='duplicate key "A1"'):
        load_orders(repeated)
    # the load rolled back whole: the orders and the derived rows are as they were
    assert warehouse.con.execute("select order_id from orders order by all").fetchall() == [
        ("A1",),
        ("A2",),
    ]
    assert by_customer(warehouse, "base_customers", "total_orders, total_revenue", day) == before
    # the load operation refuses it before writing, which is the guarantee on BigQuery
    # (where the key is NOT ENFORCED): the message names the id and its rows
    frame = make_orders(repeated)
    result = LoadResult(orders=frame, rows_read=2, rows_kept=2)
    with pytest.raises(OrdersFileError, match=r"order_id 'A1' appears 2 times \(rows 1, 2 "):
        service.load_orders(settings, result)
    assert warehouse.con.execute("select count(*) from orders").fetchone() == (2,)


def test_point_in_time_orders_after_d_change_nothing_for_d(load_orders, settings):
    # SQL5 history worth comparing: the "varying baseline" population (see test below).
    base = population(
        [(10, (0,)), (1, (0, 3)), (1, (0, 5)), (1, (0, 7)), (2, (0, 8)), (1, (0, 9)),
         (84, (0, 30))]
    )  # fmt: skip
    later = [
        ("c001", "late-1", plus(41), 50),  # an AT_RISK customer reorders the day after D
        ("c016", "late-2", plus(41), 50),
        ("new", "late-3", plus(41), 50),  # a brand new customer after D
        ("new2", "late-4", plus(75), 50),  # a new customer in a later month
    ]
    warehouse = load_orders(base)
    without = detection.run_detection(warehouse, settings, D40)
    tables_without = table_dump(warehouse, D40)

    # adding orders dated after D leaves D's derived rows as they were: they depend on
    # orders up to D only (the load invalidates from the first changed order date)
    warehouse = load_orders(base + later)
    assert table_dump(warehouse, D40) == tables_without
    with_later = detection.run_detection(warehouse, settings, D40)
    assert with_later == without
    assert table_dump(warehouse, D40) == tables_without
    assert all(tables_without[t] for t in TABLE_KEYS)  # every table has rows for D
    # and the same through the set-based range query reaching past D
    series = {r["alert_date"]: r for r in detection.alert_series(warehouse, settings, F, on(80))}
    assert series[D40.isoformat()] == without


# --------------------------------------------------------------------------------------
# SQL2 retention_snapshot
# --------------------------------------------------------------------------------------


def test_sql2_status_boundaries(load_orders, settings):
    day = dt.date(2024, 6, 30)
    ages = [0, 30, 31, 90, 91]
    warehouse = load_orders([(f"k{a}", f"o{a}", plus(-a, day), 10) for a in ages])
    detection.run_detection(warehouse, settings, day)
    snap = by_customer(
        warehouse, "retention_snapshot", "days_since_last_order, retention_status", day
    )
    # D - last order = age; <= 30 ACTIVE, <= 90 AT_RISK, else INACTIVE
    assert snap == {
        "k0": (0, "ACTIVE"),
        "k30": (30, "ACTIVE"),
        "k31": (31, "AT_RISK"),
        "k90": (90, "AT_RISK"),
        "k91": (91, "INACTIVE"),
    }


def test_sql2_status_thresholds_are_settings(load_orders, settings):
    day = dt.date(2024, 6, 30)
    ages = [10, 11, 20, 21]
    warehouse = load_orders([(f"k{a}", f"o{a}", plus(-a, day), 10) for a in ages])
    custom = with_settings(settings, active_days=10, at_risk_days=20)
    detection.run_detection(warehouse, custom, day)
    snap = by_customer(warehouse, "retention_snapshot", "retention_status", day)
    # <= 10 ACTIVE, <= 20 AT_RISK, else INACTIVE
    assert snap == {
        "k10": ("ACTIVE",),
        "k11": ("AT_RISK",),
        "k20": ("AT_RISK",),
        "k21": ("INACTIVE",),
    }


# --------------------------------------------------------------------------------------
# SQL3 churn_detection
# --------------------------------------------------------------------------------------

SQL3_DAY = dt.date(2024, 6, 30)

# customer -> order ages (D - order_date); hand-derived expectations in test_sql3_signals
SQL3_CUSTOMERS = {
    "freq_eq": [50, 30],
    "freq_gt": [51, 31],
    "high": [26, 16],
    "single_risk": [50],
    "single_active": [5],
    "same_day_old": [40, 40],
    "same_day_today": [0, 0],
    "three_orders": [100, 60, 20],
    "four_small": [95, 65, 35, 5],
    "four_eq07": [37, 27, 17, 7],
    "four_gt07": [38, 28, 18, 8],
    "four_eq15": [90, 70, 50, 30],
    "four_gt15": [91, 71, 51, 31],
    "inactive_3": [300, 200, 100],
    "inactive_drop": [150, 140],
}


def sql3_orders():
    return [
        (name, f"{name}-{k}", plus(-age, SQL3_DAY), 10)
        for name, ages in SQL3_CUSTOMERS.items()
        for k, age in enumerate(ages)
    ]


def test_sql3_signals_score_and_level(load_orders, settings):
    warehouse = load_orders(sql3_orders())
    detection.run_detection(warehouse, settings, SQL3_DAY)
    got = by_customer(
        warehouse,
        "churn_detection",
        "total_orders, days_since_last_order, avg_days_between_orders, is_frequency_drop, "
        "is_value_drop, is_status_inconsistent, churn_risk_score, churn_risk_level",
        SQL3_DAY,
    )
    # notation: n orders, span = last - first, days = D - last; drop: 2*days*(n-1) > 3*span;
    # inconsistent: ACTIVE and (n <= 3 or 10*days*(n-1) > 7*span); score 50*drop + 20*incons.
    expected = {
        # n=2 span 20 avg 20, days 30: 2*30*1 = 60 > 60 no; ACTIVE, n<=3 -> incons; 20 LOW
        "freq_eq": (2, 30, 20.0, False, False, True, 20, "LOW"),
        # days 31: 62 > 60 -> drop; AT_RISK -> not incons; 50 -> MEDIUM (< 51)
        "freq_gt": (2, 31, 20.0, True, False, False, 50, "MEDIUM"),
        # span 10 avg 10, days 16: 32 > 30 drop; ACTIVE n=2 -> incons; 70 -> HIGH
        "high": (2, 16, 10.0, True, False, True, 70, "HIGH"),
        # one order: avg NULL, no drop; AT_RISK -> not incons; 0 LOW
        "single_risk": (1, 50, None, False, False, False, 0, "LOW"),
        # one order, days 5: avg NULL -> no drop; ACTIVE, n=1 <= 3 -> incons; 20 LOW
        "single_active": (1, 5, None, False, False, True, 20, "LOW"),
        # two orders the same day: avg 0/1 = 0; days 40: 80 > 0 drop; AT_RISK; 50 MEDIUM
        "same_day_old": (2, 40, 0.0, True, False, False, 50, "MEDIUM"),
        # two orders today: avg 0; days 0: 0 > 0 no; ACTIVE n=2 -> incons; 20 LOW
        "same_day_today": (2, 0, 0.0, False, False, True, 20, "LOW"),
        # n=3 span 80 avg 40, days 20: drop 80 > 240 no; 0.7x: 400 > 560 no, but n<=3 -> incons
        "three_orders": (3, 20, 40.0, False, False, True, 20, "LOW"),
        # n=4 span 90 avg 30, days 5: drop 30 > 270 no; incons 150 > 630 no, n=4 > 3; 0 LOW
        "four_small": (4, 5, 30.0, False, False, False, 0, "LOW"),
        # n=4 span 30 avg 10, days 7 = 0.7 x 10: 10*7*3 = 210 > 210 no; drop 42 > 90 no
        "four_eq07": (4, 7, 10.0, False, False, False, 0, "LOW"),
        # days 8: 240 > 210 -> incons; drop 48 > 90 no; 20 LOW
        "four_gt07": (4, 8, 10.0, False, False, True, 20, "LOW"),
        # n=4 span 60 avg 20, days 30 = 1.5 x 20: 2*30*3 = 180 > 180 no; ACTIVE and
        # 10*30*3 = 900 > 420 -> incons; 20 LOW
        "four_eq15": (4, 30, 20.0, False, False, True, 20, "LOW"),
        # days 31: 186 > 180 -> drop; AT_RISK; 50 MEDIUM
        "four_gt15": (4, 31, 20.0, True, False, False, 50, "MEDIUM"),
        # n=3 span 200 avg 100, days 100: INACTIVE (n<=3 does not matter); drop 400 > 600 no
        "inactive_3": (3, 100, 100.0, False, False, False, 0, "LOW"),
        # span 10, days 140: 280 > 30 drop; INACTIVE -> max 50 MEDIUM (P3 can never match)
        "inactive_drop": (2, 140, 10.0, True, False, False, 50, "MEDIUM"),
    }
    assert got == expected


def test_sql3_level_thresholds_are_settings(load_orders, settings):
    warehouse = load_orders(sql3_orders())
    custom = with_settings(settings, risk_level_high_min=50, risk_level_medium_min=20)
    detection.run_detection(warehouse, custom, SQL3_DAY)
    got = by_customer(warehouse, "churn_detection", "churn_risk_score, churn_risk_level", SQL3_DAY)
    # HIGH from 50, MEDIUM from 20
    assert got["freq_gt"] == (50, "HIGH")  # 50 >= 50
    assert got["high"] == (70, "HIGH")
    assert got["freq_eq"] == (20, "MEDIUM")  # 20 >= 20
    assert got["four_small"] == (0, "LOW")


def test_sql3_factors_and_weights_are_settings(load_orders, settings):
    warehouse = load_orders(sql3_orders())
    custom = with_settings(  # the weights sum to 100; value drop never fires in v1
        settings,
        frequency_drop_factor=2.0,
        weight_frequency_drop=40,
        weight_value_drop=55,
        weight_status_inconsistent=5,
    )
    detection.run_detection(warehouse, custom, SQL3_DAY)
    got = by_customer(warehouse, "churn_detection", "is_frequency_drop, churn_risk_score", SQL3_DAY)
    # factor 2: days*(n-1) > 2*span
    # freq_gt: span 20, days 31: 31 > 40 no; score 0 (AT_RISK, no incons)
    assert got["freq_gt"] == (False, 0)
    # high: span 10, days 16: 16 > 20 no; ACTIVE n=2 incons -> 5
    assert got["high"] == (False, 5)
    # same_day_old: span 0, days 40: 40 > 0 -> drop -> 40
    assert got["same_day_old"] == (True, 40)
    # inactive_drop: span 10, days 140 > 20 -> 40
    assert got["inactive_drop"] == (True, 40)


# --------------------------------------------------------------------------------------
# SQL4 cohort_retention_evolution
# --------------------------------------------------------------------------------------


def test_sql4_cohorts(load_orders, settings):
    warehouse = load_orders(
        [
            ("a", "a1", "2024-01-05", 10),
            ("a", "a2", "2024-03-02", 10),
            ("a", "a3", "2024-03-09", 10),  # second March order counts once
            ("a", "a4", "2024-04-01", 10),  # after D
            ("b", "b1", "2024-01-20", 10),
            ("b", "b2", "2024-03-20", 10),  # after D: b is not active in March at D
            ("c", "c1", "2024-01-31", 10),
            ("c", "c2", "2024-03-15", 10),  # on D itself: visible
            ("d", "d1", "2024-02-10", 10),
            ("d", "d2", "2024-03-01", 10),
            ("e", "e1", "2024-02-11", 10),
            ("e", "e2", "2024-02-28", 10),
            ("g", "g1", "2024-02-29", 10),
            ("f", "f1", "2024-03-01", 10),
            ("h", "h1", "2024-03-16", 10),  # first order after D: in no cohort
        ]
    )
    day = dt.date(2024, 3, 15)
    detection.run_detection(warehouse, settings, day)
    rows = warehouse.con.execute(
        "select cohort_month, month_offset, cohort_size, active_customers, retention_rate "
        "from cohort_retention_evolution where snapshot_date = ? order by all",
        [day],
    ).fetchall()
    jan, feb, mar = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
    assert rows == [
        # January cohort {a, b, c}: size 3
        (jan, 0, 3, 3, 100.0),  # 3/3
        (jan, 1, 3, 0, 0.0),  # nobody ordered in February: 0/3
        (jan, 2, 3, 2, 66.67),  # a, c in March: 2/3 = 66.666.. -> 66.67
        # February cohort {d, e, g}: size 3
        (feb, 0, 3, 3, 100.0),
        (feb, 1, 3, 1, 33.33),  # d in March: 1/3 = 33.333.. -> 33.33
        # March cohort {f}: size 1
        (mar, 0, 1, 1, 100.0),
    ]


# --------------------------------------------------------------------------------------
# SQL5 alert_logic
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_risk", "inactive", "active", "expected"),
    [
        (1, 1, 30, 3.13),  # 1/32 = 3.125 % -> half away from zero -> 3.13
        (3, 0, 29, 9.38),  # 3/32 = 9.375 % -> 9.38
        (3, 5, 8, 18.75),  # 3/16 = 18.75 %
        (1, 0, 63, 1.56),  # 1/64 = 1.5625 % -> 1.56
        (1, 0, 2, 33.33),  # 1/3 = 33.333.. % -> 33.33
        (2, 0, 1, 66.67),  # 2/3 = 66.666.. % -> 66.67
    ],
)
def test_sql5_current_value_and_sample_size(
    load_orders, settings, at_risk, inactive, active, expected
):
    day = F + dt.timedelta(days=100)
    # at D = F+100: last order F -> 100 days INACTIVE; F+50 -> 50 days AT_RISK;
    # F+80 -> 20 days ACTIVE; "late" orders first on D+1 and is not in the snapshot
    rows = population([(inactive, (0,)), (at_risk, (0, 50)), (active, (0, 80))])
    rows.append(("late", "late-1", plus(101), 10))
    warehouse = load_orders(rows)
    row = detection.run_detection(warehouse, settings, day)
    assert row["current_value"] == expected
    assert row["sample_size"] == at_risk + inactive + active
    statuses = [
        s for (s,) in by_customer(warehouse, "retention_snapshot", "retention_status", day).values()
    ]
    assert statuses.count("AT_RISK") == at_risk and len(statuses) == row["sample_size"]


def test_sql5_warm_up_baseline(load_orders, settings):
    # 100 customers, all first ordering on F: baseline needs D-7 >= F, i.e. D >= F+7
    warehouse = load_orders(population([(10, (0, 9)), (90, (0, 30))]))
    rows = detection.alert_series(warehouse, settings, on(-3), on(8))
    by_date = {r["alert_date"]: r for r in rows}
    assert sorted(by_date) == [plus(i) for i in range(9)]  # no rows before the first order
    # F .. F+6: fewer than 7 previous days exist -> NULL, no alert
    assert [by_date[plus(i)]["baseline_value"] for i in range(7)] == [None] * 7
    assert not any(by_date[plus(i)]["alert_flag"] for i in range(7))
    # F+7: F .. F+6 exist, all 0.00 % AT_RISK -> baseline 0.00 (not NULL)
    assert by_date[plus(7)]["baseline_value"] == 0.0
    assert by_date[plus(8)]["baseline_value"] == 0.0
    # the stored rows agree, run one date at a time
    assert detection.run_detection(warehouse, settings, on(6))["baseline_value"] is None
    assert detection.run_detection(warehouse, settings, on(7))["baseline_value"] == 0.0


def test_sql5_baseline_is_mean_of_previous_seven_days(load_orders, settings):
    groups = [(10, (0,)), (1, (0, 3)), (1, (0, 5)), (1, (0, 7)), (2, (0, 8)), (1, (0, 9)),
              (84, (0, 30))]  # fmt: skip
    warehouse = load_orders(population(groups))
    series = detection.alert_series(warehouse, settings, on(33), on(40))
    # N = 100; AT_RISK from last order + 31: 10 from F+31, +1 from F+34, +1 F+36, +1 F+38,
    # +2 F+39, +1 F+40; the 84 only from F+61
    assert [r["current_value"] for r in series] == [10.0, 11.0, 11.0, 12.0, 12.0, 13.0, 15.0, 16.0]
    row = detection.run_detection(warehouse, settings, D40)
    # baseline = (10 + 11 + 11 + 12 + 12 + 13 + 15) / 7 = 84 / 7 = 12.00
    # delta = 16 - 12 = 4.00; relative = (16/12 - 1) * 100 = 33.333.. -> 33.33 >= 25 CRITICAL
    assert decision(row) == (16.0, 12.0, 4.0, 33.33, "CRITICAL", True, 100)
    assert row["threshold_warning"] == 15.0 and row["threshold_critical"] == 25.0
    assert (row["alert_type"], row["metric_name"], row["scope"]) == (
        "retention_status_degradation", "at_risk_pct", "global"
    )  # fmt: skip


def test_chart_series_reads_stored_days_and_computes_only_the_missing_ones(
    load_orders, settings, monkeypatch
):
    # the population above: AT_RISK % on F+33 .. F+40 = 10, 11, 11, 12, 12, 13, 15, 16
    groups = [(10, (0,)), (1, (0, 3)), (1, (0, 5)), (1, (0, 7)), (2, (0, 8)), (1, (0, 9)),
              (84, (0, 30))]  # fmt: skip
    warehouse = load_orders(population(groups))
    # the daily runs of F+33..F+36 stored every day up to F+36 (a run stores the history up
    # to its date), not F+37..F+40
    for offset in (33, 34, 35, 36):
        detection.run_detection(warehouse, settings, F + dt.timedelta(days=offset))
    calls = []
    query = warehouse.query
    monkeypatch.setattr(
        warehouse, "query", lambda name, params: calls.append((name, params)) or query(name, params)
    )
    series = detection.chart_series(warehouse, settings, on(33), on(40))
    assert [r["current_value"] for r in series] == [10.0, 11.0, 11.0, 12.0, 12.0, 13.0, 15.0, 16.0]
    # one read of the stored days, then one SQL5 call spanning the missing F+37 .. F+40
    read, sql5 = "detection/read_alert_decision", "detection/05_alert_logic"
    assert [name for name, _ in calls] == [read, sql5]
    assert (calls[1][1]["from_date"], calls[1][1]["run_date"]) == (F + dt.timedelta(days=37), D40)
    # the missing days are what SQL5 gives for them: F+40 is the CRITICAL day worked out above
    assert decision(series[-1]) == (16.0, 12.0, 4.0, 33.33, "CRITICAL", True, 100)
    assert series == detection.alert_series(warehouse, settings, on(33), on(40))

    # once every day is stored, the chart is one read and no SQL5; a stored day is taken as
    # stored (here altered by hand to 99.0, which no computation would give)
    for offset in (37, 39, 40):
        detection.run_detection(warehouse, settings, F + dt.timedelta(days=offset))
    warehouse.con.execute(
        "update alert_logic set current_value = 99 where alert_date = ?", [plus(35)]
    )
    calls.clear()
    series = detection.chart_series(warehouse, settings, on(33), on(40))
    assert [name for name, _ in calls] == [read]
    assert [r["current_value"] for r in series] == [10.0, 11.0, 99.0, 12.0, 12.0, 13.0, 15.0, 16.0]
    # days before the first order have no row, stored or computed
    early = detection.chart_series(warehouse, settings, on(-3), on(1))
    assert [r["alert_date"] for r in early] == [plus(0), plus(1)]


def test_sql5_span_window_keeps_the_oldest_order_the_baseline_needs(load_orders, settings):
    # SQL5 reads spans only from orders of D - 7 - 90 .. D (default settings). D = F+120:
    # "edge" last ordered on D-97 = F+23, so it is AT_RISK on D-7 (90 days) and INACTIVE
    # from D-6; "old" last ordered on D-98 = F+22: INACTIVE on every day D-7 .. D. The 8
    # others ordered on F+23 and F+100: ACTIVE on D-7 .. D (13 .. 20 days).
    day = F + dt.timedelta(days=120)
    rows = [("edge", "e1", plus(23), 10), ("old", "o1", plus(22), 10)]
    rows += population([(8, (23, 100))])
    warehouse = load_orders(rows)
    row = detection.run_detection(warehouse, settings, day)
    # D-7: 1 of 10 AT_RISK = 10.00 %; D-6 .. D-1: 0.00 % -> baseline (10 + 6 x 0) / 7 = 10 / 7
    # D: 0.00 %; delta -10 / 7; relative (0 / (10/7) - 1) x 100 = -100.00 -> INFO
    assert decision(row) == (0.0, pytest.approx(10 / 7), pytest.approx(-10 / 7), -100.0,
                             "INFO", False, 10)  # fmt: skip
    # the same date inside a longer range (its window starts earlier) gives the same row
    assert detection.alert_series(warehouse, settings, on(100), day)[-1] == row


def test_sql5_baseline_uses_rounded_daily_values(load_orders, settings):
    # N = 3: one AT_RISK from F+31, one from F+40, one ACTIVE until F+60
    warehouse = load_orders(population([(1, (0,)), (1, (0, 9)), (1, (0, 30))]))
    row = detection.run_detection(warehouse, settings, D40)
    # previous days: 1/3 = 33.333.. -> 33.33 each; baseline 7 * 33.33 / 7 = 33.33
    # current 2/3 -> 66.67; delta 66.67 - 33.33 = 33.34;
    # relative (66.67 / 33.33 - 1) * 100 = 100.030003.. -> 100.03 (with unrounded values
    # it would be exactly 100.00); CRITICAL, but 3 < 100 customers -> no alert
    assert decision(row) == (66.67, 33.33, 33.34, 100.03, "CRITICAL", False, 3)


@pytest.mark.parametrize(
    ("jumpers", "expected"),
    [
        # baseline 20 of 100 = 20.00 on each previous day; current (20 + jumpers) %
        (2, (22.0, 20.0, 2.0, 10.0, "INFO", False, 100)),  # 2/20 = 10.00
        (3, (23.0, 20.0, 3.0, 15.0, "WARNING", True, 100)),  # 3/20 = 15.00 exactly
        (4, (24.0, 20.0, 4.0, 20.0, "WARNING", True, 100)),  # 4/20 = 20.00
        (5, (25.0, 20.0, 5.0, 25.0, "CRITICAL", True, 100)),  # 5/20 = 25.00 exactly
    ],
)
def test_sql5_severity_at_default_thresholds(load_orders, settings, jumpers, expected):
    # 20 customers AT_RISK from F+31; `jumpers` from F+40 (= D); the rest ACTIVE until F+60
    groups = [(20, (0,)), (jumpers, (0, 9)), (80 - jumpers, (0, 30))]
    warehouse = load_orders(population(groups))
    assert decision(detection.run_detection(warehouse, settings, D40)) == expected


@pytest.mark.parametrize(
    ("jumpers", "expected"),
    [
        # same inputs, thresholds 15.01 / 25.01: 15.00 is just below WARNING,
        # 25.00 just below CRITICAL
        (3, (23.0, 20.0, 3.0, 15.0, "INFO", False, 100)),
        (5, (25.0, 20.0, 5.0, 25.0, "WARNING", True, 100)),
    ],
)
def test_sql5_severity_just_below_thresholds_from_settings(
    load_orders, settings, jumpers, expected
):
    groups = [(20, (0,)), (jumpers, (0, 9)), (80 - jumpers, (0, 30))]
    warehouse = load_orders(population(groups))
    custom = with_settings(settings, threshold_warning_pct=15.01, threshold_critical_pct=25.01)
    row = detection.run_detection(warehouse, custom, D40)
    assert decision(row) == expected
    assert (row["threshold_warning"], row["threshold_critical"]) == (15.01, 25.01)


def test_sql5_alert_needs_100_customers(load_orders, settings):
    # 99 customers: 20 AT_RISK before D, 23 on D (same jump as the 100-customer case)
    warehouse = load_orders(population([(20, (0,)), (3, (0, 9)), (76, (0, 30))]))
    row = detection.run_detection(warehouse, settings, D40)
    # previous days 20/99 = 20.2020.. -> 20.20; current 23/99 = 23.2323.. -> 23.23
    # delta 3.03; relative 3.03 / 20.20 * 100 = 15.00 -> WARNING, but 99 < 100: no alert
    assert decision(row) == (23.23, 20.2, 3.03, 15.0, "WARNING", False, 99)
    # with min_sample_size 99 the same decision alerts
    custom = with_settings(settings, min_sample_size=99)
    assert detection.run_detection(warehouse, custom, D40)["alert_flag"] is True


def test_sql5_zero_baseline(load_orders, settings):
    # nobody AT_RISK on F+33..F+39; 10 of 100 AT_RISK from F+40
    warehouse = load_orders(population([(10, (0, 9)), (90, (0, 30))]))
    row = detection.run_detection(warehouse, settings, D40)
    # baseline 0.00 -> delta 10.00 - 0 = 10.00, relative NULL, INFO, no alert
    assert decision(row) == (10.0, 0.0, 10.0, None, "INFO", False, 100)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # 32 AT_RISK before D, +1 on D: relative 1/32 * 100 = 3.125 -> 3.13
        ([(32, (0,)), (1, (0, 9)), (67, (0, 30))], (33.0, 32.0, 1.0, 3.13, "INFO", False, 100)),
        # 32 AT_RISK before D (one reorders on D): 31 on D: -3.125 -> -3.13 (away from zero)
        (
            [(31, (0,)), (1, (0, 40)), (68, (0, 30))],
            (31.0, 32.0, -1.0, -3.13, "INFO", False, 100),
        ),
    ],
)
def test_sql5_relative_delta_rounds_half_away_from_zero(load_orders, settings, groups, expected):
    warehouse = load_orders(population(groups))
    assert decision(detection.run_detection(warehouse, settings, D40)) == expected


# --------------------------------------------------------------------------------------
# Order independence and consistency on a seeded random-ish data set
# --------------------------------------------------------------------------------------


def random_orders(seed: int = 20240601, customers: int = 80):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        day = int(rng.integers(0, 150))
        for k in range(int(rng.integers(1, 9))):
            if k:
                day += int(rng.geometric(1 / 25)) - 1  # gap >= 0: same-day orders happen
            amount = round(float(rng.uniform(5, 200)), 2)
            rows.append((f"r{c:03d}", f"r{c:03d}-{k}", plus(day), amount))
    return rows


def spec_share(orders, day: dt.date, active_days: int = 30, at_risk_days: int = 90):
    """(sample_size, AT_RISK share in basis points, half away from zero) straight from SQL2."""
    last: dict[str, dt.date] = {}
    for customer, _, order_date, _ in orders:
        od = dt.date.fromisoformat(order_date)
        if od <= day and (customer not in last or od > last[customer]):
            last[customer] = od
    at_risk = sum(active_days < (day - od).days <= at_risk_days for od in last.values())
    return len(last), _round_half_up(Fraction(10000 * at_risk, len(last)))


def test_order_independence(load_orders, settings):
    orders = random_orders()
    assert 250 <= len(orders) <= 500
    days = [F + dt.timedelta(days=150 + i) for i in range(12)]

    warehouse = load_orders(orders)
    forward = {d.isoformat(): detection.run_detection(warehouse, settings, d) for d in days}
    warehouse = load_orders(orders)
    backward = {
        d.isoformat(): detection.run_detection(warehouse, settings, d) for d in reversed(days)
    }
    series = {
        r["alert_date"]: r for r in detection.alert_series(warehouse, settings, days[0], days[-1])
    }
    assert list(series) == [d.isoformat() for d in days]
    assert forward == backward == series


def test_snapshot_share_equals_sql5_current_value(load_orders, settings):
    orders = random_orders()
    warehouse = load_orders(orders)
    for offset in (20, 60, 100, 131, 170, 200, 260):
        day = F + dt.timedelta(days=offset)
        row = detection.run_detection(warehouse, settings, day)
        total, at_risk = warehouse.con.execute(
            "select count(*), count(*) filter (where retention_status = 'AT_RISK') "
            "from retention_snapshot where snapshot_date = ?",
            [day],
        ).fetchone()
        # share in percent to 2 decimals, half away from zero, from the SQL2 table
        share = _round_half_up(Fraction(10000 * at_risk, total)) / 100
        assert (row["current_value"], row["sample_size"]) == (share, total), day
        # and from the orders themselves, independently of the SQL
        assert spec_share(orders, day) == (total, round(share * 100)), day


def test_sql5_series_matches_a_reference_of_the_spec(load_orders, settings):
    orders = random_orders(seed=7)
    warehouse = load_orders(orders)
    first = min(dt.date.fromisoformat(o[2]) for o in orders)
    end = first + dt.timedelta(days=240)
    rows = detection.alert_series(warehouse, settings, first, end)
    assert len(rows) == 241
    for row in rows:
        day = dt.date.fromisoformat(row["alert_date"])
        size, current_bp = spec_share(orders, day)
        assert (row["sample_size"], row["current_value"]) == (size, current_bp / 100), day
        if day - dt.timedelta(days=7) < first:
            assert row["baseline_value"] is None, day
            continue
        previous = [spec_share(orders, day - dt.timedelta(days=k))[1] for k in range(1, 8)]
        mean_pct = Fraction(sum(previous), 7) / 100
        # the spec states no rounding of the mean itself: allow the 2-decimal rounding
        assert row["baseline_value"] == pytest.approx(float(mean_pct), abs=0.005), day


def test_snapshot_share_equals_sql5_with_other_status_thresholds(load_orders, settings):
    orders = random_orders(seed=11)
    warehouse = load_orders(orders)
    custom = with_settings(settings, active_days=10, at_risk_days=40)
    for offset in (45, 90, 140, 190):
        day = F + dt.timedelta(days=offset)
        row = detection.run_detection(warehouse, custom, day)
        # same rule as above with 10 / 40: the SQL2 table and SQL5 must agree
        assert spec_share(orders, day, 10, 40) == (
            row["sample_size"],
            round(row["current_value"] * 100),
        ), day
        (at_risk,) = warehouse.con.execute(
            "select count(*) from retention_snapshot "
            "where snapshot_date = ? and retention_status = 'AT_RISK'",
            [day],
        ).fetchone()
        total = row["sample_size"]
        assert row["current_value"] == _round_half_up(Fraction(10000 * at_risk, total)) / 100


def test_rerunning_a_date_replaces_its_rows(load_orders, settings):
    warehouse = load_orders(population([(20, (0,)), (3, (0, 9)), (77, (0, 30))]))
    first = detection.run_detection(warehouse, settings, D40)
    dump = table_dump(warehouse, D40)
    assert detection.run_detection(warehouse, settings, D40) == first
    assert table_dump(warehouse, D40) == dump  # no duplicated rows
    assert len(dump["alert_logic"]) == 1 and len(dump["retention_snapshot"]) == 100


def test_sql5_deltas_use_the_unrounded_seven_day_mean(load_orders, settings):
    # N = 159: 70 AT_RISK from F+31, +1 from F+37, +10 from F+40 (= D), 78 ACTIVE to F+60
    groups = [(70, (0,)), (1, (0, 6)), (10, (0, 9)), (78, (0, 30))]
    warehouse = load_orders(population(groups))
    row = detection.run_detection(warehouse, settings, D40)
    # daily values: 70/159 = 44.025..% -> 44.03 (F+33..F+36), 71/159 = 44.654..% -> 44.65
    # (F+37..F+39), D: 81/159 = 50.943..% -> 50.94
    assert row["current_value"] == 50.94
    # mean = (4 * 44.03 + 3 * 44.65) / 7 = 310.07 / 7 = 44.295714..
    assert row["baseline_value"] == pytest.approx(310.07 / 7, abs=1e-9)
    # delta = 50.94 - 310.07 / 7 = 46.51 / 7 = 6.644285..
    assert row["delta_pct"] == pytest.approx(46.51 / 7, abs=1e-9)
    # relative = (50.94 * 7 / 310.07 - 1) * 100 = 4651 / 31007 * 100 = 14.99983.. -> 15.00
    # -> WARNING, and 159 >= 100 customers -> alert
    assert (row["delta_relative_pct"], row["severity"], row["alert_flag"]) == (
        15.0,
        "WARNING",
        True,
    )
