"""Meta-monitoring (design section 15) from the ``ops_health_daily`` view of ops_runs_log.

A command refused before it did anything (``status = 'refused'``: bad input, or a missing
precondition such as ``brief`` of a date without a queue) is not a run: it is counted as
``refused_runs``, apart from ``failed_runs``, and the rates and timings are over the runs
that ran. A DAG run that failed is always ``failed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from retentionops.warehouse import Warehouse


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def get_health(warehouse: Warehouse, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Run success, webhook failure and export success rates, timing, alerts per month."""
    months = warehouse.query("action/get_health", {"from_date": start, "to_date": end})
    total = {key: sum(int(m[key] or 0) for m in months) for key in (
        "runs", "successful_runs", "skipped_runs", "failed_runs", "refused_runs",
        "webhook_calls", "webhook_failures", "export_runs", "export_failures", "timed_runs",
        "total_execution_ms", "alert_days",
    )}  # fmt: skip
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "runs": total["runs"],
        # commands refused before they did anything: not runs, not in the rates
        "refused_runs": total["refused_runs"],
        # a run that ended skipped (no alert) did its job: it counts as a success
        "run_success_rate": _rate(total["successful_runs"] + total["skipped_runs"], total["runs"]),
        "webhook_failure_rate": _rate(total["webhook_failures"], total["webhook_calls"]),
        "export_success_rate": _rate(
            total["export_runs"] - total["export_failures"], total["export_runs"]
        ),
        "average_execution_ms": round(total["total_execution_ms"] / total["timed_runs"])
        if total["timed_runs"]
        else None,
        "alerts_per_month": {
            m["month"].strftime("%Y-%m"): int(m["alert_days"] or 0) for m in months
        },
        "counts": total,
    }


def drift(days: Sequence[Mapping[str, Any]], mode: str) -> dict[str, Any]:
    """The slow-drift check beside SQL5 over the range (docs/incidents.md, "Slow drift"):
    how many days drifted, and those outside any incident, which nothing else flags. In
    shadow mode this is where the team learns how often it would have fired."""
    drifted = [day for day in days if day.get("drift_flag")]
    return {
        "mode": mode,
        "days": len(drifted),
        "outside_incidents": [str(day["day"]) for day in drifted if day["phase"] != "incident"],
    }


def alert_frequency(days: Sequence[Mapping[str, Any]], target: int) -> dict[str, dict[str, Any]]:
    """Per month: incidents opened and alert days against the target (design 15: "low
    single digits per month"), with warm-up alert days counted apart (they open nothing)."""
    months: dict[str, dict[str, Any]] = {}
    for day in days:
        month = months.setdefault(
            str(day["day"])[:7],
            {"incidents_opened": 0, "alert_days": 0, "warmup_alert_days": 0},
        )
        if day["event"] == "open":
            month["incidents_opened"] += 1
        if day["alert_flag"]:
            key = "warmup_alert_days" if day["phase"] == "warmup" else "alert_days"
            month[key] += 1
    for month in months.values():
        month["over_target"] = month["incidents_opened"] > target
    return months
