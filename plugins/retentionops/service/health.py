"""The health operation (design 15): runs, webhook, exports, alert frequency, drift, the
events still owed and the days whose orders could not be trusted."""

from __future__ import annotations

from typing import Any

from retentionops import detection
from retentionops.dates import as_date
from retentionops.service.request import DateLike, DateRange
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse


def get_health(settings: Settings, from_date: DateLike, to_date: DateLike) -> dict[str, Any]:
    """Run, webhook and export health from ops_runs_log, and the alert frequency (incidents
    opened and alert days per month against alert_frequency_target_per_month) from the
    incident layer (design 15); and the events still owed to the team (the ledger), which
    the next run delivers first."""
    from retentionops import health, incidents, ledger

    span = DateRange.of(settings, from_date, to_date)
    start, end = span.start, span.end
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
