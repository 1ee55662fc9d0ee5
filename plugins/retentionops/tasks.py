"""Task callables for the ``retention_ops`` DAG (embedded backend).

Plain functions: no Airflow import, so they are unit-tested directly. Each opens the
warehouse from the settings at run time (never at DAG parse time) and closes it when done.
``ds`` is the run date Airflow injects (the logical date, YYYY-MM-DD).
"""

from __future__ import annotations

import logging
from typing import Any

from retentionops import actions, detection, pack, playbook
from retentionops.settings import load_settings
from retentionops.warehouse import open_warehouse

log = logging.getLogger(__name__)


def create_tables() -> None:
    """Create every table that does not exist yet (idempotent DDL)."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()


#: Tables whose old partitions are removed (design 6.1); alert_logic and the audit log stay.
RETAINED_TABLES = (
    ("base_customers", "snapshot_date"),
    ("retention_snapshot", "snapshot_date"),
    ("churn_detection", "snapshot_date"),
    ("cohort_retention_evolution", "snapshot_date"),
    ("customer_priority", "run_date"),
)


def apply_retention(ds: str | None = None) -> dict[str, int]:
    """Delete partitions older than ``retention_days`` before the run date (DuckDB backend).

    On BigQuery the same tables carry ``partition_expiration_days`` instead.
    """
    import datetime as dt

    settings = load_settings()
    cutoff = detection.as_date(ds) - dt.timedelta(days=settings.retention_days)
    with open_warehouse(settings) as warehouse:
        deleted = {
            table: warehouse.delete_before(table, field, cutoff)
            for table, field in RETAINED_TABLES
        }
    log.info("retention: removed rows dated before %s: %s", cutoff, deleted)
    return deleted


def run_detection_step(table: str, ds: str | None = None) -> int:
    """Replace the run date's rows of one detection table (SQL1..SQL5)."""
    settings = load_settings()
    step = next(s for s in detection.DETECTION_STEPS if s.table == table)
    with open_warehouse(settings) as warehouse:
        written = detection.run_detection_step(warehouse, settings, step, ds)
    log.info("%s: %d row(s) written for %s", table, written, ds)
    return written


def verify_detection(ds: str | None = None) -> None:
    """``detection_mode: external``: fail clearly unless SQL1..SQL5 hold rows for ``ds``."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        detection.verify_detection(warehouse, settings, ds)


def get_alert_decision(ds: str | None = None) -> dict[str, Any]:
    """Return the SQL5 decision for the run date (pushed to XCom)."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        decision = detection.get_alert_decision(warehouse, settings, ds)
    log.info(
        "alert decision for %s: severity=%s alert_flag=%s current=%s baseline=%s",
        ds,
        decision["severity"],
        decision["alert_flag"],
        decision["current_value"],
        decision["baseline_value"],
    )
    return decision


# -- action pack ---------------------------------------------------------------------


def build_priority_queue(ds: str | None = None) -> dict[str, int]:
    """Replace customer_priority for the run date; return the tier counts."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        counts = actions.build_priority_queue(warehouse, settings, ds)
    log.info("customer_priority for %s: %s", ds, counts)
    return counts


def get_operational_context(ds: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """The operational context (decision, distributions, tiers) pushed to XCom."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        return actions.get_operational_context(warehouse, settings, ds, run_id=run_id)


def choose_playbook(context: dict[str, Any]) -> str:
    """Branch: ``no_alert``, ``warning`` or ``critical``."""
    return actions.playbook_for(context["decision"])


def render_brief(ti: Any = None) -> dict[str, str]:
    """Write the brief (every format) and the chart; return their paths.

    The context is pulled from XCom rather than passed as an argument, so that the only
    upstream tasks are the ``warning`` / ``critical`` branches: on ``no_alert`` both are
    skipped and so is the brief.
    """
    context = ti.xcom_pull(task_ids="get_operational_context")
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        paths = pack.render_brief_files(warehouse, settings, context)
    log.info("brief for %s: %s", context["run_date"], paths["markdown"])
    return paths


def select_tiers(context: dict[str, Any]) -> list[str]:
    """The tiers this severity's playbook exports (one mapped export each)."""
    return list(context["exported_tiers"])


def export_audience(tier: str, ds: str | None = None, params: Any = None) -> dict[str, Any]:
    """Export one tier (a mapped task: one instance per tier of the playbook)."""
    settings = load_settings()
    destination = (params or {}).get("export_destination") or None
    with open_warehouse(settings) as warehouse:
        result = pack.export_tier(warehouse, settings, ds, tier, destination=destination)
    log.info("export %s for %s: %d row(s) -> %s", tier, ds, result["row_count"], result["link"])
    return result


def _exports(ti: Any) -> list[dict[str, Any]]:
    return [e for e in (ti.xcom_pull(task_ids="export_audience", default=None) or []) if e]


def _slack_brief(settings: Any, context: dict[str, Any], exports: list[dict[str, Any]]) -> dict:
    from retentionops.brief import render_brief

    links = {e["tier"]: e["link"] for e in exports}
    return render_brief(context, "slack", links=links)


def prepare_playbook(
    ti: Any = None, run_id: str | None = None, params: Any = None
) -> dict[str, Any] | None:
    """Build the webhook body (kept as ``playbook_request.json``); None skips the call.

    Short-circuit task: a dry run builds everything and sends nothing.
    """
    settings = load_settings()
    params = params or {}
    context = ti.xcom_pull(task_ids="get_operational_context")
    exports = _exports(ti)
    brief = ti.xcom_pull(task_ids="render_brief") or {}
    payload = playbook.build_payload(
        run_id=run_id,
        context=context,
        rollout_mode=params.get("rollout_mode") or settings.rollout_mode,
        settings=settings,
        slack_brief=_slack_brief(settings, context, exports),
        exports=exports,
        brief_link=brief.get("markdown"),
    )
    actions.write_json_atomic(
        pack.run_dir(settings, context["run_date"]) / "playbook_request.json", payload
    )
    if params.get("dry_run"):
        log.info("dry run: the playbook body is built and kept, nothing is sent")
        return None
    log.info(
        "playbook for %s: %s, mode %s, ticket %s, escalation %s",
        context["run_date"],
        payload["severity"],
        payload["rollout_mode"],
        payload["ticket_priority"],
        payload["escalation"],
    )
    return payload


def post_slack_fallback(ti: Any = None, params: Any = None) -> dict[str, Any]:
    """When the playbook failed: post the brief and the links straight to Slack.

    Runs only if ``trigger_playbook`` (or a step before it) failed; skipped when no Slack
    connection is configured. Every file of the run stays where it is.
    """
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.log import mask_secret

    settings = load_settings()
    if (params or {}).get("dry_run"):
        raise AirflowSkipException("dry run: nothing is sent")
    try:
        conn = BaseHook.get_connection(settings.slack_conn_id)
    except Exception:
        raise AirflowSkipException(
            f"no Slack connection '{settings.slack_conn_id}' is configured: the brief and "
            "the exports stay in the run's folder (see the run log)"
        ) from None
    for secret in playbook.connection_secrets(conn.host, conn.password, conn.extra):
        mask_secret(secret)
    context = ti.xcom_pull(task_ids="get_operational_context")
    if not context:
        raise AirflowSkipException("no operational context: nothing to deliver")
    slack = _slack_brief(settings, context, _exports(ti))
    notice = (
        ":warning: The retention playbook webhook failed; delivering the brief directly. "
        "No ticket was created: open one by hand."
    )
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": notice}}]
    blocks += slack.get("blocks", [])[:49]
    try:
        SlackWebhookHook(slack_webhook_conn_id=settings.slack_conn_id).send(
            text=f"{notice}\n{slack['text']}"[:40000], blocks=blocks
        )
    except Exception as error:  # the SDK's message may embed the webhook URL
        secrets = playbook.connection_secrets(conn.host, conn.password, conn.extra)
        raise playbook.WebhookError(
            "Slack fallback failed: " + playbook.redact(str(error), secrets)
        ) from None
    log.info("brief posted to Slack by the fallback")
    return {"slack_posted": True}


def _failed_steps(states: dict[str, Any], own_task_id: str) -> list[str]:
    return sorted(
        task_id
        for task_id, state in states.items()
        if task_id != own_task_id and str(state).rsplit(".", 1)[-1].lower() == "failed"
    )


def _run_started_at(dag_run: Any) -> Any:
    # `airflow dags test` sets start_date to the logical date; a real run starts after it
    # was queued, so the latest of these is when the run really began.
    moments = [getattr(dag_run, name, None) for name in ("start_date", "queued_at", "run_after")]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


def write_run_log(
    ds: str | None = None,
    run_id: str | None = None,
    ti: Any = None,
    dag_run: Any = None,
    params: Any = None,
) -> dict:
    """Record the run in ops_runs_log (trigger rule ALL_DONE: runs whatever failed upstream).

    The run is ``success`` when every step succeeded, ``skipped`` when no alert fired, and
    ``failed`` naming the failed step(s) otherwise; a failed run fails this task after the
    row is written, so the DAG run is marked failed too.
    """
    from airflow.sdk.exceptions import AirflowFailException

    settings = load_settings()
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    failed = _failed_steps(states, ti.task_id)
    context = ti.xcom_pull(task_ids="get_operational_context") or {}
    decision = context.get("decision") or ti.xcom_pull(task_ids="get_alert_decision")
    # tier counts come from the context (on BigQuery the queue step is a job, not a dict)
    counts = {t: v["count"] for t, v in context.get("tiers", {}).items()} or None
    brief = ti.xcom_pull(task_ids="render_brief")
    exports = _exports(ti)
    response = ti.xcom_pull(task_ids="trigger_playbook") or {}
    fallback = ti.xcom_pull(task_ids="post_slack_fallback") or {}
    posted = bool(response.get("slack_message_ts")) or bool(fallback.get("slack_posted"))
    alerting = bool(decision) and bool(actions.tiers_for(decision))
    trigger_state = str(states.get("trigger_playbook", "")).rsplit(".", 1)[-1].lower()
    if not alerting:
        playbook_status = "not_needed"
    elif response:
        playbook_status = "sent"
    elif "trigger_playbook" in failed:
        playbook_status = "failed"
    elif (params or {}).get("dry_run") and trigger_state == "skipped":
        playbook_status = "dry_run"
    else:
        playbook_status = None  # the run stopped before the playbook
    if any(step.startswith("export_audience") for step in failed):
        export_status = "failed"
    else:
        export_status = "ok" if exports else "none"
    with open_warehouse(settings) as warehouse:
        error = None
        if failed:
            status = "failed"
            stored = actions.read_run_log(warehouse, run_id) or {}
            # the failure callback recorded the exception; keep its detail
            error = stored.get("error_message") or f"step(s) failed: {', '.join(failed)}"
        elif decision and not actions.tiers_for(decision):
            status = "skipped"
        else:
            status = "success"
        record = actions.run_log_record(
            run_id=run_id,
            run_date=ds,
            status=status,
            started_at=_run_started_at(dag_run),
            decision=decision,
            counts=counts,
            exports=exports if status != "skipped" else [],
            brief_link=(brief or {}).get("markdown"),
            error_message=error,
            slack_posted=posted if (response or fallback or failed) else None,
            slack_message_ts=response.get("slack_message_ts"),
            ticket_id=response.get("ticket_id"),
            playbook_status=playbook_status,
            export_status=export_status,
        )
        stored = actions.write_run_log(
            warehouse, settings, record, pack.run_log_path(settings, ds, run_id)
        )
    log.info("ops_runs_log %s: status=%s", run_id, status)
    if status == "failed":
        raise AirflowFailException(f"run {run_id} failed and was logged: {error}")
    return stored


def _known_secrets(settings: Any) -> list[str]:
    from airflow.sdk import BaseHook

    secrets: list[str] = []
    for conn_id in (settings.make_conn_id, settings.slack_conn_id):
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:
            continue
        secrets += playbook.connection_secrets(conn.host, conn.password, conn.extra)
    return secrets


def record_task_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every task: write the failure before anything else can."""
    ti = context["ti"]
    if ti.task_id == "write_run_log":
        return  # it wrote the row itself before failing
    settings = load_settings()
    label = (
        ti.task_id
        if getattr(ti, "map_index", -1) in (-1, None)
        else (f"{ti.task_id}[{ti.map_index}]")
    )
    exception = context.get("exception")
    message = playbook.redact(
        f"step {label} failed: {type(exception).__name__}: {exception}", _known_secrets(settings)
    )[:1000]
    record = actions.run_log_record(
        run_id=context["run_id"], run_date=context["ds"], status="failed", error_message=message
    )
    try:
        with open_warehouse(settings) as warehouse:
            actions.write_run_log(warehouse, settings, record)
    except Exception:  # the callback must never hide the task's own error
        log.exception("could not record the failure of %s in ops_runs_log", label)
