"""Approval before sending: which events wait for a person, and what the answer says.

Pure Python (no Airflow import). :func:`required` is the one rule, read by every door:
``approval_required: none`` (the default) holds nothing; ``critical`` holds an alert event
(open, update, escalate, de-escalate) of a CRITICAL incident; ``all`` holds every event that
would be sent, a resolve too. ``playbook.decide_delivery`` puts the approval an event waits
for in the plan (:class:`ApprovalState`: the brief says so while it is pending); the DAG's
``approve_playbook`` task (Airflow's ``ApprovalOperator``) then waits for a person in
Airflow's Required actions, up to ``approval_timeout_minutes``, after which
``approval_default`` applies; the CLI's and the MCP server's ``trigger_playbook`` send such
an event only when they are given the approver's name. What an answer says in the run log
(:func:`verdict`) and at the top of the body sent (:func:`approved_payload`) is written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import TypedDict

from retentionops.settings import Settings
from retentionops.slack import slack_escape, with_first_line
from retentionops.vocabulary import ALERT_EVENTS

#: The longest reason kept from an answer (the run log's note, the line of the Slack post).
MAX_REASON_LENGTH = 300


class ApprovalState(TypedDict):
    """The approval an event of the plan waits for before it is sent."""

    required_by: str  # the approval_required setting that holds it: critical | all
    approved_by: str | None  # the approver a CLI or MCP door named (None: still pending)
    timeout_minutes: float  # how long the DAG waits for the answer
    default: str  # what an approval nobody answered in time does: withhold | send


class Verdict(TypedDict):
    """What came of an approval: sent or withheld, who answered, why, and the log's words."""

    approved: bool
    by: str | None  # who answered (None: nobody did, the default applied)
    reason: str | None
    timed_out: bool
    note: str  # the run log's words: "approved by …", "withheld: rejected by …: …"


def required(settings: Settings, event: str | None, severity: str | None) -> bool:
    """Whether an event that would be sent waits for a person's approval first: ``all``
    every event, ``critical`` an alert event of a CRITICAL incident (not its resolve, which
    closes the ticket and contacts nobody), ``none`` none."""
    if not event:
        return False
    if settings.approval_required == "all":
        return True
    return (
        settings.approval_required == "critical"
        and severity == "CRITICAL"
        and event in ALERT_EVENTS
    )


def state(
    settings: Settings, plan: Mapping[str, Any], approved_by: str | None = None
) -> ApprovalState | None:
    """The approval the plan's event waits for (None: it needs none); ``approved_by`` is the
    approver a CLI or MCP door was given."""
    if not required(settings, plan.get("event"), plan.get("severity")):
        return None
    return {
        "required_by": settings.approval_required,
        "approved_by": " ".join(str(approved_by or "").split()) or None,
        "timeout_minutes": settings.approval_timeout_minutes,
        "default": settings.approval_default,
    }


def pending(plan: Mapping[str, Any]) -> bool:
    """Whether the plan sends an event that still waits for a person's approval."""
    waits = plan.get("approval")
    return bool(plan.get("send") and waits and not waits.get("approved_by"))


def _minutes(value: float) -> str:
    return f"{value:g}"


def _by_default(default: str) -> str:
    return "sent" if default == "send" else "withheld"


def pending_line(plan: Mapping[str, Any]) -> str | None:
    """The brief's first line while the plan's event waits for approval (None: it does not)."""
    if not pending(plan):
        return None
    waits = plan["approval"]
    return (
        f"AWAITING APPROVAL — this {plan['severity']} {plan['event']} is sent only once a "
        "person approves it in Airflow (Required actions; approval_required: "
        f"{waits['required_by']}); with no answer within {_minutes(waits['timeout_minutes'])} "
        f"min it is {_by_default(waits['default'])} by default."
    )


def refusal(plan: Mapping[str, Any]) -> str:
    """Why a CLI or MCP door does not send an event waiting for approval, and what to do."""
    return (
        f"approval required: the {plan['severity']} {plan['event']} of {plan['incident_id']} "
        f"waits for a person's approval (approval_required: "
        f"{plan['approval']['required_by']}); nothing was sent. Name the approver "
        "(retentionops trigger --approved-by NAME; MCP: approved_by), or approve the DAG "
        "run in Airflow's Required actions"
    )


def verdict(
    settings: Settings,
    *,
    approved: bool,
    by: str | None,
    reason: str | None = None,
    timed_out: bool = False,
) -> Verdict:
    """What an answer (or the lack of one: ``timed_out``, the default applied) says."""
    reason = " ".join(str(reason or "").split())[:MAX_REASON_LENGTH] or None
    who = " ".join(str(by or "").split()) or None
    if timed_out:
        minutes = _minutes(settings.approval_timeout_minutes)
        note = f"no answer within {minutes} min: {'sent' if approved else 'withheld'} by default"
    elif approved:
        note = f"approved by {who or 'an unnamed user'}"
    else:
        note = f"withheld: rejected by {who or 'an unnamed user'}"
    if reason and not timed_out:
        note += f": {reason}"
    return {
        "approved": approved,
        "by": None if timed_out else who,
        "reason": None if timed_out else reason,
        "timed_out": timed_out,
        "note": note,
    }


def _what(payload: Mapping[str, Any]) -> str:
    incident = payload["incident"]
    return (
        f"the {payload['severity']} {incident['event']} of {incident['incident_id']} "
        f"({payload['run_date']})"
    )


def request(payload: Mapping[str, Any], settings: Settings) -> tuple[str, str]:
    """The subject and the body (Markdown) of the approval request shown in Airflow."""
    subject = f"Send {_what(payload)}?"
    mode = payload["rollout_mode"]
    if payload["shadow"]:
        mode += ", shadow: nothing real is posted"
    mention = " with the escalation mention" if payload.get("escalation") else ""
    exports = ", ".join(f"{e['tier']} {e['row_count']} customers" for e in payload["exports"])
    lines = [
        f"RetentionOps is ready to send {_what(payload)} to the Make scenario ({mode}): a "
        f"post to {payload['slack_channel']}{mention}, the incident's ticket at "
        f"{payload['ticket_priority']}.",
        f"Audiences: {exports or 'none'}.",
        f"Brief: {payload.get('brief_link') or 'not written'}.",
        "Approve sends it now. Reject withholds it: nothing is sent, and the run log says who "
        "rejected it and why (the Reason field).",
        f"With no answer within {_minutes(settings.approval_timeout_minutes)} min it is "
        f"{_by_default(settings.approval_default)} by default (approval_default).",
    ]
    return subject, "\n\n".join(lines)


def waiting_notice(payload: Mapping[str, Any], settings: Settings, link: str | None) -> str:
    """The Slack line saying an approval is waiting (mrkdwn; ``link``: the Required action)."""
    where = f"<{link}|Airflow's Required actions>" if link else "Airflow's Required actions"
    return (
        f":raised_hand: Approval needed: RetentionOps waits to send "
        f"{slack_escape(_what(payload))}. Approve or reject it in {where}; with no answer "
        f"within {_minutes(settings.approval_timeout_minutes)} min it is "
        f"{_by_default(settings.approval_default)} by default. The brief:"
    )


def approved_payload(payload: dict[str, Any], decided: Verdict) -> dict[str, Any]:
    """The body of an approved event: its brief's first line says who approved it (the
    brief itself was written while it waited)."""
    note = decided["note"]
    line = f":white_check_mark: {slack_escape(note[:1].upper() + note[1:])}."
    return with_first_line(payload, line)
