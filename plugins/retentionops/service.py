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

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from retentionops import actions, approval, detection, freshness, pack, progress, runlog
from retentionops.connections import ConnectionMissingError, known_secrets, redact
from retentionops.detection import as_date
from retentionops.errors import ServiceError, UserError
from retentionops.files import write_json_atomic
from retentionops.playbook import Delivery
from retentionops.runlog import RunOutcome
from retentionops.settings import Settings
from retentionops.vocabulary import BRIEF_FORMATS, INTERFACES, ROLLOUT_MODES
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
    """Run an operation and, for a standalone run, log what happened: success, failure, or
    a refusal (bad input or a missing precondition, before it did anything:
    ``runlog.refusal``), which health counts apart from the runs that ran."""
    outcome = RunOutcome(run.run_id, run_date, run.interface, run.started_at)
    try:
        yield outcome
    except BaseException as error:
        if run.standalone and not isinstance(error, KeyboardInterrupt):
            if not outcome.failed_steps:  # the operation did not record its own cause(s)
                message = redact(f"{type(error).__name__}: {error}", known_secrets(settings))
                if runlog.refusal(error, outcome):
                    outcome.refuse(operation, message)
                else:
                    outcome.fail(operation, message)
            _write_quietly(settings, outcome)
        raise
    if run.standalone:
        write_run_log(settings, outcome)


def _write_quietly(settings: Settings, outcome: RunOutcome) -> None:
    """Log a failed or refused run without letting a second error hide the first."""
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


def apply_retention(settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Remove each date's detection and queue rows ``retention_days`` after they were
    written (design 6.1); the audit log and the alert history are kept.

    Counting from the write time (the date's run marker), not from the date itself, a
    backfill of an old date survives as long as a fresh run, and the order in which dates
    run never changes what is kept.
    """
    from retentionops.sql import RETAINED_TABLES
    from retentionops.warehouse import (
        retention_cutoff,
        retention_parameters,
        retention_statements,
    )

    cutoff = retention_cutoff(settings, now or dt.datetime.now(dt.UTC))
    due_partitions, old_markers = retention_statements(settings)
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()
        with warehouse.atomic():
            # the newest date that can go bounds the query of the partitions due (BigQuery
            # prunes on it); the rule is per date, so whole partitions go
            [due] = warehouse.query("markers/read_retention_due", {"cutoff_ts": cutoff})
            params = retention_parameters(cutoff, due["latest_due"])
            partitions = warehouse.fetch(due_partitions, params)
            deleted = dict.fromkeys(RETAINED_TABLES, 0)
            for name in RETAINED_TABLES:
                mine = [p for p in partitions if p["table_name"] == name]
                warehouse.drop_partitions(name, sorted(p["partition_date"] for p in mine))
                deleted[name] = sum(int(p["row_count"]) for p in mine)
            # markers last: a run killed before this point finds the same dates due again
            deleted["run_markers"] = warehouse.execute_sql(old_markers, params)
    log.info("retention: removed rows written before %s: %s", cutoff.isoformat(), deleted)
    return deleted


def load_orders(
    settings: Settings,
    result: LoadResult,
    *,
    allow_empty: bool = False,
    allow_drops: bool = False,
    interface: str = "cli",
) -> dict[str, Any]:
    """Replace the orders with a cleaned file's (``orders.LoadResult``); say what changed.

    Refused, with the counts and nothing touched: a load that would leave no order (unless
    ``allow_empty``), or that dropped more than ``load_max_dropped_pct`` of the file's rows
    (unless ``allow_drops``); implausible orders follow ``implausible_orders``. Orders equal
    to the stored ones change nothing; otherwise only the derived rows of the dates the
    change reaches are deleted.
    """
    from retentionops.orders import check_load, require_one_row_per_order, screen_orders

    result = screen_orders(
        result,
        policy=settings.implausible_orders,
        min_date=as_date(settings.orders_min_date),
        max_date=dt.datetime.now(dt.UTC).date(),
    )
    check_load(
        result,
        max_dropped_pct=settings.load_max_dropped_pct,
        allow_empty=allow_empty,
        allow_drops=allow_drops,
    )
    run = Run.start(interface, "load_orders", None)
    with _recorded(settings, run, "load_orders", None), open_warehouse(settings) as warehouse:
        require_one_row_per_order(result.orders)
        changed_from = warehouse.replace_orders(result.orders)
    return {
        "orders_loaded": len(result.orders),
        "changed_from": changed_from.isoformat() if changed_from else None,
        "unchanged": changed_from is None,
        "result": result,
    }


# -- detection --------------------------------------------------------------------------------


def data_warnings(warehouse: Any, settings: Settings, day: dt.date) -> list[str]:
    """What a person should know about a date outside the order history (empty: nothing)."""
    [history] = warehouse.query("maintenance/orders_range", {})
    first, last = history["first_order_date"], history["last_order_date"]
    if last is None:
        return ["the warehouse holds no orders: load them first (`retentionops load-orders`)"]
    if day < first:
        return [f"{day} is before the first order ({first}): the orders cover {first}..{last}"]
    if day > last:
        gap = (day - last).days
        note = (
            f"the orders end on {last}, {gap} day(s) before {day}: every customer ages "
            "without new orders"
        )
        if gap > settings.at_risk_days:
            note += "; by now every customer is INACTIVE. Is the order history up to date?"
        return [note]
    return []


def detect(
    settings: Settings, run_date: Any, *, run: Run | None = None, interface: str = "cli"
) -> dict[str, Any]:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision.

    All five tables and the run marker of the date are written all or nothing. The date's
    queue (and with it its brief and exports) stays when the rows come out identical;
    ``downstream`` says whether it was kept or invalidated (``detection.detect_date``).
    """
    day = as_date(run_date)
    run = run or Run.start(interface, "detect", day)
    with _recorded(settings, run, "detect", day) as outcome, open_warehouse(settings) as warehouse:
        detected = detection.detect_date(warehouse, settings, day)
        outcome.decision = {
            **detected.decision,
            "data_freshness": freshness.orders_freshness(warehouse, settings, day),
        }
        warnings = data_warnings(warehouse, settings, day)
    answer = {**outcome.decision, "downstream": detected.downstream}
    return {**answer, "warnings": warnings} if warnings else answer


def check_summaries(settings: Settings, run_date: Any) -> bool:
    """After SQL1 of the date (the BigQuery DAG's task between SQL1 and SQL2-SQL5): rebuild
    the orders' summaries if they disagree with the orders (``detection.ensure_summaries``,
    which a DuckDB run calls itself); True if they were rebuilt."""
    with open_warehouse(settings) as warehouse:
        return detection.ensure_summaries(warehouse, as_date(run_date))


def alert_history_from(settings: Settings, run_date: Any) -> str | None:
    """The first date the run's SQL5 job computes, as its ``@from_date`` (ISO), from the
    stored alert history: the day after the stored coverage, the whole history when none is
    stored, None when the history already covers the date (``detection.history_start``).

    The BigQuery DAG's branch ``history_from_date`` picks SQL5's job with it and hands it
    to the range job (XCom ``from_date``), so a daily run computes its own date only, as a
    DuckDB run does (``detection.extend_history``, ``detection.alert_step``)."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        start = detection.history_from_date(warehouse, settings, day)
    return start.isoformat() if start is not None else None


def last_delivered_run(settings: Settings, run_date: Any) -> str | None:
    """The last run before the date whose playbook reached people (ISO; None: none), which
    the date's queue compares itself with: the BigQuery DAG reads it before the queue's
    job and passes it as ``@previous_run_date`` (``actions.last_delivered_run``)."""
    with open_warehouse(settings, read_only=True) as warehouse:
        day = actions.last_delivered_run(warehouse, as_date(run_date))
    return day.isoformat() if day is not None else None


def get_alert_decision(settings: Settings, run_date: Any) -> dict[str, Any]:
    """The SQL5 decision for the date: the stored row, else computed from the orders.

    ``source`` says which: ``stored`` (detection is complete for the date) or ``computed``
    (the same SQL5 query, read-only, on the orders up to the date). ``warnings`` appear
    when the date lies outside the order history.
    """
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        warnings = data_warnings(warehouse, settings, day)
        try:
            decision = {
                **detection.stored_alert_decision(warehouse, settings, day),
                "source": "stored",
            }
        except UserError:
            rows = detection.alert_series(warehouse, settings, day, day)
            if not rows:
                raise ServiceError(
                    f"no orders on or before {day}: there is nothing to decide"
                    + (f" ({warnings[0]})" if warnings else "")
                ) from None
            decision = {**rows[0], "source": "computed"}
        decision["data_freshness"] = freshness.orders_freshness(warehouse, settings, day)
    return {**decision, "warnings": warnings} if warnings else decision


def data_freshness(settings: Settings, run_date: Any) -> freshness.Freshness:
    """Can a run for the date trust the orders (late, missing, short)? The DAG's
    ``wait_for_orders`` asks this before detection; every decision carries it."""
    with open_warehouse(settings, read_only=True) as warehouse:
        return freshness.orders_freshness(warehouse, settings, as_date(run_date))


def alert_series(settings: Settings, from_date: Any, to_date: Any) -> list[dict[str, Any]]:
    """The SQL5 decision of every date of a range, in one set-based query (read-only)."""
    with open_warehouse(settings, read_only=True) as warehouse:
        return detection.alert_series(warehouse, settings, as_date(from_date), as_date(to_date))


# -- the action pack ------------------------------------------------------------------------


def get_operational_context(
    settings: Settings, run_date: Any, delivery: Delivery | None = None
) -> actions.Context:
    """Status distribution, risk x status, tier counts, empty-tier reasons, the incident of
    the day and the playbook (whether this run sends it, and why not)."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        return actions.get_operational_context(warehouse, settings, day, delivery)


def _run_context(
    settings: Settings,
    day: dt.date,
    delivery: Delivery | None,
    context: dict[str, Any] | None,
    warehouse: Any = None,
) -> dict[str, Any]:
    """The run's operational context, read once per run: ``context`` when the caller has
    it (a DAG run passes what its get_operational_context task computed, from XCom; the
    CLI/MCP ``trigger_playbook`` what it computed first), else read now (the CLI and MCP
    ``brief`` and ``generate_brief``). It is plain JSON either way (dates as ISO text)."""
    if context is not None:
        if context.get("run_date") != day.isoformat():
            raise ServiceError(
                f"the operational context given is of {context.get('run_date')}, not {day}"
            )
        return context
    if warehouse is None:
        return get_operational_context(settings, day, delivery)
    return actions.get_operational_context(warehouse, settings, day, delivery)


def build_priority_queue(
    settings: Settings,
    run_date: Any,
    *,
    detect: bool = True,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Write the date's queue, after running (or verifying) its detection unless ``detect``
    is False (the DAG, whose detection task ran just before); the queue and its marker are
    written all or nothing."""
    day = as_date(run_date)
    run = run or Run.start(interface, "build_priority_queue", day)
    with (
        _recorded(settings, run, "build_priority_queue", day) as outcome,
        open_warehouse(settings) as warehouse,
    ):
        if detect:
            decision = detection.run_detection(warehouse, settings, day)
        else:
            decision = detection.stored_alert_decision(warehouse, settings, day)
        outcome.decision = {
            **decision,
            "data_freshness": freshness.orders_freshness(warehouse, settings, day),
        }
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
    exports: list[dict[str, Any]] | None = None,
    delivery: Delivery | None = None,
    run: Run | None = None,
    interface: str = "cli",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the brief files and chart of the run; return the brief in one format.

    ``exports`` are the audiences this run exported (their links go into the brief); a
    brief without them names the tiers the playbook exports, without links. Also returns
    the playbook plan and the Slack payload (what ``trigger_playbook`` posts). ``context``
    is the run's operational context if the caller has it (read here otherwise).
    """
    from retentionops.brief import render_brief

    day = as_date(run_date)
    if fmt not in BRIEF_FORMATS:
        raise ServiceError(f"unknown brief format '{fmt}'; use {', '.join(BRIEF_FORMATS)}")
    run = run or Run.start(interface, "generate_brief", day)
    with _recorded(settings, run, "generate_brief", day) as outcome:
        with open_warehouse(settings) as warehouse:
            context = _run_context(settings, day, delivery, context, warehouse)
            # what the exports did: the rows contacted, the holdout as they drew it
            context = actions.with_exports(context, exports)
            files, links = pack.render_brief_files(
                warehouse, settings, context, run_id=run.run_id, exports=exports
            )
        outcome.take_context(context)
        outcome.brief_link = files["markdown"]
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


def planned_tiers(
    settings: Settings,
    run_date: Any,
    delivery: Delivery | None = None,
    context: dict[str, Any] | None = None,
) -> list:
    """The tiers the date's playbook exports (none without an alert event), from the run's
    operational context (read here when none is given)."""
    context = _run_context(settings, as_date(run_date), delivery, context)
    return list(context["plan"]["tiers"])


def export_audiences(
    settings: Settings,
    run_date: Any,
    tiers: list[str],
    *,
    destination: str | None = None,
    destinations: list[str] | None = None,
    limit: int | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> list[dict[str, Any]]:
    """Export the run's audience of each tier: record who is exported (the incidents'
    holdouts, drawn first when the date belongs to an incident, the contact cooldown and
    export_mode applied), write each tier's local CSV in the run's own folder,
    then upload it (``export_destinations``: gcs, gsheet); a failed upload keeps the local
    CSV as the link (``status: fallback_local``, the error kept). ``destination`` (a folder
    in export_root or a gs:// prefix) overrides where the files go, still scoped to the run.

    The tiers are recorded and read back together (``actions.record_audiences``): the
    warehouse reads the queue once per run, not once per tier.
    """
    day = as_date(run_date)
    try:
        tiers = actions.named_tiers(tiers, "export")
    except ValueError as error:
        raise ServiceError(str(error)) from None
    if limit is not None and limit < 1:
        raise ServiceError("limit must be a positive number of rows")
    from retentionops import exports, holdouts

    run = run or Run.start(interface, "export_audience", day)
    with _recorded(settings, run, f"export_audience[{'+'.join(tiers)}]", day) as outcome:
        target = pack.export_target(settings, day, run.run_id, destination, destinations)
        with open_warehouse(settings) as warehouse:
            audiences = actions.record_audiences(warehouse, settings, day, tiers, run.run_id, limit)
            # the holdouts as the record left them (an incident draws at its first export)
            held = holdouts.summary(warehouse, settings, day)
        results = []
        for tier in tiers:
            written = exports.export_tier(audiences[tier], day, tier, **target)
            results.append(
                {
                    **dataclasses.asdict(written),
                    "link": pack.display_link(written.link),
                    "local_link": pack.display_link(written.local_link or written.link),
                    # the tier's customers held out that day: not in the file
                    "held_out": held["tiers"][tier]["held_out"],
                    "holdout": held,
                }
            )
        outcome.exports = results
    return [{"run_id": run.run_id, **result} for result in results]


def export_audience(settings: Settings, run_date: Any, tier: str, **options: Any) -> dict[str, Any]:
    """``export_audiences`` of one tier (the CLI's and the MCP tool's unit)."""
    [result] = export_audiences(settings, run_date, [tier], **options)
    return result


# -- the playbook -----------------------------------------------------------------------------


def prepare_playbook(
    settings: Settings,
    run_date: Any,
    *,
    run: Run,
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
    delivery: Delivery | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The webhook body of the date's incident event, kept as ``playbook_request.json``
    whether or not this run sends it: ``{"payload", "send", "reason"}``.

    ``context`` is the run's operational context if the caller has it (read here
    otherwise). Whether the event is sent is settled again here, the last step before the
    webhook, against the delivery ledger and the settings as they are now: an event
    delivered since the context was computed (a task cleared and run again after the
    delivery) is not sent twice.

    An event waiting for a person's approval (``approval.pending``) is not kept in the
    ledger yet: :func:`record_approval` keeps it once approved, so nothing delivers it as
    owed before then. One whose approver a door named goes out with a first line saying
    who approved it (``approval.approved_payload``).
    """
    from retentionops import incidents
    from retentionops.playbook import build_payload

    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        context = _run_context(settings, day, delivery, context, warehouse)
        plan = actions.settle_delivery(
            warehouse, settings, day, context["plan"], delivery, context["note"]
        )
        context = {**context, "plan": plan}
        thread = incidents.incident_thread(warehouse, plan["incident_id"], plan["rollout_mode"])
    payload = build_payload(
        run_id=run.run_id,
        context=actions.with_exports(context, exports),  # contacted, held out: as exported
        slack_brief=slack_brief,
        exports=exports,
        brief_link=brief_link,
        settings=settings,
        thread=thread,
        delivery=delivery,
    )
    approver = (plan.get("approval") or {}).get("approved_by")
    if plan["send"] and approver:
        payload = approval.approved_payload(payload, named_approval(settings, approver))
    write_json_atomic(pack.run_dir(settings, run_date, run.run_id) / PLAYBOOK_REQUEST_FILE, payload)
    if approval.pending(plan):  # kept in the ledger once a person approves it
        log.info("playbook: the %s of %s waits for approval", plan["event"], day)
    elif plan["send"]:  # kept in the ledger before anything is posted: owed until delivered
        from retentionops import ledger

        with open_warehouse(settings) as warehouse:
            ledger.record(warehouse, settings, payload)
    else:  # the task log says why nothing goes out (the run log row too)
        log.info("playbook: nothing sent for %s: %s", day, plan["reason"])
    return {"payload": payload, "send": plan["send"], "reason": plan["reason"]}


def named_approval(settings: Settings, approver: str) -> approval.Verdict:
    """The verdict of an approval a door was given (``--approved-by``, ``approved_by``)."""
    return approval.verdict(settings, approved=True, by=approver)


def record_approval(
    settings: Settings, payload: dict[str, Any], verdict: approval.Verdict
) -> approval.Verdict:
    """What came of an event's approval in the DAG (``approve_playbook``: a person's answer,
    or the default after ``approval_timeout_minutes``). Approved, the event is kept in the
    ledger with its body, whose first line says who approved it (owed until delivered, as
    :func:`prepare_playbook` keeps an event that needs no approval); withheld, nothing is
    kept: nothing owes it, and a re-run of the date asks again."""
    from retentionops import ledger

    if verdict["approved"]:
        with open_warehouse(settings) as warehouse:
            ledger.record(warehouse, settings, approval.approved_payload(payload, verdict))
    log.info("playbook: %s", verdict["note"])
    return verdict


class EventNotSent(ServiceError):
    """The ledger did not let this run send the event (another run holds it, or it was
    delivered before): the message says why. Nothing was posted."""


class NothingToDeliver(ServiceError):
    """A date without an event of its own, and nothing owed from earlier ones."""


class ApprovalRequired(ServiceError):
    """The day's event waits for a person's approval and no approver was named: nothing
    was done (the message says how to give it)."""


class EventsOwed(ServiceError):
    """Earlier events of the incident are still owed (the receiver was down): today's is
    kept in the ledger and goes out after them, never before. Nothing new was posted."""


#: The note a delivery carries when the attempt before it had no answer in time.
UNKNOWN_RETRIED = (
    "outcome unknown on the last attempt (no answer in time): re-sent with the same key"
)

#: ``post(payload, failures)``: POST one body with the retry policy, return the answer;
#: ``failures`` collects the errors of the attempts it retried.
Post = Callable[[dict[str, Any], list[BaseException]], dict[str, Any]]


def send_event(
    settings: Settings,
    payload: dict[str, Any],
    run_id: str,
    post: Post,
    *,
    resend: bool = False,
) -> dict[str, Any]:
    """Deliver one incident event through the ledger, the one way every door sends: claim
    it (``ledger.claim``), POST it, then record the answer: the receipt (``deliveries``)
    and the ledger's ``delivered`` in one transaction. Returns the receiver's answer (with
    a ``note`` when the attempt before had no answer in time).

    Raises :class:`EventNotSent` when the claim is refused, and the webhook's error when
    the POST failed, after the ledger says why: ``pending`` (down, unreachable, 5xx: owed,
    a later run delivers it in order), ``unknown`` (a timeout after sending: the receiver
    may have acted; :class:`~retentionops.playbook.WebhookOutcomeUnknown`, and the next
    attempt re-sends with the same Idempotency-Key) or ``failed`` (refused for good). A
    process killed after the POST leaves its claim to expire (``delivery_lease_seconds``).
    """
    from retentionops import incidents, ledger
    from retentionops.playbook import (
        PermanentWebhookError,
        WebhookError,
        WebhookOutcomeUnknown,
        with_thread,
    )

    with open_warehouse(settings) as warehouse, warehouse.atomic():
        held = ledger.claim(warehouse, settings, payload, run_id, resend=resend)
        incident = payload["incident"]
        thread = incidents.incident_thread(
            warehouse, incident["incident_id"], payload["rollout_mode"]
        )
    if not held.held:
        raise EventNotSent(f"not sent: {held.refusal()}")
    payload = with_thread(payload, thread)  # an open delivered since (late) made the ticket
    if held.after_unknown_outcome:
        log.warning("%s: %s", held.event.summary(), UNKNOWN_RETRIED)
    failures: list[BaseException] = []
    try:
        answer = post(payload, failures)
    except WebhookError as error:
        unanswered = any(getattr(e, "unanswered", False) for e in [*failures, error])
        note = redact(str(error), known_secrets(settings))
        if unanswered:
            state = ledger.UNKNOWN
            note += "; outcome unknown: the receiver may have acted, the next attempt "
            note += "re-sends with the same key"
        elif isinstance(error, PermanentWebhookError):
            state = ledger.FAILED
        else:
            state = ledger.PENDING  # owed: the next run delivers it before anything newer
        with open_warehouse(settings) as warehouse:
            ledger.settle(warehouse, held, state, note=note)
        if unanswered:
            raise WebhookOutcomeUnknown(note) from None
        raise
    # anything else raised above (a bug, a kill) leaves the claim to expire: nothing lies
    with open_warehouse(settings) as warehouse, warehouse.atomic():
        # the receipt names the run that built the body (its audience), which is not the
        # sending run for an event delivered late: the cooldown counts that audience
        incidents.record_delivery(warehouse, payload, answer, payload.get("run_id") or run_id)
        ledger.settle(warehouse, held, ledger.DELIVERED, answer=answer)
    if held.after_unknown_outcome:
        answer = {**answer, "note": UNKNOWN_RETRIED}
    log.info(delivered_line(payload, answer))
    return answer


def deliver_owed(
    settings: Settings,
    run_date: Any,
    run_id: str,
    post: Post,
    *,
    rollout_mode: str | None = None,
) -> list[dict[str, Any]]:
    """Deliver the events owed from dates before ``run_date`` in the rollout mode (the
    settings' unless given)
    (the receiver was down, a sender died, no answer came), oldest first, each as recorded
    with a first line saying it is late (``playbook.late_payload``), before anything newer.
    An owed event whose incident's resolve reached people since is withheld instead (it
    would contradict the closed ticket). The first delivery that fails stops the catch-up
    (its error is raised; the rest stay owed, in order). Called by :func:`deliver_due`.

    Returns one entry per event delivered: its key, event, date and the receiver's answer.
    """
    from retentionops import incidents, ledger
    from retentionops.playbook import late_payload

    day = as_date(run_date)
    with open_warehouse(settings) as warehouse:
        owed = ledger.owed(warehouse, rollout_mode or settings.rollout_mode, day)
    delivered = []
    for event in owed:
        if event.in_flight:  # another run is sending it now: nothing newer overtakes it
            raise EventsOwed(
                f"not sent yet: the {event.summary()} is being sent by run "
                f"{event.claimed_by} (claimed until {event.lease_until:%Y-%m-%d %H:%M:%S} "
                "UTC); what comes after it waits in the ledger and goes out in order"
            )
        if event.payload is None:  # claimed by a sender that recorded no body: cannot rebuild
            log.warning("%s is owed but has no recorded body: resend its date", event.summary())
            continue
        with open_warehouse(settings) as warehouse:
            resolved = incidents.resolve_delivered(warehouse, event.incident_id, event.rollout_mode)
            if resolved and event.event != "resolve":
                ledger.withhold(
                    warehouse,
                    event.dedupe_key,
                    f"withheld: incident {event.incident_id} is already resolved ({resolved})",
                )
                continue
        payload = late_payload(event.payload, delivered_on=day, why=event.note)
        answer = send_event(settings, payload, run_id, post)
        delivered.append(
            {
                "dedupe_key": event.dedupe_key,
                "incident_id": event.incident_id,
                "event": event.event,
                "run_date": event.run_date.isoformat(),
                "ticket_id": answer.get("ticket_id"),
                "slack_message_ts": answer.get("slack_message_ts"),
            }
        )
    return delivered


def _webhook_post(settings: Settings) -> Post:
    """The CLI's and the MCP server's POST: Airflow's HTTP hook (``hooks.PlaybookHook``).

    The first call of a process that has not imported Airflow loads it, some seconds,
    shown as a progress step like the post and its retries."""
    import sys

    from retentionops.connections import keep_logs_off_stdout, webhook_url

    webhook_url(settings)  # a missing connection: a clear error before anything is claimed
    loading = (
        progress.step("loading Airflow's HTTP hook for the webhook (first call only)")
        if "retentionops.hooks" not in sys.modules
        else contextlib.nullcontext()
    )
    with loading:
        from retentionops.hooks import PlaybookHook
    keep_logs_off_stdout()

    def post(payload: dict[str, Any], failures: list[BaseException]) -> dict[str, Any]:
        event = (payload.get("incident") or {}).get("event") or "playbook"
        with progress.step(f"posting the {event} event to the webhook"):
            hook = PlaybookHook(method="POST", http_conn_id=settings.make_conn_id)
            return hook.post_playbook(payload, settings, failures)

    return post


def delivered_line(payload: dict[str, Any], answer: dict[str, Any]) -> str:
    """What a delivery did, for the task log and the CLI's log: event, ticket, Slack post."""
    incident = payload.get("incident") or {}
    return (
        f"playbook: delivered the {incident.get('event') or 'playbook'} event of "
        f"{incident.get('incident_id') or payload.get('run_date')}: ticket "
        f"{answer.get('ticket_id')}, Slack message {answer.get('slack_message_ts')}"
    )


def fallback_notice(reason: str) -> str:
    """The first line of a fallback post: what failed, and what people should do about it.

    After a timeout the receiver may have completed the call: the post says so instead of
    claiming that no ticket exists.
    """
    if "timed out" in reason:
        return (
            f":warning: The retention playbook webhook did not answer in time ({reason}); it "
            "may still have posted and opened a ticket. Here is the brief: check the ticket "
            "queue before opening one by hand."
        )
    return (
        f":warning: The retention playbook webhook failed ({reason}); delivering the brief "
        "directly. No ticket was created: open one by hand."
    )


def run_failure_reason(settings: Settings, run_id: str) -> str:
    """Why a run failed, as its log row says (the failure callbacks wrote it), or a hint."""
    with open_warehouse(settings, read_only=True) as warehouse:
        stored = runlog.read(warehouse, run_id) or {}
    return stored.get("error_message") or "see the run log"


def post_fallback(settings: Settings, slack_brief: dict[str, Any], reason: str) -> dict[str, Any]:
    """Post the brief straight to Slack when the playbook failed; say why it is a fallback.

    The Slack provider's webhook hook sends it once (never retried: a repeat would post
    twice). A missing Slack connection is a clear error; the brief and exports stay on disk.
    """
    return _post_to_slack(settings, fallback_notice(reason), slack_brief)


def post_approval_request(
    settings: Settings, payload: dict[str, Any], link: str | None = None
) -> dict[str, Any]:
    """Tell Slack, through the fallback connection, that the day's event waits for a
    person's approval (``link``: its Required action in Airflow), with the brief that will
    go out; the playbook itself waits, so this is the one message people get meanwhile."""
    notice = approval.waiting_notice(payload, settings, link)
    return _post_to_slack(settings, notice, payload["brief"])


def _post_to_slack(settings: Settings, notice: str, slack_brief: dict[str, Any]) -> dict[str, Any]:
    """Post ``notice`` and the brief through the Slack fallback connection, once."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from retentionops.connections import get_connection, mask

    secrets = known_secrets(settings)
    get_connection(settings.slack_conn_id)
    mask(secrets)
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
    resend: bool = False,
    allow_late_data: bool = False,
    approved_by: str | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Deliver the date's incident event: export the audiences of an alert, write the brief,
    send the playbook, record the delivery, log the ticket.

    An event that waits for a person's approval (``approval_required``, approval.py) is
    sent only when ``approved_by`` names the approver, whom the run log's note names;
    without it the run is refused (:class:`ApprovalRequired`) before anything is done.

    On orders that are late or short (retentionops/freshness.py) the day has no event and
    nothing is delivered, unless ``allow_late_data`` says to act on them anyway.

    A date without an event (no alert, a quiet day of an open incident, warm-up) is refused:
    there is nothing to deliver. An event that is not sent (already delivered, too old,
    silenced, the kill switch) is built and logged, and the answer says why it was not
    sent; ``resend`` sends an already delivered or old event again (same dedupe_key). When
    the webhook fails for good, the brief goes to Slack directly (if a Slack connection
    exists) and the run is logged as failed with every cause.
    """
    settings = _with_rollout(settings, rollout_mode)
    day = as_date(run_date)
    delivery = Delivery.now(
        resend=resend, allow_late_data=allow_late_data, approved_by=approved_by
    )
    context = get_operational_context(settings, day, delivery)
    plan = context["plan"]
    if not plan["event"] and not _due_before(settings, day):
        raise NothingToDeliver(f"nothing to deliver on {day}: {plan['reason']}")
    run = run or Run.start(interface, "trigger_playbook", day)
    with _recorded(settings, run, "trigger_playbook", day) as outcome:
        if approval.pending(plan):  # a refused row: someone tried to send it unapproved
            raise ApprovalRequired(approval.refusal(plan))
        outcome.take_context(context)
        if approver := (plan.get("approval") or {}).get("approved_by"):
            outcome.approval = dict(named_approval(settings, approver))
        if not plan["event"]:  # a day without an event still delivers what is due
            try:
                outcome.late = deliver_due(
                    settings, day, run.run_id, _webhook_post(settings), delivery=delivery
                )
            except EventsOwed as waiting:
                plan = {**plan, "reason": str(waiting)}
                outcome.plan = plan
            return _trigger_answer(run, day, plan, outcome)
        part = dataclasses.replace(run, standalone=False)  # one row for the whole run
        outcome.exports = [export_audience(settings, day, tier, run=part) for tier in plan["tiers"]]
        brief = generate_brief(
            settings,
            day,
            "slack",
            exports=outcome.exports,
            delivery=delivery,
            run=part,
            context=context,
        )
        outcome.brief_link = brief["files"]["markdown"]
        prepared = prepare_playbook(
            settings,
            day,
            run=run,
            slack_brief=brief["slack"],
            exports=outcome.exports,
            brief_link=outcome.brief_link,
            delivery=delivery,
            context=context,
        )
        if prepared["send"]:
            try:
                post = _webhook_post(settings)
                outcome.late = deliver_due(settings, day, run.run_id, post, delivery=delivery)
                outcome.answer = send_event(
                    settings, prepared["payload"], run.run_id, post, resend=resend
                )
            except (EventNotSent, EventsOwed) as refused:  # another door holds it, or
                # it was delivered, or an earlier event is in flight
                plan = {**plan, "send": False, "reason": str(refused)}
                outcome.plan = plan
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
    return _trigger_answer(run, day, plan, outcome)


def vanished_incidents(
    settings: Settings, run_date: Any, rollout_mode: str | None = None
) -> list[tuple[Any, str]]:
    """The incidents the team was told about (a delivered event, no delivered resolve) that
    today's settings no longer see as open on ``run_date``, each with why, in words: the
    settings changed since it opened, or today's rules resolved it on a day whose run never
    sent that resolve. :func:`close_vanished` closes them."""
    from retentionops import incidents, ledger
    from retentionops.sql import alert_settings_fingerprint

    day = as_date(run_date)
    mode = rollout_mode or settings.rollout_mode
    with open_warehouse(settings) as warehouse:
        told = [
            known
            for known in ledger.delivered_incidents(warehouse)
            if known.rollout_mode == mode and not known.resolved and known.opened_on <= day
        ]
        if not told:
            return []
        detection.extend_history(warehouse, settings, day)
        found = []
        for known in told:  # a handful of open incidents, each one query over the history
            rows = incidents.incident_days(warehouse, settings, known.opened_on, day)
            seen = [r for r in rows if r["incident_id"] == known.incident_id]
            if seen and seen[-1]["day"] == day.isoformat():
                continue  # still open today (or resolving today): the day's own event
            if seen and seen[-1]["resolved_on"]:
                why = (
                    f"today's rules resolved it on {seen[-1]['resolved_on']}, and that "
                    "day's resolve was never sent"
                )
            else:
                why = (
                    "today's settings no longer see this incident (it opened under settings "
                    f"{known.settings_fingerprint}, they are now "
                    f"{alert_settings_fingerprint(settings)})"
                )
            found.append((known, why))
    return found


def close_vanished(
    settings: Settings,
    run_date: Any,
    run_id: str,
    post: Post,
    *,
    rollout_mode: str | None = None,
) -> list[dict[str, Any]]:
    """Close each incident the team was told about that today's settings no longer see
    (:func:`vanished_incidents`) with an explicit ``resolve`` saying why
    (``playbook.closing_payload``), recorded in the ledger before it is sent."""
    from retentionops import ledger
    from retentionops.playbook import closing_payload

    day = as_date(run_date)
    closed = []
    for known, why in vanished_incidents(settings, day, rollout_mode):
        with open_warehouse(settings) as warehouse:
            last = ledger.read(warehouse, known.last_key)
            if last is None or last.payload is None:
                log.warning("%s has no recorded body to close it from", known.incident_id)
                continue
            payload = closing_payload(last.payload, run_id=run_id, run_date=day, reason=why)
            ledger.record(warehouse, settings, payload)
        answer = send_event(settings, payload, run_id, post)
        closed.append(
            {
                "dedupe_key": payload["dedupe_key"],
                "incident_id": known.incident_id,
                "event": "resolve",
                "run_date": day.isoformat(),
                "ticket_id": answer.get("ticket_id"),
                "slack_message_ts": answer.get("slack_message_ts"),
                "closed_because": why,
            }
        )
    return closed


def deliver_due(
    settings: Settings,
    run_date: Any,
    run_id: str,
    post: Post,
    *,
    delivery: Delivery | None = None,
    rollout_mode: str | None = None,
) -> list[dict[str, Any]]:
    """What a run owes the team before its own event, in order: the events owed from
    earlier dates (:func:`deliver_owed`), then the closing of incidents today's settings
    no longer see (:func:`close_vanished`). Nothing while the kill switch, a silence or a
    dry run says so. Every door calls this before sending the day's event."""
    from retentionops.playbook import sending_blocked

    delivery = delivery or Delivery.now()
    if sending_blocked(settings, delivery):
        return []
    done = deliver_owed(settings, run_date, run_id, post, rollout_mode=rollout_mode)
    with open_warehouse(settings, read_only=True) as warehouse:
        data = freshness.orders_freshness(warehouse, settings, run_date)
    if not data["trusted"] and not delivery.allow_late_data:
        # nothing is closed on late or short orders; the owed events were decided before
        log.warning("playbook: %s: no incident is closed on it", data["note"])
        return done
    return done + close_vanished(settings, run_date, run_id, post, rollout_mode=rollout_mode)


def catch_up(
    settings: Settings, run_date: Any, run: Run, delivery: Delivery | None = None
) -> list[dict[str, Any]]:
    """A day without an event of its own (the DAG's ``deliver_owed``): what the run owes
    (:func:`deliver_due`) through the webhook; nothing due, no call (and no connection
    needed)."""
    day = as_date(run_date)
    if not _due_before(settings, day):
        return []
    try:
        return deliver_due(settings, day, run.run_id, _webhook_post(settings), delivery=delivery)
    except EventsOwed as waiting:  # another run is delivering an earlier event right now
        log.info("playbook: %s", waiting)
        return []


def _due_before(settings: Settings, day: dt.date) -> bool:
    """Whether a run of ``day`` owes the team anything before its own event."""
    from retentionops import ledger

    with open_warehouse(settings) as warehouse:
        owed = ledger.owed(warehouse, settings.rollout_mode, day)
    return bool(owed) or bool(vanished_incidents(settings, day))


def _trigger_answer(run: Run, day: dt.date, plan: dict[str, Any], outcome: RunOutcome) -> dict:
    """What ``trigger_playbook`` answers: the day's event, whether it was sent and why not,
    the receiver's answer, the exports; ``late`` lists the owed events delivered first."""
    answer = outcome.answer or {}
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "incident_id": plan["incident_id"],
        "event": plan["event"],
        "severity": plan["severity"],
        "rollout_mode": plan["rollout_mode"],
        "dedupe_key": plan["dedupe_key"],
        "sent": bool(outcome.answer),
        "reason": None if outcome.answer else plan["reason"],
        "ticket_id": answer.get("ticket_id"),
        "slack_message_ts": answer.get("slack_message_ts"),
        "exports": outcome.exports or [],
        "late": outcome.late or [],
    }


# -- incidents --------------------------------------------------------------------------------


def date_range(settings: Settings, from_date: Any, to_date: Any) -> tuple[dt.date, dt.date]:
    """A range a door was given, checked once: in order, and at most ``max_range_days``."""
    start, end = as_date(from_date), as_date(to_date)
    if start > end:
        raise ServiceError(f"from {start} is after to {end}")
    if (end - start).days + 1 > settings.max_range_days:
        raise ServiceError(
            f"the range {start}..{end} is longer than max_range_days ({settings.max_range_days})"
        )
    return start, end


def list_incidents(settings: Settings, from_date: Any, to_date: Any) -> dict[str, Any]:
    """The incidents of a date range, as they stood on its last day, with their events;
    and every incident the team was told about (the ledger), opened by the range's end.

    Computes and stores the alert history it needs (one SQL5 pass) when detection has not.
    """
    from retentionops import incidents, ledger

    start, end = date_range(settings, from_date, to_date)
    with open_warehouse(settings) as warehouse:
        detection.extend_history(warehouse, settings, end)
        days = incidents.incident_days(warehouse, settings, start, end)
        warnings = data_warnings(warehouse, settings, end)
        told = [i for i in ledger.delivered_incidents(warehouse) if i.opened_on <= end]
    computed = incidents.summarize(days)
    seen = {incident["incident_id"] for incident in computed}
    warmup = [day["day"] for day in days if day["phase"] == "warmup"]
    result = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "warmup_days": incidents.warmup_days(settings),
        "warmup_until": warmup[-1] if warmup else None,
        "alert_days_in_warmup": sum(
            1 for day in days if day["phase"] == "warmup" and day["alert_flag"]
        ),
        "incidents": computed,
        # what the team was told, whatever today's settings compute: an incident they no
        # longer see is still listed (and the next run closes it with a resolve)
        "delivered": [
            {**known.as_dict(), "seen_by_settings": known.incident_id in seen} for known in told
        ],
    }
    return {**result, "warnings": warnings} if warnings else result


def get_incident(settings: Settings, run_date: Any) -> dict[str, Any]:
    """The incident state of one date: its phase, incident, event and the facts behind it."""
    from retentionops import incidents

    day = as_date(run_date)
    with open_warehouse(settings) as warehouse:
        detection.extend_history(warehouse, settings, day)
        row = incidents.incident_on(warehouse, settings, day)
        if row is None:
            raise ServiceError(f"no alert history for {day}: no orders on or before it")
        note = incidents.day_note(warehouse, settings, day, row)
    return {**row, "note": note}


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


def measure_impact(
    settings: Settings,
    run_id: str | None = None,
    horizon_days: int | None = None,
    *,
    incident_id: str | None = None,
) -> dict[str, Any]:
    """Treated vs held out, repurchase within the horizon (``impact_horizon_days`` unless
    given), per tier: of a run (its exports against the holdout of its date) or of an
    incident (everyone it contacted against its whole holdout); sizes, the 95 % interval,
    the minimum detectable uplift and a verdict per tier (underpowered, no holdout...)."""
    from retentionops import impact

    if (run_id is None) == (incident_id is None):
        raise ServiceError("measure the impact of a run (run_id) or of an incident "
                           "(incident_id): name one of them")  # fmt: skip
    with open_warehouse(settings, read_only=True) as warehouse:
        if incident_id is not None:
            return impact.measure_incident_impact(warehouse, settings, incident_id, horizon_days)
        return impact.measure_impact(warehouse, settings, run_id, horizon_days)


def get_health(settings: Settings, from_date: Any, to_date: Any) -> dict[str, Any]:
    """Run, webhook and export health from ops_runs_log, and the alert frequency (incidents
    opened and alert days per month against alert_frequency_target_per_month) from the
    incident layer (design 15); and the events still owed to the team (the ledger), which
    the next run delivers first."""
    from retentionops import health, incidents, ledger

    start, end = date_range(settings, from_date, to_date)
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()
        report = health.get_health(warehouse, start, end)
        # a read: the stored alert history only (detection or an incident read stores it)
        covered = detection.history_covered_to(warehouse, settings)
        days = (
            incidents.incident_days(warehouse, settings, start, end)
            if covered is not None and covered >= end
            else None
        )
        warmup = [day for day in days or [] if day["phase"] == "warmup"]
        warmup_note = (
            incidents.day_note(warehouse, settings, as_date(warmup[0]["day"]), warmup[0])
            if warmup
            else None
        )
        # what the team has not been told yet: the ledger's events still owed (or in flight)
        report["owed_events"] = [
            {
                "incident_id": e.incident_id,
                "event": e.event,
                "run_date": e.run_date.isoformat(),
                "rollout_mode": e.rollout_mode,
                "state": e.state,
                "event_number": e.event_number,
                "note": e.note,
            }
            for e in ledger.events(warehouse)
            if e.state in (ledger.PENDING, ledger.SENDING, ledger.UNKNOWN)
        ]
        # a late feed is not a quiet day: the dates whose runs found it late or short
        report["data_late_days"] = [
            {"run_date": as_date(row["run_date"]).isoformat(), "said": row["said"]}
            for row in warehouse.query(
                "action/read_untrusted_days", {"from_date": start, "to_date": end}
            )
        ]
    target = settings.alert_frequency_target_per_month
    if days is None:
        return {
            **report,
            "alert_frequency_target_per_month": target,
            "alert_frequency": None,
            "months_over_target": None,
            "alert_frequency_note": (
                f"the alert history is stored up to {covered or 'no date'}, not {end}: run "
                f"`retentionops incidents --from {start} --to {end}` (or the DAG for {end}) "
                "to store it"
            ),
        }
    frequency = health.alert_frequency(days, target)
    result = {
        **report,
        "alert_frequency_target_per_month": target,
        "alert_frequency": frequency,
        "months_over_target": sorted(m for m, row in frequency.items() if row["over_target"]),
        "drift": health.drift(days, settings.drift_mode),
    }
    # the range starts in the warm-up: say so, and from when alerts count
    return {**result, "warmup": warmup_note} if warmup_note else result
