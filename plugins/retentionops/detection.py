"""The detection layer (SQL1-SQL5) for one run date, and the alert decision it yields.

A date's downstream outputs (its priority queue and the queue's run marker; the exports and
brief files of the runs that read it) survive a new detection run of the date that comes
out identical: :func:`detect_date` reads a fingerprint of the date's detection rows in SQL
before and after (``markers/read_detection_fingerprint``: rows and an order-independent
hash per table) and removes the queue's marker only when they differ, or when there is
nothing to compare with (no complete detection before; ``detection_mode: external``, whose
rows another job wrote). Readers then refuse the queue until ``retentionops queue`` builds
it again. The exports and brief files of earlier runs stay either way: they are the record
of what those runs did, in their own folders.

On DuckDB a run is one transaction, so the comparison and the markers commit with the rows.
On BigQuery the CLI and MCP run the same code, job by job: the detection marker is removed
first and written last, so a run killed half-way leaves the date unreadable, and the next
run, finding no complete detection to compare with, rebuilds nothing but removes the queue's
marker. The DAG's BigQuery detection group does not compare: its ``start_detection`` job
clears both markers (``markers/clear_run_markers``), its SQL jobs rewrite the date's
partitions with ``WRITE_TRUNCATE`` and its queue task builds the queue again right after, so
there is nothing to keep.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retentionops.dates import as_date
from retentionops.errors import DetectionError
from retentionops.files import jsonable
from retentionops.settings import Settings
from retentionops.sql import (
    alert_history_parameters,
    alert_settings_fingerprint,
    detection_parameters,
)
from retentionops.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlStep:
    """One SQL file whose result replaces the run date's rows of one table.

    The DAG runs each step as one task named ``name`` (a ``BigQueryInsertJobOperator`` on
    BigQuery, a DuckDB task otherwise); the CLI and MCP run the same step in-process.
    """

    name: str
    sql_name: str
    table: str
    #: (settings, run date[, first date of a history step]) -> the query's parameters
    parameters: Callable[..., dict[str, Any]]
    #: the step rewrites every date up to the run date (``@from_date``..``@run_date``)
    history: bool = False


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
    SqlStep(
        "alert_logic",
        "detection/05_alert_logic",
        "alert_logic",
        alert_history_parameters,
        history=True,
    ),
)
ALERT_STEP = DETECTION_STEPS[-1]
#: SQL5 of a daily run, which finds the history stored up to the day before: the run date's
#: value from SQL2's snapshot of it, the baseline from the stored rows; no orders are read.
ALERT_DAILY_STEP = SqlStep(
    "alert_logic_daily", "detection/05_alert_logic_daily", "alert_logic", detection_parameters
)


def run_step(warehouse: Warehouse, settings: Settings, step: SqlStep, run_date: dt.date) -> int:
    """Replace the run date's rows of the step's table; return the rows written."""
    return warehouse.replace_partition(
        step.sql_name, table=step.table, params=step.parameters(settings, run_date)
    )


#: The steps of a run date that its run markers vouch for.
DETECTION_MARKER = "detection"
QUEUE_MARKER = "customer_priority"


def clear_markers(warehouse: Warehouse, run_date: dt.date) -> None:
    """Forget that the date's detection and queue are complete (the DAG's BigQuery
    ``start_detection`` job runs the same file: its queue task rebuilds the queue)."""
    warehouse.execute_file("markers/clear_run_markers", {"run_date": run_date})


def clear_marker(warehouse: Warehouse, run_date: dt.date, step: str) -> None:
    """Forget that ``step`` of the date is complete."""
    warehouse.execute_file(
        "markers/clear_step_marker", {"run_date": run_date, "step": step}
    )


#: Per detection table, its rows of a date: (row count, order-independent hash).
Fingerprint = dict[str, tuple[int, int]]


def detection_fingerprint(warehouse: Warehouse, run_date: dt.date) -> Fingerprint:
    """The fingerprint of the date's SQL1-SQL5 rows, computed in SQL (a table without rows
    of the date is absent)."""
    rows = warehouse.query("markers/read_detection_fingerprint", {"run_date": run_date})
    return {row["table_name"]: (int(row["row_count"]), int(row["fingerprint"])) for row in rows}


def changed_tables(before: Fingerprint, after: Fingerprint) -> list[str]:
    """The detection tables whose rows of the date differ between two fingerprints."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def downstream_note(day: dt.date, changed: list[str] | None, *, queued: bool, why: str) -> str:
    """What a detection run did to the date's downstream outputs, in one line.

    ``changed``: the tables whose rows changed (empty: identical; None: not comparable, and
    ``why`` says why); ``queued``: the date had a complete queue before the run.
    """
    if not queued:
        return f"none: no queue of {day} to keep"
    if changed == []:
        return "kept: detection unchanged"
    reason = f"detection changed in {', '.join(changed)}" if changed else why
    return (
        f"invalidated: {reason} (queue of {day} removed; rebuild with "
        f"retentionops queue --date {day})"
    )


def mark_complete(warehouse: Warehouse, run_date: dt.date, step: str) -> None:
    """Record that ``step`` of the date is complete (written after the step's tables)."""
    warehouse.execute_file(
        "markers/mark_step_complete", {"run_date": run_date, "step": step}
    )


def completed_steps(warehouse: Warehouse, run_date: dt.date) -> set[str]:
    """The steps of the date whose markers say they are complete (none on a fresh file);
    the alert-history marker is about every date up to this one, not a step of it."""
    from retentionops.warehouse import WarehouseError

    try:
        rows = warehouse.query("markers/read_run_markers", {"run_date": run_date})
    except WarehouseError:  # no marker table yet: nothing was ever completed
        return set()
    return {row["step"] for row in rows if not row["step"].startswith(HISTORY_MARKER_PREFIX)}


def queue_missing(day: dt.date) -> str:
    """What to say when a date's queue is needed but was never built (every interface)."""
    return (
        f"no priority queue for {day}: build it first (`retentionops queue --date {day}`, "
        f"the MCP tool build_priority_queue({day}), or a DAG run for that date)"
    )


def require_queue(warehouse: Warehouse, day: dt.date) -> None:
    """Refuse to read a date whose detection or queue is missing or incomplete."""
    done = completed_steps(warehouse, day)
    if DETECTION_MARKER not in done:
        raise DetectionError(detection_missing(day))
    if QUEUE_MARKER not in done:
        raise DetectionError(queue_missing(day))


def verify_detection(warehouse: Warehouse, settings: Settings, day: dt.date) -> None:
    """In ``external`` mode: fail unless every detection table holds rows for the date."""
    empty = [step.table for step in DETECTION_STEPS if warehouse.count_rows(step.table, day) == 0]
    if empty:
        raise DetectionError(
            f"detection_mode is 'external' but {', '.join(empty)} hold(s) no rows for {day}: "
            "run the external SQL1-SQL5 job for that date first, or set detection_mode: managed"
        )


#: The run-marker steps of the alert history start with this (include/sql/markers/ too).
HISTORY_MARKER_PREFIX = "alert_history@"


def history_marker(settings: Settings) -> str:
    """The run-marker step saying "SQL5's rows are stored for every date up to this one,
    computed with these settings" (the step name carries the settings' fingerprint)."""
    return f"{HISTORY_MARKER_PREFIX}{alert_settings_fingerprint(settings)}"


def history_covered_to(warehouse: Warehouse, settings: Settings) -> dt.date | None:
    """The last date up to which the alert history is stored with the current settings
    (None: not stored). A load that changes orders from a date on clears the markers of
    that date and later, so the coverage drops to before it."""
    from retentionops.warehouse import WarehouseError

    try:
        [row] = warehouse.query("markers/read_history_coverage", {"step": history_marker(settings)})
    except WarehouseError:  # no marker table yet
        return None
    return as_date(row["covered_to"]) if row["covered_to"] is not None else None


def history_start(covered: dt.date | None, to_date: dt.date) -> dt.date | None:
    """The first date whose SQL5 row a run up to ``to_date`` computes, given the date the
    stored alert history covers (``history_covered_to``): the one rule of "which dates",
    for the DuckDB runs (:func:`extend_history`) and the BigQuery DAG's SQL5 job
    (:func:`history_from_date`).

    - nothing stored (a fresh warehouse, a load that changed the first orders, other
      settings): ``date.min``, the whole history;
    - stored up to a date before ``to_date``: the day after it (a daily run: ``to_date``);
    - stored up to ``to_date`` or later (a rerun, a backfill of an earlier date): None,
      nothing to compute.
    """
    if covered is None:
        return dt.date.min
    if covered >= to_date:
        return None
    return covered + dt.timedelta(days=1)


def history_from_date(warehouse: Warehouse, settings: Settings, day: dt.date) -> dt.date | None:
    """The ``@from_date`` of the SQL5 job that extends the stored history to ``day``
    (None: already stored, nothing to compute): :func:`history_start` of the stored
    coverage, as the job's parameters carry it (the whole history starts at
    ``date.min`` + ``baseline_days`` + ``at_risk_days``, so that SQL5's order window is a
    valid date; ``sql.detection_parameters``)."""
    start = history_start(history_covered_to(warehouse, settings), day)
    if start is None:
        return None
    from_date: dt.date = alert_history_parameters(settings, day, from_date=start)["from_date"]
    return from_date


def alert_step(start: dt.date, to_date: dt.date, *, snapshot: bool) -> SqlStep:
    """The SQL5 file that computes the dates ``start``..``to_date``: a daily run (the one
    date after the stored history) whose SQL2 snapshot of the date is stored takes
    ``05_alert_logic_daily`` (no orders read); anything else the orders-based pass."""
    return ALERT_DAILY_STEP if snapshot and start == to_date else ALERT_STEP


def extend_history(
    warehouse: Warehouse, settings: Settings, day: dt.date, *, snapshot: bool = False
) -> dt.date | None:
    """Store SQL5's rows up to ``day``: only the dates after the stored coverage (all
    of them on a fresh warehouse, after a load that changed old orders, or after a change of
    the settings SQL5 depends on), in one set-based pass; mark the new coverage.

    ``snapshot``: SQL2's rows of ``day`` are stored with the current settings (a
    detection run, after its SQL2). A daily run, which finds the history stored up to the
    day before, then computes the date from them and the stored baseline days, without
    reading the orders (:func:`alert_step`); the rows are the same either way.

    Exact, not an approximation: each date's row depends on the orders up to that date and
    on the settings only, and both invalidations remove the marker. Returns the first date
    computed (None: already stored; ``date.min``: the whole history): :func:`history_start`.
    """
    start = history_start(history_covered_to(warehouse, settings), day)
    if start is None:
        return None
    step = alert_step(start, day, snapshot=snapshot)
    warehouse.ensure_tables(("alert_logic", "run_markers"))
    with warehouse.atomic():
        # one table holds the rows: coverage under other settings no longer holds
        warehouse.execute_file(
            "markers/clear_other_history_markers", {"step": history_marker(settings)}
        )
        warehouse.replace_partition(
            step.sql_name, table=step.table, params=step.parameters(settings, day, start)
        )
        mark_complete(warehouse, day, history_marker(settings))
    return start


def ensure_summaries(warehouse: Warehouse, day: dt.date) -> bool:
    """After SQL1 of the date: rebuild the orders' summaries (SQL4's and SQL5's input) if
    they disagree with the orders on the customers or the orders up to the date; True if
    rebuilt.

    Every load keeps them with the orders, so they disagree only after another writer
    added or removed orders, or on a warehouse loaded by a version that kept none. The
    alert history stored from the old summaries is forgotten too (its markers removed), so
    it is computed again.
    """
    from retentionops.warehouse import WHOLE_HISTORY

    # a dataset older than the summaries gets them (empty here: the check then rebuilds)
    warehouse.ensure_tables(("first_orders", "cohort_activity"))
    [row] = warehouse.query("maintenance/check_summaries", {"run_date": day})
    counts = {
        kind: (row[f"{kind}_from_orders"], row[f"{kind}_from_summaries"])
        for kind in ("customers", "orders")
    }
    if all(orders == summaries for orders, summaries in counts.values()):
        return False
    log.warning(
        "the orders' summaries (cohort_activity) count %s up to %s where the orders have %s: "
        "rebuilding them from the orders (were the orders written without "
        "`retentionops load-orders`?)",
        " and ".join(f"{summaries} {kind}" for kind, (_, summaries) in counts.items()),
        day,
        " and ".join(f"{orders} {kind}" for kind, (orders, _) in counts.items()),
    )
    with warehouse.atomic():
        warehouse.refresh_summaries(WHOLE_HISTORY)
        # no history marker is named "": every one is "other" and goes
        warehouse.execute_file("markers/clear_other_history_markers", {"step": ""})
    return True


@dataclass(frozen=True)
class DetectionRun:
    """What a detection run of a date gave: SQL5's decision, and what became of the date's
    downstream outputs (:func:`downstream_note`)."""

    decision: dict[str, Any]
    downstream: str


def run_detection(warehouse: Warehouse, settings: Settings, run_date: dt.date) -> dict[str, Any]:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision
    (:func:`detect_date`, whose ``downstream`` a caller rebuilding the queue needs not)."""
    return detect_date(warehouse, settings, run_date).decision


def detect_date(warehouse: Warehouse, settings: Settings, day: dt.date) -> DetectionRun:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision
    and what became of the date's queue.

    SQL1-SQL4 write the date's partition; SQL5's alert history is extended to the date
    (incremental: the dates already stored with the same settings are kept, since each
    date's row depends on the orders up to it only; a daily run computes its one date from
    SQL2's snapshot and the stored baseline days, reading no orders). All or nothing: on
    DuckDB the tables and the markers commit in one transaction; on BigQuery the marker,
    written last, is what readers require. The queue's marker stays when the date's rows
    come out identical (the module docstring).
    """
    warehouse.ensure_tables(("run_markers",))
    with warehouse.atomic():
        done = completed_steps(warehouse, day)
        external = settings.detection_mode == "external"
        # what the queue was built from: the rows a complete detection vouched for
        before = (
            detection_fingerprint(warehouse, day)
            if DETECTION_MARKER in done and not external
            else None
        )
        clear_marker(warehouse, day, DETECTION_MARKER)
        if external:
            verify_detection(warehouse, settings, day)
        else:
            base, *others = DETECTION_STEPS[:-1]
            run_step(warehouse, settings, base, day)
            ensure_summaries(warehouse, day)
            for step in others:
                run_step(warehouse, settings, step, day)
            extend_history(warehouse, settings, day, snapshot=True)
        changed = (
            changed_tables(before, detection_fingerprint(warehouse, day))
            if before is not None
            else None
        )
        if changed != []:
            clear_marker(warehouse, day, QUEUE_MARKER)
        mark_complete(warehouse, day, DETECTION_MARKER)
    why = (
        "detection_mode is external: the rows another job wrote are not compared"
        if external
        else f"no complete detection of {day} to compare with"
    )
    downstream = downstream_note(day, changed, queued=QUEUE_MARKER in done, why=why)
    return DetectionRun(stored_alert_decision(warehouse, settings, day), downstream)


def detection_missing(day: dt.date) -> str:
    """What to say when a date's detection is missing or incomplete (every interface)."""
    return (
        f"detection for {day} is missing or incomplete: run it (`retentionops detect --date "
        f"{day}` or `retentionops queue --date {day}`, the MCP tool build_priority_queue, or "
        "a DAG run for that date)"
    )


def stored_alert_decision(
    warehouse: Warehouse, settings: Settings, day: dt.date
) -> dict[str, Any]:
    """Read the stored SQL5 row of a date whose detection is complete."""
    if DETECTION_MARKER not in completed_steps(warehouse, day):
        raise DetectionError(detection_missing(day))
    rows = warehouse.query("detection/read_alert_decision", {"from_date": day, "run_date": day})
    if not rows:
        raise DetectionError(f"no orders on or before {day}: there is nothing to decide")
    return jsonable(rows[0])


def alert_series(
    warehouse: Warehouse, settings: Settings, from_date: dt.date, to_date: dt.date
) -> list[dict[str, Any]]:
    """Compute the SQL5 decision for every date in a range in one set-based query."""
    start, end = from_date, to_date
    if start > end:
        raise DetectionError(f"--from {start} is after --to {end}")
    days = (end - start).days + 1
    if days > settings.max_range_days:
        raise DetectionError(
            f"the range {start}..{end} covers {days:,} days; at most {settings.max_range_days:,} "
            "(max_range_days) at once: ask for a shorter range"
        )
    rows = warehouse.query(
        ALERT_STEP.sql_name, detection_parameters(settings, end, from_date=start)
    )
    return [jsonable(row) for row in sorted(rows, key=lambda r: r["alert_date"])]


def chart_series(
    warehouse: Warehouse, settings: Settings, from_date: dt.date, to_date: dt.date
) -> list[dict[str, Any]]:
    """The SQL5 decisions of a range for a chart: the stored rows, computing only the gaps.

    Days already in ``alert_logic`` (every date the daily run has seen) are read, never
    recomputed; the days missing from it are computed in one SQL5 call spanning the first
    to the last missing day (one pass over the orders, like any range). Days before the
    first order have no row either way.
    """
    start, end = from_date, to_date
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
