"""The stored alert history (SQL5's row of every date) grows incrementally and stays exact.

A detection run or an incident read extends the stored history only past its coverage (the
history marker of the current settings). These tests build it in a shuffled order of dates,
with reruns and backfills, then after a load that changes past orders and after a change of
settings, and compare every date of the sample with the from-scratch computation
(``detection.alert_series``, one SQL5 pass that stores nothing).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from retentionops import detection
from retentionops.detection import extend_history, history_covered_to, jsonable

FIRST, LAST = dt.date(2010, 12, 1), dt.date(2011, 12, 9)
D = dt.date


def stored(warehouse) -> list[dict]:
    cursor = warehouse.con.execute("select * from alert_logic order by alert_date")
    names = [c[0] for c in cursor.description]
    return [jsonable(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def from_scratch(warehouse, settings) -> list[dict]:
    return detection.alert_series(warehouse, settings, FIRST, LAST)


@pytest.fixture
def sample(sample_settings):
    from retentionops.warehouse import open_warehouse

    with open_warehouse(sample_settings) as warehouse:
        yield warehouse


def test_shuffled_runs_reruns_and_backfills_give_the_from_scratch_history(sample, settings):
    assert history_covered_to(sample, settings) is None
    # hand-worked: each call computes exactly the dates after the coverage, or nothing
    assert extend_history(sample, settings, D(2011, 1, 15)) == dt.date.min  # fresh: all
    assert history_covered_to(sample, settings) == D(2011, 1, 15)
    assert extend_history(sample, settings, D(2011, 1, 10)) is None  # a backfill: stored
    assert extend_history(sample, settings, D(2011, 1, 15)) is None  # a rerun: stored
    assert extend_history(sample, settings, D(2011, 1, 16)) == D(2011, 1, 16)  # one day
    assert extend_history(sample, settings, D(2011, 5, 13)) == D(2011, 1, 17)
    # detection runs (SQL1-SQL4 + the history) in a shuffled order of dates
    days = [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    for day in random.Random(15).sample(days, 12):
        detection.run_detection(sample, settings, day)
    detection.run_detection(sample, settings, D(2011, 5, 13))  # a rerun keeps the coverage
    extend_history(sample, settings, LAST)
    assert history_covered_to(sample, settings) == LAST

    expected = from_scratch(sample, settings)
    assert len(expected) == 374
    assert stored(sample) == expected


def test_a_load_that_changes_past_orders_recomputes_from_the_changed_date(
    sample, settings, sample_orders
):
    for day in (D(2011, 3, 1), D(2011, 6, 1), LAST):
        extend_history(sample, settings, day)
    before = {row["alert_date"]: row for row in stored(sample)}
    # the orders of 2011-06-15 disappear (a corrected extract): the changed date
    changed = sample_orders[sample_orders["order_date"] != D(2011, 6, 15)]
    assert len(changed) < len(sample_orders)
    assert sample.replace_orders(changed) == D(2011, 6, 15)
    # markers from 06-15 on are gone: the coverage falls back to the 06-01 extension
    assert history_covered_to(sample, settings) == D(2011, 6, 1)
    assert extend_history(sample, settings, LAST) == D(2011, 6, 2)

    expected = from_scratch(sample, settings)
    assert stored(sample) == expected
    after = {row["alert_date"]: row for row in expected}
    assert all(after[d] == before[d] for d in after if d < "2011-06-15")  # kept as they were
    assert any(after[d] != before[d] for d in after if d >= "2011-06-15")  # the change shows


def test_a_settings_change_recomputes_everything_and_switching_back_does_too(sample, settings):
    from retentionops.settings import load_settings

    tighter = load_settings(threshold_warning_pct=5.0, baseline_days=14)
    assert detection.history_marker(tighter) != detection.history_marker(settings)
    extend_history(sample, settings, LAST)
    assert history_covered_to(sample, tighter) is None  # other settings: nothing stored
    assert extend_history(sample, tighter, LAST) == dt.date.min
    assert stored(sample) == from_scratch(sample, tighter)
    assert stored(sample) != from_scratch(sample, settings)  # the settings matter
    # the rows now hold the tighter history: the first settings' coverage is gone with it
    assert history_covered_to(sample, settings) is None
    assert extend_history(sample, settings, D(2011, 9, 9)) == dt.date.min
    assert [r for r in stored(sample) if r["alert_date"] <= "2011-09-09"] == [
        r for r in from_scratch(sample, settings) if r["alert_date"] <= "2011-09-09"
    ]


def test_the_daily_sql5_from_the_snapshot_gives_the_orders_based_row_on_every_date(
    sample, settings
):
    """``05_alert_logic_daily`` (a daily run: the date from SQL2's snapshot, the baseline
    from the stored rows) against the orders-based pass, on every date of the sample: the
    warm-up days, the quiet days and the alert days alike."""
    from retentionops.detection import ALERT_DAILY_STEP, DETECTION_STEPS, run_step

    expected = {row["alert_date"]: row for row in from_scratch(sample, settings)}
    extend_history(sample, settings, LAST)  # the rows the daily runs of every date stored
    base, snapshot = DETECTION_STEPS[:2]
    days = [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    severities = set()
    for day in days:
        run_step(sample, settings, base, day)
        run_step(sample, settings, snapshot, day)
        rows = sample.query(ALERT_DAILY_STEP.sql_name, ALERT_DAILY_STEP.parameters(settings, day))
        assert [jsonable(row) for row in rows] == [expected[day.isoformat()]], day
        severities.add((rows[0]["severity"], rows[0]["baseline_value"] is None))
    # the comparison covered warm-up (no baseline), quiet and alerting days
    assert {("INFO", True), ("INFO", False), ("CRITICAL", False)} <= severities
    # a date before the first order: no customer in the snapshot, no row (as from the orders)
    before = FIRST - dt.timedelta(days=1)
    run_step(sample, settings, base, before)
    run_step(sample, settings, snapshot, before)
    assert (
        sample.query(ALERT_DAILY_STEP.sql_name, ALERT_DAILY_STEP.parameters(settings, before)) == []
    )


def test_a_week_of_daily_runs_reads_no_orders_for_sql5_and_stores_the_same_rows(
    sample, settings, monkeypatch
):
    from retentionops.detection import ALERT_DAILY_STEP, ALERT_STEP

    extend_history(sample, settings, D(2011, 5, 9))
    ran = []
    replace = type(sample).replace_partition

    def spy(self, sql_name, **kwargs):
        ran.append((sql_name, kwargs["params"]["from_date"], kwargs["params"]["run_date"]))
        return replace(self, sql_name, **kwargs)

    monkeypatch.setattr(type(sample), "replace_partition", spy)
    week = [D(2011, 5, 10) + dt.timedelta(days=n) for n in range(7)]
    for day in week:
        detection.run_detection(sample, settings, day)
    sql5 = [entry for entry in ran if entry[0].startswith("detection/05")]
    assert sql5 == [(ALERT_DAILY_STEP.sql_name, day, day) for day in week]
    # a rerun of a stored date computes nothing; a gap of two days takes the orders-based
    # pass for both missing dates
    ran.clear()
    detection.run_detection(sample, settings, D(2011, 5, 12))
    detection.run_detection(sample, settings, D(2011, 5, 18))
    assert [e for e in ran if e[0].startswith("detection/05")] == [
        (ALERT_STEP.sql_name, D(2011, 5, 17), D(2011, 5, 18))
    ]
    assert [r for r in stored(sample) if r["alert_date"] <= "2011-05-18"] == [
        r for r in from_scratch(sample, settings) if r["alert_date"] <= "2011-05-18"
    ]
