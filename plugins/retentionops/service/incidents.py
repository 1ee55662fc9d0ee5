"""The incident operations: the incidents of a date range, and one date's incident state
(docs/incidents.md)."""

from __future__ import annotations

from typing import Any

from retentionops import detection
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.service.detection import data_warnings
from retentionops.service.request import DateLike, DateRange
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse


def list_incidents(settings: Settings, from_date: DateLike, to_date: DateLike) -> dict[str, Any]:
    """The incidents of a date range, as they stood on its last day, with their events;
    and every incident the team was told about (the ledger), opened by the range's end.

    Computes and stores the alert history it needs (one SQL5 pass) when detection has not.
    """
    from retentionops import incidents, ledger

    span = DateRange.of(settings, from_date, to_date)
    start, end = span.start, span.end
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


def get_incident(settings: Settings, run_date: DateLike) -> dict[str, Any]:
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
