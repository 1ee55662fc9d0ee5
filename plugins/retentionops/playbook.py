"""The Make.com playbook contract: the plan, the body, how the answer is read, what is retried.

Pure Python (no Airflow import). The plan (:func:`playbook_plan`) is the one rule of what a
run delivers; the brief describes it, the payload carries it and the run log records it. The
DAG's ``trigger_playbook`` HttpOperator and the MCP/CLI ``trigger_playbook`` post the body
built here through the same hook with the same retry policy (:func:`retry_args`). The
contract is published as JSON Schema under ``include/contracts/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops import approval, progress
from retentionops.approval import ApprovalState
from retentionops.errors import UserError
from retentionops.settings import Settings
from retentionops.slack import with_first_line
from retentionops.vocabulary import (
    ALERT_EVENTS,
    NO_ALERT,
    PLAYBOOK_TIERS,
    RESOLVED,
    ROLLOUT_MODES,
    TICKET_PRIORITIES,
)

CONTRACT_VERSION = "3"
#: Per tier, the audience facts the payload carries (contract 3, docs/audiences.md).
AUDIENCE_KEYS = (
    "count", "holdout", "new", "still", "left", "cooldown_suppressed", "cooldown_bypassed",
)  # fmt: skip
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "include" / "contracts"
#: The header carrying the delivery's idempotency key (also ``dedupe_key`` in the body).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The decision's fields in the body: its percentages (rounded, see :func:`rounded_pct`) and
#: the sample size.
DECISION_PCTS = (
    "current_value", "baseline_value", "delta_pct", "delta_relative_pct",
    "threshold_warning", "threshold_critical",
)  # fmt: skip
#: Longest wait between two webhook attempts, whatever the backoff or Retry-After say.
MAX_RETRY_DELAY_SECONDS = 600.0
_TRANSIENT_STATUS = frozenset({408, 429})

log = logging.getLogger(__name__)


class WebhookError(UserError):
    """The webhook call failed; the message never contains the webhook URL."""


class TransientWebhookError(WebhookError):
    """Worth retrying: timeout, connection error, 408, 429 or 5xx.

    ``retry_after`` holds the seconds the receiver asked to wait (its ``Retry-After``);
    ``unanswered``: the request may have reached the receiver, which gave no answer in time
    (a timeout), so whether it acted is unknown.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, unanswered: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unanswered = unanswered


class WebhookOutcomeUnknown(TransientWebhookError):
    """The request was sent and not answered in time: the receiver may have acted. The
    ledger records the event as ``unknown``; the next attempt re-sends with the same key."""


class PermanentWebhookError(WebhookError):
    """Not worth retrying: another 4xx, or an answer that breaks the contract."""


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class PlaybookPlan(TypedDict):
    """What a run delivers, given its incident event, under a rollout mode."""

    branch: str  # no_alert | warning | critical | resolved: the DAG's branch
    event: str | None  # the incident's event of the day (None: nothing to act on)
    alerting: bool  # an alert event (open, update, escalate, de-escalate): audiences + brief
    severity: str | None  # the incident's current severity
    incident_id: str | None
    tiers: list[str]  # the audiences exported
    rollout_mode: str
    shadow: bool
    escalation: bool
    mention: str | None  # the Slack escalation mention, only when escalating
    ticket_priority: str | None
    slack_channel: str | None
    dedupe_key: str | None  # the delivery's idempotency key: the same event, the same key
    send: bool  # whether this run sends the event (see ``reason`` when it does not)
    reason: str | None  # why nothing is sent, in words for the brief and the run log
    # the event the data would have given on a day whose orders are late or short
    held_event: NotRequired[str | None]
    # the person's approval the event waits for before it is sent (retentionops/approval.py)
    approval: NotRequired[ApprovalState | None]


@dataclass(frozen=True)
class Delivery:
    """The facts of the run that decide whether an event is sent: when it started, whether
    it is a dry run or an explicit resend, whether it was told to act on orders that
    are late or short (``allow_late_data``, retentionops/freshness.py), and who approved
    it when a CLI or MCP door was given an approver (``approved_by``, approval.py)."""

    started_at: dt.datetime
    dry_run: bool = False
    resend: bool = False
    allow_late_data: bool = False
    approved_by: str | None = None

    @classmethod
    def now(
        cls,
        *,
        dry_run: bool = False,
        resend: bool = False,
        allow_late_data: bool = False,
        approved_by: str | None = None,
    ) -> Delivery:
        return cls(
            dt.datetime.now(dt.UTC),
            dry_run=dry_run,
            resend=resend,
            allow_late_data=allow_late_data,
            approved_by=approved_by,
        )


def rounded_pct(value: Any) -> float | None:
    """A percentage as people read it, to 2 decimals (None stays None). The warehouse keeps
    the exact value: SQL5's baseline_value and an incident's frozen baseline are exact
    means (32.55142857142857), which no ticket or Slack post should show."""
    return None if value is None else round(float(value), 2)


def slack_mention(mention: str) -> str:
    """A setting's mention in Slack's mrkdwn: @here -> <!here>, @channel -> <!channel>."""
    text = mention.strip()
    if text in ("@here", "@channel", "@everyone"):
        return f"<!{text[1:]}>"
    return text


def dedupe_key(incident_id: str, event: str, run_date: dt.date, rollout_mode: str) -> str:
    """The idempotency key of one event's delivery: a re-run, a retry or a backfill of the
    date carries the same key, so a receiver that saw it does not act again."""
    return f"{incident_id}:{event}:{run_date}:{rollout_mode}"


def playbook_plan(
    decision: dict[str, Any],
    rollout_mode: str,
    settings: Settings,
    incident: Mapping[str, Any] | None = None,
) -> PlaybookPlan:
    """What the playbook does on a day under a rollout mode (design sections 9, 16).

    With an incident layer (``incident``: the day's row of incident_days.sql) the playbook
    acts on the incident's event of the day: ``open``, ``update``, ``escalate`` and
    ``de-escalate`` deliver the alert (audiences, brief, ticket); ``resolve`` delivers a
    recovery brief and closes the ticket; a quiet day, warm-up or no incident delivers
    nothing. Without it (``incident`` None), an alerting decision acts like an ``open``.

    - The audiences follow the alert's severity (WARNING: P1 + P2, CRITICAL: P1 + P2 + P3),
      whatever the rollout stage.
    - production: WARNING -> HIGH ticket, CRITICAL -> URGENT, in the production channel;
      the escalation mention only when an incident opens at CRITICAL or escalates.
    - pilot: the WARNING playbook only (HIGH, no mention), in the pilot channel.
    - shadow: sent flagged ``shadow: true`` to the pilot channel, HIGH, no mention.

    ``send`` starts True for an event; :func:`decide_delivery` settles it.
    """
    if rollout_mode not in ROLLOUT_MODES:
        raise ValueError(f"rollout mode {rollout_mode!r} is not one of {', '.join(ROLLOUT_MODES)}")
    if incident is None:
        alerting_day = bool(decision.get("alert_flag")) and decision["severity"] in PLAYBOOK_TIERS
        event = "open" if alerting_day else None
        severity = decision["severity"] if alerting_day else None
        incident_id = f"ALERT-{decision.get('alert_date')}" if alerting_day else None
    else:
        event = incident.get("event")
        severity = incident.get("incident_severity")
        incident_id = incident.get("incident_id")
    alerting = event in ALERT_EVENTS
    production = rollout_mode == "production"
    escalation = production and (
        (event == "open" and severity == "CRITICAL") or event == "escalate"
    )
    channel = settings.slack_channel if production else settings.pilot_slack_channel
    if alerting:
        branch = str(severity).lower()
    elif event == "resolve":
        branch = RESOLVED
    else:
        branch = NO_ALERT
    run_date = decision.get("alert_date")
    return {
        "branch": branch,
        "event": event,
        "alerting": alerting,
        "severity": severity,
        "incident_id": incident_id,
        "tiers": list(PLAYBOOK_TIERS[severity]) if alerting else [],
        "rollout_mode": rollout_mode,
        "shadow": rollout_mode == "shadow",
        "escalation": escalation,
        "mention": slack_mention(settings.escalation_mention) if escalation else None,
        "ticket_priority": TICKET_PRIORITIES[
            "CRITICAL" if production and severity == "CRITICAL" else "WARNING"
        ]
        if event
        else None,
        "slack_channel": channel if event else None,
        "dedupe_key": dedupe_key(incident_id, event, run_date, rollout_mode) if event else None,
        "send": bool(event),
        "reason": None,
    }


def held_plan(plan: PlaybookPlan, reason: str) -> PlaybookPlan:
    """The plan of a day whose orders cannot be trusted (late or short: ``reason``): no
    event, so nothing opens, escalates, de-escalates or resolves, no audience is exported
    and nothing is sent; ``held_event`` keeps what the data would have said."""
    return {
        **plan,
        "branch": NO_ALERT,
        "event": None,
        "alerting": False,
        "tiers": [],
        "escalation": False,
        "mention": None,
        "ticket_priority": None,
        "slack_channel": None,
        "dedupe_key": None,
        "send": False,
        "reason": reason,
        "held_event": plan["event"],
    }


def history_age(settings: Settings, run_date: dt.date, delivery: Delivery) -> int | None:
    """How many days old ``run_date`` is when the run starts, when that makes the run
    historical (a backfill: older than ``notify_max_age_days``; 0 = nothing is), else None.

    The one age rule: a historical run sends nothing unless resent, and its brief sets no
    deadline (a deadline computed from today means nothing for a past date)."""
    if not settings.notify_max_age_days:
        return None
    age = (delivery.started_at.date() - run_date).days
    return age if age > settings.notify_max_age_days else None


def response_due(settings: Settings, run_date: dt.date, delivery: Delivery) -> str | None:
    """When the response to the run's event is due (its start + ``response_sla_hours``, to
    the minute), or None for a historical run (:func:`history_age`)."""
    if history_age(settings, run_date, delivery) is not None:
        return None
    due = delivery.started_at + dt.timedelta(hours=settings.response_sla_hours)
    return due.isoformat(timespec="minutes")


def _switched_off(settings: Settings, today: dt.date) -> str | None:
    """Why nothing at all is sent today (the kill switch, a silence), or None."""
    if not settings.playbook_enabled:
        return "playbook_enabled is false (the kill switch): nothing is sent"
    if settings.silence_until and today <= dt.date.fromisoformat(settings.silence_until):
        because = f" because {settings.silence_reason}" if settings.silence_reason else ""
        return f"silenced until {settings.silence_until}{because}"
    return None


def sending_blocked(settings: Settings, delivery: Delivery) -> str | None:
    """Why a run sends nothing whatever its events (kill switch, silence, dry run)."""
    if blocked := _switched_off(settings, delivery.started_at.date()):
        return blocked
    return "dry run: everything is built, nothing is sent" if delivery.dry_run else None


def decide_delivery(
    plan: PlaybookPlan,
    settings: Settings,
    run_date: dt.date,
    delivery: Delivery,
    delivered_at: Any = None,
    note: str | None = None,
    resolved: str | None = None,
) -> PlaybookPlan:
    """Settle whether the run sends its event, and say why not (the first reason wins).

    ``delivered_at`` is when the ledger recorded this event (None: never); ``note`` says
    why there is no event (warm-up, a quiet day of an open incident); ``resolved`` says
    when the incident's resolve was delivered (None: it was not): after it, no other event
    of the incident is sent, resend or not (a closed ticket is never updated again).

    An event that is sent may wait for a person's approval first (``approval_required``):
    the plan then carries ``approval`` (:func:`approval.state`), pending until a person
    approves it (the DAG's ``approve_playbook``) or a door names the approver
    (``delivery.approved_by``).
    """
    today = delivery.started_at.date()
    reason = None
    if not plan["event"]:
        reason = note or "no alert: nothing to deliver"
    elif blocked := _switched_off(settings, today):
        reason = blocked
    elif (age := history_age(settings, run_date, delivery)) is not None and not delivery.resend:
        reason = (
            f"{run_date} is {age} days old when this run starts "
            f"(notify_max_age_days = {settings.notify_max_age_days}): history is not news, "
            "nothing is sent; start the run with resend to send it anyway"
        )
    elif delivered_at is not None and not delivery.resend:
        reason = (
            f"already delivered ({plan['event']} of {plan['incident_id']}, {delivered_at}): "
            "start the run with resend to send it again"
        )
    elif resolved is not None and plan["event"] != "resolve":
        reason = (
            f"withheld: incident {plan['incident_id']} is already resolved ({resolved}); "
            f"a late or backfilled date inside it sends nothing (its {plan['event']} of "
            f"{run_date} would contradict the closed ticket)"
        )
    elif delivery.dry_run:
        reason = "dry run: everything is built, nothing is sent"
    decided: PlaybookPlan = {**plan, "send": reason is None, "reason": reason}
    decided.pop("approval", None)
    if reason is None and (waits := approval.state(settings, plan, delivery.approved_by)):
        decided["approval"] = waits
    return decided


def load_schema(name: str) -> dict[str, Any]:
    """``include/contracts/<name>.schema.json`` (``name`` may also be the file name)."""
    file_name = name if name.endswith(".json") else f"{name}.schema.json"
    return json.loads((CONTRACTS_DIR / file_name).read_text(encoding="utf-8"))


@cache
def validator(name: str) -> Any:
    """A JSON Schema validator of one contract (checked itself first)."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def build_payload(
    *,
    run_id: str,
    context: Mapping[str, Any],
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
    settings: Settings,
    thread: dict[str, Any] | None = None,
    delivery: Delivery | None = None,
) -> dict[str, Any]:
    """The JSON body posted to the Make webhook (``playbook_webhook.schema.json``).

    ``thread`` is the incident's first delivery in this rollout mode (its ticket and Slack
    message), so later events update that ticket and reply in that thread.
    """
    decision, plan = context["decision"], context["plan"]
    if not plan["event"]:
        raise ValueError(f"no playbook event on {context['run_date']}: nothing to send")
    incident = context.get("incident") or {}
    delivery = delivery or Delivery.now()
    due = delivery.started_at + dt.timedelta(hours=settings.response_sla_hours)
    return {
        "contract_version": CONTRACT_VERSION,
        "run_id": run_id,
        "dedupe_key": plan["dedupe_key"],
        "run_date": context["run_date"],
        "severity": plan["severity"],
        "alert_flag": bool(decision["alert_flag"]),
        "rollout_mode": plan["rollout_mode"],
        "shadow": plan["shadow"],
        "escalation": plan["escalation"],
        "mention": plan["mention"],
        "ticket_priority": plan["ticket_priority"],
        "slack_channel": plan["slack_channel"],
        "incident": {
            "incident_id": plan["incident_id"],
            "event": plan["event"],
            "opened_on": incident.get("opened_on") or context["run_date"],
            "days_open": incident.get("days_open") or 1,
            "previous_severity": incident.get("previous_severity"),
            "peak_severity": incident.get("peak_severity") or plan["severity"],
            "pre_incident_baseline": rounded_pct(
                incident.get("frozen_baseline") or decision.get("baseline_value")
            ),
            "ticket_id": (thread or {}).get("ticket_id"),
            "thread_ts": (thread or {}).get("slack_message_ts"),
        },
        "owner": settings.incident_owner or None,
        "due_at": due.isoformat(timespec="seconds"),
        "resend": delivery.resend,
        "decision": {
            **{key: rounded_pct(decision.get(key)) for key in DECISION_PCTS},
            "sample_size": decision.get("sample_size"),
        },
        "tier_counts": {tier: info["count"] for tier, info in context["tiers"].items()},
        "audience": {
            "previous_run_date": context.get("previous_run_date"),
            "tiers": {
                tier: {
                    **{key: int(info.get(key) or 0) for key in AUDIENCE_KEYS},
                    # the customers this run contacts (its file's rows), beside the holdout
                    "treated": int(info.get("exported_rows") or 0),
                }
                for tier, info in context["tiers"].items()
            },
            "anomalies": list(context.get("anomalies") or [])[:10],
            **holdout_body(context.get("holdout")),
        },
        "exports": [
            {
                "tier": e["tier"],
                "link": e["link"],
                "row_count": int(e["row_count"]),
                "status": e.get("status") or "ok",
            }
            for e in sorted(exports, key=lambda e: e["tier"])
        ],
        "brief": {"text": slack_brief["text"], "blocks": slack_brief.get("blocks", [])},
        "brief_link": brief_link,
    }


def holdout_body(holdout: dict[str, Any] | None) -> dict[str, Any]:
    """``audience.holdout`` of the body: the incidents' holdouts that hold on the date, each
    tier drawn or not and why (holdouts.py); nothing when the context has none."""
    if not holdout:
        return {}
    incidents = [
        {
            "incident_id": incident["incident_id"],
            "opened_on": incident["opened_on"],
            "resolved_on": incident["resolved_on"],
            "held_until": incident["held_until"],
            "holdout_pct": float(incident["holdout_pct"]),
            "tiers": {
                tier: {key: info[key] for key in ("customers", "drawn", "held_out", "note")}
                for tier, info in incident["tiers"].items()
            },
        }
        for incident in holdout["incidents"]
    ]
    return {
        "holdout": {
            "holdout_pct": float(holdout["holdout_pct"]),
            "min_customers": int(holdout["min_customers"]),
            "horizon_days": int(holdout["horizon_days"]),
            "incidents": incidents,
        }
    }


def with_thread(payload: dict[str, Any], thread: dict[str, Any] | None) -> dict[str, Any]:
    """The body with the incident's ticket and Slack thread as they are now, when it was
    built without them (its open was delivered since, maybe late): a later event must
    update the incident's ticket, never open a second one."""
    incident = payload["incident"]
    if not thread or incident.get("ticket_id") or incident.get("event") == "open":
        return payload
    return {
        **payload,
        "incident": {
            **incident,
            "ticket_id": thread.get("ticket_id"),
            "thread_ts": thread.get("slack_message_ts"),
        },
    }


def late_payload(
    payload: dict[str, Any], *, delivered_on: dt.date, why: str | None
) -> dict[str, Any]:
    """An owed event's recorded body, as it goes out late: the same key, mention and
    audience, and a first line saying when it was decided and why it is late."""
    incident = payload["incident"]
    cause = f" ({why})" if why else ""
    banner = (
        f":hourglass: Delivered late: this {incident['event']} of {incident['incident_id']} "
        f"was decided on {payload['run_date']} and could not be delivered then{cause}; it "
        f"reaches you on {delivered_on}."
    )
    return with_first_line(payload, banner)


def closing_payload(
    last: dict[str, Any], *, run_id: str, run_date: dt.date, reason: str
) -> dict[str, Any]:
    """A ``resolve`` that closes an incident the team was told about but today's settings
    no longer see: the incident's last delivered body, as a resolve of ``run_date`` whose
    brief says why (no audience, no mention), so no ticket stays open for ever."""
    incident_id = last["incident"]["incident_id"]
    banner = f":white_check_mark: {incident_id} is closed: {reason}."
    return {
        **last,
        "run_id": run_id,
        "dedupe_key": dedupe_key(incident_id, "resolve", run_date, last["rollout_mode"]),
        "run_date": run_date.isoformat(),
        "alert_flag": False,
        "escalation": False,
        "mention": None,
        "resend": False,
        "incident": {**last["incident"], "event": "resolve"},
        "exports": [],
        "brief": {
            "text": banner[:40000],
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": banner[:3000]}}],
        },
        "brief_link": None,
    }


# -- the answer ---------------------------------------------------------------------------


def _retry_after(response: Any) -> float | None:
    """Seconds of a ``Retry-After: <seconds>`` header (an HTTP date counts as absent)."""
    value = (getattr(response, "headers", None) or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify_response(response: Any) -> bool:
    """True on 2xx, else a typed error: transient (retried) or permanent (not retried).

    A redirect (3xx) is permanent: the POST itself was not answered with success, and the
    address it points to (which may carry the token) is never named."""
    status = response.status_code
    if 200 <= status < 300:
        return True
    detail = f"webhook answered HTTP {status} {response.reason or ''}".strip()
    if 300 <= status < 400:  # never followed: a GET to the new address would carry no body
        raise PermanentWebhookError(
            f"{detail}: a redirect is not a delivery (nothing was posted to the scenario); "
            "put the webhook's final URL in the connection"
        )
    if status >= 500 or status in _TRANSIENT_STATUS:
        raise TransientWebhookError(detail, retry_after=_retry_after(response))
    raise PermanentWebhookError(f"{detail}: the request was refused; check the scenario")


def parse_response(response: Any) -> dict[str, Any]:
    """The scenario's JSON answer (Make's "Webhook response" module), checked against the
    contract: a 2xx without the ticket id or the Slack ts told nobody, so it is a failure."""
    try:
        body = response.json()
    except ValueError:
        raise PermanentWebhookError(
            "webhook answered without JSON: add a 'Webhook response' module returning "
            '{"slack_message_ts": ..., "ticket_id": ...} to the Make scenario'
        ) from None
    if not isinstance(body, dict):
        raise PermanentWebhookError("webhook answered JSON that is not an object")
    problems = sorted({error.message for error in validator("playbook_response").iter_errors(body)})
    if problems:
        raise PermanentWebhookError(
            f"webhook answered HTTP {response.status_code} but broke the contract "
            f"({'; '.join(problems)[:300]}): the scenario must post to Slack, open the ticket "
            'and answer {"slack_message_ts": ..., "ticket_id": ...}'
        )
    return {
        "status_code": response.status_code,
        "slack_message_ts": body.get("slack_message_ts"),
        "ticket_id": body.get("ticket_id"),
        "ticket_url": body.get("ticket_url"),
        "slack_channel": body.get("slack_channel"),
    }


# -- retries --------------------------------------------------------------------------------


def retry_delay(settings: Settings, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential backoff from
    ``webhook_retry_delay_seconds``; a longer ``Retry-After`` wins; capped at 10 minutes."""
    backoff = settings.webhook_retry_delay_seconds * 2 ** (attempt - 1)
    return min(max(backoff, retry_after or 0.0), MAX_RETRY_DELAY_SECONDS)


def retry_args(settings: Settings, failures: list[BaseException] | None = None) -> dict[str, Any]:
    """The one retry policy of the webhook (tenacity arguments for ``HttpHook``).

    Only :class:`TransientWebhookError` is retried, ``webhook_retries`` times at most, and
    only while the waits add up to ``webhook_max_wait_seconds``: a receiver asking (with
    ``Retry-After``) for a longer wait ends the retries at once instead of holding the task.
    A timeout is retried although the receiver may have completed the call: every attempt
    carries the same idempotency key, so the receiver answers a repeat without acting again.
    The wait before a retry is a progress step (shown by the CLI on a terminal, sent to an
    MCP client as progress notifications; nothing otherwise). ``failures``, when given,
    receives the error of every attempt that is retried (the last one is raised).
    """
    import tenacity

    why = {"failed": "a webhook attempt failed"}

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return retry_delay(settings, state.attempt_number, getattr(error, "retry_after", None))

    def over_budget(state: tenacity.RetryCallState) -> bool:
        waited = state.idle_for + wait(state)
        return waited > settings.webhook_max_wait_seconds

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "webhook attempt %d failed (%s); retrying in %.0f s",
            state.attempt_number,
            error,
            state.next_action.sleep if state.next_action else 0,
        )
        why["failed"] = f"webhook attempt {state.attempt_number} failed ({error})"
        if failures is not None and error is not None:
            failures.append(error)

    def sleep(seconds: float) -> None:
        wait_with_progress(seconds, f"{why['failed']}; retrying in {seconds:.0f} s")

    return {
        "retry": tenacity.retry_if_exception_type(TransientWebhookError),
        "stop": tenacity.stop_any(
            tenacity.stop_after_attempt(settings.webhook_retries + 1), over_budget
        ),
        "wait": wait,
        "before_sleep": before_sleep,
        "sleep": sleep,
        "reraise": True,
    }


def wait_with_progress(seconds: float, description: str, tick: float = 1.0) -> None:
    """Sleep ``seconds``; with a progress reporter installed, as a step counting the seconds
    waited (``total`` = the wait), moved every ``tick`` seconds."""
    if not progress.active():
        time.sleep(seconds)
        return
    with progress.step(description, total=seconds) as step:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(tick, left))
            step.update(min(seconds, seconds - max(end - time.monotonic(), 0.0)))
