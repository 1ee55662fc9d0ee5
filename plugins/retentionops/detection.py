"""The detection layer (SQL1-SQL5) for one run date, and the alert decision it yields."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retentionops.dates import as_date
from retentionops.errors import UserError
from retentionops.settings import Settings
from retentionops.sql import detection_parameters
from retentionops.warehouse import Warehouse


class DetectionError(UserError):
    """Detection cannot give a decision for the date; the message says why."""


@dataclass(frozen=True)
class SqlStep:
    """One SQL file whose result replaces the run date's rows of one table.

    The DAG runs each step as one task named ``name`` (a ``BigQueryInsertJobOperator`` on
    BigQuery, a DuckDB task otherwise); the CLI and MCP run the same step in-process.
    """

    name: str
    sql_name: str
    table: str
    parameters: Callable[[Settings, Any], dict[str, Any]]


DETECTION_STEPS = (
    SqlStep(
        "base_customers", "detection/01_base_customers", "base_customers", detection_parameters
    ),
    SqlStep(
        "retention_snapshot",
        "detection/02_retention_snapshot",
        "retention_snapshot",
        detection_parameters,
    ),
    SqlStep(
        "churn_detection", "detection/03_churn_detection", "churn_detection", detection_parameters
    ),
    SqlStep(
        "cohort_retention_evolution",
        "detection/04_cohort_retention_evolution",
        "cohort_retention_evolution",
        detection_parameters,
    ),
    SqlStep("alert_logic", "detection/05_alert_logic", "alert_logic", detection_parameters),
)
ALERT_STEP = DETECTION_STEPS[-1]


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


def run_step(warehouse: Warehouse, settings: Settings, step: SqlStep, run_date: Any) -> int:
    """Replace the run date's rows of the step's table; return the rows written."""
    return warehouse.replace_partition(
        step.sql_name, table=step.table, params=step.parameters(settings, as_date(run_date))
    )


def verify_detection(warehouse: Warehouse, settings: Settings, run_date: Any) -> None:
    """In ``external`` mode: fail unless every detection table holds rows for the date."""
    day = as_date(run_date)
    empty = [step.table for step in DETECTION_STEPS if warehouse.count_rows(step.table, day) == 0]
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
            run_step(warehouse, settings, step, run_date)
    return stored_alert_decision(warehouse, settings, run_date)


def stored_alert_decision(
    warehouse: Warehouse, settings: Settings, run_date: Any
) -> dict[str, Any]:
    """Read the stored SQL5 row for the date."""
    day = as_date(run_date)
    rows = warehouse.query("detection/read_alert_decision", {"from_date": day, "run_date": day})
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


def chart_series(
    warehouse: Warehouse, settings: Settings, from_date: Any, to_date: Any
) -> list[dict[str, Any]]:
    """The SQL5 decisions of a range for a chart: the stored rows, computing only the gaps.

    Days already in ``alert_logic`` (every date the daily run has seen) are read, never
    recomputed; the days missing from it are computed in one SQL5 call spanning the first
    to the last missing day (one pass over the orders, like any range). Days before the
    first order have no row either way.
    """
    start, end = as_date(from_date), as_date(to_date)
    if start > end:
        raise DetectionError(f"--from {start} is after --to {end}")
    rows = warehouse.query("detection/read_alert_decision", {"from_date": start, "run_date": end})
    by_date = {row["alert_date"]: row for row in map(jsonable, rows)}
    days = (start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    missing = [day for day in days if day.isoformat() not in by_date]
    if missing:
        for row in alert_series(warehouse, settings, missing[0], missing[-1]):
            by_date.setdefault(row["alert_date"], row)
    return [by_date[day] for day in sorted(by_date)]
