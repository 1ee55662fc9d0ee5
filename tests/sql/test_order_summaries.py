"""The orders' summaries (``first_orders``, ``cohort_activity``) that SQL4 and SQL5 read.

Every load keeps them in the same transaction as the orders, recomputing only the months
from its ``changed_from`` on. These tests check them against a plain-Python count of the
orders (hand-worked for a small case, then after every load of a random sequence of
changes), SQL4 and SQL5 against the orders themselves, and the two ways a warehouse can be
without them: orders written by another writer, and a warehouse older than them.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter

import pytest
from support import make_orders

from retentionops import detection

D = dt.date


def month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def expected_summaries(rows) -> tuple[dict, dict]:
    """First order per customer and the cohort activity, counted from the order rows:
    (cohort, day) -> (customers whose first order of that month is that day, orders)."""
    first: dict[str, dt.date] = {}
    first_in_month: dict[tuple[str, dt.date], dt.date] = {}
    for customer, _, day, _ in rows:
        day = D.fromisoformat(day)
        first[customer] = min(first.get(customer, day), day)
        key = (customer, month(day))
        first_in_month[key] = min(first_in_month.get(key, day), day)
    activity: dict[tuple, list] = {}
    for customer, _, day, _ in rows:
        day = D.fromisoformat(day)
        activity.setdefault((month(first[customer]), day), [0, 0])[1] += 1
    for (customer, _), day in first_in_month.items():
        activity[(month(first[customer]), day)][0] += 1
    return first, {key: tuple(value) for key, value in activity.items()}


def stored_summaries(warehouse) -> tuple[dict, dict]:
    first = dict(warehouse.con.execute("select customer_id, first_order_date from first_orders")
                 .fetchall())  # fmt: skip
    activity = {}
    for cohort, day, *counts in warehouse.con.execute(
        "select cohort_month, activity_date, customers, orders from cohort_activity"
    ).fetchall():
        assert (cohort, day) not in activity, "one row per (cohort, day)"
        activity[(cohort, day)] = tuple(counts)
    return first, activity


def cohorts(warehouse, day: dt.date) -> list[tuple]:
    detection.run_step(warehouse, warehouse.settings, detection.DETECTION_STEPS[3], day)
    return warehouse.con.execute(
        "select cohort_month, month_offset, cohort_size, active_customers, retention_rate "
        "from cohort_retention_evolution where snapshot_date = ? order by all",
        [day],
    ).fetchall()


SMALL = [
    ("a", "a1", "2024-01-05", 10),
    ("a", "a2", "2024-01-20", 10),
    ("a", "a3", "2024-03-02", 10),
    ("b", "b1", "2024-01-31", 10),
    ("b", "b2", "2024-02-01", 10),
    ("c", "c1", "2024-02-10", 10),
    ("c", "c2", "2024-02-10", 10),
]


def test_a_load_keeps_the_summaries_hand_worked(load_orders):
    warehouse = load_orders(SMALL)
    first, activity = stored_summaries(warehouse)
    assert first == {"a": D(2024, 1, 5), "b": D(2024, 1, 31), "c": D(2024, 2, 10)}
    jan, feb, mar = D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)
    # (customers whose first order of the month is that day, orders that day)
    assert activity == {
        (jan, D(2024, 1, 5)): (1, 1),  # a's first order
        (jan, D(2024, 1, 20)): (0, 1),  # a again, not its first order of January
        (jan, D(2024, 1, 31)): (1, 1),  # b's first order
        (jan, D(2024, 2, 1)): (1, 1),  # b's first order of February
        (jan, D(2024, 3, 2)): (1, 1),  # a's first order of March
        (feb, D(2024, 2, 10)): (1, 2),  # c: two orders on its first day
    }
    # the orders' range without reading them
    assert warehouse.query("maintenance/orders_range", {}) == [
        {"first_order_date": D(2024, 1, 5), "last_order_date": D(2024, 3, 2), "orders": 7}
    ]
    # SQL4 by hand: on 5 Feb c has not ordered yet and b's February counts
    assert cohorts(warehouse, D(2024, 2, 5)) == [
        (jan, 0, 2, 2, 100),
        (jan, 1, 2, 1, 50),
    ]
    assert cohorts(warehouse, D(2024, 3, 31)) == [
        (jan, 0, 2, 2, 100),
        (jan, 1, 2, 1, 50),
        (jan, 2, 2, 1, 50),
        (feb, 0, 1, 1, 100),
        (feb, 1, 1, 0, 0),
    ]
    # a's first order removed, d new in March: January and later are counted again
    changed = [r for r in SMALL if r[1] != "a1"] + [("d", "d1", "2024-03-15", 5)]
    warehouse.replace_orders(make_orders(changed))
    first, activity = stored_summaries(warehouse)
    assert first == {"a": D(2024, 1, 20), "b": D(2024, 1, 31), "c": D(2024, 2, 10),
                     "d": D(2024, 3, 15)}  # fmt: skip
    assert (jan, D(2024, 1, 5)) not in activity
    assert activity[(jan, D(2024, 1, 20))] == (1, 1)  # now a's first order
    assert activity[(mar, D(2024, 3, 15))] == (1, 1)


def _random_orders(rng: random.Random, customers: int, start: dt.date, days: int) -> list:
    rows = []
    for n in range(customers):
        first = rng.randrange(days)
        for k in range(rng.randint(1, 6)):
            day = start + dt.timedelta(days=min(days - 1, first + rng.randrange(0, 90)))
            rows.append((f"c{n:02d}", f"c{n:02d}-{k}", day.isoformat(), 1 + k))
    return rows


def _change(rng: random.Random, rows: list, start: dt.date, days: int) -> list:
    """One random change of the orders: some removed, moved, added, a customer gone."""
    rows = list(rows)
    kind = rng.choice(["remove", "move", "add", "drop_customer", "early_customer"])
    if kind == "remove" and len(rows) > 1:
        rows.pop(rng.randrange(len(rows)))
    elif kind == "move":
        i = rng.randrange(len(rows))
        day = start + dt.timedelta(days=rng.randrange(days))
        rows[i] = (*rows[i][:2], day.isoformat(), rows[i][3])
    elif kind == "drop_customer":
        gone = rng.choice(rows)[0]
        rows = [r for r in rows if r[0] != gone] or rows
    else:
        n = rng.getrandbits(40)  # a new order id
        when = rng.randrange(20 if kind == "early_customer" else days)
        customer = rng.choice(rows)[0] if kind == "add" else f"new{n}"
        day = start + dt.timedelta(days=when)
        rows.append((customer, f"x{n}", day.isoformat(), 3))
    return rows


def test_every_load_of_a_random_sequence_leaves_the_counts_of_its_orders(load_orders):
    rng = random.Random(2024)
    start, days = D(2024, 1, 1), 150
    rows = _random_orders(rng, 25, start, days)
    warehouse = load_orders(rows)
    assert stored_summaries(warehouse) == expected_summaries(rows)
    changed_from = []
    for _ in range(25):
        rows = _change(rng, rows, start, days)
        changed_from.append(warehouse.replace_orders(make_orders(rows)))
        assert stored_summaries(warehouse) == expected_summaries(rows)
    # the sequence exercised incremental refreshes, not only rebuilds of everything
    assert len({month(day) for day in changed_from if day}) >= 4


def test_sql4_and_sql5_count_what_the_orders_say_on_the_sample(sample_settings, sample_orders):
    """On the bundled sample, for dates across the year: SQL4's cohort sizes and activity,
    and SQL5's sample size, counted again in pandas from the orders up to the date."""
    from retentionops.warehouse import open_warehouse

    orders = sample_orders[["customer_id", "order_date"]].copy()
    orders["order_date"] = orders["order_date"].map(
        lambda v: v if isinstance(v, dt.date) else v.date()
    )
    with open_warehouse(sample_settings) as warehouse:
        for day in (D(2010, 12, 1), D(2011, 2, 14), D(2011, 5, 13), D(2011, 12, 9)):
            upto = orders[orders["order_date"] <= day]
            first = upto.groupby("customer_id")["order_date"].min().map(month)
            pairs = upto.assign(m=upto["order_date"].map(month))[["customer_id", "m"]]
            pairs = pairs.drop_duplicates()
            pairs["cohort"] = pairs["customer_id"].map(first)
            active = Counter(
                (c, (m.year - c.year) * 12 + m.month - c.month)
                for c, m in zip(pairs["cohort"], pairs["m"], strict=True)
            )
            sizes = Counter(first)
            got = cohorts(warehouse, day)
            assert got, day
            for cohort, offset, size, active_customers, _ in got:
                assert size == sizes[cohort]
                assert active_customers == active[(cohort, offset)]
            assert sum(r[2] for r in got if r[1] == 0) == upto["customer_id"].nunique()
            [row] = detection.alert_series(warehouse, warehouse.settings, day, day)
            assert row["sample_size"] == upto["customer_id"].nunique()


def test_orders_written_by_another_writer_are_caught_and_summarised_again(load_orders, caplog):
    warehouse = load_orders(SMALL)
    settings = warehouse.settings
    detection.run_detection(warehouse, settings, D(2024, 3, 31))
    assert detection.history_covered_to(warehouse, settings) == D(2024, 3, 31)
    # another writer adds a customer without the loader: the summaries do not know e
    warehouse.con.execute("insert into orders values ('e', 'e1', date '2024-01-10', 7, 'UK')")
    with caplog.at_level(logging.WARNING, logger="retentionops.detection"):
        detection.run_detection(warehouse, settings, D(2024, 3, 31))
    assert (
        "count 3 customers and 7 orders up to 2024-03-31 where the orders have 4 customers "
        "and 8 orders" in caplog.text
    )
    rows = [*SMALL, ("e", "e1", "2024-01-10", 7)]
    assert stored_summaries(warehouse) == expected_summaries(rows)
    # the alert history was computed again from the rebuilt summaries
    stored = warehouse.con.execute(
        "select sample_size from alert_logic where alert_date = date '2024-03-31'"
    ).fetchone()
    assert stored == (4,)
    assert cohorts(warehouse, D(2024, 3, 31))[0] == (D(2024, 1, 1), 0, 3, 3, 100)
    # a repeat order of a known customer (no new customer): the order count tells
    warehouse.con.execute("insert into orders values ('b', 'b3', date '2024-03-20', 7, 'UK')")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="retentionops.detection"):
        detection.run_detection(warehouse, settings, D(2024, 3, 31))
    assert (
        "4 customers and 8 orders up to 2024-03-31 where the orders have 4 customers and 9"
        in caplog.text
    )
    rows.append(("b", "b3", "2024-03-20", 7))
    assert stored_summaries(warehouse) == expected_summaries(rows)
    # January's cohort (a, b, e) in March: a and now b
    assert (D(2024, 1, 1), 2, 3, 2, 66.67) in cohorts(warehouse, D(2024, 3, 31))


def test_a_warehouse_older_than_the_summaries_gets_them_when_it_is_opened(load_orders, settings):
    from retentionops.warehouse import open_warehouse

    warehouse = load_orders(SMALL)
    warehouse.con.execute("drop table cohort_activity")
    warehouse.con.execute("drop table first_orders")
    warehouse.close()
    with open_warehouse(settings) as reopened:  # opening it for writing is enough
        assert stored_summaries(reopened) == expected_summaries(SMALL)
    # and a detection run of the upgraded warehouse works (it failed on the missing table)
    warehouse = open_warehouse(settings)
    warehouse.con.execute("drop table cohort_activity")
    warehouse.con.execute("drop table first_orders")
    warehouse.close()
    from retentionops import service

    decision = service.detect(settings, "2024-03-31")
    assert decision["sample_size"] == 3


@pytest.mark.parametrize("empty_first", [True, False])
def test_emptying_the_orders_empties_the_summaries(load_orders, empty_first):
    warehouse = load_orders(SMALL if empty_first else SMALL[:3])
    warehouse.replace_orders(make_orders([]))
    assert stored_summaries(warehouse) == ({}, {})
