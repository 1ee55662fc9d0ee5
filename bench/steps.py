"""The measured steps: the product's (driven through its Python API), and the floor.

Every step runs in a fresh worker process (``bench.worker``); the clock covers opening the
warehouse, the step and closing it. Module imports are done before the clock starts (they
are a per-process constant, measured separately as DAG parse / import time); SQL
transpilation (sqlglot, cached per process and on disk) is inside the clock, as in an
Airflow task.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from retentionops.vocabulary import TIERS

#: Product steps in the order they run (each later step needs the earlier ones' tables).
PRODUCT_STEPS = ("detection", "priority", "exports_brief", "daily_pack", "history")
REFERENCE_STEPS = ("floor", "peer_pack", "peer_history")
STEP_TITLES = {
    "floor": "floor: one DuckDB pass, orders aggregated per customer",
    "detection": "(1) detection SQL1-SQL5 for one date",
    "history": "(2) 365-day alert history (alert_series)",
    "priority": "(3) customer_priority for one date",
    "exports_brief": "(4) P1-P3 CSV exports + brief (md/slack/email + chart)",
    "daily_pack": "(5) whole daily pack (1 + 3 + 4)",
    "peer_pack": "peer: pandas daily pack (facts, status, signals, tiers, CSV exports)",
    "peer_history": "peer: pandas 365-day alert history (loop over dates)",
}
HISTORY_DAYS = 365


def preload(step: str) -> None:
    """Import what a step uses, so the clock measures work, not module loading."""
    import duckdb  # noqa: F401

    if step in PRODUCT_STEPS or step == "previous_decisions":
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.dates  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import sqlglot  # noqa: F401

        from retentionops import actions, brief, detection, exports, pack  # noqa: F401
        from retentionops.warehouse import open_warehouse  # noqa: F401
    else:
        import numpy  # noqa: F401
        import pandas  # noqa: F401


def _settings(spec: dict[str, Any]):
    from retentionops.settings import load_settings

    # no incident holdout: the pandas peer exports each tier whole, so both do the same work
    # (an incident's draw is one INSERT over the date's queue, measured by the SQL tests)
    return load_settings(
        duckdb_path=spec["duckdb_path"], artifacts_dir=spec["artifacts_dir"], holdout_pct=0.0
    )


def floor(spec: dict[str, Any]) -> dict[str, Any]:
    """Read every order once, aggregate per customer, materialise the result."""
    import duckdb

    con = duckdb.connect(spec["duckdb_path"])
    try:
        con.execute("set enable_progress_bar = false")
        con.execute(
            """
            create or replace table bench_floor as
            select
                customer_id,
                count(*) as orders,
                sum(order_amount) as revenue,
                max(order_date) as last_order_date
            from orders
            where order_date <= $run_date
            group by customer_id
            """,
            {"run_date": dt.date.fromisoformat(spec["run_date"])},
        )
        (customers,) = con.execute("select count(*) from bench_floor").fetchone()
    finally:
        con.close()
    return {"customers": int(customers)}


def previous_decisions(spec: dict[str, Any]) -> dict[str, Any]:
    """Store the alert history up to D-1, as the daily runs before D did.

    A setup (untimed in the tables): it makes the warehouse look like one the DAG has run
    on every day (``alert_logic`` of every date up to D-1 and its history marker), so the
    daily run for D computes SQL5 for D only and the brief's chart reads the stored days.
    Its time is the cost of the whole history on a fresh warehouse (one SQL5 pass).
    """
    from retentionops.detection import extend_history
    from retentionops.warehouse import open_warehouse

    settings = _settings(spec)
    end = dt.date.fromisoformat(spec["run_date"]) - dt.timedelta(days=1)
    with open_warehouse(settings) as wh:
        extend_history(wh, settings, end)
        (days,) = wh.con.execute(
            "select count(*) from alert_logic where alert_date <= ?", [end]
        ).fetchone()
    return {"days": int(days), "to_date": end.isoformat()}


def forget_history_of(con: Any, day: dt.date) -> None:
    """Leave the alert history stored up to D-1 only (its marker of D removed)."""
    from retentionops.detection import HISTORY_MARKER_PREFIX

    con.execute(
        "delete from run_markers where run_date = ? and starts_with(step, ?)",
        [day, HISTORY_MARKER_PREFIX],
    )


def forget_run_of(con: Any, day: dt.date, tables: tuple[str, ...]) -> None:
    """Remove D's rows of ``tables`` (derived tables, or run_markers: all of D's markers,
    the history marker of D included) and checkpoint, so the timed step does not pay for
    the deletion (nor replay it from the write-ahead log when it opens the file)."""
    from retentionops.sql import table

    existing = {
        name for (name,) in con.execute("select table_name from duckdb_tables()").fetchall()
    }
    for name in (name for name in tables if name in existing):  # none before the first run
        con.execute(f"delete from {name} where {table(name).partition_field} = ?", [day])
    con.execute("checkpoint")


def prepare(spec: dict[str, Any]) -> None:
    """Before a step that builds D's tables: the warehouse as the morning of D finds it.

    Each repeat runs on the same scratch warehouse, where the previous repeat left D's
    rows. Without this, the repeats after the first would be reruns of D: SQL5 would find
    D's history stored and compute none of it, and SQL1-SQL4 and the queue would first
    delete the rows they replace. On a morning none of D's rows or markers exist yet and
    the alert history is stored up to D-1: detection and the daily pack start from there
    (every derived table and marker of D removed); the priority step from D's detection
    (the queue and its marker removed).
    """
    from retentionops.detection import QUEUE_MARKER
    from retentionops.sql import DERIVED_TABLES

    if spec["step"] not in ("detection", "daily_pack", "priority"):
        return
    import duckdb

    day = dt.date.fromisoformat(spec["run_date"])
    with duckdb.connect(spec["duckdb_path"]) as con:
        if spec["step"] == "priority":
            con.execute(
                "delete from run_markers where run_date = ? and step = ?", [day, QUEUE_MARKER]
            )
            forget_run_of(con, day, ("customer_priority",))
        else:
            forget_run_of(con, day, DERIVED_TABLES)


def _detection(wh, settings, day) -> dict[str, Any]:
    from retentionops import detection

    decision = detection.run_detection(wh, settings, day)
    return {"decision": decision}


def _priority(wh, settings, day) -> dict[str, Any]:
    from retentionops import actions

    return {"tier_counts": actions.build_priority_queue(wh, settings, day)}


def _exports_brief(settings, day) -> dict[str, Any]:
    """The brief and every tier's export, through the operations the DAG's tasks call."""
    from retentionops import service

    run = service.Run.of_dag(f"bench__{day}")  # a part of a run: no run-log row of its own
    # read once, as in a DAG run: the brief takes the context its task computed (XCom)
    ctx = service.get_operational_context(settings, day)
    brief = service.generate_brief(settings, day, "slack", run=run, context=ctx)
    exported = {e["tier"]: e for e in service.export_audiences(settings, day, list(TIERS), run=run)}
    return {
        "context_tier_counts": {t: ctx["tiers"][t]["count"] for t in TIERS},
        "brief_files": sorted(brief["files"]),
        "export_rows": {t: int(e["row_count"]) for t, e in exported.items()},
        "export_links": {t: e["link"] for t, e in exported.items()},
    }


def product(spec: dict[str, Any]) -> dict[str, Any]:
    """One product step: detection, history, priority, exports_brief or daily_pack."""
    from retentionops import detection
    from retentionops.warehouse import open_warehouse

    step = spec["step"]
    settings = _settings(spec)
    day = dt.date.fromisoformat(spec["run_date"])
    if step == "exports_brief":
        return _exports_brief(settings, day)
    if step == "daily_pack":
        with open_warehouse(settings) as wh:
            built = {**_detection(wh, settings, day), **_priority(wh, settings, day)}
        return {**built, **_exports_brief(settings, day)}
    with open_warehouse(settings) as wh:
        if step == "detection":
            return _detection(wh, settings, day)
        if step == "priority":
            return _priority(wh, settings, day)
        if step == "history":
            start = day - dt.timedelta(days=HISTORY_DAYS - 1)
            series = detection.alert_series(wh, settings, start, day)
            return {"series": series}
    raise ValueError(f"unknown product step {step!r}")
