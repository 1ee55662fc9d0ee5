"""Can a run trust its orders? include/sql/detection/orders_freshness.sql on a hand-made feed.

Five weeks from Monday 2011-01-03 to Friday 2011-02-04: 10 orders on every weekday, 4 on
Sundays, none on Saturdays (no Saturday trading, as in the sample). Tuesday 2011-01-25 is a
promotion (50 orders), Tuesday 2011-02-01 has 8 and Thursday 2011-02-03 only 2.
Default settings: no trading day may be missing, short below 50 % of the same weekday's
usual (the mean of 1-4 weeks before without the highest and lowest week), high above 300 %.
"""

from __future__ import annotations

import datetime as dt

import pytest

from retentionops import freshness
from retentionops.settings import load_settings

START, END = dt.date(2011, 1, 3), dt.date(2011, 2, 4)
SPECIAL = {dt.date(2011, 1, 25): 50, dt.date(2011, 2, 1): 8, dt.date(2011, 2, 3): 2}


def orders_of(day: dt.date) -> int:
    if day in SPECIAL:
        return SPECIAL[day]
    return {5: 0, 6: 4}.get(day.weekday(), 10)


@pytest.fixture
def feed(load_orders):
    rows, day = [], START
    while day <= END:
        rows += [(f"c{n}", f"{day}-{n}", day.isoformat(), 10) for n in range(orders_of(day))]
        day += dt.timedelta(days=1)
    return load_orders(rows)


def judged(warehouse, day: str, **overrides) -> dict:
    return freshness.orders_freshness(
        warehouse, load_settings(**overrides), dt.date.fromisoformat(day)
    )


def test_the_feed_reaching_the_date_is_fresh_and_a_saturday_without_trading_too(feed):
    friday = judged(feed, "2011-02-04")
    assert (friday["status"], friday["lag_days"], friday["orders_on_day"]) == ("fresh", 0, 10)
    assert (friday["usual_orders"], friday["volume"], friday["trusted"]) == (10.0, "normal", True)
    saturday = judged(feed, "2011-02-05")  # the feed ends Friday; nobody trades on Saturdays
    assert (saturday["status"], saturday["lag_days"], saturday["trading_days_missing"]) == (
        "fresh", 1, 0,
    )  # fmt: skip
    assert (saturday["volume"], saturday["trusted"], saturday["note"]) == ("normal", True, None)


def test_a_feed_that_stops_before_a_trading_day_is_late(feed):
    sunday = judged(feed, "2011-02-06")  # Saturday and Sunday missing; Sundays trade
    assert (sunday["status"], sunday["lag_days"], sunday["trading_days_missing"]) == (
        "late", 2, 1,
    )  # fmt: skip
    assert not sunday["trusted"]
    assert sunday["note"] == (
        "data late — orders feed late: last order 2011-02-04, 2 day(s) before 2011-02-06 "
        "(1 trading day(s) missing)"
    )
    monday = judged(feed, "2011-02-07")
    assert (monday["status"], monday["trading_days_missing"]) == ("late", 2)
    # five weeks stuck: still late, whatever SQL5 says of the climbing share
    stuck = judged(feed, "2011-03-11")
    assert (stuck["status"], stuck["lag_days"], stuck["trading_days_missing"]) == (
        "late", 35, 30,
    )  # fmt: skip
    # the allowed lag is a setting: one missing trading day is then not late, but the
    # Sunday has no orders against a usual 4: short, so still not trusted
    allowed = judged(feed, "2011-02-06", orders_max_lag_days=1)
    assert (allowed["status"], allowed["volume"], allowed["trusted"]) == ("fresh", "low", False)
    assert allowed["note"] == "data short: 0 orders on 2011-02-06 against a usual 4 on Sundays"


def test_a_short_day_is_not_trusted_and_one_promotion_does_not_make_a_month_short(feed):
    thursday = judged(feed, "2011-02-03")  # 2 against the usual 10 (under 50 %)
    assert (thursday["status"], thursday["volume"], thursday["trusted"]) == (
        "fresh", "low", False,
    )  # fmt: skip
    assert thursday["note"] == "data short: 2 orders on 2011-02-03 against a usual 10 on Thursdays"
    # Tuesdays 1-4 weeks before 02-01: 50 (the promotion), 10, 10, 10; without the highest
    # and lowest week the usual is 10, and 8 is normal (the plain mean, 20, would call it low)
    tuesday = judged(feed, "2011-02-01")
    assert (tuesday["usual_orders"], tuesday["volume"], tuesday["trusted"]) == (
        10.0, "normal", True,
    )  # fmt: skip
    # the promotion itself: 50 against 10 is high, which is said but not held
    promotion = judged(feed, "2011-01-25")
    assert (promotion["volume"], promotion["trusted"]) == ("high", True)
    assert promotion["note"].startswith("orders high: 50 orders on 2011-01-25")
    # the first week has no earlier week to compare with: normal
    assert judged(feed, "2011-01-05")["usual_orders"] is None
    assert judged(feed, "2011-01-05")["volume"] == "normal"
    # 0 turns the volume check off
    assert judged(feed, "2011-02-03", orders_volume_low_pct=0)["trusted"] is True


def test_no_orders_at_all_is_missing(warehouse):
    warehouse.ensure_tables(("cohort_activity",))
    data = freshness.orders_freshness(warehouse, load_settings(), dt.date(2011, 2, 4))
    assert (data["status"], data["orders_last_date"], data["trusted"]) == ("missing", None, False)
    assert data["note"].startswith("data late: the warehouse holds no orders")
