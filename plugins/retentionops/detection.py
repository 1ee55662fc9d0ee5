"""The detection layer (SQL1-SQL5) for one run date, and the alert decision it yields."""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from retentionops.settings import Settings
from retentionops.sql import detection_parameters, render
from retentionops.warehouse import Warehouse


class DetectionError(RuntimeError):
    """Detection cannot give a decision for the date; the message says why."""


@dataclass(frozen=True)
class DetectionStep:
    sql_name: str
    table: str
    partition_field: str

    @property
    def task_id(self) -> str:
        return self.table


DETECTION_STEPS = (
    DetectionStep("detection/01_base_customers", "base_customers", "snapshot_date"),
    DetectionStep("detection/02_retention_snapshot", "retention_snapshot", "snapshot_date"),
    DetectionStep("detection/03_churn_detection", "churn_detection", "snapshot_date"),
    DetectionStep(
        "detection/04_cohort_retention_evolution", "cohort_retention_evolution", "snapshot_date"
    ),
    DetectionStep("detection/05_alert_logic", "alert_logic", "alert_date"),
)
ALERT_STEP = DETECTION_STEPS[-1]


def as_date(value: Any) -> dt.date:
    """Accept a date, a datetime or an ISO string; say clearly what a bad date is."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise DetectionError(f"'{value}' is not a date; use YYYY-MM-DD") from None


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Make a warehouse row JSON- and XCom-friendly (ISO dates, floats)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal):
            value = float(value)
        out[key] = value
    return out


def run_detection_step(
    warehouse: Warehouse, settings: Settings, step: DetectionStep, run_date: Any
) -> int:
    """Replace the run date's rows of one detection table; return the rows written."""
    return warehouse.replace_partition(
        step.sql_name,
        table=step.table,
        partition_field=step.partition_field,
        params=detection_parameters(settings, as_date(run_date)),
    )


def verify_detection(warehouse: Warehouse, settings: Settings, run_date: Any) -> None:
    """In ``external`` mode: fail unless every detection table holds rows for the date."""
    day = as_date(run_date)
    empty = [
        step.table
        for step in DETECTION_STEPS
        if warehouse.count_rows(step.table, step.partition_field, day) == 0
    ]
    if empty:
        raise DetectionError(
            f"detection_mode is 'external' but {', '.join(empty)} hold(s) no rows for {day}: "
            "run the external SQL1-SQL5 job for that date first, or set detection_mode: managed"
        )


def run_detection(warehouse: Warehouse, settings: Settings, run_date: Any) -> dict[str, Any]:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision."""
    if settings.detection_mode == "external":
        verify_detection(warehouse, settings, run_date)
    else:
        for step in DETECTION_STEPS:
            run_detection_step(warehouse, settings, step, run_date)
    return get_alert_decision(warehouse, settings, run_date)


def get_alert_decision(warehouse: Warehouse, settings: Settings, run_date: Any) -> dict[str, Any]:
    """Read the stored SQL5 row for the date."""
    day = as_date(run_date)
    rows = warehouse.fetch(
        render("detection/read_alert_decision", settings), {"run_date": day}
    )
    if not rows:
        raise DetectionError(
            f"no alert decision stored for {day}: run detection for that date first "
            f"(`retentionops detect --date {day}`), and check that orders exist on or before it"
        )
    return jsonable(rows[0])


def alert_series(
    warehouse: Warehouse, settings: Settings, from_date: Any, to_date: Any
) -> list[dict[str, Any]]:
    """Compute the SQL5 decision for every date in a range in one set-based query."""
    start, end = as_date(from_date), as_date(to_date)
    if start > end:
        raise DetectionError(f"--from {start} is after --to {end}")
    rows = warehouse.query(
        ALERT_STEP.sql_name, detection_parameters(settings, end, from_date=start)
    )
    return [jsonable(row) for row in sorted(rows, key=lambda r: r["alert_date"])]
