"""The action pack: priority queue, operational context, audiences and the run log.

Every number comes from SQL under ``include/sql/action/``; this module only assembles the
results into the structures the brief, the log, the CLI and the MCP tools share.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from retentionops.detection import DetectionError, as_date, get_alert_decision, jsonable
from retentionops.settings import RISK_LEVELS, STATUSES, Settings, split_list
from retentionops.sql import priority_parameters
from retentionops.warehouse import Warehouse

TIERS = ("P1", "P2", "P3")
TIER_NAMES = {"P1": "Prevention", "P2": "Intervention", "P3": "Win-back"}
#: Which tiers each severity's playbook exports (design section 9).
EXPORTED_TIERS = {"WARNING": ("P1", "P2"), "CRITICAL": ("P1", "P2", "P3")}


def tiers_for(decision: dict[str, Any]) -> list[str]:
    """Tiers to export for a decision: none unless the alert fired."""
    if not decision.get("alert_flag"):
        return []
    return list(EXPORTED_TIERS.get(decision.get("severity"), ()))


def playbook_for(decision: dict[str, Any]) -> str:
    """The branch to follow: ``no_alert``, ``warning`` or ``critical``."""
    tiers = tiers_for(decision)
    return decision["severity"].lower() if tiers else "no_alert"


def build_priority_queue(
    warehouse: Warehouse, settings: Settings, run_date: Any
) -> dict[str, int]:
    """Replace ``customer_priority`` for the date; return the tier counts."""
    day = as_date(run_date)
    warehouse.replace_partition(
        "action/build_priority_queue",
        table="customer_priority",
        partition_field="run_date",
        params=priority_parameters(settings, day),
    )
    counts = dict.fromkeys(TIERS, 0)
    for row in _context_rows(warehouse, day):
        if row["facet"] == "tier":
            counts[row["tier"]] = int(row["customers"])
    return counts


def _context_rows(warehouse: Warehouse, day: dt.date) -> list[dict[str, Any]]:
    return warehouse.query("action/get_operational_context", {"run_date": day})


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
    """The highest churn_risk_score a customer of this status can reach, and why.

    Frequency drop can fire for any status; value drop never fires in v1; status
    inconsistency needs ACTIVE (rules.md, SQL3).
    """
    parts = [f"frequency drop {settings.weight_frequency_drop}"]
    total = settings.weight_frequency_drop
    if settings.weight_value_drop:
        parts.append("value drop 0 (off in v1)")
    if status == "ACTIVE":
        total += settings.weight_status_inconsistent
        parts.append(f"status inconsistent {settings.weight_status_inconsistent}")
    return total, " + ".join(parts)


def _level_floor(settings: Settings, level: str) -> int:
    return {
        "HIGH": settings.risk_level_high_min,
        "MEDIUM": settings.risk_level_medium_min,
        "LOW": 0,
    }[level]


def empty_tier_reason(
    settings: Settings, tier: str, matrix: dict[str, dict[str, int]], day: dt.date
) -> str:
    """Why a tier holds nobody on this date: impossible by the rules, filtered, or absent."""
    status, levels = tier_rule(settings, tier)
    reachable, how = max_score(settings, status)
    floor = min(_level_floor(settings, level) for level in levels)
    if reachable < floor:
        return (
            f"no {status} customer can be {' or '.join(levels)} under the current scoring "
            f"weights (max score {how} = {reachable} < {floor})"
        )
    matching = sum(matrix.get(status, {}).get(level, 0) for level in levels)
    if matching and tier == "P1" and settings.p1_value_filter:
        return (
            f"{matching} {status} + {'/'.join(levels)} customer(s) on {day}, none with revenue "
            "above the median (p1_value_filter is on)"
        )
    if matching and tier == "P3" and settings.p3_recency_cap_days:
        return (
            f"{matching} {status} + {'/'.join(levels)} customer(s) on {day}, none ordered within "
            f"{settings.p3_recency_cap_days} days (p3_recency_cap_days)"
        )
    return f"no customer is {status} + {' or '.join(levels)} risk on {day}"


def get_operational_context(
    warehouse: Warehouse,
    settings: Settings,
    run_date: Any,
    *,
    decision: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The one structure behind the brief, the log, the CLI and the MCP tools."""
    day = as_date(run_date)
    decision = decision or get_alert_decision(warehouse, settings, day)
    rows = _context_rows(warehouse, day)
    matrix = {status: dict.fromkeys(RISK_LEVELS, 0) for status in STATUSES}
    counts = dict.fromkeys(TIERS, 0)
    holdouts = dict.fromkeys(TIERS, 0)
    value_sums = dict.fromkeys(TIERS, 0.0)
    median_revenue = 0.0
    for row in rows:
        if row["facet"] == "risk_by_status":
            matrix.setdefault(row["status"], dict.fromkeys(RISK_LEVELS, 0))
            matrix[row["status"]][row["risk_level"]] = int(row["customers"])
        elif row["facet"] == "tier":
            counts[row["tier"]] = int(row["customers"])
            holdouts[row["tier"]] = int(row["holdout_customers"] or 0)
            value_sums[row["tier"]] = float(row["metric_value"] or 0.0)
        elif row["facet"] == "median_total_revenue":
            median_revenue = float(row["metric_value"] or 0.0)
    if not any(sum(levels.values()) for levels in matrix.values()):
        raise DetectionError(
            f"no detection rows for {day}: run detection for that date first "
            f"(`retentionops detect --date {day}`)"
        )
    exported = tiers_for(decision)
    if settings.impact_value_basis == "value_proxy":
        targeted = sum(counts[t] for t in exported) or sum(counts.values())
        chosen = [t for t in exported] or list(TIERS)
        value = sum(value_sums[t] for t in chosen) / targeted if targeted else 0.0
        basis = f"mean value_proxy ({settings.value_proxy_factor:g} x total_revenue)"
    else:
        value, basis = median_revenue, "median total_revenue"
    return {
        "run_date": day.isoformat(),
        "run_id": run_id,
        "decision": decision,
        "status_distribution": {s: sum(levels.values()) for s, levels in matrix.items()},
        "risk_by_status": matrix,
        "tiers": {
            tier: {
                "count": counts[tier],
                # kept out of the exports to measure the effect (holdout_pct)
                "holdout": holdouts[tier],
                "name": TIER_NAMES[tier],
                "definition": tier_definition(settings, tier),
                "action": getattr(settings, f"{tier.lower()}_action"),
                "exported": tier in exported,
                "empty_reason": None
                if counts[tier]
                else empty_tier_reason(settings, tier, matrix, day),
            }
            for tier in TIERS
        },
        "exported_tiers": exported,
        "median_total_revenue": round(median_revenue, 2),
        "value_per_customer": round(value, 2),
        "value_basis": basis,
        "impact_rates": [0.1, 0.2, 0.3],
        "baseline_days": settings.baseline_days,
    }


def fetch_audience(
    warehouse: Warehouse, settings: Settings, run_date: Any, tier: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """One tier's ranked rows (priority_score desc, customer_id asc), at most ``limit``."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier '{tier}'; use one of {', '.join(TIERS)}")
    return warehouse.query(
        "action/read_audience",
        {
            "run_date": as_date(run_date),
            "tier": tier,
            "row_limit": int(limit or settings.export_limit),
        },
    )


# -- run log ---------------------------------------------------------------------------

RUN_LOG_TYPES = {
    "run_id": "STRING",
    "run_timestamp": "TIMESTAMP",
    "alert_date": "DATE",
    "severity": "STRING",
    "alert_flag": "BOOL",
    "current_value": "FLOAT64",
    "baseline_value": "FLOAT64",
    "delta_relative_pct": "FLOAT64",
    "sample_size": "INT64",
    "p1_count": "INT64",
    "p2_count": "INT64",
    "p3_count": "INT64",
    "total_exported": "INT64",
    "slack_posted": "BOOL",
    "slack_message_ts": "STRING",
    "ticket_id": "STRING",
    "export_p1_link": "STRING",
    "export_p2_link": "STRING",
    "export_p3_link": "STRING",
    "brief_link": "STRING",
    "status": "STRING",
    "error_message": "STRING",
    "execution_time_ms": "INT64",
    "interface": "STRING",
    "playbook_status": "STRING",
    "export_status": "STRING",
}
INTERFACES = ("dag", "mcp", "cli")
RUN_STATUSES = ("success", "failed", "skipped")


def run_log_record(
    *,
    run_id: str,
    run_date: Any,
    status: str,
    started_at: dt.datetime | None = None,
    decision: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
    exports: list[dict[str, Any]] | None = None,
    brief_link: str | None = None,
    error_message: str | None = None,
    slack_posted: bool | None = None,
    slack_message_ts: str | None = None,
    ticket_id: str | None = None,
    now: dt.datetime | None = None,
    interface: str = "dag",
    playbook_status: str | None = None,
    export_status: str | None = None,
) -> dict[str, Any]:
    """Assemble one ``ops_runs_log`` row; unknown values stay NULL."""
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
    now = now or dt.datetime.now(dt.UTC)
    decision = decision or {}
    counts = counts or {}
    links = {e["tier"]: e["link"] for e in exports or []}
    record = dict.fromkeys(RUN_LOG_TYPES)
    record.update(
        run_id=run_id,
        run_timestamp=now,
        alert_date=as_date(run_date),
        severity=decision.get("severity"),
        alert_flag=decision.get("alert_flag"),
        current_value=decision.get("current_value"),
        baseline_value=decision.get("baseline_value"),
        delta_relative_pct=decision.get("delta_relative_pct"),
        sample_size=decision.get("sample_size"),
        p1_count=counts.get("P1"),
        p2_count=counts.get("P2"),
        p3_count=counts.get("P3"),
        total_exported=sum(int(e["row_count"]) for e in exports) if exports is not None else None,
        slack_posted=slack_posted,
        slack_message_ts=slack_message_ts,
        ticket_id=ticket_id,
        export_p1_link=links.get("P1"),
        export_p2_link=links.get("P2"),
        export_p3_link=links.get("P3"),
        brief_link=brief_link,
        status=status,
        error_message=error_message,
        execution_time_ms=int((now - started_at).total_seconds() * 1000) if started_at else None,
        interface=interface,
        playbook_status=playbook_status,
        export_status=export_status,
    )
    return record


def read_run_log(warehouse: Warehouse, run_id: str) -> dict[str, Any] | None:
    rows = warehouse.query("action/read_run_log", {"run_id": run_id})
    return jsonable(rows[0]) if rows else None


def write_run_log(
    warehouse: Warehouse, settings: Settings, record: dict[str, Any], json_path: Path | None = None
) -> dict[str, Any]:
    """MERGE the row (one per run_id) and write its JSON copy next to the run's artifacts."""
    warehouse.ensure_tables(("ops_runs_log",))
    warehouse.execute_file("action/write_run_log", record, types=RUN_LOG_TYPES)
    stored = read_run_log(warehouse, record["run_id"])
    if json_path is not None and stored is not None:
        write_json_atomic(json_path, stored)
    return stored or jsonable(record)


def write_json_atomic(path: Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a run artifact: a temp file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an artifact is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
