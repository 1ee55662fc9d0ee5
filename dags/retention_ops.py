"""
### retention_ops — detect → prioritize → package → execute → log

Runs daily for the run date D (the logical date, `ds`): the run for D starts once D has ended
and sees orders up to D only, so a backfill of an old date gives the answer it gave that day.

**Inputs**: the `orders` table (load it with `retentionops load-orders` or
`retentionops load-sample` on the embedded warehouse).
**Outputs**: D's partition of `base_customers`, `retention_snapshot`, `churn_detection`,
`cohort_retention_evolution` and `alert_logic` (SQL1–SQL5 under `include/sql/detection/`,
all or nothing: one transaction on DuckDB; on BigQuery a run marker written last, which
every reader requires); D's `customer_priority` (with its own marker); then, by the
day's incident event (`no_alert` | `warning` | `critical` | `resolved`), one audience
export per tier of the playbook (WARNING: P1 + P2, CRITICAL: P1 + P2 + P3; holdout and the
contact cooldown excluded; a local CSV, then the gcs / gsheet uploads; one task, which
reads the day's queue once for every tier), the brief (Markdown, Slack, email) and chart
linking them, all under the run's own `artifacts/runs/D/<run id>/`, the
Make.com playbook call (`trigger_playbook`, an HttpOperator on the `make_webhook`
connection; `post_slack_fallback` delivers the brief to Slack if it fails), before it, when
`approval_required` holds the day's event, a person's approval (`approve_playbook`, Airflow's
ApprovalOperator: Approve or Reject in the UI's Required actions, `approval_default` after
`approval_timeout_minutes`; skipped when no approval is needed), and always one
`ops_runs_log` row per run (`write_run_log`, trigger rule ALL_DONE) with a JSON copy.
`apply_retention` first removes each date's detection and queue rows `retention_days`
after they were written (so a backfill of an old date is kept like a fresh run).

This file is wiring only: each task is a few lines calling one operation of
`retentionops.service` (the same functions the CLI and the MCP server call) with the run's
one typed request (`operators.current_request`: settings, day, run, delivery, destination),
and `retentionops.operators` gives the tasks that run the SQL steps on the configured
backend (`BigQueryInsertJobOperator` jobs on BigQuery, a DuckDB task otherwise). The data
flows forward as task arguments: the operational context is read once per run, by
`get_operational_context`, and handed to the branch, the exports, the brief and the
playbook (the playbook checks the delivery ledger again just before it sends). The branch
is the one gate: on an event it starts the action pack with its marker task, on
`no_alert` only `deliver_owed` runs.

**Params** (manual runs): `rollout_mode` (shadow | pilot | production), `dry_run` (build
everything, send nothing), `export_destination` (folder or gs://bucket/prefix), `resend`
(send an event already delivered again), `silence_until` / `silence_reason` (also the Airflow
Variables `retentionops_silence_until` / `retentionops_silence_reason`, for scheduled runs),
`allow_late_data` (act on a late or short orders feed).

**Trusting the orders**: `wait_for_orders` (a sensor in reschedule mode, before detection)
waits up to `orders_wait_minutes` for the orders feed to reach D (no trading day missing;
a Saturday without trading is not late) and then fails the run red, its log row saying
"orders feed late: last order …": a late feed is not a quiet day. A day whose orders are
short (under `orders_volume_low_pct` of the same weekday's usual) runs, but carries no
incident event: nothing opens, changes or closes on it, and the brief and log say "data
short" (retentionops/freshness.py; every decision carries `data_freshness`).

**Across days**: the playbook acts on the day's incident event (open, update, escalate,
de-escalate, resolve: docs/incidents.md), and sends nothing for a quiet day, warm-up, a run
older than `notify_max_age_days`, while silenced, with `playbook_enabled: false`, or for a
late date of an incident whose resolve was delivered; the log row's `note` says why. What
is sent goes through the ledger (`incident_events`): recorded by `prepare_playbook`, claimed
by `trigger_playbook` before the POST (so two doors never both send it), settled by the
answer. Events owed from earlier dates (the webhook was down) go out first, in order, saying
they are late: from `trigger_playbook` on an event day, from `deliver_owed` on a day without
one.

**Backends**: `warehouse_backend: duckdb` (default) runs the SQL on the embedded DuckDB file,
one task at a time (DuckDB allows one writer: every task that opens the file is in the
one-slot pool `retentionops_duckdb`, so a backfill's runs never meet on its lock; create it
with `airflow pools set retentionops_duckdb 1 "DuckDB: one writer"`), SQL1–SQL5 in one
`detection` task and one transaction; `bigquery` runs the same SQL files through
`BigQueryInsertJobOperator`, one job per file (`detection.base_customers` …), each replacing
D's partition with WRITE_TRUNCATE. After SQL1, `detection.check_summaries` compares the
orders' summaries (SQL4's and SQL5's input, kept by every load) with SQL1's customers and
orders and rebuilds them if another writer changed the orders, as a DuckDB run does in its
transaction. SQL5 extends the stored alert history: the branch `detection.history_from_date`
reads the history marker when the run starts and picks `detection.alert_logic_daily` on a
daily run (D alone, from SQL2's snapshot and the stored days, no orders read) or
`detection.alert_logic` from the first missing date (the whole history on a fresh dataset;
its `@from_date` is the branch's XCom `from_date`); a date already covered (a rerun, a
backfill) computes nothing (both jobs and `mark_history_complete` are skipped), as on
DuckDB. The queue's job takes the last delivered run it compares D with as
`@previous_run_date`, read just before it by `last_delivered_run` (a constant, so the job
reads that one earlier queue partition).

**Triage**: the run's `ops_runs_log` row names the failed step and its error (written by the
failing task's `on_failure_callback`, then completed by `write_run_log`, which fails the run
after logging so the run shows as failed). A failed detection task names the SQL file and
the database error in its log; re-run the task (or the date): every step replaces D's rows
only, so re-runs never duplicate, and until detection completes again no reader uses D.
A failed `trigger_playbook` says `TransientWebhookError` (timeout, connection, 408, 429,
5xx: retried twice, honouring Retry-After) or `PermanentWebhookError` (other 4xx or no JSON
answer: fix the scenario), never the URL. `get_alert_decision` failing with "no orders on or
before" means the orders start after D. With `detection_mode: external`,
the `detection` task names the detection tables that hold no rows for D.

Settings: `include/retentionops.yaml` and `RETENTIONOPS_*` environment variables (README).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TriggerRule, chain, task

from retentionops import operators, service
from retentionops.settings import load_settings
from retentionops.vocabulary import (
    BRANCHES,
    EXPORT_STEP,
    NO_ALERT,
    PLAYBOOK_STEP,
    ROLLOUT_MODES,
)

SETTINGS = load_settings()
INCLUDE_DIR = Path(__file__).resolve().parents[1] / "include"
#: The person's approval before the webhook; the run log reads its verdict (see write_run_log).
APPROVE_PLAYBOOK = "approve_playbook"

on_failure: list[Any] = [operators.record_task_failure]
if SETTINGS.failure_notifications:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    on_failure.append(
        SlackWebhookNotifier(
            slack_webhook_conn_id=SETTINGS.slack_conn_id,
            text=":red_circle: retention_ops {{ ds }}: task {{ ti.task_id }} failed "
            "(run {{ run_id }}); the run's ops_runs_log row has the error.",
        )
    )


# -- the tasks: each a thin door to one operation, its run request built once ------------------
# (operators.current_request: the settings, day, run, delivery and destination of the run).
# The day's operational context is read once, by get_operational_context, and handed on as
# an argument: the exports, the brief and the playbook never read it again.


def switch(title: str, description: str) -> Param:
    """A run Param that is off unless ticked (a checkbox; null admitted, see ``params``)."""
    return Param(False, type=["boolean", "null"], title=title, description=description)


def text(title: str, description: str, **schema: Any) -> Param:
    """A run Param left empty unless given (empty: the settings' value; see ``params``)."""
    return Param(None, type=["null", "string"], title=title, description=description, **schema)


@task(task_id="apply_retention")
def apply_retention() -> dict[str, int]:
    return service.apply_retention(load_settings())


@task(task_id="get_alert_decision")
def get_alert_decision() -> dict[str, Any]:
    run = operators.current_request()
    return service.get_alert_decision(run.settings, run.day)


@task(task_id="get_operational_context")
def get_operational_context() -> dict[str, Any]:
    run = operators.current_request()
    return service.get_operational_context(run.settings, run.day, run.delivery)


@task.branch(task_id="choose_playbook", pool=operators.DEFAULT_POOL)
def choose_playbook(context: dict[str, Any]) -> list[str]:
    """The one gate: follow the day's incident event, ``warning`` or ``critical`` (an alert
    event) or ``resolved`` (the recovery brief), each with the action pack that starts at
    the exports; or ``no_alert`` (nothing of its own to deliver: what earlier days owe)."""
    branch = context["plan"]["branch"]
    return [branch] if branch == NO_ALERT else [branch, EXPORT_STEP]


@task(task_id=EXPORT_STEP)
def export_audience(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The audiences of the tiers the day's playbook names (none: a resolve), in one task:
    the warehouse reads the day's queue once for all of them (one file per tier)."""
    run = operators.current_request()
    tiers = service.planned_tiers(run.settings, run.day, run.delivery, context=context)
    if not tiers:
        return []
    with operators.permanent_errors_fail_at_once():  # a refused destination: no retries
        return service.export_audiences(
            run.settings, run.day, tiers, destination=run.destination, run=run.run
        )


# A failed upload is not a failed export: the local CSV is linked (fallback_local).
@task(task_id="render_brief", multiple_outputs=True)
def render_brief(context: dict[str, Any], exports: list[dict[str, Any]]) -> dict[str, Any]:
    run = operators.current_request()
    return service.generate_brief(
        run.settings,
        run.day,
        "slack",
        exports=exports,
        delivery=run.delivery,
        run=run.run,
        context=context,
    )


@task.short_circuit(task_id="prepare_playbook", ignore_downstream_trigger_rules=False)
def prepare_playbook(
    context: dict[str, Any],
    slack: dict[str, Any],
    files: dict[str, str],
    exports: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The webhook body, kept next to the run's files; a run that sends nothing (a dry run,
    an event already delivered or too old, silence, the kill switch) stops here (None)."""
    run = operators.current_request()
    with operators.permanent_errors_fail_at_once():
        prepared = service.prepare_playbook(
            run.settings,
            run.day,
            run=run.run,
            slack_brief=slack,
            exports=exports,
            brief_link=files["markdown"],
            delivery=run.delivery,
            context=context,
        )
    return prepared["payload"] if prepared["send"] else None


@task(task_id="post_slack_fallback", trigger_rule=TriggerRule.ONE_FAILED, retries=0)
def post_slack_fallback(slack: dict[str, Any] | None) -> dict[str, Any]:
    """When the playbook failed: post the brief straight to Slack, once, saying why."""
    from airflow.sdk.exceptions import AirflowSkipException

    from retentionops.connections import ConnectionMissingError

    run = operators.current_request()
    if run.delivery.dry_run or not slack:
        raise AirflowSkipException("dry run, or no brief to deliver: nothing is sent")
    try:
        reason = service.run_failure_reason(run.settings, run.run_id)
        return service.post_fallback(run.settings, slack, reason)
    except ConnectionMissingError as error:
        raise AirflowSkipException(f"{error}: the brief and exports stay on disk") from None


# retries=0: the webhook's transient faults are retried inside (playbook.retry_args), and
# what stays owed goes out with the next run
@task(task_id="deliver_owed", retries=0)
def deliver_owed() -> list[dict[str, Any]]:
    """A day without an event of its own still delivers what earlier days owe (the
    receiver was down; an incident today's settings no longer see is closed): oldest
    first, through the ledger (``service.catch_up``)."""
    run = operators.current_request()
    return service.catch_up(run.settings, run.day, run.run, run.delivery)


def failed_steps_and_approval() -> tuple[list[str], dict[str, Any] | None]:
    """What the run log reads of the run itself rather than from its arguments: the tasks
    that failed (task states are not data), and the approval's verdict. The verdict is the
    one value pulled by task id: on Reject ``ApprovalOperator`` skips every task right
    after it, so it cannot be an argument of a task that must log the run all the same."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    ti, run_id = context["ti"], context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    verdict = ti.xcom_pull(task_ids=APPROVE_PLAYBOOK)
    return operators.failed_steps(states, ti.task_id), verdict or None


@task(task_id="write_run_log", trigger_rule=TriggerRule.ALL_DONE, retries=0)
def write_run_log(outputs: dict[str, Any]) -> dict[str, Any]:
    """Record the run (ALL_DONE: whatever failed upstream); fail the run if a step failed.
    ``outputs`` is what the tasks returned, by name (None: skipped, failed or nothing);
    ``RunOutcome.of_dag_run`` assembles the outcome from them."""
    run = operators.current_request()
    failed, approval = failed_steps_and_approval()
    outcome = service.RunOutcome.of_dag_run(
        run.run_id,
        run.day,
        started_at=run.delivery.started_at,
        failed_steps=failed,
        approval=approval,
        dry_run=run.delivery.dry_run,
        **outputs,
    )
    stored = service.write_run_log(run.settings, outcome)
    if stored["status"] == "failed":
        raise operators.RunFailed(
            f"run {run.run_id} failed and was logged: {stored['error_message']}"
        )
    return stored


with DAG(
    dag_id="retention_ops",
    description="Daily retention alert -> action pack, with an audit row for every run.",
    doc_md=__doc__,
    # Interval schedule: the run for D starts after D has ended (ds = D).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime.fromisoformat(SETTINGS.schedule_start_date).replace(tzinfo=dt.UTC),
    end_date=dt.datetime.fromisoformat(SETTINGS.schedule_end_date).replace(tzinfo=dt.UTC)
    if SETTINGS.schedule_end_date
    else None,
    catchup=SETTINGS.catchup,
    **operators.dag_concurrency(SETTINGS),
    template_searchpath=[str(INCLUDE_DIR)],
    user_defined_macros=operators.template_macros(SETTINGS),
    default_args={
        "owner": "retention-ops",
        "retries": SETTINGS.task_retries,
        "retry_delay": dt.timedelta(seconds=SETTINGS.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": on_failure,
        # every task that opens the warehouse: one at a time on DuckDB, across all runs
        "pool": operators.warehouse_pool(SETTINGS),
    },
    tags=["retention", "retentionops", SETTINGS.warehouse_backend],
    params={
        # Empty ("" or None) = the settings' value (operators.run_overrides). Every type
        # admits "null": Airflow 3's form marks any other Param required (a red star, and
        # "" refused), even a checkbox. No enum holds None: the form would offer "null".
        "rollout_mode": Param(
            "",
            type=["string", "null"],
            enum=["", *ROLLOUT_MODES],
            values_display={"": "(the rollout_mode setting)"},
            title="Rollout mode",
            description="Empty: the rollout_mode setting. shadow: flagged, not posted; pilot: "
            "WARNING playbook in the pilot channel; production: WARNING and CRITICAL with "
            "escalation.",
        ),
        "dry_run": switch(
            "Dry run",
            "Build everything, send nothing (no webhook).",
        ),
        "export_destination": text(
            "Export destination",
            "A folder inside export_root for this run's CSVs, or a gs://bucket/prefix to "
            "upload them to (the local CSVs are always kept); empty = the settings "
            "(export_destinations). Files are scoped to the date and the run either way.",
            pattern=r"^(|gs://[a-z0-9][a-z0-9._-]{1,220}(/.*)?|[^:]+)$",
        ),
        "resend": switch(
            "Resend",
            "Send the day's event again although it was already delivered (or is "
            "older than notify_max_age_days); the receiver gets the same dedupe_key.",
        ),
        "allow_late_data": switch(
            "Act on late data",
            "Run and deliver although the orders feed is late or the day is "
            "short (data_freshness): wait_for_orders does not wait, and the day's event is "
            "sent. Off: a late feed fails the run, a short day sends nothing.",
        ),
        "silence_until": text(
            "Silence until",
            "Send nothing until this date (YYYY-MM-DD); empty = the Airflow Variable "
            "retentionops_silence_until, then the silence_until setting.",
            format="date",
        ),
        "silence_reason": text("Silence reason", "Why the playbook is silenced."),
    },
) as dag:
    # D's orders first: a late feed fails the run red, it is not a quiet day
    orders = operators.OrdersFeedSensor(task_id="wait_for_orders", settings=SETTINGS)
    decision = get_alert_decision()
    context = get_operational_context()
    chain(
        operators.create_tables_task(SETTINGS),
        apply_retention(),
        orders,
        operators.detection_task(SETTINGS),
        decision,
        operators.queue_task(SETTINGS),
        context,
    )
    # gated once: the branch picks the day's event and, with it, the action pack
    branch = choose_playbook(context)
    markers = [EmptyOperator(task_id=name, pool=operators.DEFAULT_POOL) for name in BRANCHES]
    branch >> markers
    exports = export_audience(context)
    branch >> exports
    brief = render_brief(context, exports)
    prepared = prepare_playbook(context, brief["slack"], brief["files"], exports)
    # a person's answer is never asked twice: no retries
    approve = operators.PlaybookApprovalOperator(
        task_id=APPROVE_PLAYBOOK, payload=prepared, retries=0
    )
    trigger = operators.PlaybookWebhookOperator(
        task_id=PLAYBOOK_STEP,
        http_conn_id=SETTINGS.make_conn_id,
        data=prepared,
        approval=approve.output,
        # runs after an approval, and after one skipped because none was needed; a
        # rejection skips it (ApprovalOperator), as prepare_playbook does when nothing is sent
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        # transient faults are retried inside the task (playbook.retry_args), never twice
        retries=0,
    )
    fallback = post_slack_fallback(brief["slack"])
    trigger >> fallback
    owed = deliver_owed()
    markers[BRANCHES.index(NO_ALERT)] >> owed
    run_log = write_run_log(
        {
            "decision": decision,
            "context": context,
            "files": brief["files"],
            "exports": exports,
            "answer": trigger.output,
            "fallback": fallback,
            "late": owed,
        }
    )
    markers >> run_log  # the log is the run's one last task, whichever branch ran
