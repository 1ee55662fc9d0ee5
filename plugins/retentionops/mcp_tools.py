"""The MCP server of the design (section 8): one module-level ``MCPServer`` and one tool per
operation, on the official ``mcp`` SDK.

The shape is the SDK's lifespan example: :func:`app_lifespan` makes a typed
:class:`AppContext` (the settings and what the tools derive from them) when the server
starts, and every tool is a module-level function that reads it from
``ctx.request_context.lifespan_context``. A tool is a thin door: its arguments are typed
(the JSON schema: patterns, enums, bounds, descriptions), it calls one operation of
``retentionops.service`` -- the same function as the DAG and the CLI, so an assistant reads
and writes exactly what a DAG run would -- and returns its answer; each write leaves an
``ops_runs_log`` row with ``interface = 'mcp'``.

- Reads (``readOnlyHint``): ``get_alert_decision``, ``get_operational_context``,
  ``get_recommended_action``, ``measure_impact``, ``get_health``.
- Idempotent writes (``readOnlyHint=False, destructiveHint=False, idempotentHint=True``):
  ``build_priority_queue``, ``generate_brief``, ``export_audience``, ``get_incident``,
  ``list_incidents``.
- ``trigger_playbook``: posts to Slack and opens a ticket through the Make webhook
  (``destructiveHint=True, idempotentHint=False, openWorldHint=True``).

Every tool declares the shape of its result (``outputSchema``, from the TypedDicts of
``retentionops.results``) and answers structured content of that shape. The server reports
the package's version.

A user error (bad date, unknown tier, no data for the date, webhook down) comes back as a tool
error (``isError``) with the library's message; anything unexpected as a short message naming
the tool, with the traceback on stderr only. Calls are serialised: DuckDB has one writer.

Airflow is imported only by ``trigger_playbook`` when it posts (the webhook is an Airflow HTTP
hook and connection), some seconds the first time. Its waits between webhook attempts add up
to ``mcp_webhook_wait_seconds`` at most (clients time out; the DAG keeps its own budget), and
while it works it sends progress notifications (``notifications/progress``: seconds elapsed
and what it is doing: loading Airflow, posting, waiting to retry) to a client that asked
for them with a progress token.

This module imports the SDK; ``retentionops.mcp_server`` (the command line, the HTTP
transport and its bearer token) imports it only to serve, so ``retentionops --help`` and the
CLI's other commands never load the SDK.
"""

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from retentionops import package_version, progress, results, service
from retentionops.errors import UserError
from retentionops.settings import Settings, load_settings
from retentionops.vocabulary import BRIEF_FORMATS, EXPORT_DESTINATIONS, ROLLOUT_MODES, TIERS

SERVER_NAME = "retentionops"
MAX_EXPORT_LIMIT = 100_000
INTERFACE = "mcp"
#: Seconds between two progress notifications of a long tool call.
PROGRESS_EVERY_SECONDS = 1.0

log = logging.getLogger("retentionops.mcp")

# -- typed inputs (JSON schema: pattern, enums, bounds, descriptions) -----------------------
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
RunDate = Annotated[
    str,
    Field(
        pattern=DATE_PATTERN,
        description="The run date (the alert date), YYYY-MM-DD, e.g. 2011-05-13.",
    ),
]
FromDate = Annotated[str, Field(pattern=DATE_PATTERN, description="First day, YYYY-MM-DD.")]
ToDate = Annotated[
    str, Field(pattern=DATE_PATTERN, description="Last day (inclusive), YYYY-MM-DD.")
]
BriefFormat = Annotated[
    Literal[BRIEF_FORMATS],
    Field(description="Brief format: slack (default), email or markdown."),
]
Tier = Annotated[
    Literal[TIERS],
    Field(description="Priority tier: P1 Prevention, P2 Intervention, P3 Win-back."),
]
Destination = Annotated[
    Literal[EXPORT_DESTINATIONS] | None,
    Field(
        description="csv: the local CSV only (always written); gcs or gsheet: also upload "
        "it there; default: the export_destinations setting."
    ),
]
ExportLimit = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_EXPORT_LIMIT,
        description="Rows at most, best score first; default: the export_limit setting "
        f"(at most {MAX_EXPORT_LIMIT}).",
    ),
]
Folder = Annotated[
    str | None,
    Field(
        min_length=1,
        description="A folder inside export_root for the CSV, or a gs://bucket/prefix to "
        "upload it to; scoped to the date and this run. Default: the run's own folder.",
    ),
]
RolloutMode = Annotated[
    Literal[ROLLOUT_MODES] | None,
    Field(
        description="shadow (nothing reaches people), pilot (pilot channel) or production; "
        "default: the rollout_mode setting."
    ),
]
Resend = Annotated[
    bool, Field(description="Send the day's event again although it was already delivered.")
]
AllowLateData = Annotated[
    bool,
    Field(
        description="Act on the date although its orders are late or short "
        "(data_freshness); by default such a date delivers nothing."
    ),
]
ApprovedBy = Annotated[
    str | None,
    Field(
        description="Who approved the event, when approval_required holds it for a "
        "person's approval (the run log names them); without it such an event is refused.",
        max_length=200,
    ),
]
CustomerId = Annotated[
    str, Field(min_length=1, max_length=64, description="The customer id, e.g. 12347.")
]
RunId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="A run id from ops_runs_log (returned by trigger_playbook or "
        "export_audience, or a DAG run's id).",
    ),
]
HorizonDays = Annotated[
    int,
    Field(
        ge=1,
        le=365,
        description="Repurchase window after the contact, in days (default: the "
        "impact_horizon_days setting, 30).",
    ),
]
IncidentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="An incident id (INC-YYYYMMDD, from list_incidents): everyone it "
        "contacted against its whole holdout.",
    ),
]

# -- annotations ---------------------------------------------------------------------------
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# idempotent writes: the same call replaces its own rows or files
WRITE_LOCAL = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
WRITE_OUT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
# posts to Slack and opens, updates or closes a ticket: a repeat sends nothing, but a resend
# acts again, so it is not idempotent
SEND = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)


# -- what the tools share ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AppContext:
    """The server's lifespan context: made once when it starts, read by every tool call."""

    settings: Settings
    #: ``trigger_playbook``'s settings: its waits between webhook attempts bounded by
    #: ``mcp_webhook_wait_seconds`` (a client gives up long before the DAG's
    #: ``webhook_max_wait_seconds``)
    playbook_settings: Settings
    #: ``export_audience``'s limit when a call names none
    export_limit: int

    @classmethod
    def of(cls, settings: Settings) -> "AppContext":
        return cls(
            settings=settings,
            playbook_settings=dataclasses.replace(
                settings,
                webhook_max_wait_seconds=min(
                    settings.webhook_max_wait_seconds, settings.mcp_webhook_wait_seconds
                ),
            ),
            export_limit=min(settings.export_limit, MAX_EXPORT_LIMIT),
        )


#: The settings the next start of the server serves (:func:`configure`); ``None``: loaded
#: when it starts (defaults < settings file < ``RETENTIONOPS_*``).
_configured: Settings | None = None
#: One operation at a time in this process, whatever the sessions: DuckDB allows one writer.
_ONE_WRITER = threading.Lock()


@contextlib.asynccontextmanager
async def app_lifespan(server: MCPServer["AppContext"]) -> AsyncIterator[AppContext]:
    """The typed context of the tools, for as long as the server serves (stdio: the
    connection; streamable HTTP: the process)."""
    yield AppContext.of(_configured if _configured is not None else load_settings())


mcp: MCPServer[AppContext] = MCPServer(
    SERVER_NAME,
    title="RetentionOps",
    version=package_version(),
    instructions=(
        "Retention alerting and action tools. Typical flow for a date: "
        "get_alert_decision -> build_priority_queue -> get_operational_context -> "
        "generate_brief -> export_audience (P1, P2, P3 per severity) -> trigger_playbook. "
        "Dates are YYYY-MM-DD. trigger_playbook posts to Slack and opens a ticket: "
        "confirm with a person first."
    ),
    log_level="INFO",
    lifespan=app_lifespan,
)


def configure(settings: Settings | None) -> MCPServer[AppContext]:
    """The server, serving ``settings`` from its next start (``None``: loaded then)."""
    global _configured
    _configured = settings
    return mcp


# -- the doors' one way to call an operation -----------------------------------------------
def _call(
    tool: str, operation: Callable[..., Any], settings: Settings, *args: Any, **kwargs: Any
) -> Any:
    """``operation(settings, *args, **kwargs)``, alone in the process; its user errors as the
    tool's error, anything else as a short error naming the tool (the traceback logged)."""
    with _ONE_WRITER:
        try:
            return operation(settings, *args, **kwargs)
        except UserError as error:
            raise ToolError(str(error)) from None
        except Exception:
            log.exception("tool %s failed unexpectedly", tool)
            raise ToolError(
                f"{tool} failed unexpectedly; the server log (stderr) has the details"
            ) from None


class ClientProgress(progress.Reporter):
    """The progress of one tool call, for its MCP client: the innermost open step (its
    description, and its count when it has a total). The call's heartbeat
    (:func:`_call_with_progress`) reads it and sends the notifications: the steps run in a
    worker thread, the notifications go out from the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[progress.Step] = []

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Any:
        shown = progress.Step(description, total)
        with self._lock:
            self._open.append(shown)
        try:
            yield shown
        finally:
            with self._lock:
                self._open.remove(shown)

    def message(self) -> str | None:
        with self._lock:
            shown = self._open[-1] if self._open else None
        if shown is None:
            return None
        if shown.counted and shown.total:  # the library's counted steps are waits, in seconds
            return f"{shown.description} ({shown.completed:.0f}/{shown.total:.0f} s)"
        if shown.total:  # a statement's percentage (progress.watch_query)
            return f"{shown.description} ({shown.completed:.0f} %)"
        return shown.description


async def _call_with_progress(
    ctx: Context[AppContext],
    tool: str,
    operation: Callable[..., Any],
    settings: Settings,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """:func:`_call` in a worker thread, with progress notifications while it runs: one when
    what it does changes (its innermost progress step), else one every
    PROGRESS_EVERY_SECONDS; progress = seconds elapsed (always growing), no total."""
    reporter, started = ClientProgress(), time.monotonic()

    def work() -> Any:
        with progress.reporting(reporter):
            return _call(tool, operation, settings, *args, **kwargs)

    async def heartbeat() -> None:
        said, last = None, -PROGRESS_EVERY_SECONDS
        while True:
            elapsed = time.monotonic() - started
            message = reporter.message() or f"{tool}: working"
            if message != said or elapsed - last >= PROGRESS_EVERY_SECONDS:
                await ctx.report_progress(round(elapsed, 3), None, f"{message} [{elapsed:.0f} s]")
                said, last = message, elapsed
            await anyio.sleep(PROGRESS_EVERY_SECONDS / 10)

    outcome: Any = None
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(heartbeat)
        try:
            outcome = await anyio.to_thread.run_sync(work)
        except Exception as error:  # re-raised outside the group: not an ExceptionGroup
            failure = error
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return outcome


def _export_audience(settings: Settings, *args: Any, destination: Any, **kwargs: Any) -> Any:
    """``service.export_audience``, its folder's ``~user`` checked first (an unknown user's
    home is a clear tool error, not an unexpected failure)."""
    from retentionops.files import expand_home

    if destination and not str(destination).strip().startswith("gs://"):
        expand_home(str(destination).strip())
    return service.export_audience(settings, *args, destination=destination, **kwargs)


# -- v1 (design 8.2) -----------------------------------------------------------------------
@mcp.tool(title="Alert decision", annotations=READ, structured_output=True)
def get_alert_decision(ctx: Context[AppContext], date: RunDate) -> results.AlertDecision:
    """The SQL5 alert decision for a date: severity (INFO/WARNING/CRITICAL), alert flag,
    AT_RISK share against its 7-day baseline, thresholds and sample size. Read-only."""
    app = ctx.request_context.lifespan_context
    return _call("get_alert_decision", service.get_alert_decision, app.settings, date)


@mcp.tool(title="Operational context", annotations=READ, structured_output=True)
def get_operational_context(ctx: Context[AppContext], date: RunDate) -> results.Context:
    """Status distribution, risk by status, P1/P2/P3 counts (with reasons for empty tiers)
    and the tiers the severity exports, for a date whose queue was built. Read-only."""
    app = ctx.request_context.lifespan_context
    return _call("get_operational_context", service.get_operational_context, app.settings, date)


@mcp.tool(title="Build priority queue", annotations=WRITE_LOCAL, structured_output=True)
def build_priority_queue(ctx: Context[AppContext], date: RunDate) -> results.QueueResult:
    """Run detection (SQL1-SQL5) for the date and (re)write its customer_priority rows;
    returns the P1/P2/P3 counts, the decision and the run id logged in ops_runs_log."""
    app = ctx.request_context.lifespan_context
    return _call(
        "build_priority_queue",
        service.build_priority_queue,
        app.settings,
        date,
        interface=INTERFACE,
    )


@mcp.tool(title="Generate brief", annotations=WRITE_LOCAL, structured_output=True)
def generate_brief(
    ctx: Context[AppContext], date: RunDate, format: BriefFormat = "slack"
) -> results.BriefResult:
    """The manager-ready brief for the date (situation, tiers, actions, links) in one
    format; also writes the brief files and chart of the run. Needs the queue built."""
    app = ctx.request_context.lifespan_context
    return _call(
        "generate_brief", service.generate_brief, app.settings, date, format, interface=INTERFACE
    )


@mcp.tool(title="Export audience", annotations=WRITE_OUT, structured_output=True)
def export_audience(
    ctx: Context[AppContext],
    date: RunDate,
    tier: Tier,
    destination: Destination = None,
    limit: ExportLimit = None,
    folder: Folder = None,
) -> results.ExportResult:
    """Export one tier's ranked audience (holdout customers and the contact cooldown
    excluded) as a local CSV, uploaded to GCS or a Google Sheets tab when asked; returns
    the link, row count and each upload's outcome. Needs the queue built."""
    app = ctx.request_context.lifespan_context
    return _call(
        "export_audience",
        _export_audience,
        app.settings,
        date,
        tier,
        destination=folder,
        destinations=["csv", destination] if destination else None,
        limit=limit if limit is not None else app.export_limit,
        interface=INTERFACE,
    )


@mcp.tool(title="Trigger playbook", annotations=SEND, structured_output=True)
async def trigger_playbook(
    ctx: Context[AppContext],
    date: RunDate,
    rollout_mode: RolloutMode = None,
    resend: Resend = False,
    allow_late_data: AllowLateData = False,
    approved_by: ApprovedBy = None,
) -> results.PlaybookResult:
    """Deliver the date's incident event through the Make webhook (Slack post or thread
    reply; the incident's ticket opened, updated or closed), after exporting the tiers of
    an alert; logs the ticket id. Each event is delivered once: a repeat answers
    sent=false with the reason, unless resend. Refused for a date without an event, and
    for an event that waits for a person's approval (approval_required) unless
    approved_by names the approver.
    Reports progress while it works; retries of a failing webhook wait
    mcp_webhook_wait_seconds in all at most."""
    app = ctx.request_context.lifespan_context
    return await _call_with_progress(
        ctx,
        "trigger_playbook",
        service.trigger_playbook,
        app.playbook_settings,
        date,
        rollout_mode=rollout_mode,
        resend=resend,
        allow_late_data=allow_late_data,
        approved_by=approved_by,
        interface=INTERFACE,
    )


# -- incidents across days -----------------------------------------------------------------
@mcp.tool(title="Incident of a date", annotations=WRITE_LOCAL, structured_output=True)
def get_incident(ctx: Context[AppContext], date: RunDate) -> results.IncidentState:
    """The incident state of a date: warm-up, quiet or an incident (its id, day N, opened
    on, current and peak severity, pre-incident baseline vs now) and the day's event
    (open, update, escalate, de-escalate, resolve, or none). Stores the alert history it
    needs when detection has not (the same SQL5 rows detection stores)."""
    app = ctx.request_context.lifespan_context
    return _call("get_incident", service.get_incident, app.settings, date)


@mcp.tool(title="Incidents of a range", annotations=WRITE_LOCAL, structured_output=True)
def list_incidents(
    ctx: Context[AppContext], from_date: FromDate, to_date: ToDate
) -> results.IncidentList:
    """The incidents of a date range with their events, as they stood on its last day;
    warm-up days (no incident can open) are counted apart. Stores the alert history it
    needs when detection has not (the same SQL5 rows detection stores)."""
    app = ctx.request_context.lifespan_context
    return _call("list_incidents", service.list_incidents, app.settings, from_date, to_date)


# -- v2 (design 8.3) and health (design 15) ------------------------------------------------
@mcp.tool(title="Recommended action", annotations=READ, structured_output=True)
def get_recommended_action(
    ctx: Context[AppContext], customer_id: CustomerId, date: RunDate
) -> results.RecommendedAction:
    """One customer's tier, recommended action and reason at a date, or why the customer
    is not queued (and whether it is in the holdout). Read-only."""
    app = ctx.request_context.lifespan_context
    return _call(
        "get_recommended_action", service.get_recommended_action, app.settings, customer_id, date
    )


@mcp.tool(title="Measure impact", annotations=READ, structured_output=True)
def measure_impact(
    ctx: Context[AppContext],
    run_id: RunId | None = None,
    horizon_days: HorizonDays | None = None,
    incident_id: IncidentId | None = None,
) -> results.ImpactResult:
    """Treated vs held-out repurchase per tier within the horizon, of a run (its exports
    against its date's holdout) or of an incident (name one): the group sizes, rates,
    uplift with a 95 % interval, the minimum detectable uplift at 80 % power and a
    verdict per tier (underpowered, no holdout and why); before the horizon has passed,
    the date it becomes measurable. Read-only."""
    app = ctx.request_context.lifespan_context
    return _call(
        "measure_impact",
        service.measure_impact,
        app.settings,
        run_id,
        horizon_days,
        incident_id=incident_id,
    )


@mcp.tool(title="Health", annotations=READ, structured_output=True)
def get_health(ctx: Context[AppContext], from_date: FromDate, to_date: ToDate) -> results.Health:
    """Meta-monitoring from ops_runs_log over a date range: run success rate, webhook
    failure rate, export success rate, average execution time, alerts per month."""
    app = ctx.request_context.lifespan_context
    return _call("get_health", service.get_health, app.settings, from_date, to_date)
