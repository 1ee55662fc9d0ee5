"""Housekeeping operations: the tables, the retention of old rows, and loading the
orders (design 6.1)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from retentionops.dates import as_date
from retentionops.service.request import Run
from retentionops.service.runlog import recorded
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse

if TYPE_CHECKING:
    from retentionops.orders import LoadResult

log = logging.getLogger(__name__)


def create_tables(settings: Settings) -> None:
    """Create every table that does not exist yet (idempotent DDL)."""
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()


def apply_retention(settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Remove each date's detection and queue rows ``retention_days`` after they were
    written (design 6.1); the audit log and the alert history are kept.

    Counting from the write time (the date's run marker), not from the date itself, a
    backfill of an old date survives as long as a fresh run, and the order in which dates
    run never changes what is kept.
    """
    from retentionops.sql import RETAINED_TABLES
    from retentionops.warehouse import (
        retention_cutoff,
        retention_parameters,
        retention_statements,
    )

    cutoff = retention_cutoff(settings, now or dt.datetime.now(dt.UTC))
    due_partitions, old_markers = retention_statements(settings)
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()
        with warehouse.atomic():
            # the newest date that can go bounds the query of the partitions due (BigQuery
            # prunes on it); the rule is per date, so whole partitions go
            [due] = warehouse.query("markers/read_retention_due", {"cutoff_ts": cutoff})
            params = retention_parameters(cutoff, due["latest_due"])
            partitions = warehouse.fetch(due_partitions, params)
            deleted = dict.fromkeys(RETAINED_TABLES, 0)
            for name in RETAINED_TABLES:
                mine = [p for p in partitions if p["table_name"] == name]
                warehouse.drop_partitions(name, sorted(p["partition_date"] for p in mine))
                deleted[name] = sum(int(p["row_count"]) for p in mine)
            # markers last: a run killed before this point finds the same dates due again
            deleted["run_markers"] = warehouse.execute_sql(old_markers, params)
    log.info("retention: removed rows written before %s: %s", cutoff.isoformat(), deleted)
    return deleted


def load_orders(
    settings: Settings,
    result: LoadResult,
    *,
    allow_empty: bool = False,
    allow_drops: bool = False,
    interface: str = "cli",
) -> dict[str, Any]:
    """Replace the orders with a cleaned file's (``orders.LoadResult``); say what changed.

    Refused, with the counts and nothing touched: a load that would leave no order (unless
    ``allow_empty``), or that dropped more than ``load_max_dropped_pct`` of the file's rows
    (unless ``allow_drops``); implausible orders follow ``implausible_orders``. Orders equal
    to the stored ones change nothing; otherwise only the derived rows of the dates the
    change reaches are deleted.
    """
    from retentionops.orders import check_load, require_one_row_per_order, screen_orders

    result = screen_orders(
        result,
        policy=settings.implausible_orders,
        min_date=as_date(settings.orders_min_date),
        max_date=dt.datetime.now(dt.UTC).date(),
    )
    check_load(
        result,
        max_dropped_pct=settings.load_max_dropped_pct,
        allow_empty=allow_empty,
        allow_drops=allow_drops,
    )
    run = Run.start(interface, "load_orders", None)
    with recorded(settings, run, "load_orders", None), open_warehouse(settings) as warehouse:
        require_one_row_per_order(result.orders)
        changed_from = warehouse.replace_orders(result.orders)
    return {
        "orders_loaded": len(result.orders),
        "changed_from": changed_from.isoformat() if changed_from else None,
        "unchanged": changed_from is None,
        "result": result,
    }
