"""The design's operations (sections 8.2, 8.3 and 15), each written once: the one home.

One module per operation, each owning its composition: :mod:`.detection`, :mod:`.context`,
:mod:`.pack` (queue, exports, brief), :mod:`.playbook` and :mod:`.delivery`,
:mod:`.incidents`, :mod:`.runlog`, :mod:`.impact`, :mod:`.health`, :mod:`.housekeeping`;
what a door hands them is typed in :mod:`.request`. The modules below this package
(``retentionops.detection``, ``actions``, ``incidents``, ``ledger`` …) compute or read one
thing each; only this package composes them.

The DAG's tasks, the MCP tools and the CLI commands are thin doors to these functions;
none of them repeats what happens here. Each operation takes the settings and plain values
and returns plain, JSON-friendly values.

Who runs an operation is a :class:`Run`. A standalone run (the CLI, the MCP server) leaves
its own ``ops_runs_log`` row, written here whether the operation succeeds or fails, with its
``interface``. A task of a DAG run (``Run.of_dag``) leaves the row to the DAG's
``write_run_log`` task (and the tasks' failure callback), which calls :func:`write_run_log`
with everything the run did. Errors a person can act on are ``UserError`` subclasses with a
message that says what to do and carries no secret.
"""

from retentionops.runlog import RunOutcome
from retentionops.service.context import get_operational_context
from retentionops.service.delivery import (
    EventNotSent,
    EventsOwed,
    catch_up,
    close_vanished,
    deliver_due,
    deliver_owed,
    delivered_line,
    post_approval_request,
    post_fallback,
    send_event,
)
from retentionops.service.detection import (
    alert_history_from,
    alert_series,
    check_summaries,
    data_freshness,
    data_warnings,
    detect,
    get_alert_decision,
    last_delivered_run,
)
from retentionops.service.health import get_health
from retentionops.service.housekeeping import apply_retention, create_tables, load_orders
from retentionops.service.impact import get_recommended_action, measure_impact
from retentionops.service.incidents import get_incident, list_incidents
from retentionops.service.pack import (
    build_priority_queue,
    export_audience,
    export_audiences,
    generate_brief,
    planned_tiers,
)
from retentionops.service.playbook import (
    ApprovalRequired,
    NothingToDeliver,
    named_approval,
    prepare_playbook,
    record_approval,
    trigger_playbook,
)
from retentionops.service.request import DateRange, Run, RunRequest
from retentionops.service.runlog import (
    run_failure_reason,
    run_log_rows,
    write_run_log,
)

__all__ = [
    "ApprovalRequired",
    "DateRange",
    "EventNotSent",
    "EventsOwed",
    "NothingToDeliver",
    "Run",
    "RunOutcome",
    "RunRequest",
    "alert_history_from",
    "alert_series",
    "apply_retention",
    "build_priority_queue",
    "catch_up",
    "check_summaries",
    "close_vanished",
    "create_tables",
    "data_freshness",
    "data_warnings",
    "deliver_due",
    "deliver_owed",
    "delivered_line",
    "detect",
    "export_audience",
    "export_audiences",
    "generate_brief",
    "get_alert_decision",
    "get_health",
    "get_incident",
    "get_operational_context",
    "get_recommended_action",
    "last_delivered_run",
    "list_incidents",
    "load_orders",
    "measure_impact",
    "named_approval",
    "planned_tiers",
    "post_approval_request",
    "post_fallback",
    "prepare_playbook",
    "record_approval",
    "run_failure_reason",
    "run_log_rows",
    "send_event",
    "trigger_playbook",
    "write_run_log",
]
