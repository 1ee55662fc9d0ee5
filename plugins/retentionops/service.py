"""The design's operations (sections 8.2, 8.3 and 15), each written once: the one home.

The DAG's tasks, the MCP tools and the CLI commands are thin doors to these functions; none
of them repeats what happens here. Each operation takes the settings and plain values and
returns plain, JSON-friendly values.

Who runs an operation is a :class:`Run`. A standalone run (the CLI, the MCP server) leaves
its own ``ops_runs_log`` row, written here whether the operation succeeds or fails, with its
``interface``. A task of a DAG run (``Run.of_dag``) leaves the row to the DAG's
``write_run_log`` task (and the tasks' failure callback), which calls :func:`write_run_log`
with everything the run did. Errors a person can act on are ``UserError`` subclasses with a
message that says what to do and carries no secret.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from retentionops import actions, detection, pack, runlog
from retentionops.connections import ConnectionMissingError, known_secrets, redact
from retentionops.detection import DETECTION_STEPS, as_date
from retentionops.errors import ServiceError, UserError
from retentionops.files import write_json_atomic
from retentionops.runlog import RunOutcome
from retentionops.settings import Settings
from retentionops.sql import RETAINED_TABLES
from retentionops.vocabulary import BRIEF_FORMATS, INTERFACES, ROLLOUT_MODES, TIERS
from retentionops.warehouse import open_warehouse

if TYPE_CHECKING:
    from retentionops.orders import LoadResult

log = logging.getLogger(__name__)

#: The file a run keeps of the body it posted (or would have posted) to the webhook.
PLAYBOOK_REQUEST_FILE = "playbook_request.json"


# -- who runs an operation ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """The run an operation belongs to: its id, its interface and when it started."""

    run_id: str
    interface: str
    started_at: dt.datetime
    standalone: bool = True

    @classmethod
    def start(cls, interface: str, operation: str, run_date: Any) -> Run:
        """A new standalone run (CLI, MCP) that logs its own row."""
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}")
        day = as_date(run_date) if run_date is not None else "no-date"
        run_id = f"{interface}__{operation}__{day}__{uuid.uuid4().hex[:8]}"
        return cls(run_id, interface, dt.datetime.now(dt.UTC))

    @classmethod
    def of_dag(cls, run_id: str, started_at: dt.datetime | None = None) -> Run:
        """A task of a DAG run: the run's ``write_run_log`` task logs it."""
        return cls(run_id, "dag", started_at or dt.datetime.now(dt.UTC), standalone=False)


@contextmanager
def _recorded(settings: Settings, run: Run, operation: str, run_date: Any) -> Iterator[RunOutcome]:
    """Run an operation and, for a standalone run, log what happened (success or failure)."""
    outcome = RunOutcome(run.run_id, run_date, run.interface, run.started_at)
    try:
        yield outcome
    except BaseException as error:
        if run.standalone and not isinstance(error, KeyboardInterrupt):
            if not outcome.failed_steps:  # the operation did not record its own cause(s)
                message = redact(f"{type(error).__name__}: {error}", known_secrets(settings))
                outcome.fail(operation, message)
            _write_quietly(settings, outcome)
        raise
    if run.standalone:
        write_run_log(settings, outcome)


def _write_quietly(settings: Settings, outcome: RunOutcome) -> None:
    """Log a failed run without letting a second error hide the first."""
    try:
        write_run_log(settings, outcome)
    except Exception:
        log.exception("could not record the failed run %s in ops_runs_log", outcome.run_id)


def _with_rollout(settings: Settings, rollout_mode: str | None) -> Settings:
    if rollout_mode is None:
        return settings
    if rollout_mode not in ROLLOUT_MODES:
        raise ServiceError(
            f"rollout mode '{rollout_mode}' is not one of {', '.join(ROLLOUT_MODES)}"
        )
    return dataclasses.replace(settings, rollout_mode=rollout_mode)


# -- housekeeping -----------------------------------------------------------------------------


def create_tables(settings: Settings) -> None:
    """Create every table that does not exist yet (idempotent DDL)."""
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()


def apply_retention(settings: Settings, run_date: Any) -> dict[str, int]:
    """Delete partitions older than ``retention_days`` before the run date (design 6.1)."""
    cutoff = as_date(run_date) - dt.timedelta(days=settings.retention_days)
    with open_warehouse(settings) as warehouse:
        deleted = {name: warehouse.delete_before(name, cutoff) for name in RETAINED_TABLES}
    log.info("retention: removed rows dated before %s: %s", cutoff, deleted)
    return deleted


def load_orders(settings: Settings, result: LoadResult, *, interface: str = "cli") -> int:
    """Replace the orders with a cleaned file's (``orders.LoadResult``); return rows written."""
    from retentionops.orders import require_one_row_per_order

    run = Run.start(interface, "load_orders", None)
    with _recorded(settings, run, "load_orders", None), open_warehouse(settings) as warehouse:
        require_one_row_per_order(result.orders)
        return warehouse.replace_orders(result.orders)


# -- detection --------------------------------------------------------------------------------


def run_sql_step(settings: Settings, step_name: str, run_date: Any) -> int:
    """Run one SQL step of the daily run (SQL1-SQL5, the queue) for the date (DAG, DuckDB)."""
    steps = {step.name: step for step in (*DETECTION_STEPS, actions.QUEUE_STEP)}
    with open_warehouse(settings) as warehouse:
        written = detection.run_step(warehouse, settings, steps[step_name], as_date(run_date))
    log.info("%s: %d row(s) written for %s", step_name, written, run_date)
    return written


def verify_detection(settings: Settings, run_date: Any) -> None:
    """``detection_mode: external``: fail clearly unless SQL1-SQL5 hold rows for the date."""
    with open_warehouse(settings, read_only=True) as warehouse:
        detection.verify_detection(warehouse, settings, as_date(run_date))


def detect(
    settings: Settings, run_date: Any, *, run: Run | None = None, interface: str = "cli"
) -> dict[str, Any]:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision."""
    day = as_date(run_date)
    run = run or Run.start(interface, "detect", day)
    with _recorded(settings, run, "detect", day) as outcome, open_warehouse(settings) as warehouse:
        outcome.decision = detection.run_detection(warehouse, settings, day)
    return outcome.decision


def get_alert_decision(settings: Settings, run_date: Any) -> dict[str, Any]:
    """The SQL5 decision for the date: the stored row, else computed from the orders.

    ``source`` says which: ``stored`` (detection ran for the date) or ``computed`` (the
    same SQL5 query, read-only, on the orders up to the date).
    """
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        try:
            return {**detection.stored_alert_decision(warehouse, settings, day), "source": "stored"}
        except UserError:
            rows = detection.alert_series(warehouse, settings, day, day)
    if not rows:
        raise ServiceError(f"no orders on or before {day}: there is nothing to decide")
    return {**rows[0], "source": "computed"}


def alert_series(settings: Settings, from_date: Any, to_date: Any) -> list[dict[str, Any]]:
    """The SQL5 decision of every date of a range, in one set-based query (read-only)."""
    with open_warehouse(settings, read_only=True) as warehouse:
        return detection.alert_series(warehouse, settings, as_date(from_date), as_date(to_date))


# -- the action pack ------------------------------------------------------------------------


def get_operational_context(settings: Settings, run_date: Any) -> actions.Context:
    """Status distribution, risk x status, tier counts, empty-tier reasons and the playbook."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        return actions.get_operational_context(warehouse, settings, day)


def build_priority_queue(
    settings: Settings, run_date: Any, *, run: Run | None = None, interface: str = "cli"
) -> dict[str, Any]:
    """Run detection for the date (or verify it, external mode), then write its queue."""
    day = as_date(run_date)
    run = run or Run.start(interface, "build_priority_queue", day)
    with (
        _recorded(settings, run, "build_priority_queue", day) as outcome,
        open_warehouse(settings) as warehouse,
    ):
        outcome.decision = detection.run_detection(warehouse, settings, day)
        outcome.counts = actions.build_priority_queue(warehouse, settings, day)
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "tiers": outcome.counts,
        "decision": outcome.decision,
    }


def generate_brief(
    settings: Settings,
    run_date: Any,
    fmt: str = "markdown",
    *,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Write the brief files and chart of the date; return the brief in one format.

    Also returns the playbook plan and the Slack payload (what ``trigger_playbook`` posts).
    """
    from retentionops.brief import render_brief

    day = as_date(run_date)
    if fmt not in BRIEF_FORMATS:
        raise ServiceError(f"unknown brief format '{fmt}'; use {', '.join(BRIEF_FORMATS)}")
    run = run or Run.start(interface, "generate_brief", day)
    with _recorded(settings, run, "generate_brief", day) as outcome:
        with open_warehouse(settings) as warehouse:
            context = actions.get_operational_context(warehouse, settings, day)
            files = pack.render_brief_files(warehouse, settings, context, run_id=run.run_id)
        outcome.decision = context["decision"]
        outcome.counts = {tier: info["count"] for tier, info in context["tiers"].items()}
        outcome.brief_link = files["markdown"]
    links = pack.planned_export_links(settings, day, context["plan"]["tiers"])
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "format": fmt,
        "brief": render_brief(
            context, fmt, links=links, chart_link=files["chart"], run_id=run.run_id
        ),
        "slack": render_brief(
            context, "slack", links=links, chart_link=files["chart"], run_id=run.run_id
        ),
        "files": files,
        "plan": context["plan"],
        "tiers": context["plan"]["tiers"],
    }


def export_audience(
    settings: Settings,
    run_date: Any,
    tier: str,
    *,
    destination: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Export one tier's ranked audience (holdout customers excluded); return its link."""
    day = as_date(run_date)
    if tier not in TIERS:
        raise ServiceError(f"unknown tier '{tier}'; use one of {', '.join(TIERS)}")
    if limit is not None and limit < 1:
        raise ServiceError("limit must be a positive number of rows")
    from retentionops import exports

    kind = kind or settings.export_kind
    run = run or Run.start(interface, "export_audience", day)
    with _recorded(settings, run, f"export_audience[{tier}]", day) as outcome:
        with open_warehouse(settings, read_only=True) as warehouse:
            rows = actions.fetch_audience(warehouse, settings, day, tier, limit)
        written = exports.export_audience(
            rows,
            destination or pack.export_destination(settings, day),
            day,
            tier,
            kind=kind,
            **pack.export_options(settings, kind),
        )
        result = {**dataclasses.asdict(written), "link": pack.display_link(written.link)}
        outcome.exports = [result]
    return {"run_id": run.run_id, **result}


# -- the playbook -----------------------------------------------------------------------------


def prepare_playbook(
    settings: Settings,
    run_date: Any,
    *,
    run: Run,
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
) -> dict[str, Any]:
    """The webhook body of the date's playbook, kept as ``playbook_request.json``."""
    from retentionops.playbook import build_payload

    context = get_operational_context(settings, run_date)
    payload = build_payload(
        run_id=run.run_id,
        context=context,
        slack_brief=slack_brief,
        exports=exports,
        brief_link=brief_link,
    )
    write_json_atomic(pack.run_dir(settings, run_date) / PLAYBOOK_REQUEST_FILE, payload)
    return payload


def deliver_playbook(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    """POST the body to the Make webhook, retrying transient faults; return its answer."""
    from retentionops.operators import PlaybookHook

    hook = PlaybookHook(method="POST", http_conn_id=settings.make_conn_id)
    return hook.post_playbook(payload, settings)


def post_fallback(settings: Settings, slack_brief: dict[str, Any], reason: str) -> dict[str, Any]:
    """Post the brief straight to Slack when the playbook failed; say why it is a fallback.

    The Slack provider's webhook hook sends it once (never retried: a repeat would post
    twice). A missing Slack connection is a clear error; the brief and exports stay on disk.
    """
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from retentionops.connections import get_connection, mask

    secrets = known_secrets(settings)
    get_connection(settings.slack_conn_id)
    mask(secrets)
    notice = (
        f":warning: The retention playbook webhook failed ({reason}); delivering the brief "
        "directly. No ticket was created: open one by hand."
    )
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": notice[:3000]}}]
    blocks += slack_brief.get("blocks", [])[:49]
    try:
        SlackWebhookHook(slack_webhook_conn_id=settings.slack_conn_id).send(
            text=f"{notice}\n{slack_brief['text']}"[:40000], blocks=blocks
        )
    except Exception as error:  # the SDK's message may embed the webhook URL
        raise ServiceError("Slack fallback failed: " + redact(str(error), secrets)) from None
    return {"slack_posted": True}


def trigger_playbook(
    settings: Settings,
    run_date: Any,
    *,
    rollout_mode: str | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Export the tiers of the alert, write the brief, send the playbook, log the ticket.

    Refuses a date without an alert: there is no playbook for it. When the webhook fails
    for good, the brief goes to Slack directly (if a Slack connection exists) and the run
    is logged as failed with every cause.
    """
    settings = _with_rollout(settings, rollout_mode)
    day = as_date(run_date)
    context = get_operational_context(settings, day)
    plan = context["plan"]
    if not plan["alerting"]:
        decision = context["decision"]
        raise ServiceError(
            f"no alert on {day} (severity {decision['severity']}, alert_flag "
            f"{str(decision['alert_flag']).lower()}): there is no playbook to trigger"
        )
    run = run or Run.start(interface, "trigger_playbook", day)
    with _recorded(settings, run, "trigger_playbook", day) as outcome:
        outcome.decision = context["decision"]
        outcome.counts = {tier: info["count"] for tier, info in context["tiers"].items()}
        part = dataclasses.replace(run, standalone=False)  # one row for the whole run
        outcome.exports = [export_audience(settings, day, tier, run=part) for tier in plan["tiers"]]
        brief = generate_brief(settings, day, "slack", run=part)
        outcome.brief_link = brief["files"]["markdown"]
        payload = prepare_playbook(
            settings,
            day,
            run=run,
            slack_brief=brief["slack"],
            exports=outcome.exports,
            brief_link=outcome.brief_link,
        )
        try:
            outcome.answer = deliver_playbook(settings, payload)
        except UserError as error:
            outcome.playbook_failed = True
            outcome.fail("trigger_playbook", redact(str(error), known_secrets(settings)))
            try:
                outcome.fallback_posted = bool(
                    post_fallback(settings, brief["slack"], str(error))["slack_posted"]
                )
            except ConnectionMissingError:
                pass  # no Slack fallback configured: the brief and exports stay on disk
            except UserError as fallback_error:
                outcome.fail("slack_fallback", str(fallback_error))
            raise
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "severity": context["decision"]["severity"],
        "rollout_mode": plan["rollout_mode"],
        "ticket_id": outcome.answer.get("ticket_id"),
        "slack_message_ts": outcome.answer.get("slack_message_ts"),
        "exports": outcome.exports,
    }


# -- the run log ----------------------------------------------------------------------------


def write_run_log(settings: Settings, outcome: RunOutcome) -> dict[str, Any]:
    """Record a run in ops_runs_log (one row per run id) from what happened in it."""
    with open_warehouse(settings) as warehouse:
        if outcome.failed_steps and not outcome.errors:
            stored = runlog.read(warehouse, outcome.run_id) or {}
            if not stored.get("error_message"):  # no failure callback recorded the cause
                outcome.errors.append(f"step(s) failed: {', '.join(outcome.failed_steps)}")
        return runlog.write(warehouse, settings, runlog.summarize(outcome))


def run_log_rows(settings: Settings, run_date: Any) -> list[dict[str, Any]]:
    """Every logged run of a date, newest first."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        rows = runlog.read_for_date(warehouse, day)
    if not rows:
        raise ServiceError(f"no run logged for {day}: run the DAG (or `retentionops queue`) first")
    return rows


# -- measurement and health (design 8.3, 15) --------------------------------------------------


def get_recommended_action(settings: Settings, customer_id: str, run_date: Any) -> dict[str, Any]:
    """One customer's tier, recommended action and reason at a date, or why it has none."""
    from retentionops import impact

    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        actions.require_queue(warehouse, day)
        return impact.recommended_action(warehouse, settings, customer_id, day)


def measure_impact(settings: Settings, run_id: str, horizon_days: int = 30) -> dict[str, Any]:
    """Treated vs holdout repurchase within the horizon, per tier a run exported."""
    from retentionops import impact

    with open_warehouse(settings, read_only=True) as warehouse:
        return impact.measure_impact(warehouse, settings, run_id, horizon_days)


def get_health(settings: Settings, from_date: Any, to_date: Any) -> dict[str, Any]:
    """Run, webhook and export health and alert frequency from ops_runs_log (design 15)."""
    from retentionops import health

    start, end = as_date(from_date), as_date(to_date)
    if start > end:
        raise ServiceError(f"from {start} is after to {end}")
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables(("ops_runs_log", "ops_health_daily"))
        return health.get_health(warehouse, start, end)
