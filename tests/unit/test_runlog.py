"""What a run's ops_runs_log row says, given what happened: the one rule, without Airflow."""

from __future__ import annotations

import datetime as dt

import pytest

from retentionops.runlog import RunOutcome, summarize

T0 = dt.datetime(2011, 5, 14, 6, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(seconds=12, milliseconds=345)
CRITICAL = {"severity": "CRITICAL", "alert_flag": True, "current_value": 45.2,
            "baseline_value": 32.55, "delta_relative_pct": 38.86, "sample_size": 2396}  # fmt: skip
INFO = {**CRITICAL, "severity": "INFO", "alert_flag": False, "delta_relative_pct": 2.0}
# WARNING severity but no alert (sample too small): not a playbook day
WARNING_NO_FLAG = {**CRITICAL, "severity": "WARNING", "alert_flag": False}
EXPORTS = [
    {"tier": "P1", "link": "runs/2011-05-13/audience_p1.csv", "row_count": 47},
    {"tier": "P2", "link": "runs/2011-05-13/audience_p2.csv", "row_count": 300},
    {"tier": "P3", "link": "runs/2011-05-13/audience_p3.csv", "row_count": 0},
]
# the day's playbook plans (playbook.playbook_plan with the delivery decision)
OPENS = {"event": "open", "incident_id": "INC-20110513", "alerting": True, "send": True,
         "reason": None}  # fmt: skip
QUIET = {"event": None, "incident_id": None, "alerting": False, "send": False,
         "reason": "no alert: nothing to send"}  # fmt: skip
DRY = {**OPENS, "send": False, "reason": "dry run: the playbook is not sent"}
ALREADY = {**OPENS, "event": "update", "send": False,
           "reason": "already delivered on 2026-11-26 (RET-0001): pass resend to send "
                     "again"}  # fmt: skip
ANSWER = {"status_code": 200, "slack_message_ts": "1700.0001", "ticket_id": "RET-0001"}


def daily(**fields) -> RunOutcome:
    return RunOutcome("scheduled__2011-05-13", "2011-05-13", "dag", started_at=T0, daily=True,
                      **fields)  # fmt: skip


def keys(row, *names):
    return tuple(row[name] for name in names)


def test_a_delivered_alert_day():
    row = summarize(
        daily(
            decision=CRITICAL,
            plan=OPENS,
            counts={"P1": 47, "P2": 300, "P3": 0},
            exports=EXPORTS,
            brief_link="runs/2011-05-13/brief.md",
            answer=ANSWER,
        ),  # fmt: skip
        now=NOW,
    )
    assert keys(row, "status", "playbook_status", "export_status", "slack_posted") == (
        "success", "sent", "ok", True,
    )  # fmt: skip
    assert keys(row, "ticket_id", "slack_message_ts", "total_exported") == (
        "RET-0001", "1700.0001", 347,
    )  # fmt: skip
    assert row["export_p3_link"] == "runs/2011-05-13/audience_p3.csv"
    assert (row["p1_count"], row["p2_count"], row["p3_count"]) == (47, 300, 0)
    assert row["execution_time_ms"] == 12345
    assert row["alert_date"] == dt.date(2011, 5, 13) and row["error_message"] is None
    assert keys(row, "incident_id", "incident_event", "note") == ("INC-20110513", "open", None)


@pytest.mark.parametrize("decision", [INFO, WARNING_NO_FLAG])
def test_a_day_without_an_alert_is_skipped_with_nothing_exported(decision):
    row = summarize(daily(decision=decision, plan=QUIET, exports=[]), now=NOW)
    assert keys(row, "status", "playbook_status", "export_status", "total_exported") == (
        "skipped", "not_needed", "none", 0,
    )  # fmt: skip
    assert row["slack_posted"] is None  # nothing was attempted
    assert row["note"] == "no alert: nothing to send"


def test_an_event_withheld_is_suppressed_and_the_note_says_why():
    """A re-run of a delivered day: everything rebuilt, nothing sent, the log row says so."""
    row = summarize(daily(decision=CRITICAL, plan=ALREADY, exports=EXPORTS), now=NOW)
    assert keys(row, "status", "playbook_status", "export_status", "incident_event") == (
        "success", "suppressed", "ok", "update",
    )  # fmt: skip
    assert row["note"].startswith("already delivered on 2026-11-26 (RET-0001)")
    assert row["slack_posted"] is None and row["ticket_id"] is None


def test_an_open_incident_on_a_quiet_day_is_skipped_and_exports_nothing():
    """No alert today, the incident still open: no event, so no playbook and no audiences
    (exports reported by a stale task are not counted)."""
    plan = {**QUIET, "incident_id": "INC-20110513", "reason": "incident INC-20110513 open, "
            "no event today"}  # fmt: skip
    row = summarize(daily(decision=INFO, plan=plan, exports=EXPORTS), now=NOW)
    assert keys(row, "status", "playbook_status", "export_status", "total_exported") == (
        "skipped", "not_needed", "none", 0,
    )  # fmt: skip
    assert (row["incident_id"], row["incident_event"]) == ("INC-20110513", None)


def test_the_webhook_failed_and_the_fallback_posted():
    outcome = daily(decision=CRITICAL, plan=OPENS, exports=EXPORTS, playbook_failed=True,
                    fallback_posted=True, failed_steps=["trigger_playbook"])  # fmt: skip
    outcome.errors.append("step trigger_playbook failed: TransientWebhookError: HTTP 500")
    row = summarize(outcome, now=NOW)
    assert keys(row, "status", "playbook_status", "export_status", "slack_posted") == (
        "failed", "failed", "ok", True,
    )  # fmt: skip
    assert row["ticket_id"] is None
    assert row["error_message"] == "step trigger_playbook failed: TransientWebhookError: HTTP 500"


def test_every_cause_is_kept_in_order():
    outcome = RunOutcome("cli__x", "2011-05-13", "cli")
    outcome.fail("trigger_playbook", "PermanentWebhookError: HTTP 400").fail(
        "slack_fallback", "ServiceError: Slack fallback failed: HTTP 500"
    )
    row = summarize(outcome, now=NOW)
    assert row["error_message"] == (
        "step trigger_playbook failed: PermanentWebhookError: HTTP 400; "
        "step slack_fallback failed: ServiceError: Slack fallback failed: HTTP 500"
    )
    assert row["status"] == "failed" and row["execution_time_ms"] is None


def test_a_dry_run_built_everything_and_sent_nothing():
    row = summarize(daily(decision=CRITICAL, plan=DRY, exports=EXPORTS, dry_run=True), now=NOW)
    assert keys(row, "status", "playbook_status", "slack_posted") == ("success", "dry_run", None)
    assert row["note"] == "dry run: the playbook is not sent"


def test_a_failed_export():
    row = summarize(
        daily(
            decision=CRITICAL,
            plan=OPENS,
            exports=EXPORTS[:1],
            export_failed=True,
            failed_steps=["export_audience"],
        ),  # fmt: skip
        now=NOW,
    )
    assert keys(row, "status", "export_status", "playbook_status") == ("failed", "failed", None)


def test_a_run_that_died_before_its_decision_leaves_the_unknowns_null():
    row = summarize(daily(failed_steps=["get_alert_decision"]), now=NOW)
    assert keys(row, "status", "severity", "alert_flag", "playbook_status") == (
        "failed", None, None, None,
    )  # fmt: skip
    assert row["export_status"] == "none"  # the daily run exported nothing


def test_a_standalone_write_is_a_success_even_without_an_alert():
    """A CLI queue on a quiet day did its job: success, not skipped; it never planned a
    playbook, so the playbook status is unknown (null), not "not needed"."""
    outcome = RunOutcome("cli__build_priority_queue__x", "2011-07-01", "cli", decision=INFO,
                         counts={"P1": 3, "P2": 10, "P3": 0})  # fmt: skip
    row = summarize(outcome, now=NOW)
    assert keys(row, "status", "interface", "export_status", "playbook_status") == (
        "success", "cli", None, None,
    )  # fmt: skip


def test_the_interface_is_checked():
    with pytest.raises(ValueError, match="dag, mcp, cli"):
        summarize(RunOutcome("x", "2011-05-13", "cron"))


# -- a DAG run's outcome, from what its tasks returned (RunOutcome.of_dag_run) --------------

CONTEXT = {
    "decision": CRITICAL,
    "plan": OPENS,
    "tiers": {"P1": {"count": 47}, "P2": {"count": 300}, "P3": {"count": 0}},
    "anomalies": ["P2 grew 3.0x: 300 against 100 on 2011-05-12"],
    "previous_run_date": "2011-05-12",
}


def dag_run(failed_steps=(), **outputs) -> RunOutcome:
    return RunOutcome.of_dag_run(
        "scheduled__2011-05-13", dt.date(2011, 5, 13), started_at=T0,
        failed_steps=list(failed_steps), **outputs,
    )  # fmt: skip


def test_a_dag_runs_outcome_takes_the_context_the_files_and_the_answer():
    outcome = dag_run(
        context=CONTEXT,
        files={"markdown": "runs/2011-05-13/brief.md", "chart": "runs/2011-05-13/chart.png"},
        exports=[EXPORTS[0], None, EXPORTS[1]],  # a skipped export task gives None
        answer=ANSWER,
    )
    assert (outcome.decision, outcome.plan) == (CRITICAL, OPENS)  # from the context
    assert outcome.counts == {"P1": 47, "P2": 300, "P3": 0}
    assert outcome.exports == EXPORTS[:2] and outcome.brief_link == "runs/2011-05-13/brief.md"
    assert (outcome.daily, outcome.interface, outcome.previous_run_date) == (
        True, "dag", "2011-05-12",
    )  # fmt: skip
    row = summarize(outcome, now=NOW)
    assert keys(row, "status", "playbook_status", "export_status", "total_exported") == (
        "success", "sent", "ok", 347,
    )  # fmt: skip


def test_a_dag_runs_decision_wins_over_the_contexts_and_none_leaves_nothing():
    assert dag_run(decision=INFO, context=CONTEXT).decision == INFO
    bare = dag_run()  # detection failed: no task after it returned anything
    assert (bare.decision, bare.plan, bare.counts, bare.exports, bare.brief_link) == (
        None, None, None, [], None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("failed", "export_failed", "playbook_failed"),
    [
        (["export_audience"], True, False),
        (["export_audience[2]"], True, False),  # a mapped export's index
        (["trigger_playbook"], False, True),
        (["render_brief", "post_slack_fallback"], False, False),
    ],
)
def test_a_dag_runs_failed_steps_name_the_export_and_the_webhook(
    failed, export_failed, playbook_failed
):
    outcome = dag_run(failed, context=CONTEXT, fallback={"slack_posted": True})
    assert (outcome.export_failed, outcome.playbook_failed) == (export_failed, playbook_failed)
    assert outcome.fallback_posted is True and outcome.failed_steps == failed
    assert summarize(outcome, now=NOW)["status"] == "failed"
