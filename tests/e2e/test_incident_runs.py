"""A week of DAG runs against the playbook simulator: one incident, one ticket, one thread.

The sample's April promotion is incident INC-20110513 (``retentionops incidents``): open on
05-13 (CRITICAL), updates on 05-14, 05-15 and 05-16 (still CRITICAL against the pre-incident
baseline), no alert on 05-17, a de-escalation to WARNING on 06-20 (not run here), resolved
on 07-01 (README, docs/incidents.md). The age rule is off (conftest), as
in ``make demo``, except where a test turns it on.
"""

from __future__ import annotations

import datetime as dt

from support import INCIDENT_RESOLVED as RESOLVED
from support import query_warehouse, run_folder


def by_time(slack_files):
    """The Slack posts in the order they were made."""
    return sorted(slack_files.values(), key=lambda post: float(post["ts"]))


def log_row(tmp_path, day):
    """The latest run's log row of a date (each run of a date has its own row)."""
    rows = query_warehouse(
        tmp_path,
        "select incident_id, incident_event, playbook_status, status, note, ticket_id "
        "from ops_runs_log where alert_date = ? order by run_timestamp desc",
        [dt.date.fromisoformat(day)],
    )
    return rows[0]


def test_a_week_of_runs_is_one_ticket_updated_on_event_days_and_closed(incident_days):
    days = incident_days  # 05-13 … 05-17 and 07-01, run once per session (conftest)
    assert all(state.endswith("success") for state in days.states.values()), days.states

    # one request per event day; 05-17 (an open incident without an alert) sends nothing
    sent = [(r["run_date"], r["incident"]["event"]) for r in days.requests]
    assert sent == [
        ("2011-05-13", "open"), ("2011-05-14", "update"), ("2011-05-15", "update"),
        ("2011-05-16", "update"), (RESOLVED, "resolve"),
    ]  # fmt: skip
    # later events name the ticket and thread the first delivery got (from the ledger)
    assert [r["incident"]["ticket_id"] for r in days.requests] == [None] + ["RET-0001"] * 4
    assert len({r["dedupe_key"] for r in days.requests}) == 5
    # the escalation mention (@here, in Slack syntax) only on the CRITICAL opening
    assert [r["mention"] for r in days.requests] == ["<!here>", None, None, None, None]

    [(name, ticket)] = days.tickets.items()
    assert name == "ticket_RET-0001.json" and ticket["incident_id"] == "INC-20110513"
    assert [e["event"] for e in ticket["events"]] == [
        "open", "update", "update", "update", "resolve",
    ]  # fmt: skip
    assert ticket["status"] == "closed" and ticket["severity"] == "WARNING"
    posts = by_time(days.slack)
    assert len(posts) == 5 and posts[0]["thread_ts"] is None
    assert {p["thread_ts"] for p in posts[1:]} == {posts[0]["ts"]}  # all in one thread

    # every day's log row names the incident and what its playbook did
    assert log_row(days.folder, "2011-05-13")[:4] == ("INC-20110513", "open", "sent", "success")
    quiet = log_row(days.folder, "2011-05-17")
    assert quiet[:4] == ("INC-20110513", None, "not_needed", "skipped")
    assert "INC-20110513" in quiet[4]  # the note: the incident is open, no event today
    assert log_row(days.folder, RESOLVED)[:4] == ("INC-20110513", "resolve", "sent", "success")
    assert len(query_warehouse(days.folder, "select * from ops_runs_log")) == 6


def test_a_rerun_sends_nothing_and_a_resend_sends_the_same_event_again(incident_days):
    days = incident_days
    # a re-run of 05-14 rebuilds the day and sends nothing: the event was delivered
    assert days.rerun_states[0].endswith("success")
    assert days.after_rerun["requests"] == days.requests
    rows = query_warehouse(
        days.rerun_folder,
        "select incident_event, playbook_status, status, note, ticket_id from ops_runs_log "
        "where alert_date = '2011-05-14' order by run_timestamp",
    )
    assert len(rows) == 3  # the first run, the re-run, the resend
    event, playbook, status, note, ticket_id = rows[1]
    assert (event, playbook, status) == ("update", "suppressed", "success")
    assert note.startswith("already delivered (update of INC-20110513") and "resend" in note
    assert ticket_id is None

    # resend of 05-14: the ticket was closed on 07-01; sending an update now would
    # contradict it, so even a deliberate resend is withheld, and says why
    assert days.rerun_states[1].endswith("success")
    event, playbook, status, note, ticket_id = rows[2]
    assert (event, playbook, status, ticket_id) == ("update", "suppressed", "success", None)
    assert note.startswith("withheld: incident INC-20110513 is already resolved (its resolve ")

    # resend of the resolution itself: the same event again, same dedupe key, marked as a
    # resend; the receiver acts on the ticket it closed
    assert days.rerun_states[2].endswith("success")
    requests = days.after_resend["requests"]
    assert len(requests) == len(days.requests) + 1
    resent = requests[-1]
    assert resent["resend"] is True and resent["dedupe_key"] == days.requests[-1]["dedupe_key"]
    assert resent["incident"]["event"] == "resolve"
    events = days.after_resend["tickets"]["ticket_RET-0001.json"]["events"]
    assert [e["event"] for e in events] == [
        "open", "update", "update", "update", "resolve", "resolve",
    ]  # fmt: skip
    assert len(days.after_resend["slack"]) == 6


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
