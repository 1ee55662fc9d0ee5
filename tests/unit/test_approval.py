"""Approval before sending (approval.py): the one rule, what an answer says, and where."""

from __future__ import annotations

import datetime as dt

import pytest

from retentionops import approval, playbook
from retentionops.runlog import RunOutcome, summarize
from retentionops.settings import SettingsError, load_settings

NONE = load_settings(env={})
CRITICAL_ONLY = load_settings(env={}, approval_required="critical")
EVERY = load_settings(env={}, approval_required="all")
STARTED = dt.datetime(2011, 5, 13, 6, 0, tzinfo=dt.UTC)


def test_the_settings_default_to_no_approval_and_check_their_words():
    assert (NONE.approval_required, NONE.approval_timeout_minutes, NONE.approval_default) == (
        "none", 240.0, "withhold",
    )  # fmt: skip
    with pytest.raises(SettingsError, match="approval_required.*none, critical, all"):
        load_settings(env={}, approval_required="critcal")
    with pytest.raises(SettingsError, match="approval_default.*withhold, send"):
        load_settings(env={}, approval_default="approve")
    with pytest.raises(SettingsError, match="approval_timeout_minutes"):
        load_settings(env={}, approval_timeout_minutes=0)
    # minutes may be a fraction (a test's short wait)
    quick = load_settings(env={"RETENTIONOPS_APPROVAL_TIMEOUT_MINUTES": "0.5"})
    assert quick.approval_timeout_minutes == 0.5


@pytest.mark.parametrize(
    ("settings", "event", "severity", "required"),
    [
        (NONE, "open", "CRITICAL", False),  # the default holds nothing
        (CRITICAL_ONLY, "open", "CRITICAL", True),
        (CRITICAL_ONLY, "update", "CRITICAL", True),
        (CRITICAL_ONLY, "escalate", "CRITICAL", True),
        (CRITICAL_ONLY, "open", "WARNING", False),  # a WARNING event under 'critical'
        (CRITICAL_ONLY, "de-escalate", "WARNING", False),
        (CRITICAL_ONLY, "resolve", "CRITICAL", False),  # the all-clear contacts nobody
        (CRITICAL_ONLY, None, "CRITICAL", False),  # a day with nothing to send
        (EVERY, "open", "WARNING", True),
        (EVERY, "resolve", "WARNING", True),
        (EVERY, None, None, False),
    ],
)
def test_the_one_rule(settings, event, severity, required):
    assert approval.required(settings, event, severity) is required


def incident_day(event, severity):
    return {"incident_id": "INC-20110513", "event": event, "incident_severity": severity,
            "previous_severity": None, "opened_on": "2011-05-13", "days_open": 1,
            "peak_severity": severity, "frozen_baseline": 32.55}  # fmt: skip


def decided(settings, event="open", severity="CRITICAL", delivered=None, **delivery):
    plan = playbook.playbook_plan(
        {"severity": severity, "alert_flag": True, "alert_date": "2011-05-13"}, "production",
        settings, incident_day(event, severity),
    )  # fmt: skip
    facts = playbook.Delivery(STARTED, **delivery)
    return playbook.decide_delivery(plan, settings, dt.date(2011, 5, 13), facts, delivered)


def test_the_plan_carries_the_approval_an_event_to_send_waits_for():
    plan = decided(CRITICAL_ONLY)
    assert plan["send"] is True and approval.pending(plan)
    assert plan["approval"] == {
        "required_by": "critical", "approved_by": None, "timeout_minutes": 240.0,
        "default": "withhold",
    }  # fmt: skip
    # a door that names the approver: the event is approved, not pending
    named = decided(CRITICAL_ONLY, approved_by="  Alice   Martin ")
    assert named["approval"]["approved_by"] == "Alice Martin" and not approval.pending(named)
    # nothing to approve: not required, or not sent anyway (the plan is as before)
    assert "approval" not in decided(NONE)
    assert "approval" not in decided(CRITICAL_ONLY, severity="WARNING")
    assert "approval" not in decided(CRITICAL_ONLY, dry_run=True)
    already = decided(CRITICAL_ONLY, delivered="2011-05-13 06:01 UTC by r1")
    assert already["send"] is False and "approval" not in already
    # a plan decided again (prepare_playbook settles the context's plan) drops a stale one
    again = playbook.decide_delivery(
        decided(CRITICAL_ONLY), NONE, dt.date(2011, 5, 13), playbook.Delivery(STARTED)
    )
    assert "approval" not in again


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        ({"approved": False, "by": "alice", "reason": "not during\nthe  sale"},
         "withheld: rejected by alice: not during the sale"),
        ({"approved": False, "by": "alice"}, "withheld: rejected by alice"),
        ({"approved": True, "by": "bob", "reason": "checked the numbers"},
         "approved by bob: checked the numbers"),
        ({"approved": True, "by": None}, "approved by an unnamed user"),
        # nobody answered: the default applied, whoever or whatever is in the answer
        ({"approved": False, "by": None, "timed_out": True},
         "no answer within 240 min: withheld by default"),
        ({"approved": True, "by": None, "timed_out": True},
         "no answer within 240 min: sent by default"),
    ],
)  # fmt: skip
def test_what_an_answer_says(answer, note):
    verdict = approval.verdict(NONE, **answer)
    assert verdict["note"] == note
    assert verdict["approved"] is answer["approved"]
    assert verdict["timed_out"] is bool(answer.get("timed_out"))


def test_a_short_wait_is_said_in_its_own_minutes_and_a_reason_is_capped():
    quick = load_settings(env={}, approval_timeout_minutes=0.5)
    verdict = approval.verdict(quick, approved=False, by=None, timed_out=True)
    assert verdict["note"] == "no answer within 0.5 min: withheld by default"
    long = approval.verdict(NONE, approved=False, by="alice", reason="x" * 1000)
    assert len(long["reason"]) == approval.MAX_REASON_LENGTH


# -- the run log ------------------------------------------------------------------------------

OPENS = {"event": "open", "incident_id": "INC-20110513", "alerting": True, "send": True,
         "reason": None}  # fmt: skip
DECISION = {"severity": "CRITICAL", "alert_flag": True}
ANSWER = {"status_code": 200, "slack_message_ts": "1700.0001", "ticket_id": "RET-0001"}


def row(verdict, answer=None, **fields):
    outcome = RunOutcome(
        "manual__2011-05-13", "2011-05-13", "dag", started_at=STARTED, daily=True,
        decision=DECISION, plan=OPENS, exports=[], approval=verdict, answer=answer, **fields,
    )  # fmt: skip
    stored = summarize(outcome, now=STARTED + dt.timedelta(minutes=3))
    return stored["status"], stored["playbook_status"], stored["slack_posted"], stored["note"]


def test_a_rejected_event_is_suppressed_and_the_note_names_who_and_why():
    verdict = approval.verdict(NONE, approved=False, by="alice", reason="not during the sale")
    assert row(verdict) == (
        "success", "suppressed", None, "withheld: rejected by alice: not during the sale",
    )  # fmt: skip


def test_a_timed_out_approval_says_what_the_default_did():
    withheld = approval.verdict(NONE, approved=False, by=None, timed_out=True)
    assert row(withheld) == (
        "success", "suppressed", None, "no answer within 240 min: withheld by default",
    )  # fmt: skip
    sent = approval.verdict(NONE, approved=True, by=None, timed_out=True)
    assert row(sent, ANSWER) == (
        "success", "sent", True, "no answer within 240 min: sent by default",
    )  # fmt: skip


def test_an_approved_event_names_its_approver_and_a_run_without_approval_is_unchanged():
    approved = approval.verdict(NONE, approved=True, by="bob")
    assert row(approved, ANSWER) == ("success", "sent", True, "approved by bob")
    # the webhook failed after the approval: failed, and the approver is still named
    failed = row(approved, playbook_failed=True, failed_steps=["trigger_playbook"])
    assert failed[:2] == ("failed", "failed") and failed[3] == "approved by bob"
    assert row(None, ANSWER) == ("success", "sent", True, None)


# -- what people see ----------------------------------------------------------------------------


def test_the_brief_says_an_approval_is_waiting_in_every_format():
    from test_brief import all_formats, bodies, make_context

    context = make_context("CRITICAL")
    context["plan"] = decided(CRITICAL_ONLY)
    line = (
        "AWAITING APPROVAL — this CRITICAL open is sent only once a person approves it in "
        "Airflow (Required actions; approval_required: critical); with no answer within 240 "
        "min it is withheld by default."
    )
    for name, text in bodies(context).items():
        assert line in text, name
    # approved by a door's named approver, or needing none: no such line
    for plan in (decided(CRITICAL_ONLY, approved_by="alice"), decided(NONE)):
        context["plan"] = plan
        assert "AWAITING APPROVAL" not in all_formats(context)["markdown"]


def payload(**changes):
    from test_playbook import context

    body = playbook.build_payload(
        run_id="manual__2011-05-13",
        context=context("CRITICAL"),
        slack_brief={"text": "*brief*", "blocks": [{"type": "divider"}] * 60},
        exports=[{"tier": "P1", "link": "runs/audience_p1.csv", "row_count": 47}],
        brief_link="runs/brief.md",
        settings=NONE,
    )
    return {**body, **changes}


def test_the_approved_body_says_who_approved_it_first_and_keeps_the_contract():
    from devtools.playbook_sim import first_violation

    verdict = approval.verdict(NONE, approved=True, by="<!channel> eve", reason="a & b")
    built = payload()
    body = approval.approved_payload(built, verdict)
    first = ":white_check_mark: Approved by &lt;!channel&gt; eve: a &amp; b."
    assert body["brief"]["text"].splitlines()[0] == first  # no mention slips through
    assert body["brief"]["blocks"][0]["text"]["text"] == first
    assert len(body["brief"]["blocks"]) == 50  # Slack's limit
    assert first_violation(body) is None
    assert {k: v for k, v in body.items() if k != "brief"} == {
        k: v for k, v in built.items() if k != "brief"
    }


def test_the_request_and_the_refusal_say_what_and_how():
    subject, body = approval.request(payload(), CRITICAL_ONLY)
    assert subject == "Send the CRITICAL open of ALERT-2011-05-13 (2011-05-13)?"
    assert "Audiences: P1 47 customers." in body
    assert "the incident's ticket at URGENT" in body and "escalation mention" in body
    assert "With no answer within 240 min it is withheld by default" in body
    plan = decided(CRITICAL_ONLY)
    refusal = approval.refusal(plan)
    assert "\n" not in refusal and refusal.startswith("approval required: the CRITICAL open")
    assert "--approved-by NAME" in refusal and "approved_by" in refusal
    notice = approval.waiting_notice(payload(), CRITICAL_ONLY, "http://airflow/x")
    assert "<http://airflow/x|Airflow's Required actions>" in notice
