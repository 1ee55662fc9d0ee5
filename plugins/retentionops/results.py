"""The shapes of the operations' results, as the MCP tools declare them (``outputSchema``).

Each tool of ``mcp_server`` returns one of these TypedDicts; the SDK turns the return type
into the tool's output schema and validates the result against it, so a client sees which
keys an answer has, their types and meaning before it calls. The library's own typed
structures are reused where they exist (``actions.Context``, ``incidents.IncidentDay``,
``playbook.PlaybookPlan``, ``pack.BriefFiles``).

Every shape is *open* (:data:`OPEN`): a key an operation gains later still reaches the client
instead of being dropped by validation; the MCP tests check that every key a tool returns
is declared here, so the schemas stay complete.

``typing_extensions.TypedDict``, not ``typing.TypedDict``: pydantic reads only the former on
Python 3.11.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from retentionops.actions import Context
from retentionops.freshness import Freshness
from retentionops.holdouts import Holdout, IncidentHoldout
from retentionops.incidents import IncidentDay
from retentionops.pack import BriefFiles
from retentionops.playbook import PlaybookPlan
from retentionops.vocabulary import (
    TIERS,
    BriefFormat,
    DriftMode,
    ExportOutcome,
    RolloutMode,
    Severity,
    Tier,
)

#: Validation keeps keys the shape does not declare (see the module docstring); a field's
#: docstring is its description in the schema.
OPEN = ConfigDict(extra="allow", use_attribute_docstrings=True)


@with_config(OPEN)
class AlertDecision(TypedDict):
    """SQL5's decision for one date (design 7.5)."""

    alert_date: str
    alert_type: str
    metric_name: str
    scope: str
    current_value: float | None
    """The AT_RISK share of the date, percent."""
    baseline_value: float | None
    """Its mean over the previous baseline_days."""
    delta_pct: float | None
    """current_value - baseline_value, percentage points."""
    delta_relative_pct: float | None
    """(current_value - baseline_value) / baseline_value, percent."""
    threshold_warning: float
    threshold_critical: float
    severity: Severity
    alert_flag: bool
    sample_size: int
    """Customers behind the share."""
    source: NotRequired[Literal["stored", "computed"]]
    """Stored (detection ran for the date) or computed (read-only, from the orders)."""
    warnings: NotRequired[list[str]]
    """The date lies outside the order history."""
    data_freshness: NotRequired[Freshness]
    """Can the date's orders be trusted: the feed late or missing, the day short or high
    (docs/incidents.md, "Trusting the orders feed"). Not trusted: no incident event."""
    downstream: NotRequired[str]
    """After a detection: whether the date's queue was kept (identical rows) or removed."""


#: A count per tier, one key per tier of the vocabulary.
TierCounts = with_config(OPEN)(TypedDict("TierCounts", dict.fromkeys(TIERS, int)))


@with_config(OPEN)
class QueueResult(TypedDict):
    """``build_priority_queue``: the date's queue written, its counts and the decision."""

    run_id: str
    run_date: str
    tiers: TierCounts
    decision: AlertDecision


@with_config(OPEN)
class SlackBrief(TypedDict):
    text: str
    """The notification text (mrkdwn)."""
    blocks: list[dict[str, Any]]
    """Block Kit blocks."""


@with_config(OPEN)
class EmailBrief(TypedDict):
    subject: str
    html: str
    text: str


@with_config(OPEN)
class BriefResult(TypedDict):
    """``generate_brief``: the brief in the asked format, the files written, the plan."""

    run_id: str
    run_date: str
    format: BriefFormat
    brief: str | SlackBrief | EmailBrief
    """markdown: the text; slack: {text, blocks}; email: {subject, html, text}."""
    slack: SlackBrief
    """The Slack form, what trigger_playbook posts."""
    files: BriefFiles
    plan: PlaybookPlan
    tiers: list[str]
    """The audiences the playbook exports."""


@with_config(OPEN)
class Upload(TypedDict):
    kind: str
    """gcs or gsheet."""
    link: str | None
    error: str | None


@with_config(OPEN)
class ExportResult(TypedDict):
    """``export_audience``: one tier's audience written, and where."""

    run_id: str
    tier: Tier
    link: str
    """Where to find it (the upload, or the local CSV)."""
    row_count: int
    destination_kind: str
    """The kind of ``link``: local, gcs or gsheet."""
    local_link: str | None
    """The local CSV, always written."""
    uploads: list[Upload]
    status: ExportOutcome
    """``fallback_local``: an upload failed, ``link`` is the local CSV."""
    held_out: NotRequired[int]
    """The tier's customers an incident's holdout held out on the date: not in the file."""
    holdout: NotRequired[Holdout]
    """The holdouts that hold on the date, as this export drew them."""


@with_config(OPEN)
class LateDelivery(TypedDict):
    """What a run delivered before the day's own event: an owed event of an earlier date
    (late), or the resolve closing an incident today's settings no longer see."""

    dedupe_key: str
    incident_id: str
    event: str
    run_date: str
    ticket_id: str | None
    slack_message_ts: str | None
    closed_because: NotRequired[str]


@with_config(OPEN)
class PlaybookResult(TypedDict):
    """``trigger_playbook``: the incident event delivered (or why not) and the ticket."""

    run_id: str
    run_date: str
    incident_id: str | None
    event: str | None
    """The day's event: open, update, escalate, de-escalate or resolve."""
    severity: str | None
    rollout_mode: RolloutMode
    dedupe_key: str | None
    """The same event always has the same key."""
    sent: bool
    reason: str | None
    """Why it was not sent (already delivered, too old, silenced...)."""
    ticket_id: str | None
    slack_message_ts: str | None
    exports: list[ExportResult]
    late: list[LateDelivery]
    """Events of earlier dates that were owed (the receiver was down) and were delivered
    first, oldest first."""


@with_config(OPEN)
class IncidentState(IncidentDay):
    """``get_incident``: the incident state of a date and the day's event."""

    note: str | None
    """Why nothing is to be sent (warm-up, a quiet day of an incident...)."""


@with_config(OPEN)
class IncidentEvent(TypedDict):
    day: str
    event: str
    severity: str | None
    current_value: float | None
    relative_to_baseline_pct: float | None


@with_config(OPEN)
class IncidentSummary(TypedDict):
    incident_id: str
    opened_on: str
    resolved_on: str | None
    pre_incident_baseline: float | None
    peak_severity: str | None
    last_alert_day: str | None
    days: int
    events: list[IncidentEvent]


@with_config(OPEN)
class DeliveredEvent(TypedDict):
    event: str
    day: str


@with_config(OPEN)
class DeliveredIncident(TypedDict):
    """An incident as the team was told it (the ledger), whatever today's settings say."""

    incident_id: str
    rollout_mode: RolloutMode
    opened_on: str
    events: list[DeliveredEvent]
    ticket_id: str | None
    resolved: bool
    settings_fingerprint: str | None
    """The settings its first delivered event was decided under."""
    seen_by_settings: bool
    """Whether today's settings compute it too (if not, the next run closes it)."""


# "from" is a keyword: the functional form
IncidentList = with_config(OPEN)(
    TypedDict(
        "IncidentList",
        {
            "from": str,
            "to": str,
            "warmup_days": int,
            "warmup_until": Annotated[
                str | None,
                Field(description="The last warm-up day of the range (no incident opens)."),
            ],
            "alert_days_in_warmup": int,
            "incidents": list[IncidentSummary],
            "delivered": list[DeliveredIncident],
            "warnings": NotRequired[list[str]],
        },
    )
)
IncidentList.__doc__ = "``list_incidents``: the incidents of a range as they stood on its last day."


@with_config(OPEN)
class RecommendedAction(TypedDict):
    """``get_recommended_action``: one customer's tier and action, or why it has none."""

    customer_id: str
    run_date: str
    retention_status: str
    churn_risk_level: str
    churn_risk_score: int | float | None
    days_since_last_order: int | None
    queued: bool
    tier: str | None
    recommended_action: str | None
    reason: str
    priority_score: NotRequired[float | None]
    holdout: NotRequired[bool]
    """In the holdout: deliberately not contacted."""
    note: NotRequired[str | None]


@with_config(OPEN)
class TierImpact(TypedDict):
    treated_customers: int
    """Contacted: exported by the run (or, for an incident, by any export of its dates)."""
    treated_repurchasers: int
    holdout_customers: int
    """Held out by the incident's holdout: in no export while it held."""
    holdout_repurchasers: int
    treated_rate: float | None
    holdout_rate: float | None
    uplift: float | None
    ci_low: float | None
    """95 % interval of the uplift."""
    ci_high: float | None
    mde: float | None
    """The smallest uplift these group sizes show with 80 % power (two-sided 5 %)."""
    underpowered: bool
    """Fewer held out than holdout_min_customers."""
    verdict: str
    """The tier's result in one sentence (no holdout and why, underpowered, an effect...)."""
    revenue_difference: float | None
    """Revenue within the horizon per contacted customer above the holdout's, times the
    contacted."""


@with_config(OPEN)
class ImpactResult(TypedDict):
    """``measure_impact``: treated vs held out per tier, of a run or of an incident, or
    when it becomes measurable."""

    horizon_days: int
    horizon_end: str
    tiers: list[str]
    proxy: str
    measurable: bool
    run_id: NotRequired[str]
    run_date: NotRequired[str]
    incident_id: NotRequired[str | None]
    opened_on: NotRequired[str]
    resolved_on: NotRequired[str | None]
    held_until: NotRequired[str | None]
    holdout_pct: NotRequired[float]
    holdouts: NotRequired[list[IncidentHoldout]]
    """The incidents' holdouts compared with: each tier drawn, or why not."""
    # measurable = false
    measurable_from: NotRequired[str]
    message: NotRequired[str]
    # measurable = true
    per_tier: NotRequired[dict[str, TierImpact]]
    verdicts: NotRequired[list[str]]
    note: NotRequired[str | None]
    caveat: NotRequired[str]


@with_config(OPEN)
class HealthCounts(TypedDict):
    runs: int
    successful_runs: int
    skipped_runs: int
    failed_runs: int
    refused_runs: int
    """Commands refused before they did anything: not runs, not in the rates."""
    webhook_calls: int
    webhook_failures: int
    export_runs: int
    export_failures: int
    timed_runs: int
    total_execution_ms: int
    alert_days: int


@with_config(OPEN)
class OwedEvent(TypedDict):
    incident_id: str
    event: str
    run_date: str
    rollout_mode: RolloutMode
    state: Literal["pending", "sending", "unknown"]
    event_number: int
    """Its place among its incident's events (1: the first day, usually the open)."""
    note: str | None


@with_config(OPEN)
class UntrustedDay(TypedDict):
    run_date: str
    said: str | None
    """What its latest such run said: 'data late — orders feed late: …' / 'data short: …'."""


@with_config(OPEN)
class DriftHealth(TypedDict):
    mode: DriftMode
    days: int
    """Days of the range whose share is drift_threshold_pct above the share drift_days
    before (docs/incidents.md, "Slow drift")."""
    outside_incidents: list[str]
    """Those drift days no incident covers: what SQL5 alone would not have shown."""


@with_config(OPEN)
class MonthFrequency(TypedDict):
    incidents_opened: int
    alert_days: int
    warmup_alert_days: int
    over_target: bool


Health = with_config(OPEN)(
    TypedDict(
        "Health",
        {
            "from": str,
            "to": str,
            "runs": int,
            "refused_runs": Annotated[
                int,
                Field(
                    description="Commands refused before they did anything (bad input, a "
                    "date without a queue): not runs, not in the rates."
                ),
            ],
            "run_success_rate": float | None,
            "webhook_failure_rate": float | None,
            "export_success_rate": float | None,
            "average_execution_ms": int | None,
            "alerts_per_month": Annotated[
                dict[str, int], Field(description="YYYY-MM: alert days the runs logged.")
            ],
            "counts": HealthCounts,
            "alert_frequency_target_per_month": int,
            "alert_frequency": Annotated[
                dict[str, MonthFrequency] | None,
                Field(
                    description="Per YYYY-MM, from the stored alert history (null: not "
                    "stored for the range, see alert_frequency_note)."
                ),
            ],
            "months_over_target": list[str] | None,
            "owed_events": Annotated[
                list[OwedEvent],
                Field(
                    description="Events decided but not delivered yet (the receiver was "
                    "down, no answer in time, being sent): the next run sends them first."
                ),
            ],
            "data_late_days": Annotated[
                list[UntrustedDay],
                Field(
                    description="Run dates whose runs found the orders feed late or the day "
                    "short: no incident event was sent on them (a late feed is not a quiet "
                    "day)."
                ),
            ],
            "drift": NotRequired[DriftHealth],
            "alert_frequency_note": NotRequired[
                Annotated[str, Field(description="How to store the missing alert history.")]
            ],
            "warmup": NotRequired[
                Annotated[str, Field(description="The range starts in the warm-up.")]
            ],
        },
    )
)
Health.__doc__ = "``get_health``: run, webhook and export health, and the alert frequency."

__all__ = [
    "AlertDecision", "BriefResult", "Context", "ExportResult", "Health", "ImpactResult",
    "IncidentList", "IncidentState", "PlaybookResult", "QueueResult", "RecommendedAction",
]  # fmt: skip
