"""The Make.com playbook contract: what the DAG sends, how it reads the answer, what it retries.

Pure Python (no Airflow import): the DAG's ``trigger_playbook`` HttpOperator posts the body
built here; the same functions serve the CLI, the MCP tools and the tests. The contract is
published as JSON Schema under ``include/contracts/``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from retentionops.settings import Settings

CONTRACT_VERSION = "1"
ROLLOUT_MODES = ("shadow", "pilot", "production")
_TRANSIENT_STATUS = frozenset({408, 429})


class WebhookError(RuntimeError):
    """The webhook call failed; the message never contains the webhook URL."""


class TransientWebhookError(WebhookError):
    """Worth retrying: timeout, connection error, 429 or 5xx."""


class PermanentWebhookError(WebhookError):
    """Not worth retrying: another 4xx, or an answer that breaks the contract."""


def playbook_plan(decision: dict[str, Any], rollout_mode: str, settings: Settings) -> dict:
    """What the playbook does for a decision under a rollout mode (design sections 9, 16).

    - production: WARNING -> HIGH ticket; CRITICAL -> URGENT ticket with escalation.
    - pilot: only the WARNING playbook, in the pilot channel: a CRITICAL day is delivered
      as a WARNING (HIGH ticket, no escalation) so that nothing is lost during the pilot.
    - shadow: everything is generated and sent flagged ``shadow: true`` to the pilot
      channel; the scenario must not post to real channels nor open real tickets.
    """
    if rollout_mode not in ROLLOUT_MODES:
        raise ValueError(
            f"rollout mode {rollout_mode!r} is not one of {', '.join(ROLLOUT_MODES)}"
        )
    severity = decision["severity"]
    critical = severity == "CRITICAL" and rollout_mode == "production"
    return {
        "rollout_mode": rollout_mode,
        "shadow": rollout_mode == "shadow",
        "escalation": critical,
        "ticket_priority": "URGENT" if critical else "HIGH",
        "slack_channel": settings.slack_channel
        if rollout_mode == "production"
        else settings.pilot_slack_channel,
    }


def build_payload(
    *,
    run_id: str,
    context: dict[str, Any],
    rollout_mode: str,
    settings: Settings,
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
) -> dict[str, Any]:
    """The JSON body posted to the Make webhook (``playbook_webhook.schema.json``)."""
    decision = context["decision"]
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
        "run_date": context["run_date"],
        "severity": decision["severity"],
        "alert_flag": bool(decision["alert_flag"]),
        **playbook_plan(decision, rollout_mode, settings),
        "decision": {key: decision.get(key) for key in keys},
        "tier_counts": {tier: info["count"] for tier, info in context["tiers"].items()},
        "exports": [
            {"tier": e["tier"], "link": e["link"], "row_count": int(e["row_count"])}
            for e in sorted(exports, key=lambda e: e["tier"])
        ],
        "brief": {"text": slack_brief["text"], "blocks": slack_brief.get("blocks", [])},
        "brief_link": brief_link,
    }


def classify_response(response: Any) -> bool:
    """``response_check`` of the HttpOperator: True on 2xx, else a typed error to retry or not.

    The http hook would turn every HTTP error into a bare ``AirflowException`` (so retry
    rules keyed on ``requests.HTTPError`` never fire); the operator runs with
    ``check_response: False`` and this function decides instead.
    """
    status = response.status_code
    if 200 <= status < 300:
        return True
    detail = f"webhook answered HTTP {status} {response.reason or ''}".strip()
    if status >= 500 or status in _TRANSIENT_STATUS:
        raise TransientWebhookError(detail)
    raise PermanentWebhookError(f"{detail}: the request was refused; check the scenario")


def parse_response(response: Any) -> dict[str, Any]:
    """``response_filter``: the scenario's JSON answer (Make's "Webhook response" module)."""
    try:
        body = response.json()
    except ValueError:
        raise PermanentWebhookError(
            "webhook answered without JSON: add a 'Webhook response' module returning "
            '{"slack_message_ts": ..., "ticket_id": ...} to the Make scenario'
        ) from None
    if not isinstance(body, dict):
        raise PermanentWebhookError("webhook answered JSON that is not an object")
    return {
        "status_code": response.status_code,
        "slack_message_ts": body.get("slack_message_ts"),
        "ticket_id": body.get("ticket_id"),
        "slack_channel": body.get("slack_channel"),
    }


def connection_secrets(host: str | None, password: str | None, extra: Any = None) -> list[str]:
    """Every string of a webhook connection that must never reach a log, XCom or table."""
    secrets = []
    for value in (host, password):
        if value:
            secrets.append(value)
            path = urlsplit(value).path if "://" in value else ""
            if len(path.strip("/")) >= 6:
                secrets.append(path)
                secrets.append(path.strip("/"))
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra else {}
        except ValueError:
            extra = {}
    if isinstance(extra, dict):
        secrets += [str(v) for v in extra.values() if isinstance(v, str) and len(v) >= 6]
    return sorted(set(secrets), key=len, reverse=True)


_URL = re.compile(r"https?://[^\s'\"<>]+")


def redact(text: str, secrets: list[str]) -> str:
    """Remove secrets, and any URL at all, from a message meant for logs or the run log."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _URL.sub("<url>", text)
