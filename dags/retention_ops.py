"""
### retention_ops — detect → prioritize → package → execute → log

Runs daily for the run date D (the logical date, `ds`): the run for D starts once D has ended
and sees orders up to D only, so a backfill of an old date gives the answer it gave that day.

**Inputs**: the `orders` table (load it with `retentionops load-orders` or
`retentionops load-sample` on the embedded warehouse).
**Outputs**: D's partition of `base_customers`, `retention_snapshot`, `churn_detection`,
`cohort_retention_evolution` and `alert_logic` (SQL1–SQL5 under `include/sql/detection/`);
D's `customer_priority`; then, by the alert's branch (`no_alert` | `warning` | `critical`),
the brief (Markdown, Slack, email) and chart under `artifacts/runs/D/`, one audience export
per tier of the playbook (WARNING: P1 + P2, CRITICAL: P1 + P2 + P3, holdout excluded), the
Make.com playbook call (`trigger_playbook`, an HttpOperator on the `make_webhook`
connection; `post_slack_fallback` delivers the brief to Slack if it fails), and always one
`ops_runs_log` row per run (`write_run_log`, trigger rule ALL_DONE) with a JSON copy.
On DuckDB, `apply_retention` first removes partitions older than `retention_days`.

**Params** (manual runs): `rollout_mode` (shadow | pilot | production), `dry_run` (build
everything, send nothing), `export_destination` (folder or gs://bucket/prefix).

**Backends**: `warehouse_backend: duckdb` (default) runs the SQL on the embedded DuckDB file,
one task at a time (DuckDB allows one writer); `bigquery` runs the same SQL files through
`BigQueryInsertJobOperator`, each replacing D's partition with WRITE_TRUNCATE.

**Triage**: the run's `ops_runs_log` row names the failed step and its error (written by the
failing task's `on_failure_callback`, then completed by `write_run_log`, which fails the run
after logging so the run shows as failed). A failed detection task names the SQL file and
the database error in its log; re-run the task (or the date): every step replaces D's rows
only, so re-runs never duplicate.
A failed `trigger_playbook` says `TransientWebhookError` (timeout, connection, 429, 5xx:
retried twice) or `PermanentWebhookError` (other 4xx or no JSON answer: fix the scenario),
never the URL. `get_alert_decision` failing with "no alert decision stored" means SQL5 did
not run for D, or that no orders exist on or before D. With `detection_mode: external`,
`verify_detection` names the detection tables that hold no rows for D.

Settings: `include/retentionops.yaml` and `RETENTIONOPS_*` environment variables (README).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import (
    DAG,
    CronDataIntervalTimetable,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
    TaskGroup,
    TriggerRule,
    chain,
    task,
)

from retentionops import tasks
from retentionops.detection import DETECTION_STEPS
from retentionops.operators import PlaybookWebhookOperator
from retentionops.playbook import ROLLOUT_MODES
from retentionops.settings import load_settings
from retentionops.sql import TABLES, table_refs

SETTINGS = load_settings()
ON_BIGQUERY = SETTINGS.warehouse_backend == "bigquery"

on_failure = [tasks.record_task_failure]
if SETTINGS.failure_notifications:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    on_failure.append(
        SlackWebhookNotifier(
            slack_webhook_conn_id=SETTINGS.slack_conn_id,
            text=":red_circle: retention_ops {{ ds }}: task {{ ti.task_id }} failed "
            "(run {{ run_id }}); the run's ops_runs_log row has the error.",
        )
    )
INCLUDE_DIR = Path(__file__).resolve().parents[1] / "include"

with DAG(
    dag_id="retention_ops",
    description="Daily retention alert -> action pack, with an audit row for every run.",
    doc_md=__doc__,
    # Interval schedule: the run for D starts after D has ended (ds = D).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    # Default: the bundled sample starts on 2010-12-01, its baseline exists from 2010-12-08.
    start_date=dt.datetime.fromisoformat(SETTINGS.schedule_start_date).replace(tzinfo=dt.UTC),
    end_date=dt.datetime.fromisoformat(SETTINGS.schedule_end_date).replace(tzinfo=dt.UTC)
    if SETTINGS.schedule_end_date
    else None,
    catchup=SETTINGS.catchup,
    # DuckDB has a single writer: one run and one task at a time on the embedded backend.
    max_active_runs=1 if not ON_BIGQUERY else 4,
    max_active_tasks=1 if not ON_BIGQUERY else 8,
    template_searchpath=[str(INCLUDE_DIR)],
    user_defined_macros={"tables": table_refs(SETTINGS), "retention_days": SETTINGS.retention_days},
    default_args={
        "owner": "retention-ops",
        "retries": SETTINGS.task_retries,
        "retry_delay": dt.timedelta(seconds=SETTINGS.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": on_failure,
    },
    tags=["retention", "retentionops", SETTINGS.warehouse_backend],
    params={
        "rollout_mode": Param(
            SETTINGS.rollout_mode,
            type="string",
            enum=list(ROLLOUT_MODES),
            description="shadow: flagged, not posted; pilot: WARNING playbook in the pilot "
            "channel; production: WARNING and CRITICAL with escalation",
        ),
        "dry_run": Param(
            False, type="boolean", description="Build everything, send nothing (no webhook)."
        ),
        "export_destination": Param(
            "",
            type="string",
            pattern=r"^(|gs://[a-z0-9][a-z0-9._-]{1,220}(/.*)?|[^:]+)$",
            description="A folder or gs://bucket/prefix for the CSV exports; empty = settings.",
        ),
    },
) as dag:
    if ON_BIGQUERY:
        from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

        from retentionops import bigquery

        def bigquery_job(task_id: str, configuration: dict) -> BigQueryInsertJobOperator:
            return BigQueryInsertJobOperator(
                task_id=task_id,
                configuration=configuration,
                gcp_conn_id=SETTINGS.gcp_conn_id,
                project_id=SETTINGS.bigquery_project,
                location=SETTINGS.bigquery_location,
            )

        create_tables = bigquery_job("create_tables", bigquery.create_tables_job(TABLES))
    else:
        create_tables = task(task_id="create_tables")(tasks.create_tables)()
        # BigQuery expires old partitions itself (partition_expiration_days in the DDL).
        retention = task(task_id="apply_retention")(tasks.apply_retention)()
        create_tables >> retention

    if SETTINGS.detection_mode == "external":
        detect = task(task_id="verify_detection")(tasks.verify_detection)()
    else:
        with TaskGroup("detection", tooltip="SQL1-SQL5 for the run date") as detect:
            steps = [
                bigquery_job(step.task_id, bigquery.detection_job(SETTINGS, step))
                if ON_BIGQUERY
                else task(task_id=step.task_id)(tasks.run_detection_step)(step.table)
                for step in DETECTION_STEPS
            ]
            chain(*steps)

    decision = task(task_id="get_alert_decision")(tasks.get_alert_decision)()
    if ON_BIGQUERY:
        queue = bigquery_job("build_priority_queue", bigquery.priority_queue_job(SETTINGS))
    else:
        queue = task(task_id="build_priority_queue")(tasks.build_priority_queue)()
    context = task(task_id="get_operational_context")(tasks.get_operational_context)()
    branch = task.branch(task_id="choose_playbook")(tasks.choose_playbook)(context)
    no_alert, warning, critical = (
        EmptyOperator(task_id=name) for name in ("no_alert", "warning", "critical")
    )
    brief = task(task_id="render_brief", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)(
        tasks.render_brief
    )()
    tiers = task(task_id="select_tiers")(tasks.select_tiers)(context)
    exports = task(task_id="export_audience")(tasks.export_audience).expand(tier=tiers)
    run_log = task(task_id="write_run_log", trigger_rule=TriggerRule.ALL_DONE, retries=0)(
        tasks.write_run_log
    )()

    prepare = task.short_circuit(
        task_id="prepare_playbook", ignore_downstream_trigger_rules=False
    )(tasks.prepare_playbook)()
    # Retry only transient faults: the operator raises TransientWebhookError for timeouts,
    # connection errors, 429 and 5xx, PermanentWebhookError for any other refusal.
    trigger = PlaybookWebhookOperator(
        task_id="trigger_playbook",
        http_conn_id=SETTINGS.make_conn_id,
        data="{{ ti.xcom_pull(task_ids='prepare_playbook') | tojson }}",
        extra_options={"check_response": False, "timeout": SETTINGS.webhook_timeout_seconds},
        retries=SETTINGS.webhook_retries,
        retry_delay=dt.timedelta(seconds=SETTINGS.webhook_retry_delay_seconds),
        retry_policy=ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception="retentionops.playbook.TransientWebhookError",
                    action=RetryAction.RETRY,
                ),
            ],
            default=RetryAction.FAIL,
        ),
    )
    fallback = task(task_id="post_slack_fallback", trigger_rule=TriggerRule.ONE_FAILED)(
        tasks.post_slack_fallback
    )()

    chain(
        retention if not ON_BIGQUERY else create_tables,
        detect, decision, queue, context, branch, [no_alert, warning, critical],
    )  # fmt: skip
    chain([warning, critical], brief, tiers, exports, prepare, trigger, fallback, run_log)
    no_alert >> run_log
