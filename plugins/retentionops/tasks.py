"""Task callables for the ``retention_ops`` DAG (embedded backend).

Plain functions: no Airflow import, so they are unit-tested directly. Each opens the
warehouse from the settings at run time (never at DAG parse time) and closes it when done.
``ds`` is the run date Airflow injects (the logical date, YYYY-MM-DD).
"""

from __future__ import annotations

import logging
from typing import Any

from retentionops import detection
from retentionops.settings import load_settings
from retentionops.warehouse import open_warehouse

log = logging.getLogger(__name__)


def create_tables() -> None:
    """Create every table that does not exist yet (idempotent DDL)."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        warehouse.ensure_tables()


def run_detection_step(table: str, ds: str | None = None) -> int:
    """Replace the run date's rows of one detection table (SQL1..SQL5)."""
    settings = load_settings()
    step = next(s for s in detection.DETECTION_STEPS if s.table == table)
    with open_warehouse(settings) as warehouse:
        written = detection.run_detection_step(warehouse, settings, step, ds)
    log.info("%s: %d row(s) written for %s", table, written, ds)
    return written


def verify_detection(ds: str | None = None) -> None:
    """``detection_mode: external``: fail clearly unless SQL1..SQL5 hold rows for ``ds``."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        detection.verify_detection(warehouse, settings, ds)


def get_alert_decision(ds: str | None = None) -> dict[str, Any]:
    """Return the SQL5 decision for the run date (pushed to XCom)."""
    settings = load_settings()
    with open_warehouse(settings) as warehouse:
        decision = detection.get_alert_decision(warehouse, settings, ds)
    log.info(
        "alert decision for %s: severity=%s alert_flag=%s current=%s baseline=%s",
        ds,
        decision["severity"],
        decision["alert_flag"],
        decision["current_value"],
        decision["baseline_value"],
    )
    return decision
