"""The approval task: Airflow's ApprovalOperator, asking a person only when the rule says so.

Its own methods, on the parsed DAG's task, without a running Airflow: Airflow's writes (the
request, the skip of the webhook) and the service's (ledger, Slack) are recorded instead.
tests/system/test_approval_in_airflow.py answers real runs through Airflow's REST API.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid

import pytest

PAYLOAD = {
    "run_date": "2011-05-13", "severity": "CRITICAL", "rollout_mode": "production",
    "shadow": False, "escalation": True, "slack_channel": "#retention-alerts",
    "ticket_priority": "URGENT", "brief_link": "runs/brief.md",
    "incident": {"incident_id": "INC-20110513", "event": "open"},
    "exports": [{"tier": "P1", "row_count": 47}],
    "brief": {"text": "*brief*", "blocks": []},
}  # fmt: skip


class TI:
    """The task instance a task sees: its id, and the XComs it pushes."""

    dag_id, run_id, task_id, map_index = "retention_ops", "manual__x", "approve_playbook", -1

    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.fixture
def approve(duckdb_dag, monkeypatch):
    """The parsed task (a copy), its context, and what it asked Airflow and the service."""
    from airflow.providers.standard.operators import hitl

    from retentionops import service

    calls: dict[str, list] = {"request": [], "slack": [], "recorded": []}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: calls["request"].append(kw))
    monkeypatch.setattr(
        service, "post_approval_request", lambda s, p, link: calls["slack"].append(link)
    )
    monkeypatch.setattr(
        service, "record_approval", lambda s, p, verdict: calls["recorded"].append(verdict)
    )
    task = copy.deepcopy(duckdb_dag.get_task("approve_playbook"))
    task.payload = PAYLOAD  # what prepare_playbook returned (rendered from its XCom)
    ti = TI()
    context = {"task": task, "ti": ti, "task_instance": ti, "params": {}}
    return task, context, calls


def test_an_event_needing_no_approval_skips_the_task_at_once(approve):
    from airflow.sdk.exceptions import AirflowSkipException

    task, context, calls = approve
    with pytest.raises(AirflowSkipException, match="approval_required: none"):
        task.execute(context)
    assert calls == {"request": [], "slack": [], "recorded": []}


def test_a_critical_event_waits_for_a_person(approve, monkeypatch):
    from airflow.sdk.exceptions import TaskAwaitingInput

    monkeypatch.setenv("RETENTIONOPS_APPROVAL_REQUIRED", "critical")
    monkeypatch.setenv("RETENTIONOPS_APPROVAL_TIMEOUT_MINUTES", "30")
    task, context, calls = approve
    with pytest.raises(TaskAwaitingInput) as waiting:
        task.execute(context)
    assert waiting.value.timeout == dt.timedelta(minutes=30)
    [request] = calls["request"]
    assert request["subject"] == "Send the CRITICAL open of INC-20110513 (2011-05-13)?"
    assert "With no answer within 30 min it is withheld by default" in request["body"]
    assert (request["options"], request["defaults"]) == (["Approve", "Reject"], ["Reject"])
    assert set(request["params"]) == {"reason"}  # the run's own Params are not asked
    assert calls["slack"] == [None]  # Slack is told (no [api] base_url here: no link)


def test_approval_default_send_makes_approve_the_default(approve, monkeypatch):
    from airflow.sdk.exceptions import TaskAwaitingInput

    monkeypatch.setenv("RETENTIONOPS_APPROVAL_REQUIRED", "all")
    monkeypatch.setenv("RETENTIONOPS_APPROVAL_DEFAULT", "send")
    task, context, calls = approve
    with pytest.raises(TaskAwaitingInput):
        task.execute(context)
    assert calls["request"][0]["defaults"] == ["Approve"]


def answer(option, name="alice", reason=None, timedout=False):
    return {
        "chosen_options": [option],
        "params_input": {"reason": reason},
        "responded_at": dt.datetime(2011, 5, 14, 6, 1, tzinfo=dt.UTC),
        "responded_by_user": None if timedout else {"id": name, "name": name},
        "timedout": timedout,
    }


def test_a_rejection_skips_the_webhook_and_still_hands_on_its_verdict(approve):
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    task, context, calls = approve
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        task.execute_complete(context, answer("Reject", reason="not during the sale"))
    assert [getattr(t, "task_id", t) for t in skipped.value.tasks] == ["trigger_playbook"]
    verdict = context["ti"].pushed["return_value"]  # pushed before the skip ends the task
    assert verdict["note"] == "withheld: rejected by alice: not during the sale"
    assert calls["recorded"] == [verdict]


def test_an_approval_or_the_timeouts_default_is_recorded_and_returned(approve):
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    task, context, calls = approve
    verdict = task.execute_complete(context, answer("Approve", name="bob"))
    assert (verdict["approved"], verdict["note"]) == (True, "approved by bob")
    with pytest.raises(DownstreamTasksSkipped):  # the default withhold: as a rejection
        task.execute_complete(context, answer("Reject", timedout=True))
    assert context["ti"].pushed["return_value"]["note"] == (
        "no answer within 240 min: withheld by default"
    )
    assert [v["approved"] for v in calls["recorded"]] == [True, False]


def test_an_answer_that_fails_validation_keeps_nothing(approve):
    task, context, calls = approve
    with pytest.raises(ValueError, match="not in"):
        task.execute_complete(context, answer("Maybe"))
    assert calls["recorded"] == [] and context["ti"].pushed == {}


def test_the_webhook_cleared_after_a_rejection_sends_nothing(duckdb_dag):
    """Clearing trigger_playbook alone after a rejection must not send the event: the
    rejection stands until the approval itself runs again."""
    from airflow.sdk.exceptions import AirflowSkipException

    from retentionops import approval
    from retentionops.settings import load_settings

    trigger = copy.deepcopy(duckdb_dag.get_task("trigger_playbook"))
    trigger.data = PAYLOAD
    trigger.approval = approval.verdict(load_settings(env={}), approved=False, by="alice")
    with pytest.raises(AirflowSkipException, match="not sent: withheld: rejected by alice"):
        trigger.execute({"run_id": "manual__x"})
