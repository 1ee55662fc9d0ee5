"""The playbook contract in pure Python: plans per rollout mode, the body, response handling."""

from __future__ import annotations

import json
import re

import pytest

from retentionops import playbook
from retentionops.settings import load_settings

SETTINGS = load_settings(env={})
CRITICAL = {"severity": "CRITICAL", "alert_flag": True}
WARNING = {"severity": "WARNING", "alert_flag": True}


@pytest.mark.parametrize(
    ("decision", "mode", "expected"),
    [
        (CRITICAL, "production", (False, True, "URGENT", "#retention-alerts")),
        (WARNING, "production", (False, False, "HIGH", "#retention-alerts")),
        # pilot: the WARNING playbook only, in the pilot channel (CRITICAL is not escalated)
        (CRITICAL, "pilot", (False, False, "HIGH", "#retention-pilot")),
        (WARNING, "pilot", (False, False, "HIGH", "#retention-pilot")),
        (CRITICAL, "shadow", (True, False, "HIGH", "#retention-pilot")),
    ],
)
def test_plan_by_severity_and_rollout_mode(decision, mode, expected):
    plan = playbook.playbook_plan(decision, mode, SETTINGS)
    assert (plan["shadow"], plan["escalation"], plan["ticket_priority"], plan["slack_channel"]) == (
        expected
    )
    assert plan["rollout_mode"] == mode


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="shadow, pilot, production"):
        playbook.playbook_plan(CRITICAL, "canary", SETTINGS)


class FakeResponse:
    def __init__(self, status, body=None, reason="", text=None):
        self.status_code, self._body, self.reason = status, body, reason
        self.text = text

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_transient_statuses_raise_a_retryable_error(status):
    with pytest.raises(playbook.TransientWebhookError, match=f"HTTP {status}"):
        playbook.classify_response(FakeResponse(status, reason="x"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_are_permanent(status):
    with pytest.raises(playbook.PermanentWebhookError, match=f"HTTP {status}"):
        playbook.classify_response(FakeResponse(status))


def test_success_and_response_parsing():
    assert playbook.classify_response(FakeResponse(200)) is True
    parsed = playbook.parse_response(
        FakeResponse(200, {"slack_message_ts": "1.2", "ticket_id": "RET-7", "x": 1})
    )
    assert parsed == {
        "status_code": 200,
        "slack_message_ts": "1.2",
        "ticket_id": "RET-7",
        "ticket_url": None,
        "slack_channel": None,
    }
    # the ticket's address, when the scenario answers it, is kept (the ledger stores it)
    answer = {"slack_message_ts": "1.2", "ticket_id": "RET-7", "ticket_url": "https://t/RET-7"}
    assert playbook.parse_response(FakeResponse(200, answer))["ticket_url"] == "https://t/RET-7"
    with pytest.raises(playbook.PermanentWebhookError, match="Webhook response"):
        playbook.parse_response(FakeResponse(200, None, text="Accepted"))


def test_secrets_of_a_connection_and_redaction():
    from retentionops import connections

    url = "https://hook.eu1.make.com/abcdef123456token"
    secrets = connections.connection_secrets(url, None, '{"api_key": "s3cr3t-key"}')
    assert url in secrets and "/abcdef123456token" in secrets and "s3cr3t-key" in secrets
    message = (
        "HTTPSConnectionPool(host='hook.eu1.make.com'): Max retries exceeded with url: "
        "/abcdef123456token (Caused by ...) key=s3cr3t-key see https://other.example/x"
    )
    clean = connections.redact(message, secrets)
    assert "abcdef123456token" not in clean and "s3cr3t-key" not in clean
    assert "https://" not in clean and "***" in clean


def context(severity="CRITICAL", mode="production"):
    value = {
        "run_date": "2011-05-13",
        "decision": {
            "severity": severity, "alert_flag": True, "current_value": 45.2,
            "baseline_value": 32.55142857142857, "delta_pct": 12.648571428571428,
            "delta_relative_pct": 38.86, "sample_size": 2396, "threshold_warning": 15.0,
            "threshold_critical": 25.0, "alert_date": "2011-05-13",
        },
        "tiers": {"P1": {"count": 47}, "P2": {"count": 300}, "P3": {"count": 0}},
    }  # fmt: skip
    value["plan"] = playbook.playbook_plan(value["decision"], mode, SETTINGS)
    return value


@pytest.mark.parametrize("mode", ["shadow", "pilot", "production"])
@pytest.mark.parametrize("severity", ["WARNING", "CRITICAL"])
def test_the_body_satisfies_the_published_schema(mode, severity):
    from devtools.playbook_sim import first_violation

    exports = [
        {"tier": "P2", "link": "artifacts/runs/2011-05-13/audience_p2.csv", "row_count": 300},
        {"tier": "P1", "link": "artifacts/runs/2011-05-13/audience_p1.csv", "row_count": 47},
    ]
    body = playbook.build_payload(
        run_id="scheduled__2011-05-13T00:00:00+00:00",
        context=context(severity, mode),
        slack_brief={"text": "*brief*", "blocks": [{"type": "divider"}]},
        exports=exports,
        brief_link="artifacts/runs/2011-05-13/brief.md",
        settings=SETTINGS,
    )
    assert first_violation(body) is None
    assert [e["tier"] for e in body["exports"]] == ["P1", "P2"]
    assert body["tier_counts"] == {"P1": 47, "P2": 300, "P3": 0}
    assert body["escalation"] is (severity == "CRITICAL" and mode == "production")
    assert "alert_date" not in body["decision"]  # only the contract's fields


@pytest.mark.parametrize(
    ("decision", "mode", "expected"),
    [
        # the audiences follow the alert's severity whatever the rollout stage
        (CRITICAL, "production", ("critical", ["P1", "P2", "P3"], "<!here>")),
        (CRITICAL, "pilot", ("critical", ["P1", "P2", "P3"], None)),
        (CRITICAL, "shadow", ("critical", ["P1", "P2", "P3"], None)),
        (WARNING, "production", ("warning", ["P1", "P2"], None)),
        ({"severity": "WARNING", "alert_flag": False}, "production", ("no_alert", [], None)),
        ({"severity": "INFO", "alert_flag": False}, "production", ("no_alert", [], None)),
    ],
)
def test_plan_branch_tiers_and_mention(decision, mode, expected):
    plan = playbook.playbook_plan(decision, mode, SETTINGS)
    assert (plan["branch"], plan["tiers"], plan["mention"]) == expected
    if not plan["alerting"]:
        assert (plan["ticket_priority"], plan["slack_channel"]) == (None, None)


# -- incidents across days: the plan of each event, and whether a run sends it ---------------


def incident_day(event, severity, previous=None):
    return {"incident_id": "INC-20110513", "event": event, "incident_severity": severity,
            "previous_severity": previous, "opened_on": "2011-05-13", "days_open": 2,
            "peak_severity": "CRITICAL", "frozen_baseline": 32.55}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "severity", "expected"),
    [
        # branch, tiers, mention (production), ticket priority
        ("open", "CRITICAL", ("critical", ["P1", "P2", "P3"], "<!here>", "URGENT")),
        ("open", "WARNING", ("warning", ["P1", "P2"], None, "HIGH")),
        # later days of a CRITICAL incident: still URGENT, but no second @here
        ("update", "CRITICAL", ("critical", ["P1", "P2", "P3"], None, "URGENT")),
        ("escalate", "CRITICAL", ("critical", ["P1", "P2", "P3"], "<!here>", "URGENT")),
        ("de-escalate", "WARNING", ("warning", ["P1", "P2"], None, "HIGH")),
        ("resolve", "WARNING", ("resolved", [], None, "HIGH")),
        (None, "WARNING", ("no_alert", [], None, None)),  # a quiet day of an open incident
    ],
)
def test_the_plan_of_each_incident_event(event, severity, expected):
    decision = {"severity": "INFO", "alert_flag": event not in ("resolve", None),
                "alert_date": "2011-05-14"}  # fmt: skip
    plan = playbook.playbook_plan(decision, "production", SETTINGS, incident_day(event, severity))
    assert (plan["branch"], plan["tiers"], plan["mention"], plan["ticket_priority"]) == expected
    assert plan["event"] == event and plan["send"] is bool(event)
    if event:
        assert plan["dedupe_key"] == f"INC-20110513:{event}:2011-05-14:production"


def test_the_escalation_mention_is_a_setting():
    settings = load_settings(env={}, escalation_mention="<!subteam^S0RET>")
    plan = playbook.playbook_plan(
        CRITICAL, "production", settings, incident_day("open", "CRITICAL")
    )
    assert plan["mention"] == "<!subteam^S0RET>"
    assert playbook.slack_mention("@channel") == "<!channel>"


STARTED = __import__("datetime").datetime(2011, 5, 15, 6, 0, tzinfo=__import__("datetime").UTC)


def decided(settings=SETTINGS, run_date="2011-05-14", delivered=None, **delivery):
    import datetime as dt

    plan = playbook.playbook_plan(
        {"severity": "CRITICAL", "alert_flag": True, "alert_date": run_date}, "production",
        settings, incident_day("update", "CRITICAL"),
    )  # fmt: skip
    facts = playbook.Delivery(STARTED, **delivery)
    return playbook.decide_delivery(
        plan, settings, dt.date.fromisoformat(run_date), facts, delivered
    )


def test_a_fresh_event_is_sent():
    plan = decided()
    assert (plan["send"], plan["reason"]) == (True, None)


def test_an_event_already_delivered_is_not_sent_again_unless_resent():
    plan = decided(delivered="2011-05-15 06:01 UTC by scheduled__2011-05-14")
    assert plan["send"] is False and plan["reason"].startswith("already delivered (update of")
    assert decided(delivered="x", resend=True)["send"] is True


def test_history_is_not_news():
    # the run for 05-10 starts on 05-15: 5 days old, more than notify_max_age_days (2)
    plan = decided(run_date="2011-05-10")
    assert plan["send"] is False and "2011-05-10 is 5 days old" in plan["reason"]
    assert decided(run_date="2011-05-13")["send"] is True  # 2 days: still news
    no_limit = load_settings(env={}, notify_max_age_days=0)
    assert decided(no_limit, run_date="2011-01-10")["send"] is True


def test_a_historical_run_has_no_deadline():
    """One age rule: the date that sends nothing because it is history (notify_max_age_days)
    is the date whose brief sets no deadline; a fresh date is due SLA hours after the start."""
    import datetime as dt

    started = playbook.Delivery(STARTED)
    old, fresh = dt.date(2011, 5, 10), dt.date(2011, 5, 13)  # 5 and 2 days old on 05-15
    assert playbook.history_age(SETTINGS, old, started) == 5
    assert playbook.history_age(SETTINGS, fresh, started) is None
    assert playbook.response_due(SETTINGS, old, started) is None
    assert playbook.response_due(SETTINGS, fresh, started) == "2011-05-16T06:00+00:00"
    # a resend sends history again, but it is still history: no deadline from today
    assert decided(run_date="2011-05-10", resend=True)["send"] is True
    assert playbook.response_due(SETTINGS, old, playbook.Delivery(STARTED, resend=True)) is None
    no_limit = load_settings(env={}, notify_max_age_days=0)  # nothing is history
    assert playbook.history_age(no_limit, dt.date(2011, 1, 10), started) is None
    assert playbook.response_due(no_limit, dt.date(2011, 1, 10), started) is not None


def test_silence_and_the_kill_switch():
    silenced = load_settings(env={}, silence_until="2011-05-15", silence_reason="promo week")
    assert decided(silenced)["reason"] == "silenced until 2011-05-15 because promo week"
    over = load_settings(env={}, silence_until="2011-05-14")  # the run starts on 05-15
    assert decided(over)["send"] is True
    off = load_settings(env={}, playbook_enabled=False)
    assert "kill switch" in decided(off)["reason"] and decided(off)["send"] is False


def test_a_dry_run_builds_and_sends_nothing():
    assert decided(dry_run=True)["reason"].startswith("dry run")


@pytest.mark.parametrize("event", ["open", "update", "escalate", "de-escalate", "resolve"])
def test_every_event_body_satisfies_the_contract(event):
    from devtools.playbook_sim import first_violation

    severity = "WARNING" if event in ("de-escalate", "resolve") else "CRITICAL"
    value = context(severity)
    value["decision"]["alert_flag"] = event != "resolve"
    value["incident"] = {**incident_day(event, severity, "CRITICAL"), "days_open": 3}
    value["plan"] = playbook.playbook_plan(
        value["decision"], "production", SETTINGS, value["incident"]
    )
    thread = None if event == "open" else {"ticket_id": "RET-0001", "slack_message_ts": "17.01"}
    body = playbook.build_payload(
        run_id="scheduled__2011-05-14T00:00:00+00:00", context=value,
        slack_brief={"text": "*brief*", "blocks": []}, exports=[], brief_link=None,
        settings=load_settings(env={}, incident_owner="@retention-oncall"), thread=thread,
        delivery=playbook.Delivery(STARTED),
    )  # fmt: skip
    assert first_violation(body) is None
    assert body["incident"]["event"] == event and body["owner"] == "@retention-oncall"
    assert body["due_at"] == "2011-05-16T06:00:00+00:00"  # the run's start + 24 h
    assert body["incident"]["ticket_id"] == (None if event == "open" else "RET-0001")


def test_the_body_and_the_ticket_show_percentages_to_2_decimals():
    """SQL5's baseline and the frozen pre-incident baseline are exact means in the
    warehouse; the body people's tools read (Slack, the ticket) carries them rounded."""
    from devtools.playbook_sim import _ticket_body, first_violation

    value = context()
    value["incident"] = {**incident_day("open", "CRITICAL"), "frozen_baseline": 32.55142857142857}
    value["plan"] = playbook.playbook_plan(
        value["decision"], "production", SETTINGS, value["incident"]
    )
    body = playbook.build_payload(
        run_id="scheduled__2011-05-13T00:00:00+00:00", context=value,
        slack_brief={"text": "*brief*", "blocks": []}, exports=[], brief_link=None,
        settings=SETTINGS, delivery=playbook.Delivery(STARTED),
    )  # fmt: skip
    assert first_violation(body) is None
    assert body["decision"] == {
        "current_value": 45.2, "baseline_value": 32.55, "delta_pct": 12.65,
        "delta_relative_pct": 38.86, "threshold_warning": 15.0, "threshold_critical": 25.0,
        "sample_size": 2396,
    }  # fmt: skip
    assert body["incident"]["pre_incident_baseline"] == 32.55
    ticket = _ticket_body(body, "17.01")
    assert "AT_RISK: 45.2% vs baseline 32.55% (delta 12.65 pts, relative 38.86%" in ticket
    assert not re.search(r"\d\.\d{3}", json.dumps(body)), "a number with 3+ decimals"
    # the context (the warehouse's values) is left exact
    assert value["decision"]["baseline_value"] == 32.55142857142857


def test_the_task_log_line_of_a_delivery_names_the_event_the_ticket_and_the_post():
    from retentionops.service import delivered_line

    payload = {"run_date": "2011-05-13", "incident": {"incident_id": "INC-20110513",
                                                       "event": "open"}}  # fmt: skip
    answer = {"ticket_id": "RET-0001", "slack_message_ts": "1305244800.000100"}
    assert delivered_line(payload, answer) == (
        "playbook: delivered the open event of INC-20110513: ticket RET-0001, "
        "Slack message 1305244800.000100"
    )


@pytest.mark.parametrize(
    ("error", "at_once"),
    [
        ("ExportError", True),
        ("ConnectionMissingError", True),
        ("PermanentWebhookError", True),
        ("TransientWebhookError", False),
        ("WarehouseError", False),
    ],
)
def test_a_permanent_error_fails_its_task_at_once_and_a_transient_one_keeps_its_retries(
    error, at_once
):
    from airflow.sdk.exceptions import AirflowFailException

    from retentionops import connections, exports, operators, warehouse

    kinds = {
        "ExportError": exports.ExportError,
        "ConnectionMissingError": connections.ConnectionMissingError,
        "PermanentWebhookError": playbook.PermanentWebhookError,
        "TransientWebhookError": playbook.TransientWebhookError,
        "WarehouseError": warehouse.WarehouseError,
    }
    raised = kinds[error]("export folder '/etc' is outside the export root")
    expected = AirflowFailException if at_once else kinds[error]
    with (
        pytest.raises(expected, match="outside the export root"),
        operators.permanent_errors_fail_at_once(),
    ):
        raise raised


def test_the_replay_finds_what_a_team_must_never_see():
    from retentionops import replay

    def ticket(tid, incident, *events):
        kept = [{"event": e, "run_date": d, "resend": r} for e, d, r in events]
        return {"id": tid, "incident_id": incident, "events": kept}

    fine = ticket("RET-1", "INC-1", ("open", "05-13", False), ("update", "05-14", False),
                  ("resolve", "07-01", False), ("resolve", "07-01", True))  # fmt: skip
    assert replay._out_of_order([fine]) == []
    late_open = ticket("RET-2", "INC-2", ("update", "05-14", False), ("open", "05-13", False))
    assert replay._out_of_order([late_open]) == [
        "out of order: ticket RET-2 (INC-2) starts with update, not open",
        "out of order: ticket RET-2 (INC-2) got 05-14, 05-13",
    ]
    reopened = ticket("RET-3", "INC-3", ("open", "05-13", False), ("resolve", "07-01", False),
                      ("update", "05-15", False))  # fmt: skip
    assert "after resolve: ticket RET-3 (INC-3) got update of 05-15 after its resolve" in (
        replay._out_of_order([reopened])
    )
    posts = [{"incident_id": "INC-1", "event": "open", "run_date": "05-13"}] * 2
    assert replay._duplicated([fine, ticket("RET-9", "INC-1")], posts) == [
        "event duplicated: incident INC-1 has 2 tickets",
        "event duplicated: the open of INC-1 (05-13) was posted 2 times",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2011-05-13: webhook_dwon\n", "unknown fault(s) webhook_dwon on 2011-05-13"),
        ("2011-02-30: webhook_down\n", "has an impossible date: day is out of range"),
        ("- webhook_down\n", "must be a mapping of date: fault(s)"),
        ("settings:\n  2011-05-01: {threshold_warning_pct: -5}\n", "it must be >= 0"),
    ],
)
def test_a_bad_fault_schedule_is_one_clear_error(tmp_path, text, message):
    from retentionops import replay
    from retentionops.errors import ServiceError, UserError

    path = tmp_path / "faults.yaml"
    path.write_text(text)
    with pytest.raises((ServiceError, UserError), match=re.escape(message)):
        replay.load_schedule(path)
