"""measure_impact against a hand count, recommended actions, health rates, and retention."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from retentionops import actions, detection, runlog, service
from retentionops.errors import ServiceError, UserError
from retentionops.runlog import RunOutcome
from retentionops.settings import load_settings

D = "2011-03-01"


#: The hand-made incident whose holdout the tests draw (the data has no SQL5 alert).
INCIDENT = "INC-20110301"


def in_holdout(customer_id: str, pct: float, salt="retentionops", incident=INCIDENT) -> bool:
    # the rule, computed independently of the SQL: first 32 bits of md5(id|salt|incident)
    # mod 10000 against pct x 100
    digest = hashlib.md5(f"{customer_id}|{salt}|{incident}".encode()).hexdigest()
    return int(digest[:8], 16) % 10000 < pct * 100


@pytest.fixture
def holdout_settings(settings, tmp_path, monkeypatch):
    # 30 % of 20 customers = 6 expected: over a minimum of 5 (the hash holds out 7)
    monkeypatch.setenv("RETENTIONOPS_HOLDOUT_PCT", "30")
    monkeypatch.setenv("RETENTIONOPS_HOLDOUT_MIN_CUSTOMERS", "5")
    monkeypatch.setenv("RETENTIONOPS_ARTIFACTS_DIR", str(tmp_path / "runs"))
    return load_settings()


def draw_holdout(settings) -> None:
    """The incident's first export draws its holdout; here drawn for the hand-made day."""
    from retentionops import holdouts
    from retentionops.warehouse import open_warehouse

    day = dt.date.fromisoformat(D)
    with open_warehouse(settings) as warehouse:
        holdouts.draw(warehouse, settings, day, INCIDENT, day, "draw")


@pytest.fixture
def impact_data(load_orders, holdout_settings):
    # 20 customers ordering on 01-01 and 01-02: on 03-01 they are AT_RISK (58 days) with a
    # frequency drop -> MEDIUM -> all P2, all with the same score. c00..c09 buy again on
    # 03-15 (inside 30 days), c10 and c11 on 04-15 (outside); history reaches 04-15.
    rows = []
    for i in range(20):
        cid = f"c{i:02d}"
        rows += [(cid, f"{cid}-1", "2011-01-01", 10), (cid, f"{cid}-2", "2011-01-02", 10)]
        if i < 10:
            rows.append((cid, f"{cid}-3", "2011-03-15", 25))
        elif i < 12:
            rows.append((cid, f"{cid}-3", "2011-04-15", 25))
    load_orders(rows).close()
    return [f"c{i:02d}" for i in range(20)]


def test_measure_impact_matches_a_hand_count(impact_data, holdout_settings, tmp_path):
    customers = impact_data
    built = service.build_priority_queue(holdout_settings, D, interface="cli")
    assert built["tiers"]["P2"] == 20
    draw_holdout(holdout_settings)
    exported = service.export_audience(holdout_settings, D, "P2", interface="cli")
    holdout = {c for c in customers if in_holdout(c, 30)}
    treated = set(customers) - holdout
    assert 0 < len(holdout) < 20  # the hash splits this set (checked, not assumed)
    # holdout customers never appear in an export
    from pathlib import Path

    # the run's own file (artifacts/runs/D/<run id>/)
    assert Path(exported["link"]).parent == tmp_path / "runs" / D / exported["run_id"]
    lines = Path(exported["link"]).read_text().splitlines()[1:]
    assert {line.split(",")[1] for line in lines} == treated
    assert exported["row_count"] == len(treated)

    result = service.measure_impact(holdout_settings, exported["run_id"], horizon_days=30)
    assert result["measurable"] is True and result["tiers"] == ["P2"]
    p2 = result["per_tier"]["P2"]
    buyers = {f"c{i:02d}" for i in range(10)}  # 04-15 is outside the 30 days
    assert (p2["treated_customers"], p2["treated_repurchasers"]) == (
        len(treated),
        len(treated & buyers),
    )
    assert (p2["holdout_customers"], p2["holdout_repurchasers"]) == (
        len(holdout),
        len(holdout & buyers),
    )
    assert p2["treated_rate"] == pytest.approx(len(treated & buyers) / len(treated))
    assert p2["uplift"] == pytest.approx(
        len(treated & buyers) / len(treated) - len(holdout & buyers) / len(holdout)
    )
    assert p2["ci_low"] < p2["uplift"] < p2["ci_high"]
    assert p2["mde"] > abs(p2["uplift"]) and p2["verdict"].startswith("P2: ")
    assert (p2["treated_customers"], p2["holdout_customers"]) == (exported["row_count"], 7)
    # the run's log row carries both groups of the tier
    [row] = [r for r in service.run_log_rows(holdout_settings, D)
             if r["run_id"] == exported["run_id"]]  # fmt: skip
    assert (row["holdout_p2"], row["treated_p2"]) == (len(holdout), len(treated))

    # 60 days would end on 04-30, after the last order (04-15): not measurable yet
    later = service.measure_impact(holdout_settings, exported["run_id"], horizon_days=60)
    assert later["measurable"] is False and later["measurable_from"] == "2011-05-01"
    with pytest.raises(ServiceError, match="no run 'nope'"):
        service.measure_impact(holdout_settings, "nope")


def test_recommended_action(impact_data, holdout_settings, load_orders):
    service.build_priority_queue(holdout_settings, D, interface="cli")
    draw_holdout(holdout_settings)
    queued = service.get_recommended_action(holdout_settings, "c00", D)
    assert queued["queued"] is True and queued["tier"] == "P2"
    assert queued["recommended_action"] == "Win-back sequence + free shipping / discount"
    assert queued["holdout"] is in_holdout("c00", 30)
    with pytest.raises(ServiceError, match="no order on or before"):
        service.get_recommended_action(holdout_settings, "zz", D)
    with pytest.raises(UserError, match="build_priority_queue"):
        service.get_recommended_action(holdout_settings, "c00", "2011-02-01")


def test_not_queued_customer_gets_the_reason(load_orders, settings):
    load_orders([("solo", "1", "2011-01-10", 5)]).close()  # AT_RISK, one order: LOW
    service.build_priority_queue(settings, D, interface="cli")
    answer = service.get_recommended_action(settings, "solo", D)
    assert answer["queued"] is False and answer["tier"] is None
    assert answer["reason"].startswith("AT_RISK + LOW risk matches no tier")
    assert "P2 takes AT_RISK + HIGH or MEDIUM risk" in answer["reason"]


def log(warehouse, settings, day, status, playbook=None, export=None, alert=False, ms=None):
    """One hand-made row: the summarized row of a run, with the fields under test set."""
    start = dt.datetime(2011, 7, 1, tzinfo=dt.UTC)
    outcome = RunOutcome(
        f"run-{day}-{status}", day, "dag",
        decision={"alert_flag": alert, "severity": "WARNING" if alert else "INFO"},
        started_at=start if ms is not None else None,
    )  # fmt: skip
    row = runlog.summarize(outcome, now=start + dt.timedelta(milliseconds=ms or 0))
    row.update(status=status, playbook_status=playbook, export_status=export)
    runlog.write(warehouse, settings, row)


def test_health_on_a_hand_made_log(warehouse, settings):
    log(warehouse, settings, "2011-05-01", "success", "sent", "ok", True, 1000)
    log(warehouse, settings, "2011-05-02", "skipped", "not_needed", "none", False, 3000)
    log(warehouse, settings, "2011-05-03", "failed", "failed", "ok", True)
    log(warehouse, settings, "2011-06-10", "success", "sent", "ok", True, 2000)
    log(warehouse, settings, "2011-06-11", "failed", None, "failed", True, 500)
    log(warehouse, settings, "2011-08-01", "success", "sent", "ok", True, 9999)  # outside
    warehouse.close()
    result = service.get_health(settings, "2011-05-01", "2011-06-30")
    assert result["runs"] == 5
    assert result["run_success_rate"] == 0.6  # success 2 + skipped 1 of 5
    assert result["webhook_failure_rate"] == 0.3333  # 1 failed of 3 calls
    assert result["export_success_rate"] == 0.75  # 3 ok of 4 runs that exported
    assert result["average_execution_ms"] == 1625  # (1000 + 3000 + 2000 + 500) / 4
    assert result["alerts_per_month"] == {"2011-05": 2, "2011-06": 2}
    empty = service.get_health(settings, "2012-01-01", "2012-01-31")
    assert empty["runs"] == 0 and empty["run_success_rate"] is None


def test_health_cli(warehouse, settings, capsys):
    import json

    from retentionops.cli import main

    log(warehouse, settings, "2011-05-01", "success", "sent", "ok", True, 1000)
    warehouse.close()
    assert main(["health", "--from", "2011-05-01", "--to", "2011-05-31"]) == 0
    assert json.loads(capsys.readouterr().out)["run_success_rate"] == 1.0
    assert main(["health", "--from", "2011-06-01", "--to", "2011-05-31"]) == 2
    assert "after" in capsys.readouterr().err


def test_retention_counts_from_the_write_time_so_backfills_survive(load_orders, settings):
    """A date's rows go retention_days after they were written (its run marker), whatever
    the date: today's backfill of 2011 stays, a run written 100 days ago goes."""
    warehouse = load_orders([("a", "1", "2011-01-01", 10), ("a", "2", "2011-01-05", 10)])
    for day in map(dt.date.fromisoformat, ("2011-01-10", "2011-02-01", "2011-03-01", "2011-04-15")):
        detection.run_detection(warehouse, settings, day)
        actions.build_priority_queue(warehouse, settings, day)
    now = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)
    # 2011-01-10 was written 100 days ago; 2011-02-01's run died before its markers
    warehouse.con.execute(
        "update run_markers set completed_at = ? where run_date = ?",
        [now - dt.timedelta(days=100), dt.date(2011, 1, 10)],
    )
    warehouse.con.execute("delete from run_markers where run_date = ?", [dt.date(2011, 2, 1)])
    warehouse.close()
    retained = load_settings(retention_days=60)
    deleted = service.apply_retention(retained, now)
    # 2011-01-10 (old write) and 2011-02-01 (no marker, dated before the cutoff) go. One
    # customer: one row per date in SQL1-SQL3; cohort 2011-01 has offsets 0 on 01-10 and
    # 0..1 on 02-01 (3 rows); the queue holds "a" only on 02-01 (27 days > 1.5 x its 4-day
    # gap, 2 orders: 50 + 20 = HIGH, ACTIVE -> P1), on 01-10 it is LOW; 3 markers of 01-10
    # (detection, the queue, and the alert history stored up to it).
    assert deleted == {
        "base_customers": 2, "retention_snapshot": 2, "churn_detection": 2,
        "cohort_retention_evolution": 3, "customer_priority": 1, "run_markers": 3,
    }  # fmt: skip
    with __import__("duckdb").connect(str(settings.duckdb_file), read_only=True) as con:
        days = con.execute("select distinct snapshot_date from retention_snapshot order by 1")
        assert [d for (d,) in days.fetchall()] == [dt.date(2011, 3, 1), dt.date(2011, 4, 15)]
        # the alert history is kept: every day from the first order (2011-01-01) to the last
        # run (2011-04-15), 31 + 28 + 31 + 15 = 105 days, none removed by retention
        (alerts,) = con.execute("select count(*) from alert_logic").fetchone()
        assert alerts == 105
    # the kept dates are still readable: their markers stand
    assert service.get_operational_context(retained, "2011-03-01")["run_date"] == "2011-03-01"
    # running the step again the same day removes nothing more (idempotent)
    assert set(service.apply_retention(retained, now).values()) == {0}


def test_retention_reaches_a_due_date_later_than_the_cutoff_date(load_orders, settings):
    """Every retention DELETE is bounded by the newest date it can remove (so BigQuery
    prunes); the bound reaches a due date after the cutoff date too. On 2011-06-01 with 60
    days' retention the cutoff is 2011-04-02 06:00: the run of 2011-04-15 was written on
    2011-03-20 (a date run ahead of the calendar) and goes; 2011-03-01, written on
    2011-05-31, stays."""
    warehouse = load_orders([("a", "1", "2011-01-01", 10), ("a", "2", "2011-01-05", 10)])
    for day in (dt.date(2011, 3, 1), dt.date(2011, 4, 15)):
        detection.run_detection(warehouse, settings, day)
        actions.build_priority_queue(warehouse, settings, day)
    written = {dt.date(2011, 3, 1): dt.datetime(2011, 5, 31, tzinfo=dt.UTC),
               dt.date(2011, 4, 15): dt.datetime(2011, 3, 20, tzinfo=dt.UTC)}  # fmt: skip
    for day, moment in written.items():
        warehouse.con.execute(
            "update run_markers set completed_at = ? where run_date = ?", [moment, day]
        )
    (markers,) = warehouse.con.execute(
        "select count(*) from run_markers where run_date = date '2011-04-15'"
    ).fetchone()
    warehouse.close()
    now = dt.datetime(2011, 6, 1, 6, 0, tzinfo=dt.UTC)
    deleted = service.apply_retention(load_settings(retention_days=60), now)
    # one customer: one row of 2011-04-15 in SQL1-SQL3; cohort 2011-01 at offsets 0..3
    # (January to April: 4 rows); every marker of that date
    assert deleted["base_customers"] == deleted["churn_detection"] == 1
    assert deleted["cohort_retention_evolution"] == 4
    assert deleted["run_markers"] == markers >= 2
    with __import__("duckdb").connect(str(settings.duckdb_file), read_only=True) as con:
        for name, field in (("base_customers", "snapshot_date"), ("customer_priority", "run_date"),
                            ("cohort_retention_evolution", "snapshot_date")):  # fmt: skip
            days = con.execute(f"select distinct {field} from {name}").fetchall()
            assert {d for (d,) in days} <= {dt.date(2011, 3, 1)}, name
        (kept,) = con.execute("select count(*) from base_customers").fetchone()
        assert kept == 1


def test_alert_frequency_counts_incidents_and_alert_days_per_month():
    from retentionops.health import alert_frequency

    def day(date, phase, alert, event=None):
        return {"day": date, "phase": phase, "alert_flag": alert, "event": event}

    days = [
        day("2011-01-05", "warmup", True), day("2011-01-06", "warmup", True),
        day("2011-02-01", "incident", True, "open"), day("2011-02-02", "incident", True, "update"),
        day("2011-02-03", "incident", False), day("2011-02-06", "incident", False, "resolve"),
        day("2011-02-10", "incident", True, "open"), day("2011-02-20", "incident", True, "open"),
        day("2011-03-01", "quiet", False),
    ]  # fmt: skip
    assert alert_frequency(days, target=2) == {
        "2011-01": {"incidents_opened": 0, "alert_days": 0, "warmup_alert_days": 2,
                    "over_target": False},
        "2011-02": {"incidents_opened": 3, "alert_days": 4, "warmup_alert_days": 0,
                    "over_target": True},
        "2011-03": {"incidents_opened": 0, "alert_days": 0, "warmup_alert_days": 0,
                    "over_target": False},
    }  # fmt: skip


def test_health_reads_the_stored_alert_history_only(sample_settings):
    """Health is a read: before any history is stored it says how to store it; after
    `incidents` stored it, it reports the sample's months (README: one incident in May with 4
    alert days, one in September with 3; the January ramp's 18 alert days are warm-up)."""
    before = service.get_health(sample_settings, "2011-01-01", "2011-12-09")
    assert before["alert_frequency"] is None
    assert (
        "retentionops incidents --from 2011-01-01 --to 2011-12-09"
        in (before["alert_frequency_note"])
    )
    service.list_incidents(sample_settings, "2011-01-01", "2011-12-09")
    after = service.get_health(sample_settings, "2011-01-01", "2011-12-09")
    months = after["alert_frequency"]
    assert months["2011-05"] == {"incidents_opened": 1, "alert_days": 4,
                                 "warmup_alert_days": 0, "over_target": False}  # fmt: skip
    assert months["2011-09"] == {"incidents_opened": 1, "alert_days": 3,
                                 "warmup_alert_days": 0, "over_target": False}  # fmt: skip
    assert sum(m["warmup_alert_days"] for m in months.values()) == 18
    assert sum(m["incidents_opened"] for m in months.values()) == 2
    assert after["months_over_target"] == []
    # the range starts in the warm-up (day 32 of the history on 2011-01-01)
    assert after["warmup"] == "warm-up: 32 days of history; alerts start on 2011-03-07"
    later = service.get_health(sample_settings, "2011-04-01", "2011-12-09")
    assert "warmup" not in later and later["alert_frequency"]["2011-05"]["incidents_opened"] == 1
    # the boundary: one incident a month is not over a target of one
    strict = load_settings(alert_frequency_target_per_month=1)
    assert service.get_health(strict, "2011-01-01", "2011-12-09")["months_over_target"] == []
