"""Audiences across days (docs/audiences.md) on hand-made queues: the contact cooldown, what
changed since the last delivered run, volume warnings (each incident's holdout:
test_holdouts.py).

Each day's SQL1-SQL3 rows are written by hand (status, risk level, revenue per customer) and
its detection marked complete, then the real queue SQL runs. Settings: P1 = ACTIVE + HIGH
(no revenue filter), P2 = AT_RISK + HIGH or MEDIUM, P3 = INACTIVE + HIGH (no recency cap).
A "delivery" is what the webhook task records: the run's exported rows (audience_exports)
and its row in the deliveries ledger.
"""

from __future__ import annotations

import datetime as dt

import pytest
from support import queue_day_from_rows

from retentionops import actions
from retentionops.service import context as service_context
from retentionops.settings import load_settings

D1, D2, D3 = dt.date(2011, 3, 1), dt.date(2011, 3, 2), dt.date(2011, 3, 3)
AT_RISK, ACTIVE, INACTIVE = ("AT_RISK", "MEDIUM"), ("ACTIVE", "HIGH"), ("INACTIVE", "LOW")


@pytest.fixture
def days(warehouse, settings):
    """write(day, {customer: (status, risk)}, **settings) builds the day's queue."""
    warehouse.ensure_tables()

    def write(day: dt.date, members: dict[str, tuple[str, str]], **overrides) -> dict:
        tuned = load_settings(p1_value_filter=False, p3_recency_cap_days=0, **overrides)
        queue_day_from_rows(warehouse, day, members, tuned)
        return service_context.operational_context(warehouse, tuned, day)

    return write


@pytest.fixture
def deliver(warehouse, settings):
    """deliver(run_id, day, tiers, mode): export the tiers under the run, then record the
    run's delivery in the ledger (what a confirmed webhook call does)."""

    def run(run_id: str, day: dt.date, tiers=("P1", "P2"), mode="production", **overrides):
        tuned = load_settings(p1_value_filter=False, p3_recency_cap_days=0, **overrides)
        exported = {
            tier: [
                r["customer_id"]
                for r in actions.record_audience(warehouse, tuned, day, tier, run_id)
            ]  # fmt: skip
            for tier in tiers
        }
        warehouse.con.execute(
            "insert into deliveries values (?, ?, ?, 'INC-1', 'open', 'WARNING', ?, false, "
            "'RET-1', '1.1', current_timestamp)",
            [f"INC-1:open:{day}:{mode}:{run_id}", run_id, day, mode],
        )
        return exported

    return run


def exported_rows(warehouse, run_id, tier, day=D2):
    keys = {"run_id": run_id, "tiers": [tier], "run_date": day}
    return [
        (r["customer_id"], r["new_in_tier"], r["cooldown_bypass"])
        for r in warehouse.query("action/read_audience", keys)
    ]


def across(context, tier):
    info = context["tiers"][tier]
    keys = ("count", "new", "still", "left", "cooldown_suppressed", "cooldown_bypassed")
    return tuple(info[k] for k in keys)


# Day 1: a, b, c AT_RISK (P2), p ACTIVE + HIGH (P1); delivered (P1 + P2).
# Day 2: a still P2; b ordered again and is now P1 (more urgent than P2); c left (INACTIVE,
# no tier); d is new in P2; p slipped from P1 to P2 (less urgent).
DAY1 = {"a": AT_RISK, "b": AT_RISK, "c": AT_RISK, "p": ACTIVE}
DAY2 = {"a": AT_RISK, "b": ACTIVE, "c": INACTIVE, "d": AT_RISK, "p": AT_RISK}


def test_cooldown_keeps_back_the_delivered_and_lets_an_escalation_through(days, deliver, warehouse):
    days(D1, DAY1)
    assert deliver("r1", D1) == {"P1": ["p"], "P2": ["a", "b", "c"]}
    context = days(D2, DAY2)
    assert context["previous_run_date"] == "2011-03-01"
    # P1 {b}: b is new in P1 (p was there), p left; b was delivered in P2, P1 is more
    # urgent: bypassed. P2 {a, d, p}: d and p new, a still, b and c left; a (delivered in
    # P2) and p (delivered in P1, now less urgent) are kept back.
    assert across(context, "P1") == (1, 1, 0, 1, 0, 1)
    assert across(context, "P2") == (3, 2, 1, 2, 2, 0)
    assert context["tiers"]["P2"]["exportable"] == 1
    deliver("r2", D2)
    assert exported_rows(warehouse, "r2", "P1") == [("b", True, True)]  # marked
    assert exported_rows(warehouse, "r2", "P2") == [("d", True, False)]


def test_without_the_bypass_an_escalation_waits_too(days, deliver, warehouse):
    days(D1, DAY1)
    deliver("r1", D1)
    context = days(D2, DAY2, cooldown_bypass_on_escalation=False)
    assert across(context, "P1") == (1, 1, 0, 1, 1, 0)
    deliver("r2", D2, cooldown_bypass_on_escalation=False)
    assert exported_rows(warehouse, "r2", "P1") == []


def test_no_cooldown_exports_everyone_and_new_only_exports_the_new(days, deliver, warehouse):
    days(D1, DAY1)
    deliver("r1", D1)
    days(D2, DAY2, contact_cooldown_days=0)
    deliver("r2", D2, contact_cooldown_days=0)
    assert [c for c, *_ in exported_rows(warehouse, "r2", "P2")] == ["a", "d", "p"]
    context = days(D2, DAY2, contact_cooldown_days=0, export_mode="new_only")
    assert context["tiers"]["P2"]["exportable"] == 2
    deliver("r3", D2, contact_cooldown_days=0, export_mode="new_only")
    assert exported_rows(warehouse, "r3", "P2") == [("d", True, False), ("p", True, False)]


def test_shadow_deliveries_and_undelivered_exports_are_not_contacts(days, deliver, warehouse):
    days(D1, DAY1)
    deliver("r1", D1, mode="shadow")
    actions.record_audience(warehouse, load_settings(p1_value_filter=False), D1, "P2", "cli-x")
    context = days(D2, DAY2)
    assert context["previous_run_date"] is None  # no delivery reached anyone
    assert across(context, "P2") == (3, 3, 0, 0, 0, 0)  # everyone new, nobody kept back


def test_the_cooldown_window_and_point_in_time(days, deliver, warehouse):
    days(D1, DAY1)
    deliver("r1", D1)
    # a one-day cooldown: day 1's delivery counts on day 2, no longer on day 3
    assert days(D2, DAY2, contact_cooldown_days=1)["tiers"]["P2"]["cooldown_suppressed"] == 2
    day3 = days(D3, DAY2, contact_cooldown_days=1)
    assert day3["tiers"]["P2"]["cooldown_suppressed"] == 0
    # the window bounds the contacts only: day 3 still compares itself with day 1's run,
    # the last delivered one (a, b, c were P2 then: a still, d and p new, b and c left)
    assert day3["previous_run_date"] == "2011-03-01"
    assert across(day3, "P2") == (3, 2, 1, 2, 0, 0)
    # a rebuild of day 1 after day 2 was delivered (day 2 exported b in P1, d in P2):
    # "what changed" still compares with runs before day 1 only (none), but the cooldown
    # counts every delivery already made for a date in its window, day 2's included (runs
    # come late and out of order: a contact is a contact). Day 1's P2 {a, b, c}: b was
    # contacted on day 2 in P1, more urgent than P2: kept back; a and c were not.
    days(D2, DAY2)
    deliver("r2", D2)
    again = days(D1, DAY1)
    assert again["previous_run_date"] is None and across(again, "P2") == (3, 3, 0, 0, 1, 0)
    assert across(again, "P1") == (1, 1, 0, 0, 0, 0)  # p was not contacted on day 2


def test_volume_warnings_against_the_last_delivered_run():
    tiers = {
        "P1": {"count": 0, "previous_count": 5},
        "P2": {"count": 40, "previous_count": 10},
        "P3": {"count": 3, "previous_count": 10},
    }
    assert actions.anomalies(tiers, "2011-03-01", 3.0) == [
        "P1 dropped to zero (was 5 on 2011-03-01)",
        "P2 grew 4.0x: 40 against 10 on 2011-03-01",
        "P3 shrank 3.3x: 3 against 10 on 2011-03-01",
    ]
    # within the factor (30 = 3 x 10 is not more than 3x), or no earlier delivery: nothing
    tiers["P2"]["count"], tiers["P3"]["count"], tiers["P1"]["count"] = 30, 4, 5
    assert actions.anomalies(tiers, "2011-03-01", 3.0) == []
    assert actions.anomalies(tiers, None, 3.0) == []
    assert actions.anomalies({"P3": {"count": 2, "previous_count": 0}}, "2011-03-01", 3.0) == [
        "P3 appeared: 2 against none on 2011-03-01"
    ]
