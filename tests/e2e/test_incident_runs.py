"""A week of DAG runs against the playbook simulator: one incident, one ticket, one thread.

The sample's April promotion is incident INC-20110513 (``retentionops incidents``): open on
05-13 (CRITICAL), updates on 05-14 and 05-15, a de-escalation to WARNING on 05-16, no alert
on 05-17, resolved on 07-01 (README, docs/incidents.md). The age rule is off (conftest), as
in ``make demo``, except where a test turns it on.
"""

from __future__ import annotations

import datetime as dt
import json

from support import query_warehouse, run_folder

WEEK = ["2011-05-13", "2011-05-14", "2011-05-15", "2011-05-16", "2011-05-17"]
RESOLVED = "2011-07-01"


def tickets(sim):
    return {p.name: json.loads(p.read_text()) for p in sorted(sim.out_dir.glob("ticket_*.json"))}


def slack_posts(sim):
    posts = [json.loads(p.read_text()) for p in sim.out_dir.glob("slack_*.json")]
    return sorted(posts, key=lambda post: float(post["ts"]))


def log_row(tmp_path, day):
    """The latest run's log row of a date (each run of a date has its own row)."""
    rows = query_warehouse(
        tmp_path,
        "select incident_id, incident_event, playbook_status, status, note, ticket_id "
        "from ops_runs_log where alert_date = ? order by run_timestamp desc",
        [dt.date.fromisoformat(day)],
    )
    return rows[0]


def test_a_week_of_runs_is_one_ticket_updated_on_event_days_and_closed(
    run_dag, playbook_sim, tmp_path
):
    for day in [*WEEK, RESOLVED]:
        dag_run, _ = run_dag(day)
        assert str(dag_run.state).endswith("success"), day

    # one request per event day; 05-17 (an open incident without an alert) sends nothing
    sent = [(r["run_date"], r["incident"]["event"]) for r in playbook_sim.requests]
    assert sent == [
        ("2011-05-13", "open"), ("2011-05-14", "update"), ("2011-05-15", "update"),
        ("2011-05-16", "de-escalate"), (RESOLVED, "resolve"),
    ]  # fmt: skip
    # later events name the ticket and thread the first delivery got (from the ledger)
    assert [r["incident"]["ticket_id"] for r in playbook_sim.requests] == [None] + ["RET-0001"] * 4
    assert len({r["dedupe_key"] for r in playbook_sim.requests}) == 5
    # the escalation mention (@here, in Slack syntax) only on the CRITICAL opening
    assert [r["mention"] for r in playbook_sim.requests] == ["<!here>", None, None, None, None]

    [(name, ticket)] = tickets(playbook_sim).items()
    assert name == "ticket_RET-0001.json" and ticket["incident_id"] == "INC-20110513"
    assert [e["event"] for e in ticket["events"]] == [
        "open", "update", "update", "de-escalate", "resolve",
    ]  # fmt: skip
    assert ticket["status"] == "closed" and ticket["severity"] == "WARNING"
    posts = slack_posts(playbook_sim)
    assert len(posts) == 5 and posts[0]["thread_ts"] is None
    assert {p["thread_ts"] for p in posts[1:]} == {posts[0]["ts"]}  # all in one thread

    # every day's log row names the incident and what its playbook did
    assert log_row(tmp_path, "2011-05-13")[:4] == ("INC-20110513", "open", "sent", "success")
    quiet = log_row(tmp_path, "2011-05-17")
    assert quiet[:4] == ("INC-20110513", None, "not_needed", "skipped")
    assert "INC-20110513" in quiet[4]  # the note: the incident is open, no event today
    assert log_row(tmp_path, RESOLVED)[:4] == ("INC-20110513", "resolve", "sent", "success")

    # a re-run of 05-14 rebuilds the day and sends nothing: the event was delivered
    assert len(query_warehouse(tmp_path, "select * from ops_runs_log")) == 6
    dag_run, _ = run_dag("2011-05-14")
    assert str(dag_run.state).endswith("success")
    assert len(playbook_sim.requests) == 5
    incident, event, playbook, status, note, ticket_id = log_row(tmp_path, "2011-05-14")
    assert (event, playbook, status) == ("update", "suppressed", "success")
    assert note.startswith("already delivered (update of INC-20110513") and "resend" in note
    assert ticket_id is None

    # resend: the same event again, same dedupe key, marked as a resend; the receiver acts
    dag_run, _ = run_dag("2011-05-14", resend=True)
    assert str(dag_run.state).endswith("success")
    resent = playbook_sim.requests[-1]
    assert (
        resent["resend"] is True and resent["dedupe_key"] == playbook_sim.requests[1]["dedupe_key"]
    )
    assert [e["event"] for e in tickets(playbook_sim)["ticket_RET-0001.json"]["events"]][-1] == (
        "update"
    )
    assert len(slack_posts(playbook_sim)) == 6


def test_a_backfill_of_an_old_date_sends_nothing_and_says_why(
    run_dag, playbook_sim, tmp_path, monkeypatch
):
    """With the age rule on (2 days, the default), the August incident's opening day,
    backfilled today, is rebuilt (brief, audiences, log) but not sent: history is not news."""
    monkeypatch.setenv("RETENTIONOPS_NOTIFY_MAX_AGE_DAYS", "2")
    dag_run, states = run_dag("2011-09-09")
    assert str(dag_run.state).endswith("success")
    assert states["warning"].endswith("success") and states["trigger_playbook"].endswith("skipped")
    assert playbook_sim.requests == []
    incident, event, playbook, status, note, _ = log_row(tmp_path, "2011-09-09")
    assert (incident, event, playbook, status) == ("INC-20110909", "open", "suppressed", "success")
    assert "days old" in note and "notify_max_age_days = 2" in note
    exported = query_warehouse(
        tmp_path, "select total_exported from ops_runs_log where alert_date = '2011-09-09'"
    )
    assert exported[0][0] > 0  # the audiences were still built


def test_a_silence_set_by_airflow_variable_and_the_warm_up_send_nothing(
    run_dag, playbook_sim, tmp_path, monkeypatch
):
    """The silence is settable without a deploy (an Airflow Variable, here from the
    environment as Airflow reads it): the incident still opens and is logged, nothing is
    posted, the brief and the log row say until when and why. A warm-up alert day opens
    nothing and its log row says when alerts start."""
    until = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    monkeypatch.setenv("AIRFLOW_VAR_RETENTIONOPS_SILENCE_UNTIL", until)
    monkeypatch.setenv("AIRFLOW_VAR_RETENTIONOPS_SILENCE_REASON", "the data team is migrating")
    dag_run, states = run_dag("2011-05-13")
    assert str(dag_run.state).endswith("success")
    assert states["critical"].endswith("success") and states["trigger_playbook"].endswith("skipped")
    assert playbook_sim.requests == []
    incident, event, playbook, status, note, _ = log_row(tmp_path, "2011-05-13")
    assert (incident, event, playbook, status) == ("INC-20110513", "open", "suppressed", "success")
    assert note == f"silenced until {until} because the data team is migrating"
    brief = (run_folder(tmp_path, "2011-05-13", dag_run.run_id) / "brief.md").read_text()
    assert f"NOT SENT — silenced until {until} because the data team is migrating." in brief

    dag_run, states = run_dag("2011-01-10")  # a CRITICAL SQL5 day, 41 days into the history
    assert states["no_alert"].endswith("success")
    incident, event, playbook, status, note, _ = log_row(tmp_path, "2011-01-10")
    assert (incident, event, playbook, status) == (None, None, "not_needed", "skipped")
    assert note == "warm-up: 41 days of history; alerts start on 2011-03-07"
