"""The priority queue, the operational context and the run log on hand-made data.

Run date D = 2011-03-01. Every expected number is worked out below from rules.md:
- p1a: orders 02-01, 02-03, 02-05 (33 each, revenue 99); 24 days since -> ACTIVE;
  gap 2, 24 > 1.5 x 2 (frequency drop) and <= 3 orders (status inconsistent): 70 -> HIGH.
  score = 70 + min(20, 2 ln 100) + min(10, 24/3) = 70 + 9.21034 + 8 = 87.21034
- p1b: orders 02-10, 02-11 (3 each, revenue 6); 18 days -> ACTIVE, same signals, HIGH.
  score = 70 + 2 ln 7 + 18/3 = 70 + 3.89182 + 6 = 79.89182
- p2a: orders 01-01, 01-02 (10 each, revenue 20); 58 days -> AT_RISK; gap 1 -> frequency
  drop only: 50 -> MEDIUM. score = 50 + 2 ln 21 + min(10, 58/3) = 50 + 6.08904 + 10 = 66.08904
- low: one order 01-10 (5): 50 days, AT_RISK, no signal -> LOW, not queued.
- gone: orders 2010-10-01, 10-02 (100 each, revenue 200): 150 days -> INACTIVE; frequency
  drop -> 50 -> MEDIUM: not P3 (INACTIVE + HIGH), which no INACTIVE customer can reach.
- act_low: one order 02-20 (50): 9 days, ACTIVE, <= 3 orders -> 20 -> LOW, not queued.
Revenues 5, 6, 20, 50, 99, 200: median (20 + 50) / 2 = 35.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from retentionops import actions, detection
from retentionops.dates import as_date
from retentionops.service import context as service_context
from retentionops.settings import load_settings

D = "2011-03-01"
DAY = dt.date.fromisoformat(D)
ORDERS = [
    ("p1a", "a1", "2011-02-01", 33), ("p1a", "a2", "2011-02-03", 33),
    ("p1a", "a3", "2011-02-05", 33),
    ("p1b", "b1", "2011-02-10", 3), ("p1b", "b2", "2011-02-11", 3),
    ("p2a", "c1", "2011-01-01", 10), ("p2a", "c2", "2011-01-02", 10),
    ("low", "d1", "2011-01-10", 5),
    ("gone", "e1", "2010-10-01", 100), ("gone", "e2", "2010-10-02", 100),
    ("act_low", "f1", "2011-02-20", 50),
]  # fmt: skip


@pytest.fixture
def detected(load_orders, settings):
    warehouse = load_orders(ORDERS)
    detection.run_detection(warehouse, settings, DAY)
    return warehouse


def queue(warehouse):
    return {
        row[0]: row[1:]
        for row in warehouse.con.execute(
            "select customer_id, priority_tier, priority_score, priority_reason,"
            " recommended_action, value_proxy from customer_priority where run_date = ?",
            [dt.date(2011, 3, 1)],
        ).fetchall()
    }


def test_tiers_scores_reasons_and_actions(detected, settings):
    counts = actions.build_priority_queue(detected, settings, DAY)
    assert counts == {"P1": 2, "P2": 1, "P3": 0}
    rows = queue(detected)
    assert set(rows) == {"p1a", "p1b", "p2a"}  # exactly the customers the tier rules admit
    assert rows["p1a"][0] == "P1" and rows["p1a"][1] == pytest.approx(87.21034, abs=1e-5)
    assert rows["p1b"][1] == pytest.approx(70 + 2 * math.log(7) + 6, abs=1e-9)
    assert rows["p2a"][0] == "P2" and rows["p2a"][1] == pytest.approx(66.08904, abs=1e-5)
    assert rows["p1a"][2] == (
        "ACTIVE + HIGH risk: frequency drop, status inconsistent; "
        "high value (revenue above median), last order 24 days ago"
    )
    assert rows["p2a"][2] == (
        "AT_RISK + MEDIUM risk: frequency drop; standard value, last order 58 days ago"
    )
    assert rows["p1a"][3] == "VIP outreach + light incentive"
    assert rows["p2a"][3] == "Win-back sequence + free shipping / discount"
    assert float(rows["p1a"][4]) == pytest.approx(29.70)  # 0.3 x 99


def test_score_caps(load_orders, settings):
    # 11 orders of 5,000 over 2011-01-01..01-11: revenue 55,000 -> 2 ln(55,001) = 21.8 -> 20;
    # D = 02-06: 26 days, ACTIVE; average gap 10 / 10 = 1, so 26 > 1.5 x 1 (frequency drop)
    # and 26 > 0.7 x 1 (status inconsistent): 70 -> HIGH -> P1; urgency min(10, 26 / 3).
    # Total 70 + 20 + 8.67 = 98.67 (< 100).
    rows = [("rich", f"r{i}", f"2011-01-{i:02d}", 5000) for i in range(1, 12)]
    warehouse = load_orders(rows)
    detection.run_detection(warehouse, settings, dt.date(2011, 2, 6))
    actions.build_priority_queue(warehouse, settings, dt.date(2011, 2, 6))
    (score,) = warehouse.con.execute("select priority_score from customer_priority").fetchone()
    assert score == pytest.approx(70 + 20 + 26 / 3)
    # with a P1 base of 90 the sum (118.67) is capped at 100
    raised = load_settings(duckdb_path=settings.duckdb_path, p1_base_score=90)
    actions.build_priority_queue(warehouse, raised, dt.date(2011, 2, 6))
    (score,) = warehouse.con.execute("select priority_score from customer_priority").fetchone()
    assert score == 100


def test_rerun_replaces_the_date_only(detected, settings):
    actions.build_priority_queue(detected, settings, DAY)
    detection.run_detection(detected, settings, dt.date(2011, 2, 28))
    actions.build_priority_queue(detected, settings, dt.date(2011, 2, 28))
    before = detected.con.execute("select count(*) from customer_priority").fetchone()[0]
    actions.build_priority_queue(detected, settings, DAY)
    after = detected.con.execute(
        "select run_date, count(*) from customer_priority group by 1 order by 1"
    ).fetchall()
    assert sum(n for _, n in after) == before
    assert dict(after)[dt.date(2011, 3, 1)] == 3


def test_p1_value_filter_and_p3_switches(detected, settings):
    filtered = load_settings(duckdb_path=settings.duckdb_path, p1_value_filter=True)
    # p1b's revenue 6 is below the median 35; p1a's 99 is above
    assert actions.build_priority_queue(detected, filtered, DAY)["P1"] == 1
    assert set(queue(detected)) == {"p1a", "p2a"}
    medium_p3 = load_settings(duckdb_path=settings.duckdb_path, p3_risk_levels="HIGH,MEDIUM")
    assert actions.build_priority_queue(detected, medium_p3, DAY)["P3"] == 1  # gone
    capped = load_settings(
        duckdb_path=settings.duckdb_path, p3_risk_levels="MEDIUM", p3_recency_cap_days=120
    )
    assert actions.build_priority_queue(detected, capped, DAY)["P3"] == 0  # 150 days > 120
    context = service_context.operational_context(detected, capped, as_date(D))
    assert context["tiers"]["P3"]["empty_reason"] == (
        "1 inactive customer (last order more than 90 days ago) is at medium churn risk on "
        "2011-03-01, but P3 only takes those who ordered in the last 120 days "
        "(p3_recency_cap_days)"
    )


def test_operational_context(detected, settings):
    actions.build_priority_queue(detected, settings, DAY)
    context = service_context.operational_context(detected, settings, as_date(D))
    assert context["status_distribution"] == {"ACTIVE": 3, "AT_RISK": 2, "INACTIVE": 1}
    assert context["risk_by_status"] == {
        "ACTIVE": {"HIGH": 2, "MEDIUM": 0, "LOW": 1},
        "AT_RISK": {"HIGH": 0, "MEDIUM": 1, "LOW": 1},
        "INACTIVE": {"HIGH": 0, "MEDIUM": 1, "LOW": 0},
    }
    assert {t: v["count"] for t, v in context["tiers"].items()} == {"P1": 2, "P2": 1, "P3": 0}
    assert context["median_total_revenue"] == 35.0
    # in words a retention manager reads, with the numbers, not a formula
    assert context["tiers"]["P3"]["empty_reason"] == (
        "no inactive customer (last order more than 90 days ago) can reach high churn risk "
        "with the current scoring: the most one can score is 50 points (50 for ordering less "
        "often than usual; spending less is not scored yet), and high risk starts at 51 points"
    )
    assert context["tiers"]["P1"]["empty_reason"] is None
    # sample of 6 < 100: no alert, nothing exported
    assert context["exported_tiers"] == [] and context["decision"]["alert_flag"] is False
    assert context["plan"]["branch"] == "no_alert"


def test_the_response_is_due_after_the_start_unless_the_run_is_historical(detected, settings):
    """The run of D the next morning is asked to respond within response_sla_hours (24); a
    backfill of D 9 days later (notify_max_age_days 2) has no deadline."""
    from retentionops.playbook import Delivery

    aged = load_settings(duckdb_path=settings.duckdb_path, notify_max_age_days=2)
    actions.build_priority_queue(detected, aged, DAY)

    def response(*started):
        delivery = Delivery(dt.datetime(*started, tzinfo=dt.UTC))
        return service_context.operational_context(detected, aged, as_date(D), delivery)["response"]

    next_morning = response(2011, 3, 2, 6)
    assert (next_morning["due_at"], next_morning["historical"]) == ("2011-03-03T06:00+00:00", False)
    backfill = response(2011, 3, 10, 6)
    assert (backfill["due_at"], backfill["historical"]) == (None, True)


def test_empty_tier_reason_follows_the_settings(detected):
    heavier = load_settings(  # the weights sum to 100; value drop never fires in v1
        duckdb_path=detected.settings.duckdb_path, weight_frequency_drop=60, weight_value_drop=20
    )
    detection.run_detection(detected, heavier, DAY)
    actions.build_priority_queue(detected, heavier, DAY)
    context = service_context.operational_context(detected, heavier, as_date(D))
    # with 60 points for a frequency drop, INACTIVE + HIGH is reachable and 'gone' is P3
    assert context["tiers"]["P3"]["count"] == 1


def test_the_empty_tier_reason_is_a_sentence_with_its_numbers(detected):
    """What a retention manager reads when a tier is empty: who, what the rules ask, the
    numbers behind it; no formula."""
    lower_bar = load_settings(duckdb_path=detected.settings.duckdb_path, risk_level_high_min=80)
    reason = actions.empty_tier_reason(lower_bar, "P1", {}, dt.date(2011, 3, 1))
    assert reason == (
        "no active customer (last order within 30 days) can reach high churn risk with the "
        "current scoring: the most one can score is 70 points (50 for ordering less often "
        "than usual; 20 for an active customer with few orders whose next one is late; "
        "spending less is not scored yet), and high risk starts at 80 points"
    )
    filtered = load_settings(duckdb_path=detected.settings.duckdb_path, p1_value_filter=True)
    matrix = {"ACTIVE": {"HIGH": 2}, "AT_RISK": {}}
    assert actions.empty_tier_reason(filtered, "P1", matrix, dt.date(2011, 3, 1)) == (
        "2 active customers (last order within 30 days) are at high churn risk on 2011-03-01, "
        "but P1 only takes those with revenue above the median customer's "
        "(p1_value_filter is on)"
    )
    assert actions.empty_tier_reason(filtered, "P2", matrix, dt.date(2011, 3, 1)) == (
        "no at-risk customer (last order 31 to 90 days ago) is at high or medium churn risk "
        "on 2011-03-01"
    )
    for text in (reason, actions.empty_tier_reason(filtered, "P2", matrix, D)):
        assert not set("=<+") & set(text), text


def test_audience_is_ranked_and_limited(detected, settings):
    actions.build_priority_queue(detected, settings, DAY)
    rows = actions.record_audience(detected, settings, DAY, "P1", "run-a")
    assert [r["customer_id"] for r in rows] == ["p1a", "p1b"]  # 87.2 before 79.9
    # the same run exporting again replaces its own record; another run has its own
    again = actions.record_audience(detected, settings, DAY, "P1", "run-a", 1)
    assert [r["customer_id"] for r in again] == ["p1a"]
    assert len(actions.record_audience(detected, settings, DAY, "P1", "run-b")) == 2
    recorded = detected.fetch(
        "select run_id, count(*) as n from audience_exports group by run_id order by run_id"
    )
    assert [(r["run_id"], r["n"]) for r in recorded] == [("run-a", 1), ("run-b", 2)]
    with pytest.raises(ValueError, match="unknown tier 'P4'"):
        actions.record_audience(detected, settings, DAY, "P4", "run-a")


def test_the_tiers_of_a_run_are_recorded_together_each_ranked_and_limited(detected, settings):
    """A DAG run records every tier of its playbook at once (one read of the queue): each
    tier is ranked and cut at the limit on its own, as if it were recorded alone, and a
    retry of the tiers replaces only them."""
    actions.build_priority_queue(detected, settings, DAY)
    together = actions.record_audiences(detected, settings, DAY, ["P2", "P1"], "run-a", 1)
    assert list(together) == ["P2", "P1"]
    assert [r["customer_id"] for r in together["P1"]] == ["p1a"]  # 87.2 before 79.9
    alone = actions.record_audience(detected, settings, DAY, "P2", "run-b", 1)
    assert [r["customer_id"] for r in together["P2"]] == ["p2a"]
    assert together["P2"] == alone
    # export_rank starts at 1 in each tier; the retry of P1 alone leaves P2's record
    ranks = detected.fetch(
        "select tier, export_rank from audience_exports where run_id = 'run-a' order by tier"
    )
    assert [(r["tier"], r["export_rank"]) for r in ranks] == [("P1", 1), ("P2", 1)]
    retried = actions.record_audiences(detected, settings, DAY, ["P1"], "run-a")
    assert [r["customer_id"] for r in retried["P1"]] == ["p1a", "p1b"]
    counts = detected.fetch(
        "select tier, count(*) as n from audience_exports where run_id = 'run-a' "
        "group by tier order by tier"
    )
    assert [(r["tier"], r["n"]) for r in counts] == [("P1", 2), ("P2", 1)]
    with pytest.raises(ValueError, match="no tier to record"):
        actions.record_audiences(detected, settings, DAY, [], "run-a")


def test_one_run_id_keeps_the_audience_of_each_date(detected, settings):
    """A run id that exports a tier for two dates (one MCP session, say) keeps both: an
    export replaces only its own date's record and reads only that date back."""
    day1 = dt.date.fromisoformat(D)
    later = day1 + dt.timedelta(days=1)
    detection.run_detection(detected, settings, later)
    for day in (day1, later):
        actions.build_priority_queue(detected, settings, day)
    first = actions.record_audience(detected, settings, DAY, "P1", "run-a")
    second = actions.record_audience(detected, settings, later, "P1", "run-a", 1)
    assert [r["customer_id"] for r in first] == ["p1a", "p1b"]
    assert [(r["customer_id"], r["run_date"]) for r in second] == [("p1a", later)]
    recorded = detected.fetch(
        "select run_date, count(*) as n from audience_exports group by run_date order by 1"
    )
    assert [(r["run_date"], r["n"]) for r in recorded] == [(day1, 2), (later, 1)]


def test_run_log_is_one_row_per_run_id_and_keeps_every_cause(warehouse, settings):
    from retentionops import runlog
    from retentionops.runlog import RunOutcome

    started = dt.datetime(2011, 3, 2, 6, 0, tzinfo=dt.UTC)
    outcome = RunOutcome(
        "scheduled__2011-03-01", D, "dag", started_at=started, daily=True,
        decision={"severity": "WARNING", "alert_flag": True, "current_value": 21.36},
        counts={"P1": 2, "P2": 1, "P3": 0},
        exports=[
            {"tier": "P1", "link": "/x/audience_p1.csv", "row_count": 2},
            {"tier": "P2", "link": "/x/audience_p2.csv", "row_count": 1},
        ],
    )  # fmt: skip
    row = runlog.summarize(outcome, now=started + dt.timedelta(seconds=2.5))
    stored = runlog.write(warehouse, settings, row)
    runlog.write(warehouse, settings, row)  # a retry
    assert warehouse.con.execute("select count(*) from ops_runs_log").fetchone() == (1,)
    assert stored["total_exported"] == 3 and stored["execution_time_ms"] == 2500
    assert stored["export_p2_link"] == "/x/audience_p2.csv" and stored["export_p3_link"] is None
    import json

    copy = runlog.json_path(settings, DAY, "scheduled__2011-03-01")
    assert json.loads(copy.read_text())["status"] == "success"
    # two later failures of the same run keep the facts already known and every cause, in
    # order; the same cause written twice (a retried callback) is kept once
    for cause in ("disk full", "Slack down", "disk full"):
        failed = RunOutcome("scheduled__2011-03-01", D, "dag").fail("export_audience[P2]", cause)
        stored = runlog.write(warehouse, settings, runlog.summarize(failed))
    assert (stored["status"], stored["p1_count"]) == ("failed", 2)
    assert stored["error_message"] == (
        "step export_audience[P2] failed: disk full; step export_audience[P2] failed: Slack down"
    )
