"""The detection operations: SQL1-SQL5 of a date, its alert decision, the orders'
freshness and the alert series (design 8.2, ``include/sql/detection/``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from retentionops import actions, detection, freshness
from retentionops.dates import as_date
from retentionops.errors import ServiceError, UserError
from retentionops.service.request import DateLike, Run
from retentionops.service.runlog import recorded
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse


def data_warnings(warehouse: Any, settings: Settings, day: dt.date) -> list[str]:
    """What a person should know about a date outside the order history (empty: nothing)."""
    [history] = warehouse.query("maintenance/orders_range", {})
    first, last = history["first_order_date"], history["last_order_date"]
    if last is None:
        return ["the warehouse holds no orders: load them first (`retentionops load-orders`)"]
    if day < first:
        return [f"{day} is before the first order ({first}): the orders cover {first}..{last}"]
    if day > last:
        gap = (day - last).days
        note = (
            f"the orders end on {last}, {gap} day(s) before {day}: every customer ages "
            "without new orders"
        )
        if gap > settings.at_risk_days:
            note += "; by now every customer is INACTIVE. Is the order history up to date?"
        return [note]
    return []


def detect(
    settings: Settings, run_date: DateLike, *, run: Run | None = None, interface: str = "cli"
) -> dict[str, Any]:
    """Compute (managed) or verify (external) SQL1-SQL5 for the date; return the decision.

    All five tables and the run marker of the date are written all or nothing. The date's
    queue (and with it its brief and exports) stays when the rows come out identical;
    ``downstream`` says whether it was kept or invalidated (``detection.detect_date``).
    """
    day = as_date(run_date)
    run = run or Run.start(interface, "detect", day)
    with recorded(settings, run, "detect", day) as outcome, open_warehouse(settings) as warehouse:
        detected = detection.detect_date(warehouse, settings, day)
        outcome.decision = {
            **detected.decision,
            "data_freshness": freshness.orders_freshness(warehouse, settings, day),
        }
        warnings = data_warnings(warehouse, settings, day)
    answer = {**outcome.decision, "downstream": detected.downstream}
    return {**answer, "warnings": warnings} if warnings else answer


def check_summaries(settings: Settings, run_date: DateLike) -> bool:
    """After SQL1 of the date (the BigQuery DAG's task between SQL1 and SQL2-SQL5): rebuild
    the orders' summaries if they disagree with the orders (``detection.ensure_summaries``,
    which a DuckDB run calls itself); True if they were rebuilt."""
    with open_warehouse(settings) as warehouse:
        return detection.ensure_summaries(warehouse, as_date(run_date))


def alert_history_from(settings: Settings, run_date: DateLike) -> str | None:
    """The first date the run's SQL5 job computes, as its ``@from_date`` (ISO), from the
    stored alert history: the day after the stored coverage, the whole history when none is
    stored, None when the history already covers the date (``detection.history_start``).

    The BigQuery DAG's branch ``history_from_date`` picks SQL5's job with it and hands it
    to the range job (XCom ``from_date``), so a daily run computes its own date only, as a
    DuckDB run does (``detection.extend_history``, ``detection.alert_step``)."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        start = detection.history_from_date(warehouse, settings, day)
    return start.isoformat() if start is not None else None


def last_delivered_run(settings: Settings, run_date: DateLike) -> str | None:
    """The last run before the date whose playbook reached people (ISO; None: none), which
    the date's queue compares itself with: the BigQuery DAG reads it before the queue's
    job and passes it as ``@previous_run_date`` (``actions.last_delivered_run``)."""
    with open_warehouse(settings, read_only=True) as warehouse:
        day = actions.last_delivered_run(warehouse, as_date(run_date))
    return day.isoformat() if day is not None else None


def get_alert_decision(settings: Settings, run_date: DateLike) -> dict[str, Any]:
    """The SQL5 decision for the date: the stored row, else computed from the orders.

    ``source`` says which: ``stored`` (detection is complete for the date) or ``computed``
    (the same SQL5 query, read-only, on the orders up to the date). ``warnings`` appear
    when the date lies outside the order history.
    """
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        warnings = data_warnings(warehouse, settings, day)
        try:
            decision = {
                **detection.stored_alert_decision(warehouse, settings, day),
                "source": "stored",
            }
        except UserError:
            rows = detection.alert_series(warehouse, settings, day, day)
            if not rows:
                raise ServiceError(
                    f"no orders on or before {day}: there is nothing to decide"
                    + (f" ({warnings[0]})" if warnings else "")
                ) from None
            decision = {**rows[0], "source": "computed"}
        decision["data_freshness"] = freshness.orders_freshness(warehouse, settings, day)
    return {**decision, "warnings": warnings} if warnings else decision


def data_freshness(settings: Settings, run_date: DateLike) -> freshness.Freshness:
    """Can a run for the date trust the orders (late, missing, short)? The DAG's
    ``wait_for_orders`` asks this before detection; every decision carries it."""
    with open_warehouse(settings, read_only=True) as warehouse:
        return freshness.orders_freshness(warehouse, settings, as_date(run_date))


def alert_series(
    settings: Settings, from_date: DateLike, to_date: DateLike
) -> list[dict[str, Any]]:
    """The SQL5 decision of every date of a range, in one set-based query (read-only)."""
    with open_warehouse(settings, read_only=True) as warehouse:
        return detection.alert_series(warehouse, settings, as_date(from_date), as_date(to_date))
