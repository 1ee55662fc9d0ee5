"""The action pack's leaves: the priority queue, the facts of its day and the audiences.

Every number comes from SQL under ``include/sql/action/``; this module only assembles the
results into the structures the brief, the log, the CLI and the MCP tools share.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops import freshness, holdouts
from retentionops.dates import as_date
from retentionops.detection import (
    DETECTION_MARKER,
    QUEUE_MARKER,
    SqlStep,
    completed_steps,
    detection_missing,
    mark_complete,
    require_queue,
)
from retentionops.errors import DetectionError
from retentionops.incidents import IncidentDay
from retentionops.playbook import PlaybookPlan
from retentionops.settings import Settings, split_list
from retentionops.sql import priority_parameters
from retentionops.vocabulary import RISK_LEVELS, STATUSES, TIER_NAMES, TIERS
from retentionops.warehouse import Warehouse

#: customer_priority for the run date (design section 6.1): a SQL step like SQL1-SQL5.
QUEUE_STEP = SqlStep(
    "build_priority_queue", "action/build_priority_queue", "customer_priority", priority_parameters
)


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class TierInfo(TypedDict):
    count: int
    holdout: int
    name: str
    definition: str
    action: str
    exported: bool
    empty_reason: str | None
    # across days (docs/audiences.md), against the last delivered run (previous_run_date):
    # new + still = count, still + left = previous_count
    new: int
    still: int
    left: int
    previous_count: int | None
    cooldown_suppressed: int
    cooldown_bypassed: int
    #: how many an export of this tier takes before the row limit (holdout, cooldown and
    #: export_mode applied)
    exportable: int
    #: after an export: the rows its file holds, the customers contacted (pack.py)
    exported_rows: NotRequired[int | None]


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class Context(TypedDict):
    """The operational context of a run date: the one structure behind every output."""

    run_date: str
    decision: dict[str, Any]
    #: can the run trust the orders (retentionops/freshness.py); also in the decision
    data_freshness: freshness.Freshness
    incident: IncidentDay | None
    note: str | None
    plan: PlaybookPlan
    status_distribution: dict[str, int]
    risk_by_status: dict[str, dict[str, int]]
    tiers: dict[str, TierInfo]
    exported_tiers: list[str]
    previous_run_date: str | None
    cooldown_days: int
    drift_mode: str
    response: dict[str, Any]
    status_windows: dict[str, int]
    anomalies: list[str]
    owed: list[dict[str, Any]]
    #: the incidents' holdouts that hold on the date (holdouts.py); after an export, the
    #: export's own (the draw happens at an incident's first export)
    holdout: holdouts.Holdout
    median_total_revenue: float
    value_per_customer: float
    value_basis: str
    impact_rates: list[float]
    baseline_days: int


def last_delivered_run(warehouse: Warehouse, run_date: dt.date) -> dt.date | None:
    """The last run before the date whose playbook reached people (None: none): the run the
    date's queue compares itself with (``@previous_run_date`` of the queue)."""
    [row] = warehouse.query("action/read_last_delivered_run", {"run_date": run_date})
    previous: dt.date | None = row["previous_run_date"]
    return previous


def build_priority_queue(warehouse: Warehouse, settings: Settings, day: dt.date) -> dict[str, int]:
    """Replace ``customer_priority`` for the date (its detection must be complete) and mark
    it complete, all or nothing; return the tier counts."""
    if DETECTION_MARKER not in completed_steps(warehouse, day):
        raise DetectionError(detection_missing(day))
    # the queue reads what earlier runs delivered (cooldown, what changed); its readers
    # (the context, the exports) read the incidents' holdouts
    warehouse.ensure_tables(
        ("deliveries", "incident_events", "audience_exports", "incident_holdouts")
    )
    with warehouse.atomic():
        params = {
            **QUEUE_STEP.parameters(settings, day),
            "previous_run_date": last_delivered_run(warehouse, day),
        }
        warehouse.replace_partition(QUEUE_STEP.sql_name, table=QUEUE_STEP.table, params=params)
        mark_complete(warehouse, day, QUEUE_MARKER)
    counts = dict.fromkeys(TIERS, 0)
    for row in warehouse.query("action/count_queue_tiers", {"run_date": day}):
        counts[row["tier"]] = int(row["customers"])
    return counts


def anomalies(tiers: dict[str, Any], previous_run_date: str | None, factor: float) -> list[str]:
    """Volume warnings of the tiers against the last delivered run: a tier that dropped to
    zero, or grew or shrank more than ``factor`` (audience_change_factor)."""
    if previous_run_date is None:
        return []
    found = []
    for tier, info in tiers.items():
        now, before = int(info["count"]), int(info["previous_count"] or 0)
        if before and not now:
            found.append(f"{tier} dropped to zero (was {before} on {previous_run_date})")
        elif before and now > before * factor:
            found.append(
                f"{tier} grew {now / before:.1f}x: {now} against {before} on {previous_run_date}"
            )
        elif now and now * factor < before:
            found.append(
                f"{tier} shrank {before / now:.1f}x: {now} against {before} on {previous_run_date}"
            )
        elif now and not before:
            found.append(f"{tier} appeared: {now} against none on {previous_run_date}")
    return found


def _context_rows(warehouse: Warehouse, day: dt.date, settings: Settings) -> list[dict[str, Any]]:
    new_only = settings.export_mode == "new_only"
    # the last delivered run, read first: the context reads that run's queue partition only
    [previous] = warehouse.query("action/read_previous_run_date", {"run_date": day})
    return warehouse.query(
        "action/get_operational_context",
        {"run_date": day, "new_only": new_only, **previous},
    )


def tier_rule(settings: Settings, tier: str) -> tuple[str, list[str]]:
    key = tier.lower()
    return getattr(settings, f"{key}_status"), split_list(getattr(settings, f"{key}_risk_levels"))


def tier_definition(settings: Settings, tier: str) -> str:
    status, levels = tier_rule(settings, tier)
    text = f"{status} + {' or '.join(levels)} risk"
    if tier == "P1" and settings.p1_value_filter:
        text += ", revenue above the median"
    if tier == "P3" and settings.p3_recency_cap_days:
        text += f", last order at most {settings.p3_recency_cap_days} days ago"
    return text


def max_score(settings: Settings, status: str) -> tuple[int, str]:
    """The highest churn_risk_score a customer of this status can reach, and where the
    points come from, in words.

    Frequency drop can fire for any status; value drop never fires in v1; status
    inconsistency needs ACTIVE (rules.md, SQL3).
    """
    parts = [f"{settings.weight_frequency_drop} for ordering less often than usual"]
    total = settings.weight_frequency_drop
    if status == "ACTIVE":
        total += settings.weight_status_inconsistent
        parts.append(
            f"{settings.weight_status_inconsistent} for an active customer with few orders "
            "whose next one is late"
        )
    if settings.weight_value_drop:
        parts.append("spending less is not scored yet")
    return total, "; ".join(parts)


def _customers(settings: Settings, status: str, count: int | None = None) -> str:
    """``inactive customer (last order more than 90 days ago)``, with a count when given."""
    since = {
        "ACTIVE": f"last order within {settings.active_days} days",
        "AT_RISK": f"last order {settings.active_days + 1} to {settings.at_risk_days} days ago",
        "INACTIVE": f"last order more than {settings.at_risk_days} days ago",
    }.get(status)
    word = status.lower().replace("_", "-")
    noun = "customer" if count is None or count == 1 else "customers"
    text = f"{word} {noun}" if count is None else f"{count} {word} {noun}"
    return f"{text} ({since})" if since else text


def _risk_words(levels: list[str]) -> str:
    return " or ".join(level.lower() for level in levels) + " churn risk"


def _level_floor(settings: Settings, level: str) -> int:
    return {
        "HIGH": settings.risk_level_high_min,
        "MEDIUM": settings.risk_level_medium_min,
        "LOW": 0,
    }[level]


def empty_tier_reason(
    settings: Settings, tier: str, matrix: dict[str, dict[str, int]], day: dt.date
) -> str:
    """Why a tier holds nobody on this date (impossible by the rules, filtered, or absent),
    as a sentence a retention manager reads, with the numbers behind it."""
    status, levels = tier_rule(settings, tier)
    reachable, how = max_score(settings, status)
    lowest = min(levels, key=lambda level: _level_floor(settings, level))
    floor = _level_floor(settings, lowest)
    if reachable < floor:
        return (
            f"no {_customers(settings, status)} can reach {_risk_words(levels)} with the current "
            f"scoring: the most one can score is {reachable} points ({how}), and "
            f"{lowest.lower()} risk starts at {floor} points"
        )
    matching = sum(matrix.get(status, {}).get(level, 0) for level in levels)
    are = "is" if matching == 1 else "are"
    if matching and tier == "P1" and settings.p1_value_filter:
        return (
            f"{_customers(settings, status, matching)} {are} at {_risk_words(levels)} on "
            f"{day}, but P1 only takes those with revenue above the median customer's "
            "(p1_value_filter is on)"
        )
    if matching and tier == "P3" and settings.p3_recency_cap_days:
        return (
            f"{_customers(settings, status, matching)} {are} at {_risk_words(levels)} on "
            f"{day}, but P3 only takes those who ordered in the last "
            f"{settings.p3_recency_cap_days} days (p3_recency_cap_days)"
        )
    return f"no {_customers(settings, status)} is at {_risk_words(levels)} on {day}"


@dataclasses.dataclass(frozen=True)
class QueueFacts:
    """The date's queue folded from ``action/get_operational_context``'s facets: risk x
    status, each tier's count, value and what changed since the last delivered run."""

    matrix: dict[str, dict[str, int]]
    counts: dict[str, int]
    value_sums: dict[str, float]
    across: dict[str, dict[str, int]]
    previous_run_date: str | None
    median_revenue: float


#: The per-tier facts of the context's ``tier`` facet, besides its count and value.
_ACROSS = (
    "holdout_customers", "new_customers", "cooldown_suppressed",
    "cooldown_bypassed", "exportable", "previous_customers",
)  # fmt: skip


def queue_facts(warehouse: Warehouse, settings: Settings, day: dt.date) -> QueueFacts:
    """Read the date's queue facets (one query) and fold them; a date whose queue holds no
    customer with an order on or before it is an error."""
    matrix = {status: dict.fromkeys(RISK_LEVELS, 0) for status in STATUSES}
    counts = dict.fromkeys(TIERS, 0)
    value_sums = dict.fromkeys(TIERS, 0.0)
    across: dict[str, dict[str, int]] = {tier: {} for tier in TIERS}
    previous_run_date = None
    median_revenue = 0.0
    for row in _context_rows(warehouse, day, settings):
        if row["facet"] == "risk_by_status":
            matrix.setdefault(row["status"], dict.fromkeys(RISK_LEVELS, 0))
            matrix[row["status"]][row["risk_level"]] = int(row["customers"])
        elif row["facet"] == "tier":
            counts[row["tier"]] = int(row["customers"])
            value_sums[row["tier"]] = float(row["metric_value"] or 0.0)
            across[row["tier"]] = {key: int(row[key] or 0) for key in _ACROSS}
            previous_run_date = row["previous_run_date"] or previous_run_date
        elif row["facet"] == "median_total_revenue":
            median_revenue = float(row["metric_value"] or 0.0)
    if not any(sum(levels.values()) for levels in matrix.values()):
        raise DetectionError(f"no customer has an order on or before {day}")
    previous = as_date(previous_run_date).isoformat() if previous_run_date else None
    return QueueFacts(matrix, counts, value_sums, across, previous, median_revenue)


def tier_infos(
    settings: Settings, queue: QueueFacts, exported: Sequence[str], day: dt.date
) -> dict[str, TierInfo]:
    """Each tier of the date as the brief and the tools show it: its count and holdout, its
    rule in words, whether the day's playbook exports it, why it is empty, and what changed
    since the last delivered run (new + still = count, still + left = previous_count)."""
    tiers: dict[str, TierInfo] = {}
    for tier, name in TIER_NAMES.items():  # P1, P2, P3
        facts, count = queue.across[tier], queue.counts[tier]
        new = facts.get("new_customers", 0)
        previous_count = facts.get("previous_customers", 0) if queue.previous_run_date else None
        still = count - new
        tiers[tier] = {
            "count": count,
            # kept out of the exports to measure the effect (holdout_pct)
            "holdout": facts.get("holdout_customers", 0),
            "name": name,
            "definition": tier_definition(settings, tier),
            "action": getattr(settings, f"{tier.lower()}_action"),
            "exported": tier in exported,
            "empty_reason": None if count else empty_tier_reason(settings, tier, queue.matrix, day),
            "new": new,
            "still": still,
            "left": (previous_count or 0) - still,
            "previous_count": previous_count,
            "cooldown_suppressed": facts.get("cooldown_suppressed", 0),
            "cooldown_bypassed": facts.get("cooldown_bypassed", 0),
            "exportable": facts.get("exportable", 0),
        }
    return tiers


def value_per_customer(
    settings: Settings, queue: QueueFacts, exported: Sequence[str]
) -> tuple[float, str]:
    """What one customer is worth to the impact estimate, and the basis in words: the mean
    value_proxy of the exported tiers (all tiers when none is), or the median revenue."""
    if settings.impact_value_basis != "value_proxy":
        return queue.median_revenue, "median total_revenue"
    chosen = list(exported) or list(TIERS)
    targeted = sum(queue.counts[t] for t in chosen)
    value = sum(queue.value_sums[t] for t in chosen) / targeted if targeted else 0.0
    return value, f"mean value_proxy ({settings.value_proxy_factor:g} x total_revenue)"


def with_exports(context: Context, exports: list[dict[str, Any]] | None) -> Context:
    """The context as the run's exports left it, for what is written after them (the brief,
    the webhook body): each tier's rows in its file (``exported_rows``: the customers
    contacted; None for a tier not exported) and the holdouts as the export drew them (an
    incident draws at its first export, after the context was read)."""
    exports = [e for e in exports or [] if e]
    rows = {e["tier"]: int(e["row_count"]) for e in exports}
    holdout = next((e["holdout"] for e in exports if e.get("holdout")), None)
    holdout = holdout or context.get("holdout")
    held = (holdout or {}).get("tiers") or {}
    tiers = {
        tier: {
            **info,
            "exported_rows": rows.get(tier),
            **({"holdout": held[tier]["held_out"]} if tier in held else {}),
        }
        for tier, info in context["tiers"].items()
    }
    return {**context, "tiers": tiers, "holdout": holdout}  # type: ignore[typeddict-item]


def named_tiers(tiers: Sequence[str], doing: str) -> list[str]:
    """The tiers named, each once, in order; ValueError for an unknown tier or none."""
    named = list(dict.fromkeys(tiers))
    for tier in named:
        if tier not in TIERS:
            raise ValueError(f"unknown tier '{tier}'; use one of {', '.join(TIERS)}")
    if not named:
        raise ValueError(f"no tier to {doing}; name one or more of {', '.join(TIERS)}")
    return named


def record_audiences(
    warehouse: Warehouse,
    settings: Settings,
    day: dt.date,
    tiers: Sequence[str],
    run_id: str,
    limit: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Record the customers a run exports for each of ``tiers`` (holdout, cooldown and
    export_mode applied, at most ``limit`` per tier, best priority_score first) and return
    them per tier in file order: each file is written from exactly the recorded rows.

    First the date's incident draws its holdout (its first export: every tier; later ones:
    the customers first seen) and the holdouts whose incident resolved by the date are
    released (``holdouts.prepare``), so the record leaves out exactly the customers held
    out that day, whoever exports.

    One clear, one record and one read for all the tiers: on BigQuery each read bills the
    queue's columns over the date's whole partition, whatever tiers it keeps.
    """
    tiers = named_tiers(tiers, "record")
    require_queue(warehouse, day)
    warehouse.ensure_tables(("audience_exports", "incident_holdouts"))
    keys = {"run_id": run_id, "tiers": tiers, "run_date": day}
    with warehouse.atomic():
        holdouts.prepare(warehouse, settings, day, run_id)
        warehouse.execute_file("action/clear_audience_export", keys)
        warehouse.execute_file(
            "action/record_audience_export",
            {
                **keys,
                "new_only": settings.export_mode == "new_only",
                "row_limit": int(limit or settings.export_limit),
            },
        )
    audiences: dict[str, list[dict[str, Any]]] = {tier: [] for tier in tiers}
    for row in warehouse.query("action/read_audience", keys):
        audiences[row["priority_tier"]].append(row)
    return audiences


def record_audience(
    warehouse: Warehouse,
    settings: Settings,
    run_date: dt.date,
    tier: str,
    run_id: str,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """``record_audiences`` of one tier: its rows in file order."""
    return record_audiences(warehouse, settings, run_date, [tier], run_id, limit)[tier]
