"""The design's operations (section 8.2) for interfaces other than the DAG: MCP tools, CLI.

Each function opens the warehouse from the settings, does one operation with the same
library code as the DAG, and — when it writes — leaves one ``ops_runs_log`` row whose
``interface`` says who started it. Errors are ``ServiceError`` with a message a person can
act on; secrets never appear in them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from retentionops import actions, detection, pack, playbook
from retentionops.detection import DetectionError, as_date
from retentionops.settings import Settings
from retentionops.warehouse import WarehouseError, open_warehouse


class ServiceError(RuntimeError):
    """An operation could not be done; the message says why and what to do."""


def new_run_id(interface: str, operation: str, run_date: Any) -> str:
    return f"{interface}__{operation}__{as_date(run_date)}__{uuid.uuid4().hex[:8]}"


def _day(value: Any) -> dt.date:
    try:
        return as_date(value)
    except DetectionError as error:
        raise ServiceError(str(error)) from None


def _log(warehouse: Any, settings: Settings, **fields: Any) -> dict[str, Any]:
    record = actions.run_log_record(**fields)
    json_path = pack.run_log_path(settings, fields["run_date"], fields["run_id"])
    return actions.write_run_log(warehouse, settings, record, json_path)


def get_alert_decision(settings: Settings, run_date: Any) -> dict[str, Any]:
    """The SQL5 decision for the date, computed read-only from the orders."""
    day = _day(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        rows = detection.alert_series(warehouse, settings, day, day)
    if not rows:
        raise ServiceError(f"no orders on or before {day}: nothing to decide for that date")
    return rows[0]


def get_operational_context(settings: Settings, run_date: Any) -> dict[str, Any]:
    """Status distribution, risk x status, tier counts and empty-tier reasons (read-only)."""
    day = _day(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        try:
            return actions.get_operational_context(warehouse, settings, day)
        except (DetectionError, WarehouseError) as error:
            raise ServiceError(
                f"{error}. Build the queue first: build_priority_queue({day})"
            ) from None


def build_priority_queue(
    settings: Settings, run_date: Any, *, interface: str = "mcp"
) -> dict[str, Any]:
    """Run detection for the date (managed mode) and write its customer_priority."""
    day = _day(run_date)
    run_id = new_run_id(interface, "build_priority_queue", day)
    started = dt.datetime.now(dt.UTC)
    with open_warehouse(settings) as warehouse:
        try:
            decision = detection.run_detection(warehouse, settings, day)
            counts = actions.build_priority_queue(warehouse, settings, day)
        except (DetectionError, WarehouseError) as error:
            _log(warehouse, settings, run_id=run_id, run_date=day, status="failed",
                 started_at=started, interface=interface,
                 error_message=f"step build_priority_queue failed: {error}")  # fmt: skip
            raise ServiceError(
                f"cannot build the queue for {day}: no orders on or before that date"
                if "no alert decision" in str(error)
                else str(error)
            ) from None
        _log(warehouse, settings, run_id=run_id, run_date=day, status="success",
             started_at=started, decision=decision, counts=counts, interface=interface)  # fmt: skip
    return {"run_id": run_id, "run_date": day.isoformat(), "tiers": counts, "decision": decision}


def generate_brief(
    settings: Settings, run_date: Any, fmt: str = "slack", *, interface: str = "mcp"
) -> dict[str, Any]:
    """Write the brief files and chart for the date; return the brief in one format."""
    from retentionops.brief import render_brief

    day = _day(run_date)
    if fmt not in ("markdown", "slack", "email"):
        raise ServiceError(f"unknown brief format '{fmt}'; use markdown, slack or email")
    run_id = new_run_id(interface, "generate_brief", day)
    started = dt.datetime.now(dt.UTC)
    context = {**get_operational_context(settings, day), "run_id": run_id}
    with open_warehouse(settings) as warehouse:
        paths = pack.render_brief_files(warehouse, settings, context)
        links = {t: pack.planned_export_link(settings, day, t) for t in context["exported_tiers"]}
        _log(warehouse, settings, run_id=run_id, run_date=day, status="success",
             started_at=started, decision=context["decision"], interface=interface,
             counts={t: v["count"] for t, v in context["tiers"].items()},
             brief_link=paths["markdown"])  # fmt: skip
    brief = render_brief(context, fmt, links=links, chart_link=paths["chart"])
    return {"run_id": run_id, "format": fmt, "brief": brief, "files": paths}


def export_audience(
    settings: Settings,
    run_date: Any,
    tier: str,
    *,
    destination: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    interface: str = "mcp",
) -> dict[str, Any]:
    """Export one tier's ranked audience (holdout customers excluded)."""
    day = _day(run_date)
    if tier not in actions.TIERS:
        raise ServiceError(f"unknown tier '{tier}'; use one of {', '.join(actions.TIERS)}")
    if limit is not None and limit < 1:
        raise ServiceError("limit must be a positive number of rows")
    run_id = new_run_id(interface, "export_audience", day)
    started = dt.datetime.now(dt.UTC)
    with open_warehouse(settings) as warehouse:
        if not _has_detection(warehouse, day):
            raise ServiceError(
                f"no priority queue for {day}: run build_priority_queue({day}) first"
            )
        try:
            result = pack.export_tier(
                warehouse, settings, day, tier, destination=destination, kind=kind, limit=limit
            )
        except Exception as error:
            _log(warehouse, settings, run_id=run_id, run_date=day, status="failed",
                 started_at=started, interface=interface, export_status="failed",
                 error_message=f"step export_audience[{tier}] failed: {error}")  # fmt: skip
            raise ServiceError(f"export of {tier} failed: {error}") from None
        _log(warehouse, settings, run_id=run_id, run_date=day, status="success",
             started_at=started, exports=[result], interface=interface,
             export_status="ok")  # fmt: skip
    return {"run_id": run_id, **result}


def _has_detection(warehouse: Any, day: dt.date) -> bool:
    return bool(warehouse.count_rows("retention_snapshot", "snapshot_date", day))


def _webhook_url(settings: Settings) -> tuple[str, list[str]]:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(settings.make_conn_id)
    except Exception:
        raise ServiceError(
            f"no Airflow connection '{settings.make_conn_id}' holds the webhook URL: define "
            f"it (e.g. AIRFLOW_CONN_{settings.make_conn_id.upper()}) and retry"
        ) from None
    if not conn.host or "://" not in conn.host:
        raise ServiceError(
            f"connection '{settings.make_conn_id}' must have the full webhook URL as its host"
        )
    return conn.host, playbook.connection_secrets(conn.host, conn.password, conn.extra)


def post_webhook(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    """POST the playbook body; retry transient faults like the DAG (2 retries, backoff)."""
    import requests

    url, secrets = _webhook_url(settings)
    attempts = settings.webhook_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(
                url, json=body, timeout=settings.webhook_timeout_seconds
            )
            playbook.classify_response(response)
            return playbook.parse_response(response)
        except requests.Timeout:
            error: Exception = playbook.TransientWebhookError(
                f"webhook timed out after {settings.webhook_timeout_seconds} s"
            )
        except requests.ConnectionError as exc:
            error = playbook.TransientWebhookError(
                f"webhook unreachable ({type(exc).__name__})"
            )
        except playbook.TransientWebhookError as exc:
            error = exc
        except playbook.PermanentWebhookError as exc:
            raise ServiceError(playbook.redact(str(exc), secrets)) from None
        if attempt < attempts:
            time.sleep(min(settings.webhook_retry_delay_seconds * 2 ** (attempt - 1), 600))
    raise ServiceError(
        f"webhook down after {attempts} attempt(s): " + playbook.redact(str(error), secrets)
    )


def trigger_playbook(
    settings: Settings,
    run_date: Any,
    *,
    rollout_mode: str | None = None,
    interface: str = "mcp",
) -> dict[str, Any]:
    """Send the date's playbook to the Make webhook and log the ticket it returns.

    Exports the tiers of the severity first (idempotent), so the links exist. Refuses a
    date without an alert: there is no playbook for it.
    """
    day = _day(run_date)
    mode = rollout_mode or settings.rollout_mode
    if mode not in playbook.ROLLOUT_MODES:
        raise ServiceError(f"rollout mode '{mode}' is not one of shadow, pilot, production")
    context = get_operational_context(settings, day)
    decision = context["decision"]
    if not context["exported_tiers"]:
        raise ServiceError(
            f"no alert on {day} (severity {decision['severity']}, alert_flag "
            f"{str(decision['alert_flag']).lower()}): there is no playbook to trigger"
        )
    run_id = new_run_id(interface, "trigger_playbook", day)
    started = dt.datetime.now(dt.UTC)
    with open_warehouse(settings) as warehouse:
        exports = [
            pack.export_tier(warehouse, settings, day, tier) for tier in context["exported_tiers"]
        ]
        paths = pack.render_brief_files(warehouse, settings, context)
    from retentionops.brief import render_brief

    body = playbook.build_payload(
        run_id=run_id,
        context=context,
        rollout_mode=mode,
        settings=settings,
        slack_brief=render_brief(context, "slack", links={e["tier"]: e["link"] for e in exports}),
        exports=exports,
        brief_link=paths["markdown"],
    )
    common = dict(run_id=run_id, run_date=day, started_at=started, decision=decision,
                  counts={t: v["count"] for t, v in context["tiers"].items()},
                  exports=exports, brief_link=paths["markdown"], interface=interface,
                  export_status="ok")  # fmt: skip
    try:
        answer = post_webhook(settings, body)
    except ServiceError as error:
        with open_warehouse(settings) as warehouse:
            _log(warehouse, settings, status="failed", playbook_status="failed",
                 error_message=f"step trigger_playbook failed: {error}", **common)  # fmt: skip
        raise
    with open_warehouse(settings) as warehouse:
        stored = _log(warehouse, settings, status="success", playbook_status="sent",
                      slack_posted=bool(answer.get("slack_message_ts")),
                      slack_message_ts=answer.get("slack_message_ts"),
                      ticket_id=answer.get("ticket_id"), **common)  # fmt: skip
    return {
        "run_id": run_id,
        "run_date": day.isoformat(),
        "severity": decision["severity"],
        "rollout_mode": mode,
        "ticket_id": stored["ticket_id"],
        "slack_message_ts": stored["slack_message_ts"],
        "exports": exports,
    }
