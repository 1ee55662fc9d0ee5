"""Incidents across days: the layer above SQL5 that turns alert days into incidents.

The rules live in one SQL file, ``include/sql/incidents/incident_days.sql`` (and in
``docs/incidents.md``); this module runs it over a date range and groups its day rows into
incidents with their events. A DAG run for D uses the same query with ``@run_date = D``,
so it sees the incidents as they stood on D (point-in-time: alert rows up to D only).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops.dates import as_date
from retentionops.files import jsonable
from retentionops.settings import Settings
from retentionops.warehouse import Warehouse


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class IncidentDay(TypedDict):
    day: str
    phase: str  # warmup | quiet | incident
    alert_flag: bool
    severity: str
    current_value: float
    incident_id: str | None
    opened_on: str | None
    resolved_on: str | None
    frozen_baseline: float | None
    relative_to_frozen_pct: float | None
    days_open: int | None
    incident_severity: str | None
    previous_severity: str | None
    peak_severity: str | None
    last_alert_day: str | None
    event: str | None  # open | update | escalate | de-escalate | resolve
    # slow drift beside SQL5: the share against the share drift_days before
    drift_compared_with: str | None
    drift_earlier_value: float | None
    drift_pct: float | None
    drift_flag: bool


def warmup_days(settings: Settings) -> int:
    """Days of order history before an alert may open an incident (0 = the rules' own
    horizon: a customer can be AT_RISK for at_risk_days, the baseline needs baseline_days)."""
    return settings.warmup_days or settings.at_risk_days + settings.baseline_days


def parameters(settings: Settings, from_date: dt.date, to_date: dt.date) -> dict[str, Any]:
    return {
        "from_date": from_date,
        "run_date": to_date,
        "warmup_days": warmup_days(settings),
        "incident_gap_days": settings.incident_gap_days,
        "resolve_after_days": settings.resolve_after_days,
        "deescalate_after_days": settings.deescalate_after_days,
        "threshold_warning": settings.threshold_warning_pct,
        "threshold_critical": settings.threshold_critical_pct,
        "drift_days": settings.drift_days,
        "drift_threshold": settings.drift_threshold_pct,
        "drift_opens": settings.drift_mode == "incident",
    }


def incident_days(
    warehouse: Warehouse, settings: Settings, from_date: dt.date, to_date: dt.date
) -> list[IncidentDay]:
    """The day rows of ``from_date``..``to_date`` as they stood on ``to_date``."""
    start, end = from_date, to_date
    rows = warehouse.query("incidents/incident_days", parameters(settings, start, end))
    return [jsonable(row) for row in sorted(rows, key=lambda r: r["day"])]  # type: ignore[misc]


def incident_on(warehouse: Warehouse, settings: Settings, day: dt.date) -> IncidentDay | None:
    """The incident state of one date (None: no alert history for it)."""
    rows = incident_days(warehouse, settings, day, day)
    return rows[0] if rows else None


def summarize(rows: list[IncidentDay]) -> list[dict[str, Any]]:
    """Group day rows into incidents, each with its days that carried an event."""
    incidents: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["incident_id"] is None:
            continue
        incident = incidents.setdefault(
            row["incident_id"],
            {
                "incident_id": row["incident_id"],
                "opened_on": row["opened_on"],
                "resolved_on": None,
                "pre_incident_baseline": row["frozen_baseline"],
                "peak_severity": row["peak_severity"],
                "last_alert_day": row["last_alert_day"],
                "days": 0,
                "events": [],
            },
        )
        incident["days"] += 1
        incident["peak_severity"] = row["peak_severity"]
        incident["last_alert_day"] = row["last_alert_day"]
        incident["resolved_on"] = row["resolved_on"] or incident["resolved_on"]
        if row["event"]:
            incident["events"].append(
                {
                    "day": row["day"],
                    "event": row["event"],
                    "severity": row["incident_severity"],
                    "current_value": row["current_value"],
                    "relative_to_baseline_pct": row["relative_to_frozen_pct"],
                }
            )
    return list(incidents.values())


def warmup_note(settings: Settings, first_order_date: dt.date, day: dt.date) -> str:
    """What the brief, the log and the CLI say of a warm-up day."""
    history = (day - first_order_date).days + 1
    starts = first_order_date + dt.timedelta(days=warmup_days(settings) - 1)
    return f"warm-up: {history} days of history; alerts start on {starts.isoformat()}"


def day_note(
    warehouse: Warehouse, settings: Settings, day: dt.date, incident: IncidentDay | None
) -> str | None:
    """Why a day has nothing to deliver, in words (None: it has an event, or no alert)."""
    if incident is None or incident["event"]:
        return None
    if incident["phase"] == "warmup":
        [history] = warehouse.query("maintenance/orders_range", {})
        return warmup_note(settings, history["first_order_date"], day)
    if incident["phase"] == "incident":
        return (
            f"incident {incident['incident_id']} open since {incident['opened_on']} (day "
            f"{incident['days_open']}, {incident['incident_severity']}); no change today, "
            "nothing to send"
        )
    return None


# -- the delivery ledger ----------------------------------------------------------------------


def delivered_at(warehouse: Warehouse, dedupe_key: str | None) -> str | None:
    """When the event with this key was first delivered (None: never)."""
    if not dedupe_key:
        return None
    rows = warehouse.query("incidents/read_delivery", {"dedupe_key": dedupe_key})
    return f"{rows[0]['delivered_at']:%Y-%m-%d %H:%M} UTC by {rows[0]['run_id']}" if rows else None


def incident_thread(
    warehouse: Warehouse, incident_id: str | None, rollout_mode: str
) -> dict[str, Any] | None:
    """The incident's ticket and Slack thread (its first delivery that got a ticket)."""
    if not incident_id:
        return None
    rows = warehouse.query(
        "incidents/read_incident_thread",
        {"incident_id": incident_id, "rollout_mode": rollout_mode},
    )
    return dict(rows[0]) if rows else None


def resolve_delivered(
    warehouse: Warehouse, incident_id: str | None, rollout_mode: str
) -> str | None:
    """When the incident's resolve reached people, in words (None: it has not)."""
    if not incident_id:
        return None
    rows = warehouse.query(
        "incidents/read_incident_resolve",
        {"incident_id": incident_id, "rollout_mode": rollout_mode},
    )
    if not rows:
        return None
    day, when = as_date(rows[0]["run_date"]), rows[0]["delivered_at"]
    return f"its resolve of {day} was delivered {when:%Y-%m-%d %H:%M} UTC"


LEDGER_TYPES = {"severity": "STRING", "ticket_id": "STRING", "slack_message_ts": "STRING"}


def record_delivery(
    warehouse: Warehouse, payload: dict[str, Any], answer: dict[str, Any], run_id: str
) -> None:
    """Record in the ledger that the payload's event reached the receiver."""
    warehouse.ensure_tables(("deliveries",))
    warehouse.execute_file(
        "incidents/record_delivery",
        {
            "dedupe_key": payload["dedupe_key"],
            "run_id": run_id,
            "run_date": as_date(payload["run_date"]),
            "incident_id": payload["incident"]["incident_id"],
            "event": payload["incident"]["event"],
            "severity": payload["severity"],
            "rollout_mode": payload["rollout_mode"],
            "resend": bool(payload["resend"]),
            "ticket_id": answer.get("ticket_id"),
            "slack_message_ts": answer.get("slack_message_ts"),
        },
        types=LEDGER_TYPES,
    )
