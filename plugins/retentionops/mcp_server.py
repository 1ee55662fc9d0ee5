"""The design's MCP interface (section 8): one tool per operation, on the official ``mcp`` SDK.

Every tool calls the same library function as the DAG (``retentionops.service``, ``impact``,
``health``), so an assistant reads and writes exactly what a DAG run would; each write leaves
an ``ops_runs_log`` row with ``interface = 'mcp'``.

- Reads (``readOnlyHint``): ``get_alert_decision``, ``get_operational_context``,
  ``get_recommended_action``, ``measure_impact``, ``get_health``.
- Idempotent writes (``readOnlyHint=False, destructiveHint=False, idempotentHint=True``):
  ``build_priority_queue``, ``generate_brief``, ``export_audience``.
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

Run it with ``retentionops mcp`` (stdio by default, ``--transport http`` for streamable HTTP
on 127.0.0.1:8766) or ``python -m retentionops.mcp_server``. Nothing is opened at import time;
the ``mcp`` SDK itself is imported by :func:`build_server`.
"""

import argparse
import contextlib
import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from retentionops import progress
from retentionops.connections import is_loopback
from retentionops.vocabulary import BRIEF_FORMATS, EXPORT_DESTINATIONS, ROLLOUT_MODES, TIERS

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from retentionops.settings import Settings

SERVER_NAME = "retentionops"
DEFAULT_TRANSPORT = "stdio"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
HTTP_PATH = "/mcp"
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


def _export_audience(settings: "Settings", *args: Any, destination: Any, **kwargs: Any) -> Any:
    """``service.export_audience``, its folder's ``~user`` checked first (an unknown user's
    home is a clear tool error, not an unexpected failure)."""
    from retentionops import service
    from retentionops.files import expand_home

    if destination and not str(destination).strip().startswith("gs://"):
        expand_home(str(destination).strip())
    return service.export_audience(settings, *args, destination=destination, **kwargs)


def _annotations(**hints: Any) -> Any:
    from mcp_types import ToolAnnotations

    return ToolAnnotations(**hints)


def package_version() -> str:
    """The installed distribution's version; the package's own without one (plugins/ on
    the path, as Airflow and Composer load it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retentionops")
    except PackageNotFoundError:
        from retentionops import __version__

        return __version__


class ClientProgress(progress.Reporter):
    """The progress of one tool call, for its MCP client: the innermost open step (its
    description, and its count when it has a total). The call's heartbeat
    (:func:`_with_progress`) reads it and sends the notifications: the steps run in a worker
    thread, the notifications go out from the event loop."""

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


def build_server(settings: "Settings | None" = None) -> "MCPServer":
    """The MCP server with the design's tools, bound to one settings object."""
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from retentionops import results, service
    from retentionops.errors import UserError
    from retentionops.settings import load_settings

    settings = settings if settings is not None else load_settings()
    lock = threading.Lock()  # one operation at a time: DuckDB allows one writer

    def call(
        tool: str,
        operation: Callable[..., Any],
        *args: Any,
        using: "Settings | None" = None,
        **kwargs: Any,
    ) -> Any:
        with lock:
            try:
                return operation(using or settings, *args, **kwargs)
            except UserError as error:
                raise ToolError(str(error)) from None
            except Exception:
                log.exception("tool %s failed unexpectedly", tool)
                raise ToolError(
                    f"{tool} failed unexpectedly; the server log (stderr) has the details"
                ) from None

    async def with_progress(
        ctx: Context, tool: str, operation: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """``call`` in a worker thread, with progress notifications while it runs: one when
        what it does changes (its innermost progress step), else one every
        PROGRESS_EVERY_SECONDS; progress = seconds elapsed (always growing), no total."""
        reporter, started = ClientProgress(), time.monotonic()

        def work() -> Any:
            with progress.reporting(reporter):
                return call(tool, operation, *args, **kwargs)

        async def heartbeat() -> None:
            said, last = None, -PROGRESS_EVERY_SECONDS
            while True:
                elapsed = time.monotonic() - started
                message = reporter.message() or f"{tool}: working"
                if message != said or elapsed - last >= PROGRESS_EVERY_SECONDS:
                    await ctx.report_progress(
                        round(elapsed, 3), None, f"{message} [{elapsed:.0f} s]"
                    )
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

    server: MCPServer = MCPServer(
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
    )
    read = _annotations(read_only_hint=True, open_world_hint=False)
    # idempotent writes: the same call replaces its own rows or files
    write_local = _annotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )
    write_out = _annotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
    )
    # posts to Slack and opens, updates or closes a ticket: a repeat sends nothing, but a
    # resend acts again, so it is not idempotent
    send = _annotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    )

    # -- v1 (design 8.2) ---------------------------------------------------------------
    @server.tool(title="Alert decision", annotations=read, structured_output=True)
    def get_alert_decision(date: RunDate) -> results.AlertDecision:
        """The SQL5 alert decision for a date: severity (INFO/WARNING/CRITICAL), alert flag,
        AT_RISK share against its 7-day baseline, thresholds and sample size. Read-only."""
        return call("get_alert_decision", service.get_alert_decision, date)

    @server.tool(title="Operational context", annotations=read, structured_output=True)
    def get_operational_context(date: RunDate) -> results.Context:
        """Status distribution, risk by status, P1/P2/P3 counts (with reasons for empty tiers)
        and the tiers the severity exports, for a date whose queue was built. Read-only."""
        return call("get_operational_context", service.get_operational_context, date)

    @server.tool(title="Build priority queue", annotations=write_local, structured_output=True)
    def build_priority_queue(date: RunDate) -> results.QueueResult:
        """Run detection (SQL1-SQL5) for the date and (re)write its customer_priority rows;
        returns the P1/P2/P3 counts, the decision and the run id logged in ops_runs_log."""
        return call("build_priority_queue", service.build_priority_queue, date, interface=INTERFACE)

    @server.tool(title="Generate brief", annotations=write_local, structured_output=True)
    def generate_brief(date: RunDate, format: BriefFormat = "slack") -> results.BriefResult:
        """The manager-ready brief for the date (situation, tiers, actions, links) in one
        format; also writes the brief files and chart of the run. Needs the queue built."""
        return call("generate_brief", service.generate_brief, date, format, interface=INTERFACE)

    default_limit = min(settings.export_limit, MAX_EXPORT_LIMIT)

    @server.tool(title="Export audience", annotations=write_out, structured_output=True)
    def export_audience(
        date: RunDate,
        tier: Tier,
        destination: Destination = None,
        limit: Annotated[
            int, Field(ge=1, le=MAX_EXPORT_LIMIT, description="Rows at most, best score first.")
        ] = default_limit,
        folder: Folder = None,
    ) -> results.ExportResult:
        """Export one tier's ranked audience (holdout customers and the contact cooldown
        excluded) as a local CSV, uploaded to GCS or a Google Sheets tab when asked; returns
        the link, row count and each upload's outcome. Needs the queue built."""
        return call(
            "export_audience",
            _export_audience,
            date,
            tier,
            destination=folder,
            destinations=["csv", destination] if destination else None,
            limit=limit,
            interface=INTERFACE,
        )

    # the MCP budget of waits between webhook attempts: a client gives up long before the
    # DAG's webhook_max_wait_seconds
    bounded = dataclasses.replace(
        settings,
        webhook_max_wait_seconds=min(
            settings.webhook_max_wait_seconds, settings.mcp_webhook_wait_seconds
        ),
    )

    @server.tool(title="Trigger playbook", annotations=send, structured_output=True)
    async def trigger_playbook(
        ctx: Context,
        date: RunDate,
        rollout_mode: RolloutMode = None,
        resend: Annotated[
            bool,
            Field(description="Send the day's event again although it was already delivered."),
        ] = False,
        allow_late_data: Annotated[
            bool,
            Field(
                description="Act on the date although its orders are late or short "
                "(data_freshness); by default such a date delivers nothing."
            ),
        ] = False,
        approved_by: Annotated[
            str | None,
            Field(
                description="Who approved the event, when approval_required holds it for a "
                "person's approval (the run log names them); without it such an event is "
                "refused.",
                max_length=200,
            ),
        ] = None,
    ) -> results.PlaybookResult:
        """Deliver the date's incident event through the Make webhook (Slack post or thread
        reply; the incident's ticket opened, updated or closed), after exporting the tiers of
        an alert; logs the ticket id. Each event is delivered once: a repeat answers
        sent=false with the reason, unless resend. Refused for a date without an event, and
        for an event that waits for a person's approval (approval_required) unless
        approved_by names the approver.
        Reports progress while it works; retries of a failing webhook wait
        mcp_webhook_wait_seconds in all at most."""
        return await with_progress(
            ctx,
            "trigger_playbook",
            service.trigger_playbook,
            date,
            using=bounded,
            rollout_mode=rollout_mode,
            resend=resend,
            allow_late_data=allow_late_data,
            approved_by=approved_by,
            interface=INTERFACE,
        )

    # -- incidents across days -----------------------------------------------------------
    @server.tool(title="Incident of a date", annotations=write_local, structured_output=True)
    def get_incident(date: RunDate) -> results.IncidentState:
        """The incident state of a date: warm-up, quiet or an incident (its id, day N, opened
        on, current and peak severity, pre-incident baseline vs now) and the day's event
        (open, update, escalate, de-escalate, resolve, or none). Stores the alert history it
        needs when detection has not (the same SQL5 rows detection stores)."""
        return call("get_incident", service.get_incident, date)

    @server.tool(title="Incidents of a range", annotations=write_local, structured_output=True)
    def list_incidents(from_date: FromDate, to_date: ToDate) -> results.IncidentList:
        """The incidents of a date range with their events, as they stood on its last day;
        warm-up days (no incident can open) are counted apart. Stores the alert history it
        needs when detection has not (the same SQL5 rows detection stores)."""
        return call("list_incidents", service.list_incidents, from_date, to_date)

    # -- v2 (design 8.3) and health (design 15) ----------------------------------------
    @server.tool(title="Recommended action", annotations=read, structured_output=True)
    def get_recommended_action(customer_id: CustomerId, date: RunDate) -> results.RecommendedAction:
        """One customer's tier, recommended action and reason at a date, or why the customer
        is not queued (and whether it is in the holdout). Read-only."""
        return call("get_recommended_action", service.get_recommended_action, customer_id, date)

    @server.tool(title="Measure impact", annotations=read, structured_output=True)
    def measure_impact(
        run_id: RunId | None = None,
        horizon_days: HorizonDays | None = None,
        incident_id: IncidentId | None = None,
    ) -> results.ImpactResult:
        """Treated vs held-out repurchase per tier within the horizon, of a run (its exports
        against its date's holdout) or of an incident (name one): the group sizes, rates,
        uplift with a 95 % interval, the minimum detectable uplift at 80 % power and a
        verdict per tier (underpowered, no holdout and why); before the horizon has passed,
        the date it becomes measurable. Read-only."""
        return call(
            "measure_impact",
            service.measure_impact,
            run_id,
            horizon_days,
            incident_id=incident_id,
        )

    @server.tool(title="Health", annotations=read, structured_output=True)
    def get_health(from_date: FromDate, to_date: ToDate) -> results.Health:
        """Meta-monitoring from ops_runs_log over a date range: run success rate, webhook
        failure rate, export success rate, average execution time, alerts per month."""
        return call("get_health", service.get_health, from_date, to_date)

    return server


# -- command line (wired by ``retentionops mcp``) -----------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``retentionops mcp``."""
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=DEFAULT_TRANSPORT,
        help="stdio for a local MCP client (default), http for streamable HTTP",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )


def _configure_logging() -> None:
    """Everything to stderr: on stdio, stdout is the protocol channel."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def bearer_token(token: str | None) -> str:
    """The configured token, or "" for none: a blank or whitespace-only value is no token
    (it would otherwise "protect" a server with a password anyone can guess)."""
    return (token or "").strip()


def authorized(header: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries the token: the scheme ``Bearer`` in any
    case (RFC 7235: auth schemes are case-insensitive), then the token, compared in
    constant time."""
    import hmac

    scheme, _, credentials = header.strip().partition(b" ")
    return (
        bool(token)
        and scheme.lower() == b"bearer"
        and hmac.compare_digest(credentials.strip(), token)
    )


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self._token = app, bearer_token(token).encode()
        if not self._token:
            raise ValueError("BearerAuth needs a non-blank token")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not authorized(given, self._token):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="retentionops"'),
                        ],
                    }
                )
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(server: "MCPServer", host: str, token: str) -> Any:
    """The streamable HTTP app, behind the bearer token when one is configured.

    Without a token it serves on a loopback address only: anything else could reach the
    tools (which write files and post to Slack) without authentication. A blank token is no
    token (logged, so a token set to spaces by mistake is noticed).
    """
    from retentionops.errors import UserError

    if token and not bearer_token(token):
        log.warning("mcp_http_token is blank (whitespace only): treated as no token")
    token = bearer_token(token)
    if not token and not is_loopback(host):
        raise UserError(
            f"refusing to serve MCP over HTTP on {host} without a bearer token: set "
            "RETENTIONOPS_MCP_HTTP_TOKEN (or mcp_http_token), or serve on 127.0.0.1"
        )
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    return BearerAuth(app, token) if token else app


async def _serve_http(server: "MCPServer", host: str, port: int, token: str) -> None:
    """Streamable HTTP at ``http://HOST:PORT/mcp``; uvicorn's logs go to stderr too."""
    import uvicorn

    app = http_app(server, host, token)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="info")
    log.info("RetentionOps MCP server on http://%s:%s%s (streamable HTTP)", host, port, HTTP_PATH)
    await uvicorn.Server(config).serve()


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until the client disconnects (stdio) or SIGINT (http); 2 on a settings error."""
    import anyio

    from retentionops.connections import stdout_is_data
    from retentionops.errors import UserError
    from retentionops.settings import check_warehouse_path, load_settings

    _configure_logging()
    stdout_is_data()  # on stdio, stdout is the protocol: no log line may land there
    try:
        settings = load_settings(getattr(args, "config", None))
        check_warehouse_path(settings)  # refused now, not at the first tool call
        server = build_server(settings)
        if getattr(args, "transport", DEFAULT_TRANSPORT) == "http":
            host = getattr(args, "host", DEFAULT_HOST)
            http_app(server, host, settings.mcp_http_token)  # refuse before binding
            anyio.run(
                _serve_http,
                server,
                host,
                getattr(args, "port", DEFAULT_PORT),
                settings.mcp_http_token,
            )
        else:
            log.info("RetentionOps MCP server on stdio")
            server.run("stdio")
    except UserError as error:
        print(f"retentionops mcp: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def build_parser(prog: str = "retentionops-mcp") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="RetentionOps MCP server.")
    parser.add_argument("--config", metavar="FILE", help="settings YAML")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
