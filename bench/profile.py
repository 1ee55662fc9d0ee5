"""Where the daily pack's time goes: ``python -m bench.profile [--size 1000000]``.

Runs each piece of the daily pack once in this process on a scratch copy of the cached
orders (after one warm-up pack, so the file is in the page cache and SQL is transpiled),
plus a few single-query variants that isolate the costs named in ``bench/ANALYSIS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from bench import data, runner, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    from retentionops import actions, detection, pack
    from retentionops.service import context as service_context
    from retentionops.settings import load_settings
    from retentionops.sql import detection_parameters
    from retentionops.warehouse import open_warehouse

    cached, _ = data.ensure_cached(runner.DEFAULT_CACHE, args.size)
    with tempfile.TemporaryDirectory(dir=runner.DEFAULT_CACHE) as tmp:
        path = data.working_copy(cached, Path(tmp))
        settings = load_settings(duckdb_path=str(path), artifacts_dir=str(Path(tmp) / "runs"))
        day = data.RUN_DATE

        def timed(label, fn):
            started = time.perf_counter()
            out = fn()
            print(f"{time.perf_counter() - started:7.2f} s  {label}", flush=True)
            return out

        with open_warehouse(settings) as wh:
            wh.con.execute("set enable_progress_bar = false")
            detection.run_detection(wh, settings, day)  # warm-up
            actions.build_priority_queue(wh, settings, day)
            for step in detection.DETECTION_STEPS[:-1]:
                timed(
                    f"detection {step.table}",
                    lambda s=step: detection.run_step(wh, settings, s, day),
                )
            steps.forget_history_of(wh.con, day)  # stored up to D-1, as the runs before D left
            detection.mark_complete(
                wh, day - dt.timedelta(days=1), detection.history_marker(settings)
            )
            timed(
                "detection alert_logic: D alone from the orders (a daily run before this)",
                lambda: detection.extend_history(wh, settings, day),
            )
            steps.forget_history_of(wh.con, day)
            timed(
                "detection alert_logic: the stored history extended by D (the daily case: "
                "SQL2's snapshot and the stored days)",
                lambda: detection.extend_history(wh, settings, day, snapshot=True),
            )
            timed(
                "detection alert_logic: the whole history (a fresh warehouse, new settings)",
                lambda: detection.run_step(wh, settings, detection.ALERT_STEP, day),
            )
            timed("build_priority_queue", lambda: actions.build_priority_queue(wh, settings, day))
            ctx = timed(
                "get_operational_context",
                lambda: service_context.operational_context(wh, settings, day),
            )
            chart_from = day - dt.timedelta(days=pack.CHART_DAYS - 1)
            timed(
                "alert_series 60 days (SQL5 over the chart's range, as before chart_series)",
                lambda: detection.alert_series(wh, settings, chart_from, day),
            )
            timed(
                "chart_series 60 days, D-59 .. D-1 not stored (one SQL5 range pass)",
                lambda: detection.chart_series(wh, settings, chart_from, day),
            )
            timed(
                "store alert_logic D-59 .. D-1 (what the previous daily runs did)",
                lambda: wh.replace_partition(
                    detection.ALERT_STEP.sql_name,
                    table=detection.ALERT_STEP.table,
                    params=detection_parameters(
                        settings, day - dt.timedelta(days=1), from_date=chart_from
                    ),
                ),
            )
            timed(
                "chart_series 60 days, stored (the daily case)",
                lambda: detection.chart_series(wh, settings, chart_from, day),
            )
            timed("render_brief_files (incl. the chart series)",
                  lambda: pack.render_brief_files(wh, settings, ctx, run_id="bench-profile"))
            timed(
                "record_audiences P1 P2 P3 (one task's clear, record and read)",
                lambda: actions.record_audiences(
                    wh, settings, day, ["P1", "P2", "P3"], "bench-profile"
                ),
            )
            from retentionops.warehouse import WHOLE_HISTORY

            timed(
                "a load's summary refresh, orders changed on D (the daily load)",
                lambda: wh.refresh_summaries(day),
            )
            timed(
                "a load's summary refresh, every order (the first load)",
                lambda: wh.refresh_summaries(WHOLE_HISTORY),
            )
            where = f"from orders where order_date <= date '{day}' group by customer_id"
            variants = {
                "floor: count(*), sum, max per customer":
                    f"select customer_id, count(*), sum(order_amount), max(order_date) {where}",
                "SQL1 before issue 15 (count(distinct order_id))":
                    "select customer_id, min(order_date), max(order_date), "
                    "count(distinct order_id), sum(order_amount), "
                    f"sum(order_amount) / count(distinct order_id), max(country) {where}",
                "SQL1 now (count(*): one row per order_id)":
                    "select customer_id, min(order_date), max(order_date), count(*), "
                    f"sum(order_amount), sum(order_amount) / count(*), max(country) {where}",
                "SQL5 before issue 15, first CTE: distinct (customer_id, order_date), all":
                    "select distinct customer_id, order_date from orders "
                    f"where order_date <= date '{day}'",
                "SQL5 before the orders' summaries: first order day per customer":
                    f"select customer_id, min(order_date) {where}",
                "SQL4 before the orders' summaries: distinct (customer_id, month) pairs":
                    "select distinct customer_id, date_trunc('month', order_date) from orders "
                    f"where order_date <= date '{day}'",
            }  # fmt: skip
            for label, sql in variants.items():
                timed(
                    f"query: {label}",
                    lambda q=sql: wh.con.execute(f"create or replace temp table v as {q}"),
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
