"""Whole-DAG runs with ``dag.test()`` on the bundled sample: each branch, re-runs, failures.

Dates (README): 2011-05-13 CRITICAL, 2011-09-09 WARNING, 2011-08-01 no alert and no
incident event (2011-07-01 has no alert either, but resolves the April incident).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import query_warehouse, run_folder


def query(tmp_path, sql, params=()):
    return query_warehouse(tmp_path, sql, params)


def log_rows(tmp_path, day):
    return query(
        tmp_path,
        "select run_id, status, p1_count, p2_count, p3_count, total_exported, export_p1_link,"
        " export_p2_link, export_p3_link, error_message from ops_runs_log where alert_date = ?",
        [dt.date.fromisoformat(day)],
    )


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.smoke
def test_critical_date_exports_three_tiers_and_logs_success(run_dag, playbook_sim, tmp_path):
    dag_run, states = run_dag("2011-05-13")
    assert str(dag_run.state).endswith("success")
    assert states["critical"].endswith("success") and states["warning"].endswith("skipped")
    assert states["no_alert"].endswith("skipped") and states["write_run_log"].endswith("success")
    [(run_id, status, p1, p2, p3, total, l1, l2, l3, error)] = log_rows(tmp_path, "2011-05-13")
    assert (status, error) == ("success", None)
    assert run_id == dag_run.run_id
    # the playbook got one call and its answer is in the log
    [body] = playbook_sim.requests
    assert (body["severity"], body["escalation"], body["ticket_priority"]) == (
        "CRITICAL", True, "URGENT"
    )  # fmt: skip
    assert body["tier_counts"] == {"P1": p1, "P2": p2, "P3": p3}
    [slack_file] = (tmp_path / "sim").glob("slack_*.json")
    assert query(
        tmp_path, "select slack_posted, ticket_id, slack_message_ts from ops_runs_log"
    ) == [(True, "RET-0001", slack_file.stem.removeprefix("slack_"))]
    folder = run_folder(tmp_path, "2011-05-13", dag_run.run_id)  # the run's own files
    files = {tier: folder / f"audience_{tier}_2011-05-13.csv" for tier in ("p1", "p2", "p3")}
    assert [str(files[t]) for t in ("p1", "p2", "p3")] == [l1, l2, l3]
    # CSV rows = tier counts in the log (below the 2000 limit) but the incident's holdout,
    # drawn by this first export (P2; P1's 47 are too few for one); total = their sum
    [(h1, h2, h3, t1, t2, t3)] = query(
        tmp_path, "select holdout_p1, holdout_p2, holdout_p3, treated_p1, treated_p2, "
        "treated_p3 from ops_runs_log"
    )  # fmt: skip
    assert h1 == h3 == 0 and 0 < h2 < p2 // 5
    counts = [len(csv_rows(files[t])) for t in ("p1", "p2", "p3")]
    assert counts == [p1, p2 - h2, p3] == [t1, t2, t3] and total == sum(counts)
    assert body["audience"]["tiers"]["P2"]["holdout"] == h2
    # customer_priority for D holds exactly the customers the tier rules admit
    admitted = query(
        tmp_path,
        """
        select count(*) from retention_snapshot s join churn_detection c using (customer_id)
        where s.snapshot_date = ? and c.snapshot_date = ? and (
            (s.retention_status = 'ACTIVE' and c.churn_risk_level = 'HIGH')
            or (s.retention_status = 'AT_RISK' and c.churn_risk_level in ('HIGH', 'MEDIUM'))
            or (s.retention_status = 'INACTIVE' and c.churn_risk_level = 'HIGH'))
        """,
        [dt.date(2011, 5, 13)] * 2,
    )
    assert admitted == [(p1 + p2 + p3,)]
    # every exported priority_score equals the formula (to the 2 decimals written)
    import math

    base = {"P1": 70, "P2": 50, "P3": 30}
    for row in csv_rows(files["p1"]) + csv_rows(files["p2"]):
        expected = min(
            100,
            base[row["priority_tier"]]
            + min(20, math.log(1 + float(row["total_revenue"])) * 2)
            + min(10, int(row["days_since_last_order"]) / 3),
        )
        assert float(row["priority_score"]) == pytest.approx(expected, abs=0.006)
    brief = (folder / "brief.md").read_text()
    assert "CRITICAL" in brief and "P3 is empty" in brief
    # the brief links the files next to it, relative to its folder
    assert "[`audience_p1_2011-05-13.csv`](<audience_p1_2011-05-13.csv>)" in brief
    assert (folder / "at_risk_last_60_days.png").stat().st_size > 0

    # the same date again: one log row per run id, the same rows for D in customer_priority
    before = query(tmp_path, "select count(*) from customer_priority")
    second_run, _ = run_dag("2011-05-13")
    rows = log_rows(tmp_path, "2011-05-13")
    assert sorted(r[0] for r in rows) == sorted({dag_run.run_id, second_run.run_id})
    assert query(tmp_path, "select count(*) from customer_priority") == before


@pytest.mark.smoke
def test_warning_date_exports_p1_and_p2_only(run_dag, tmp_path):
    dag_run, states = run_dag("2011-09-09")
    assert str(dag_run.state).endswith("success") and states["warning"].endswith("success")
    [(_, status, p1, p2, _, total, l1, l2, l3, _)] = log_rows(tmp_path, "2011-09-09")
    [(h1, h2)] = query(tmp_path, "select holdout_p1, holdout_p2 from ops_runs_log")
    assert status == "success" and l3 is None and total == p1 + p2 - h1 - h2
    assert h1 == 0 and h2 > 0  # P1 of 39 is too few for a 10 % holdout; P2 of 168 is not
    folder = run_folder(tmp_path, "2011-09-09", dag_run.run_id)
    assert sorted(p.name for p in folder.glob("audience_*.csv")) == [
        "audience_p1_2011-09-09.csv",
        "audience_p2_2011-09-09.csv",
    ]


@pytest.mark.smoke
def test_no_alert_date_logs_skipped_without_exports(run_dag, tmp_path):
    dag_run, states = run_dag("2011-08-01")
    assert str(dag_run.state).endswith("success")
    assert states["no_alert"].endswith("success") and states["render_brief"].endswith("skipped")
    [(_, status, *_rest, l1, l2, l3, error)] = log_rows(tmp_path, "2011-08-01")
    assert (status, l1, l2, l3, error) == ("skipped", None, None, None, None)
    assert not list((tmp_path / "runs").glob("2011-08-01/*/audience_*"))


@pytest.mark.smoke
def test_a_failed_step_still_leaves_a_failed_log_row(run_dag, tmp_path):
    from support import make_orders

    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    # Orders that start after the run date: nothing to decide, get_alert_decision fails.
    with open_warehouse(load_settings()) as warehouse:
        warehouse.replace_orders(make_orders([("a", "1", "2011-01-03", 10.0)]))
    dag_run, states = run_dag("2010-12-15")
    assert str(dag_run.state).endswith("failed"), states
    assert states["detection"].endswith("failed")
    assert states["write_run_log"].endswith("failed")  # it logs, then fails the run
    [(_, status, *_rest, error)] = log_rows(tmp_path, "2010-12-15")
    assert status == "failed"
    assert error == (
        "step detection failed: DetectionError: no orders on or before 2010-12-15: "
        "there is nothing to decide"
    )


# -- the playbook over real HTTP (the simulator on 127.0.0.1) ------------------------------

WARNING_DATE = "2011-09-09"


@pytest.fixture
def slack_webhook(httpserver, monkeypatch):
    """A loopback Slack incoming webhook, wired as the slack_fallback connection."""
    path = "/services/T0000/B0000/fallbacksecret"
    httpserver.expect_request(path, method="POST").respond_with_data("ok")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_FALLBACK",
        json.dumps({"conn_type": "slackwebhook", "password": httpserver.url_for(path)}),
    )
    return httpserver


def playbook_row(tmp_path, day=WARNING_DATE):
    [row] = query(
        tmp_path,
        "select status, slack_posted, slack_message_ts, ticket_id, error_message"
        " from ops_runs_log where alert_date = ?",
        [dt.date.fromisoformat(day)],
    )
    return row


def test_a_500_then_200_is_retried_and_succeeds(run_dag, playbook_sim, tmp_path):
    playbook_sim.configure(fail_next=1, fail_status=500)
    dag_run, states = run_dag(WARNING_DATE)
    assert str(dag_run.state).endswith("success")
    assert playbook_sim.statuses == [500, 200]
    status, posted, ts, ticket, error = playbook_row(tmp_path)
    assert (status, posted, ticket, error) == ("success", True, "RET-0001", None) and ts


@pytest.mark.smoke
def test_always_500_ends_in_the_slack_fallback_and_a_failed_row(
    run_dag, playbook_sim, slack_webhook, tmp_path
):
    playbook_sim.configure(fail_next=99, fail_status=500)
    dag_run, states = run_dag(WARNING_DATE)
    assert str(dag_run.state).endswith("failed")
    assert playbook_sim.statuses == [500, 500, 500]  # the call and 2 retries
    assert states["trigger_playbook"].endswith("failed")
    assert states["post_slack_fallback"].endswith("success")
    assert states["post_slack_fallback"].endswith("success"), states
    # the server thread records a request just after answering it: wait for it (a busy
    # machine may take a while to schedule that thread; the bound only matters on failure)
    deadline = time.monotonic() + 30
    while not slack_webhook.log and time.monotonic() < deadline:
        time.sleep(0.05)
    [request] = [r for r, _ in slack_webhook.log]
    posted = request.get_json()
    assert "webhook failed" in posted["text"] and "21.36 %" in posted["text"]
    status, slack_posted, ts, ticket, error = playbook_row(tmp_path)
    assert (status, slack_posted, ts, ticket) == ("failed", True, None, None)
    assert error.startswith("step trigger_playbook failed: TransientWebhookError")
    assert "webhook answered HTTP 500" in error
    # nothing lost: the brief and the exports are on disk
    folder = run_folder(tmp_path, WARNING_DATE, dag_run.run_id)
    assert (folder / "brief.md").exists() and len(list(folder.glob("audience_*.csv"))) == 2


def test_a_400_is_not_retried(run_dag, playbook_sim, tmp_path):
    playbook_sim.configure(fail_next=99, fail_status=400)
    dag_run, states = run_dag(WARNING_DATE)
    assert str(dag_run.state).endswith("failed")
    assert playbook_sim.statuses == [400]
    status, _, _, _, error = playbook_row(tmp_path)
    assert status == "failed" and "PermanentWebhookError" in error and "HTTP 400" in error


def test_a_redirect_fails_the_trigger_and_is_never_followed(
    run_dag, httpserver, monkeypatch, tmp_path
):
    from werkzeug import Response

    hook, moved = "/hook/r3direct-t0ken", "/moved/r3direct-t0ken"
    httpserver.expect_request(hook, method="POST").respond_with_response(
        Response("", status=302, headers={"Location": httpserver.url_for(moved)})
    )
    httpserver.expect_request(moved).respond_with_json({"slack_message_ts": "1", "ticket_id": "X"})
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAKE_WEBHOOK",
        json.dumps({"conn_type": "http", "host": httpserver.url_for(hook)}),
    )
    dag_run, states = run_dag(WARNING_DATE)
    assert str(dag_run.state).endswith("failed") and states["trigger_playbook"].endswith("failed")
    assert [r.path for r, _ in httpserver.log] == [hook]  # the POST only, not retried
    status, posted, ts, ticket, error = playbook_row(tmp_path)
    assert (status, ticket) == ("failed", None)
    assert "HTTP 302" in error and "a redirect is not a delivery" in error
    assert "r3direct" not in error
    assert query(tmp_path, "select count(*) from deliveries") == [(0,)]


def test_a_missing_webhook_connection_fails_the_trigger_at_once(run_dag, monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_MAKE_WEBHOOK")
    dag_run, states = run_dag(WARNING_DATE)
    assert states["trigger_playbook"].endswith("failed")
    status, _, _, _, error = playbook_row(tmp_path)
    assert status == "failed"
    assert "no Airflow connection 'make_webhook'" in error and "AIRFLOW_CONN_MAKE_WEBHOOK" in error


def test_a_quiet_day_delivers_the_open_the_webhook_missed(run_dag, playbook_sim, tmp_path):
    playbook_sim.configure(fail_next=3, fail_status=503)  # down for the three attempts
    dag_run, states = run_dag("2011-05-13")
    assert states["trigger_playbook"].endswith("failed")
    # 05-17 is a day of the open incident without an event of its own: the missed open
    # still reaches the team, late and saying so
    dag_run, states = run_dag("2011-05-17")
    assert str(dag_run.state).endswith("success") and states["no_alert"].endswith("success")
    assert states["deliver_owed"].endswith("success")
    delivered = [r for r, status in zip(playbook_sim.requests, playbook_sim.statuses,
                                        strict=True) if status == 200]  # fmt: skip
    assert [(r["incident"]["event"], r["run_date"], r["mention"]) for r in delivered] == [
        ("open", "2011-05-13", "<!here>")
    ]
    assert delivered[0]["brief"]["text"].startswith(":hourglass: Delivered late")
    [(note,)] = query(tmp_path, "select note from ops_runs_log where alert_date = '2011-05-17'")
    assert note.startswith("delivered late first: open of INC-20110513 (2011-05-13)")
    # and a later quiet day has nothing owed: nothing is sent again
    run_dag("2011-05-18")
    assert len([s for s in playbook_sim.statuses if s == 200]) == 1


def test_a_timeout_is_retried(run_dag, playbook_sim, tmp_path):
    playbook_sim.configure(delay=2.0)  # the client gives up after 1 s
    dag_run, states = run_dag(WARNING_DATE)
    assert str(dag_run.state).endswith("failed")
    assert len(playbook_sim.requests) == 3
    # the receiver completed the first call late; the retries carried the same idempotency
    # key, so it answered them without a second ticket
    assert len({body["dedupe_key"] for body in playbook_sim.requests}) == 1
    assert len(list((tmp_path / "sim").glob("ticket_*.json"))) == 1
    status, _, _, _, error = playbook_row(tmp_path)
    assert status == "failed" and "webhook timed out after 1.0 s" in error


def test_dry_run_sends_nothing_and_shadow_is_flagged(run_dag, playbook_sim, tmp_path):
    dag_run, states = run_dag(WARNING_DATE, dry_run=True, rollout_mode="")  # empty: the setting
    assert str(dag_run.state).endswith("success") and playbook_sim.requests == []
    assert states["trigger_playbook"].endswith("skipped")
    body = json.loads(
        (run_folder(tmp_path, WARNING_DATE, dag_run.run_id) / "playbook_request.json").read_text()
    )
    assert body["severity"] == "WARNING" and body["rollout_mode"] == "production"
    # (dag.test keeps the previous run's conf on the DAG object: say dry_run=False again)
    _, states = run_dag(WARNING_DATE, rollout_mode="shadow", dry_run=False)
    assert states["trigger_playbook"].endswith("success"), states
    [sent] = playbook_sim.requests
    assert sent["shadow"] is True and sent["slack_channel"] == "#retention-pilot"
    tickets = query(tmp_path, "select ticket_id from ops_runs_log order by run_timestamp")
    assert tickets == [(None,), ("SHADOW-RET-0001",)]


def test_secrets_never_leave_the_connection(run_dag, playbook_sim, slack_webhook, tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    token = playbook_sim.url.rsplit("/", 1)[-1]
    playbook_sim.stop()  # connection refused: requests' own message embeds the URL
    dag_run, states = run_dag(WARNING_DATE)
    assert states["trigger_playbook"].endswith("failed")
    status, _, _, _, error = playbook_row(tmp_path)
    assert status == "failed" and "webhook unreachable" in error
    secrets = [token, "fallbacksecret"]
    # task logs
    # (the fake Slack server's own access log, werkzeug's, is the test's, not the product's)
    product_records = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    logs = "\n".join(r.getMessage() for r in product_records) + "".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log")
    )
    # artifacts of the run and the log table
    artifacts = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "runs").rglob("*") if p.is_file()
        and p.suffix != ".png"
    )  # fmt: skip
    table = json.dumps(query(tmp_path, "select * from ops_runs_log"), default=str)
    # XComs in the metadata database
    import sqlite3

    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as db:
        xcoms = json.dumps(db.execute("select value from xcom").fetchall(), default=str)
    for secret in secrets:
        for name, text in (("logs", logs), ("artifacts", artifacts), ("table", table),
                           ("xcom", xcoms)):  # fmt: skip
            assert secret not in text, f"{secret} leaked into {name}"


def test_backfill_a_few_days(run_dag, tmp_path):
    # each date's run gives its own answer, in any order (here newest first) ...
    for day in ("2011-05-14", "2011-05-13", "2011-05-12"):
        dag_run, _ = run_dag(day)
        assert str(dag_run.state).endswith("success")
    rows = query(
        tmp_path, "select alert_date, severity, status from ops_runs_log order by alert_date"
    )
    assert [(str(d), s, st) for d, s, st in rows] == [
        ("2011-05-12", "INFO", "skipped"),
        ("2011-05-13", "CRITICAL", "success"),
        ("2011-05-14", "CRITICAL", "success"),
    ]
    # ... and `airflow backfill create` plans exactly these dates again (the DAG is now in
    # the metadata database; completed runs are re-run on request)
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    planned = subprocess.run(
        [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", "retention_ops",
         "--from-date", "2011-05-12", "--to-date", "2011-05-14",
         "--reprocess-behavior", "completed", "--dry-run"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr[-2000:]
    for day in ("2011-05-12", "2011-05-13", "2011-05-14"):
        assert f"{day} 00:00:00+00:00" in planned.stdout


def test_an_export_destination_param_outside_the_export_root_is_refused(run_dag, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    dag_run, states = run_dag(WARNING_DATE, export_destination=str(outside))
    assert str(dag_run.state).endswith("failed")
    assert states["render_brief"].endswith("failed") and not outside.exists()
    [(_, status, *_rest, error)] = log_rows(tmp_path, WARNING_DATE)
    assert status == "failed" and "outside the export root" in error


def test_a_run_for_a_date_past_the_orders_fails_red_saying_the_feed_is_late(
    run_dag, playbook_sim, tmp_path, monkeypatch
):
    """The sample's orders end on 2011-12-09 (a Friday). A run for 2011-12-20 used to be a
    green "no alert" day on stale data; it now waits for the orders, gives up after
    orders_wait_minutes (0 here: one look) and fails red before detection, and its log row
    says how late the feed is. Nothing is detected, built or sent."""
    monkeypatch.setenv("RETENTIONOPS_ORDERS_WAIT_MINUTES", "0")
    dag_run, states = run_dag("2011-12-20")
    assert str(dag_run.state).endswith("failed")
    assert states["wait_for_orders"].endswith("failed")
    assert states["detection"].endswith("upstream_failed")
    assert states["write_run_log"].endswith("failed")  # logged, then fails the run
    assert playbook_sim.requests == []
    [(_, status, *_rest, error)] = log_rows(tmp_path, "2011-12-20")
    assert status == "failed"
    assert error.startswith("step wait_for_orders failed: OrdersFeedLate: data late — ")
    assert "orders feed late: last order 2011-12-09, 11 day(s) before 2011-12-20" in error
    assert "(9 trading day(s) missing)" in error  # 11 days, no Saturday trading: 12-10, 12-17
    assert query_warehouse(
        tmp_path, "select count(*) from alert_logic where alert_date > '2011-12-09'"
    ) == [(0,)]
    # health lists the day: a run of red days on a stuck feed is not a run of quiet days
    from retentionops import service
    from retentionops.settings import load_settings

    [late] = service.get_health(load_settings(), "2011-12-01", "2011-12-20")["data_late_days"]
    assert late["run_date"] == "2011-12-20" and "orders feed late" in late["said"]


def test_a_short_day_runs_green_and_opens_nothing(run_dag, playbook_sim, tmp_path):
    """2011-05-13 opens INC-20110513 (CRITICAL). With only 3 of its 30 orders loaded the day
    is short: the Fridays before had 37, 31, 27 and 27 orders, whose mean without the highest
    and the lowest is 29, and 3 is under half of it. The run is green, but no incident
    opens, nothing is exported or sent, and the log row says why."""
    import pandas as pd

    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    with open_warehouse(load_settings()) as warehouse:
        orders = warehouse.con.execute("select * from orders order by order_id").df()
        day = pd.to_datetime(orders["order_date"]) == pd.Timestamp("2011-05-13")
        short = orders[~day | (day & (day.cumsum() <= 3))].reset_index(drop=True)
        warehouse.replace_orders(short)
    dag_run, states = run_dag("2011-05-13")
    assert str(dag_run.state).endswith("success"), states
    assert states["no_alert"].endswith("success") and states["critical"].endswith("skipped")
    assert states["export_audience"].endswith("skipped")
    assert playbook_sim.requests == []
    [(event, playbook, note)] = query(
        tmp_path,
        "select incident_event, playbook_status, note from ops_runs_log "
        "where alert_date = '2011-05-13'",
    )
    assert (event, playbook) == (None, "not_needed")
    assert note.startswith("data short: 3 orders on 2011-05-13 against a usual 29 on Fridays")
    assert "no incident is opened, changed or closed on it" in note


def test_a_saturday_after_the_last_order_is_not_late(run_dag, tmp_path, monkeypatch):
    """The sample has no Saturday trading: the Saturday after its last order (a Friday) is
    fresh, and its run is an ordinary green day."""
    monkeypatch.setenv("RETENTIONOPS_ORDERS_WAIT_MINUTES", "0")
    dag_run, states = run_dag("2011-12-10")
    assert str(dag_run.state).endswith("success"), states
    assert states["wait_for_orders"].endswith("success")
