"""
### retention_ops — detect → prioritize → package → execute → log

Runs daily for the run date D (the logical date, `ds`): the run for D starts once D has ended
and sees orders up to D only, so a backfill of an old date gives the answer it gave that day.

**Inputs**: the `orders` table (load it with `retentionops load-orders` or
`retentionops load-sample` on the embedded warehouse).
**Outputs**: D's partition of `base_customers`, `retention_snapshot`, `churn_detection`,
`cohort_retention_evolution` and `alert_logic` (SQL1–SQL5 under `include/sql/detection/`),
and the alert decision for D in XCom (`get_alert_decision`).

**Backends**: `warehouse_backend: duckdb` (default) runs the SQL on the embedded DuckDB file,
one task at a time (DuckDB allows one writer); `bigquery` runs the same SQL files through
`BigQueryInsertJobOperator`, each replacing D's partition with WRITE_TRUNCATE.

**Triage**: a failed detection task names the SQL file and the database error in its log;
re-run the task (or the date): every step replaces D's rows only, so re-runs never duplicate.
`get_alert_decision` failing with "no alert decision stored" means SQL5 did not run for D, or
that no orders exist on or before D. With `detection_mode: external`, `verify_detection`
names the detection tables that hold no rows for D.

Settings: `include/retentionops.yaml` and `RETENTIONOPS_*` environment variables (README).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import DAG, CronDataIntervalTimetable, TaskGroup, chain, task

from retentionops import tasks
from retentionops.detection import DETECTION_STEPS
from retentionops.settings import load_settings
from retentionops.sql import TABLES, table_refs

SETTINGS = load_settings()
ON_BIGQUERY = SETTINGS.warehouse_backend == "bigquery"
INCLUDE_DIR = Path(__file__).resolve().parents[1] / "include"

with DAG(
    dag_id="retention_ops",
    description="Daily retention alert -> action pack, with an audit row for every run.",
    doc_md=__doc__,
    # Interval schedule: the run for D starts after D has ended (ds = D).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    # The bundled sample starts on 2010-12-01; the 7-day baseline exists from 2010-12-08.
    start_date=dt.datetime(2010, 12, 8, tzinfo=dt.UTC),
    catchup=True,
    # DuckDB has a single writer: one run and one task at a time on the embedded backend.
    max_active_runs=1 if not ON_BIGQUERY else 4,
    max_active_tasks=1 if not ON_BIGQUERY else 8,
    template_searchpath=[str(INCLUDE_DIR)],
    user_defined_macros={"tables": table_refs(SETTINGS)},
    default_args={
        "owner": "retention-ops",
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
    },
    tags=["retention", "retentionops", SETTINGS.warehouse_backend],
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

    chain(create_tables, detect, decision)
