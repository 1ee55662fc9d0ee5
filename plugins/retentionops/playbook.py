"""The Make.com playbook contract: the plan, the body, how the answer is read, what is retried.

Pure Python (no Airflow import). The plan (:func:`playbook_plan`) is the one rule of what a
run delivers; the brief describes it, the payload carries it and the run log records it. The
DAG's ``trigger_playbook`` HttpOperator and the MCP/CLI ``trigger_playbook`` post the body
built here through the same hook with the same retry policy (:func:`retry_args`). The
contract is published as JSON Schema under ``include/contracts/``.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from retentionops.errors import UserError
from retentionops.settings import Settings
from retentionops.vocabulary import (
    ESCALATION_MENTION,
    NO_ALERT,
    PLAYBOOK_TIERS,
    ROLLOUT_MODES,
    TICKET_PRIORITIES,
)

CONTRACT_VERSION = "2"
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "include" / "contracts"
#: The header carrying the delivery's idempotency key (also ``dedupe_key`` in the body).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Longest wait between two webhook attempts, whatever the backoff or Retry-After say.
MAX_RETRY_DELAY_SECONDS = 600.0
_TRANSIENT_STATUS = frozenset({408, 429})

log = logging.getLogger(__name__)


class WebhookError(UserError):
    """The webhook call failed; the message never contains the webhook URL."""


class TransientWebhookError(WebhookError):
    """Worth retrying: timeout, connection error, 408, 429 or 5xx.

    ``retry_after`` holds the seconds the receiver asked to wait (its ``Retry-After``).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentWebhookError(WebhookError):
    """Not worth retrying: another 4xx, or an answer that breaks the contract."""


class PlaybookPlan(TypedDict):
    """What a run delivers for its alert decision under a rollout mode."""

    branch: str  # no_alert | warning | critical: the DAG's branch
    alerting: bool
    severity: str
    tiers: list[str]  # the audiences exported
    rollout_mode: str
    shadow: bool
    escalation: bool
    mention: str | None  # the Slack escalation mention, only when escalating
    ticket_priority: str | None
    slack_channel: str | None


def playbook_plan(decision: dict[str, Any], rollout_mode: str, settings: Settings) -> PlaybookPlan:
    """What the playbook does for a decision under a rollout mode (design sections 9, 16).

    - No alert (``alert_flag`` false): nothing is exported or sent (branch ``no_alert``).
    - The audiences always follow the alert's severity (WARNING: P1 + P2, CRITICAL: P1 + P2
      + P3), so the lists are ready whatever the rollout stage.
    - production: WARNING -> HIGH ticket in the production channel; CRITICAL -> URGENT
      ticket with the escalation mention.
    - pilot: the WARNING playbook only, in the pilot channel: a CRITICAL day gets a HIGH
      ticket and no escalation, so nothing is lost during the pilot.
    - shadow: sent flagged ``shadow: true`` to the pilot channel, HIGH, no escalation; the
      scenario must not post to real channels nor open real tickets.
    """
    if rollout_mode not in ROLLOUT_MODES:
        raise ValueError(f"rollout mode {rollout_mode!r} is not one of {', '.join(ROLLOUT_MODES)}")
    severity = str(decision["severity"])
    tiers = list(PLAYBOOK_TIERS.get(severity, ())) if decision.get("alert_flag") else []
    alerting = bool(tiers)
    escalation = alerting and severity == "CRITICAL" and rollout_mode == "production"
    channel = (
        settings.slack_channel if rollout_mode == "production" else settings.pilot_slack_channel
    )
    return {
        "branch": severity.lower() if alerting else NO_ALERT,
        "alerting": alerting,
        "severity": severity,
        "tiers": tiers,
        "rollout_mode": rollout_mode,
        "shadow": rollout_mode == "shadow",
        "escalation": escalation,
        "mention": ESCALATION_MENTION if escalation else None,
        "ticket_priority": (TICKET_PRIORITIES["CRITICAL" if escalation else "WARNING"])
        if alerting
        else None,
        "slack_channel": channel if alerting else None,
    }


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


def dedupe_key(run_id: str, run_date: Any) -> str:
    """The idempotency key of one delivery: the same for every retry of it."""
    return f"retentionops:{run_date}:{run_id}"


def build_payload(
    *,
    run_id: str,
    context: dict[str, Any],
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
) -> dict[str, Any]:
    """The JSON body posted to the Make webhook (``playbook_webhook.schema.json``)."""
    decision, plan = context["decision"], context["plan"]
    if not plan["alerting"]:
        raise ValueError(f"no playbook for a run without an alert ({context['run_date']})")
    keys = (
        "current_value",
        "baseline_value",
        "delta_pct",
        "delta_relative_pct",
        "sample_size",
        "threshold_warning",
        "threshold_critical",
    )
    return {
        "contract_version": CONTRACT_VERSION,
        "run_id": run_id,
        "dedupe_key": dedupe_key(run_id, context["run_date"]),
        "run_date": context["run_date"],
        "severity": decision["severity"],
        "alert_flag": bool(decision["alert_flag"]),
        "rollout_mode": plan["rollout_mode"],
        "shadow": plan["shadow"],
        "escalation": plan["escalation"],
        "ticket_priority": plan["ticket_priority"],
        "slack_channel": plan["slack_channel"],
        "decision": {key: decision.get(key) for key in keys},
        "tier_counts": {tier: info["count"] for tier, info in context["tiers"].items()},
        "exports": [
            {"tier": e["tier"], "link": e["link"], "row_count": int(e["row_count"])}
            for e in sorted(exports, key=lambda e: e["tier"])
        ],
        "brief": {"text": slack_brief["text"], "blocks": slack_brief.get("blocks", [])},
        "brief_link": brief_link,
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
    """True on 2xx, else a typed error: transient (retried) or permanent (not retried)."""
    status = response.status_code
    if 200 <= status < 300:
        return True
    detail = f"webhook answered HTTP {status} {response.reason or ''}".strip()
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
    problems = sorted(
        {error.message for error in validator("playbook_response").iter_errors(body)}
    )
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
        "slack_channel": body.get("slack_channel"),
    }


# -- retries --------------------------------------------------------------------------------


def retry_delay(settings: Settings, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential backoff from
    ``webhook_retry_delay_seconds``; a longer ``Retry-After`` wins; capped at 10 minutes."""
    backoff = settings.webhook_retry_delay_seconds * 2 ** (attempt - 1)
    return min(max(backoff, retry_after or 0.0), MAX_RETRY_DELAY_SECONDS)


def retry_args(settings: Settings) -> dict[str, Any]:
    """The one retry policy of the webhook (tenacity arguments for ``HttpHook``).

    Only :class:`TransientWebhookError` is retried, ``webhook_retries`` times at most, and
    only while the waits add up to ``webhook_max_wait_seconds``: a receiver asking (with
    ``Retry-After``) for a longer wait ends the retries at once instead of holding the task.
    A timeout is retried although the receiver may have completed the call: every attempt
    carries the same idempotency key, so the receiver answers a repeat without acting again.
    """
    import tenacity

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

    return {
        "retry": tenacity.retry_if_exception_type(TransientWebhookError),
        "stop": tenacity.stop_any(
            tenacity.stop_after_attempt(settings.webhook_retries + 1), over_budget
        ),
        "wait": wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }
