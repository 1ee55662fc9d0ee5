"""Airflow's side of the package: the tasks the DAG wires, built from the service layer.

- :func:`detection_task`, :func:`queue_task` and :func:`create_tables_task` are "the task
  that runs this SQL step": ``BigQueryInsertJobOperator`` jobs on BigQuery, a DuckDB task
  otherwise. The backend is chosen here, from the settings, and nowhere in the DAG file.
- :class:`PlaybookWebhookOperator` posts the playbook through ``hooks.PlaybookHook``, the
  hook the MCP/CLI ``trigger_playbook`` (``service``) uses too: it classifies answers, never
  lets the URL reach a log line and retries with the one policy of ``playbook.retry_args``.
- :class:`PlaybookApprovalOperator` is Airflow's ``ApprovalOperator`` before the webhook:
  the run waits for a person when ``approval.required`` says so, and is skipped otherwise.
- :func:`record_task_failure` is every task's ``on_failure_callback``: it writes the failure
  into the run's ``ops_runs_log`` row before anything else can go wrong.
- :func:`run_request` is the DAG's door: each task's one typed ``RunRequest`` (settings,
  day, run, delivery, destination) from Airflow's context; :func:`failed_steps` and
  :func:`run_started_at` read a DAG run for its final log row.

Imported by the DAG file (needs Airflow installed, not running); nothing here opens a
connection at import time. The service layer never imports this module (it is the DAG's
door to the service, not the other way round).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import BaseNotifier, BaseSensorOperator, Param, PokeReturnValue
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from retentionops import approval, connections, service
from retentionops.dates import as_date
from retentionops.errors import UserError
from retentionops.hooks import PlaybookHook
from retentionops.playbook import IDEMPOTENCY_HEADER, Delivery, parse_response, retry_args
from retentionops.runlog import RunOutcome
from retentionops.service import Run, RunRequest
from retentionops.settings import Settings, load_settings

# -- SQL steps --------------------------------------------------------------------------------


def _detect(ds: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    return service.detect(load_settings(), ds, run=service.Run.of_dag(run_id))


def _build_priority_queue(ds: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    return service.build_priority_queue(
        load_settings(), ds, detect=False, run=service.Run.of_dag(run_id)
    )


def _create_tables() -> None:
    service.create_tables(load_settings())


def _check_summaries(ds: str | None = None) -> bool:
    """After SQL1: the orders' summaries agree with the orders, or are rebuilt (True)."""
    return service.check_summaries(load_settings(), ds)


#: The XCom key under which the branch ``history_from_date`` hands the SQL5 job its
#: ``@from_date`` (its return value is the job to run, as a branch's is).
FROM_DATE_KEY = "from_date"


def _history_from_date(ds: str | None = None, ti: Any = None) -> str | None:
    """Which SQL5 job computes the dates the stored history lacks, and from which date.

    Returns the task id of ``alert_logic`` (the orders-based pass from ``@from_date``) or of
    ``alert_logic_daily`` (a daily run: the run date alone, from SQL2's snapshot, which the
    group's ``retention_snapshot`` job wrote before); None (stored already) skips both. The
    from-date goes to XCom under :data:`FROM_DATE_KEY` (``detection.alert_step`` decides,
    the rule DuckDB runs follow too).
    """
    from retentionops.detection import alert_step

    start = service.alert_history_from(load_settings(), ds)
    if start is None:
        return None
    ti.xcom_push(key=FROM_DATE_KEY, value=start)
    # ``start`` is ours, not a door's: "the whole history" lies before any date a door takes
    step = alert_step(dt.date.fromisoformat(start), as_date(ds), snapshot=True)
    return f"{ti.task_id.rpartition('.')[0]}.{step.name}"


def _last_delivered_run(ds: str | None = None) -> dict[str, Any]:
    """The queue job's ``@previous_run_date`` as its ``parameterValue`` (``{}``: NULL, no
    run delivered before the date): ``service.last_delivered_run``."""
    from retentionops.sql import bigquery_parameter_value

    return bigquery_parameter_value(service.last_delivered_run(load_settings(), ds))


def _bigquery_job(
    settings: Settings, task_id: str, configuration: dict[str, Any], **kwargs: Any
) -> Any:
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    return BigQueryInsertJobOperator(
        task_id=task_id,
        configuration=configuration,
        gcp_conn_id=settings.gcp_conn_id,
        project_id=settings.bigquery_project,
        location=settings.bigquery_location,
        **kwargs,
    )


def _marker_job(
    settings: Settings, task_id: str, sql_name: str, trigger_rule: Any = None, **values: Any
) -> Any:
    from retentionops import bigquery

    return _bigquery_job(
        settings,
        task_id,
        bigquery.dml_job(settings, sql_name, {"run_date": "{{ ds }}", **values}),
        **({"trigger_rule": trigger_rule} if trigger_rule else {}),
    )


def detection_task(settings: Settings, task_id: str = "detection") -> Any:
    """The task(s) computing SQL1-SQL5 of the run date, all or nothing.

    BigQuery (managed detection): a group of ``BigQueryInsertJobOperator`` jobs, one per
    SQL file, between clearing the date's run markers and marking detection complete, so a
    run killed half-way is never read. SQL5 extends the stored alert history: the branch
    ``history_from_date`` reads the history marker when the run starts and picks the job
    (``detection.history_start`` and ``alert_step``, the rules DuckDB runs follow too):
    ``alert_logic_daily`` on a daily run (the history stored up to the day before: the date
    from SQL2's snapshot, no orders read), else ``alert_logic``, which takes the first date
    to compute as its ``@from_date`` (an ``XComArg`` in its configuration, rendered with
    the job). When the history already covers the date both jobs and the history marker
    are skipped. DuckDB, or external detection: one task doing the same in one transaction
    (DuckDB allows one writer anyway).
    """
    from airflow.sdk import TaskGroup, TriggerRule, chain, task

    from retentionops.detection import (
        ALERT_DAILY_STEP,
        ALERT_STEP,
        DETECTION_MARKER,
        DETECTION_STEPS,
        history_marker,
    )

    if settings.warehouse_backend != "bigquery" or settings.detection_mode == "external":
        return task(task_id=task_id)(_detect)()
    from retentionops import bigquery

    with TaskGroup(task_id, tooltip="SQL1-SQL5 for the run date, all or nothing") as group:
        # only the SQL5 jobs depend on it: nothing to compute skips them (and the history
        # marker below), nothing else
        sql5 = task.branch(task_id="history_from_date")(_history_from_date)()
        base, *others = (
            _bigquery_job(settings, step.name, bigquery.step_job(settings, step))
            for step in DETECTION_STEPS
            if step is not ALERT_STEP
        )
        chain(
            _marker_job(settings, "start_detection", "markers/clear_run_markers"),
            base,
            # SQL4 and SQL5 read the orders' summaries: checked against SQL1's customers
            task(task_id="check_summaries")(_check_summaries)(),
            *others,
            sql5,
            [
                _bigquery_job(
                    settings,
                    ALERT_STEP.name,
                    bigquery.step_job(
                        settings, ALERT_STEP, values={"from_date": {"value": sql5[FROM_DATE_KEY]}}
                    ),
                ),
                _bigquery_job(
                    settings, ALERT_DAILY_STEP.name, bigquery.step_job(settings, ALERT_DAILY_STEP)
                ),
            ],
            # SQL5's rows are stored from from_date to the run date: the history is stored
            _bigquery_job(
                settings,
                "mark_history_complete",
                bigquery.history_marker_job(settings, history_marker(settings)),
                trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            ),
            _marker_job(
                settings,
                "mark_detection_complete",
                "markers/mark_step_complete",
                step=DETECTION_MARKER,
                # after the history was extended, or found stored (the two jobs skipped)
                trigger_rule=TriggerRule.NONE_FAILED,
            ),
        )
    return group


def queue_task(settings: Settings, task_id: str = "build_priority_queue") -> Any:
    """The task(s) writing the run date's customer_priority and marking it complete."""
    from airflow.sdk import TaskGroup, task

    from retentionops.actions import QUEUE_STEP
    from retentionops.detection import QUEUE_MARKER

    if settings.warehouse_backend != "bigquery":
        return task(task_id=task_id)(_build_priority_queue)()
    from retentionops import bigquery

    with TaskGroup("priority_queue", prefix_group_id=False) as group:
        # the last delivered run first: the job reads that one queue partition (a date
        # found by a subquery would make it read every partition retention keeps)
        previous = task(task_id="last_delivered_run")(_last_delivered_run)()
        write = _bigquery_job(
            settings,
            task_id,
            bigquery.step_job(settings, QUEUE_STEP, values={"previous_run_date": previous}),
        )
        (
            previous
            >> write
            >> _marker_job(
                settings, "mark_queue_complete", "markers/mark_step_complete", step=QUEUE_MARKER
            )
        )
    return group


def create_tables_task(settings: Settings, task_id: str = "create_tables") -> Any:
    """The task that creates every missing table (the DDL of ``include/sql/ddl``)."""
    if settings.warehouse_backend == "bigquery":
        from retentionops import bigquery
        from retentionops.sql import TABLES

        return _bigquery_job(settings, task_id, bigquery.create_tables_job(settings, TABLES))
    from airflow.sdk import task

    return task(task_id=task_id)(_create_tables)()


#: The one-slot Airflow pool of the embedded warehouse. DuckDB allows one writing process, and
#: Airflow 3 applies ``max_active_tasks`` per run and gives a backfill its own
#: ``max_active_runs`` (10 by default), so only a pool keeps two runs' tasks from opening the
#: file at once. ``make demo`` / ``airflow`` / ``artifacts``, compose's init and the tests
#: create it (``airflow pools set retentionops_duckdb 1 ...``).
DUCKDB_POOL = "retentionops_duckdb"
DUCKDB_POOL_SLOTS = 1
#: Airflow's own pool: tasks that never open the warehouse (the branch and its markers).
DEFAULT_POOL = "default_pool"


def template_macros(settings: Settings) -> dict[str, Any]:
    """The DAG's Jinja macros: ``tables``, each table's full name on the configured backend
    (what the SQL files under include/sql/ name as ``{{ tables.orders }}`` …)."""
    from retentionops.sql import table_refs

    return {"tables": table_refs(settings)}


def warehouse_pool(settings: Settings) -> str:
    """The pool of every task that opens the warehouse: the one-slot DuckDB pool on the
    embedded backend; Airflow's default pool on BigQuery, whose jobs run side by side."""
    return DEFAULT_POOL if settings.warehouse_backend == "bigquery" else DUCKDB_POOL


def dag_concurrency(settings: Settings) -> dict[str, int]:
    """Runs and tasks at once: on DuckDB one of each for scheduled and manual runs, so dates
    run in order (the pool is what keeps a backfill's parallel runs to one writer)."""
    if settings.warehouse_backend == "bigquery":
        return {"max_active_runs": 4, "max_active_tasks": 8}
    return {"max_active_runs": 1, "max_active_tasks": 1}


# -- the playbook webhook -----------------------------------------------------------------------


class PlaybookWebhookOperator(HttpOperator):
    """POST the playbook body (``data``: the output of the task that prepared it) as JSON.

    An ``HttpOperator`` on :class:`PlaybookHook` with the package's retry policy; every
    secret of the connection is registered with Airflow's masker before the call.
    """

    template_fields = (*HttpOperator.template_fields, "approval")

    def __init__(self, *, approval: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("method", "POST")
        kwargs.setdefault("headers", {"Content-Type": "application/json"})
        kwargs.setdefault("response_filter", parse_response)
        super().__init__(**kwargs)
        #: what came of the approval the event waited for (None: it needed none)
        self.approval = approval

    @property
    def hook(self) -> PlaybookHook:
        return PlaybookHook(self.method, http_conn_id=self.http_conn_id)

    def execute(self, context: Any) -> Any:
        """Send what the run owes first (``service.deliver_due``), then the body
        (``service.send_event``: claim, POST, record), all through the ledger.

        Returns the receiver's answer with ``late`` (the owed events delivered first), or
        ``{"not_sent": why, "late": ...}`` when the ledger refused the claim (another run
        holds the event, or it was delivered before): the run log says so."""
        if self.approval and not self.approval.get("approved"):  # cleared after a rejection
            raise AirflowSkipException(f"not sent: {self.approval['note']}")
        run = run_request(context)
        settings = run.settings
        try:
            connections.webhook_url(settings)
        except connections.ConnectionMissingError as error:  # not transient: fail at once
            raise AirflowFailException(str(error)) from None
        connections.mask(connections.known_secrets(settings))
        payload = self.data if isinstance(self.data, dict) else json.loads(self.data)
        if self.approval:  # what approve_playbook kept in the ledger: who approved it
            payload = approval.approved_payload(payload, self.approval)
        # read at run time, like every other setting of a task
        self.extra_options = {**self.extra_options, "timeout": settings.webhook_timeout_seconds}

        def post(body: dict[str, Any], failures: list[BaseException]) -> dict[str, Any]:
            self.data = json.dumps(body)
            self.headers = {**self.headers, IDEMPOTENCY_HEADER: body["dedupe_key"]}
            self.retry_args = retry_args(settings, failures)
            return HttpOperator.execute(self, context)

        run_id = run.run_id
        late: list[dict[str, Any]] = []
        try:
            # what the run owes first (earlier dates' events, closings), then its own event
            late = service.deliver_due(
                settings,
                payload["run_date"],
                run_id,
                post,
                delivery=run.delivery,
                rollout_mode=payload["rollout_mode"],
            )
            answer = service.send_event(
                settings, payload, run_id, post, resend=bool(payload.get("resend"))
            )
        except (service.EventNotSent, service.EventsOwed) as refused:
            self.log.info("playbook: %s", refused)
            return {"not_sent": str(refused), "late": late}
        return {**answer, "late": late}


# -- a person's approval before the webhook ------------------------------------------------------


class ApprovalWaitingNotice(BaseNotifier):
    """Tell Slack, through the fallback connection, that the event waits for approval (with
    the link to its Required action when ``[api] base_url`` is set). A missing connection
    or a failed post is logged: the request is in Airflow whatever Slack does."""

    def __init__(self, settings: Settings, payload: dict[str, Any]) -> None:
        super().__init__()
        self.settings, self.payload = settings, payload

    def notify(self, context: Any) -> None:
        try:
            link = HITLOperator.generate_link_to_ui_from_context(context=context)
        except ValueError:  # no base URL configured: the notice says where, without a link
            link = None
        try:
            service.post_approval_request(self.settings, self.payload, link)
        except connections.ConnectionMissingError as error:
            self.log.info("%s: the approval request is in Airflow only", error)
        except UserError as error:
            self.log.warning("could not tell Slack that an approval waits: %s", error)


class PlaybookApprovalOperator(ApprovalOperator):
    """``approve_playbook``: Airflow's ``ApprovalOperator`` between the prepared body
    (``payload``, the output of the task that prepared it) and the webhook.

    When ``approval.required`` holds the event (``approval_required``), the run waits in
    Airflow's Required actions (and Slack is told, :class:`ApprovalWaitingNotice`) for
    Approve or Reject, with a Reason, up to ``approval_timeout_minutes``; then
    ``approval_default`` applies. Reject (or the default ``withhold``) skips the webhook,
    as ``ApprovalOperator`` does; either way the task returns the verdict
    (``approval.verdict``), which the run log reads, and an approved event is kept in the
    ledger (``service.record_approval``). An event needing no approval skips this task at
    once, and the webhook runs as without it. The settings are read when the run gets
    here, like every task's.
    """

    template_fields = (*ApprovalOperator.template_fields, "payload")

    def __init__(self, *, payload: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Send the day's retention playbook?")  # set when it asks
        super().__init__(**kwargs)
        self.payload = payload
        # the answer's form: the DAG's Params are the run's, not questions to the approver
        self.params = ParamsDict(
            {
                "reason": Param(
                    None,
                    type=["null", "string"],
                    maxLength=approval.MAX_REASON_LENGTH,
                    title="Reason",
                    description="Why, in a few words (optional; the run log keeps it).",
                    source="task",
                )
            }
        )

    def execute(self, context: Any) -> Any:
        settings = run_settings(context)
        payload = self.payload or {}
        event = (payload.get("incident") or {}).get("event")
        if not approval.required(settings, event, payload.get("severity")):
            raise AirflowSkipException(
                f"no approval needed (approval_required: {settings.approval_required})"
            )
        self.subject, self.body = approval.request(payload, settings)
        send = settings.approval_default == "send"
        self.defaults = [self.APPROVE if send else self.REJECT]
        self.response_timeout = dt.timedelta(minutes=settings.approval_timeout_minutes)
        self.notifiers = [ApprovalWaitingNotice(settings, payload)]
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" in event:  # no answer and no default, or an invalid one: fails the task
            return super().execute_complete(context, event)
        self.validate_chosen_options(event["chosen_options"])  # before anything is kept
        self.validate_params_input(event.get("params_input") or {})
        settings = run_settings(context)
        decided = approval.verdict(
            settings,
            approved=list(event["chosen_options"]) == [self.APPROVE],
            by=(event.get("responded_by_user") or {}).get("name"),
            reason=(event.get("params_input") or {}).get("reason"),
            timed_out=bool(event.get("timedout")),
        )
        service.record_approval(settings, self.payload, decided)
        # the verdict is the task's XCom before ApprovalOperator completes: on Reject it
        # skips the webhook by raising (DownstreamTasksSkipped), so it returns nothing
        context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=decided)
        super().execute_complete(context, event)
        return decided


# -- permanent errors fail at once ----------------------------------------------------------------


def permanent_error(error: BaseException) -> bool:
    """An error no retry can mend: a missing connection, a destination outside the export
    root (or any export refusal), a webhook answer that breaks the contract, a bad setting
    or date. Transient ones (a held DuckDB lock, a webhook timeout or 5xx) are retried."""
    from retentionops.dates import DateError
    from retentionops.exports import ExportError
    from retentionops.playbook import PermanentWebhookError
    from retentionops.settings import SettingsError

    permanent = (
        connections.ConnectionMissingError,
        ExportError,
        PermanentWebhookError,
        SettingsError,
        DateError,
    )
    return isinstance(error, permanent)


@contextlib.contextmanager
def permanent_errors_fail_at_once() -> Iterator[None]:
    """Inside a task: a permanent error (:func:`permanent_error`) fails the task at once
    with its message (``AirflowFailException``: no retry, no five minutes of backoff);
    anything else keeps the task's retries."""
    try:
        yield
    except Exception as error:
        if permanent_error(error):
            raise AirflowFailException(str(error)) from None
        raise


# -- the settings of a run -----------------------------------------------------------------------

#: Airflow Variables that silence the playbook without a deploy (scheduled runs).
SILENCE_VARIABLES = {
    "silence_until": "retentionops_silence_until",
    "silence_reason": "retentionops_silence_reason",
}


def run_overrides(params: Any) -> dict[str, Any]:
    """Settings a run overrides: the silence Variables, then the run's Params (rollout mode,
    silence); unset ones keep the file's and environment's values."""
    from airflow.sdk import Variable

    overrides: dict[str, Any] = {}
    for key, variable in SILENCE_VARIABLES.items():
        try:
            value = Variable.get(variable, default=None)
        except Exception:  # no metadata database or secrets backend reachable: no Variable
            value = None
        if value:
            overrides[key] = value
    for key in ("rollout_mode", "silence_until", "silence_reason"):
        if (params or {}).get(key):
            overrides[key] = params[key]
    return overrides


# -- the DAG's door: one run request per task ----------------------------------------------------


def run_settings(context: Any) -> Settings:
    """The settings of the run a task belongs to: the file and environment, then the silence
    Variables, then the run's Params (``run_overrides``), read when the task runs."""
    return load_settings(**run_overrides(context.get("params")))


def run_request(context: Any) -> RunRequest:
    """The run a DAG task belongs to, built once from Airflow's context: the settings of
    the run (file, environment, the silence Variables, the run's Params), its date ``ds``,
    the run (``Run.of_dag``), how it delivers (when it started, ``dry_run``, ``resend``,
    ``allow_late_data``) and the ``export_destination`` Param (None: the settings')."""
    params = context.get("params") or {}
    started_at = run_started_at(context.get("dag_run"))
    return RunRequest(
        settings=run_settings(context),
        day=as_date(context["ds"]),
        run=Run.of_dag(context["run_id"], started_at),
        delivery=Delivery(
            started_at,
            dry_run=bool(params.get("dry_run")),
            resend=bool(params.get("resend")),
            allow_late_data=bool(params.get("allow_late_data")),
        ),
        destination=params.get("export_destination") or None,
    )


def current_request() -> RunRequest:
    """:func:`run_request` of the task running now (a TaskFlow task's door)."""
    from airflow.sdk import get_current_context

    return run_request(get_current_context())


# -- the run log of a DAG run -------------------------------------------------------------------


def _state_name(state: Any) -> str:
    return str(state).rsplit(".", 1)[-1].lower()


def failed_steps(states: dict[str, Any], own_task_id: str) -> list[str]:
    """The task ids that failed in a run (``ti.get_task_states``), besides the caller."""
    return sorted(
        task_id
        for task_id, state in states.items()
        if task_id != own_task_id and _state_name(state) == "failed"
    )


def run_started_at(dag_run: Any) -> Any:
    """When the run really began (``dags test`` sets start_date to the logical date)."""
    moments = [getattr(dag_run, name, None) for name in ("start_date", "queued_at", "run_after")]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


class OrdersFeedLate(AirflowFailException):
    """The run date's orders did not arrive within ``orders_wait_minutes``: the run fails
    red, saying how late the feed is, before detection reads a stale day."""


class OrdersFeedSensor(BaseSensorOperator):
    """``wait_for_orders``: waits (reschedule mode: no worker slot held, no DuckDB lock
    between pokes) until the orders feed reaches the run date (``data_freshness.status``
    ``fresh``, retentionops/freshness.py), then hands the freshness on as its XCom. When
    ``orders_wait_minutes`` pass first it fails with the feed's own words ("orders feed
    late: last order …") instead of Airflow's generic timeout. A short day (few orders)
    passes: it is held later (no incident event), not failed, since a holiday is short too.
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            mode="reschedule",
            poke_interval=min(300, max(settings.orders_wait_minutes * 60, 1)),
            timeout=settings.orders_wait_minutes * 60,
            **kwargs,
        )
        self._last_note: str | None = None

    def poke(self, context: Any) -> PokeReturnValue:
        settings = run_settings(context)
        data = service.data_freshness(settings, context["ds"])
        self._last_note = data["note"]
        if data["status"] == "fresh":
            return PokeReturnValue(is_done=True, xcom_value=data)
        if (context.get("params") or {}).get("allow_late_data"):
            self.log.warning("%s; the run goes on: allow_late_data", data["note"])
            return PokeReturnValue(is_done=True, xcom_value=data)
        self.log.info("%s; waiting", data["note"])
        return PokeReturnValue(is_done=False)

    def execute(self, context: Any) -> Any:
        # the wait is the settings' when the run starts, not when the DAG file was parsed
        settings = run_settings(context)
        self.timeout = settings.orders_wait_minutes * 60
        self.poke_interval = min(300, max(self.timeout, 1))
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            raise OrdersFeedLate(
                f"{self._last_note or 'orders feed late'}; waited "
                f"{self.timeout / 60:g} min (orders_wait_minutes): load the orders, then "
                "clear this run"
            ) from None


class RunFailed(AirflowFailException):
    """Raised after the run's failure is logged, so that the DAG run shows as failed."""


def record_task_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every task: write the failure before anything else can."""
    if isinstance(context.get("exception"), RunFailed):
        return  # the run log task logged the run itself before failing it
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    label = ti.task_id if map_index in (-1, None) else f"{ti.task_id}[{map_index}]"
    try:
        settings = load_settings()
        exception = context.get("exception")
        message = connections.redact(
            f"{type(exception).__name__}: {exception}", connections.known_secrets(settings)
        )
        outcome = RunOutcome(context["run_id"], context["ds"], "dag").fail(label, message)
        service.write_run_log(settings, outcome)
    except Exception:  # the callback must never hide the task's own error
        import logging

        logging.getLogger(__name__).exception(
            "could not record the failure of %s in ops_runs_log", label
        )
