"""Run the package's queries on two engines and compare the results row by row.

* DuckDB: the real ``DuckDBWarehouse`` and the package's own functions (detection steps,
  ``build_priority_queue``, ``write_run_log``), i.e. the embedded backend as the DAG runs it.
* ZetaSQL: Google's reference implementation of GoogleSQL, running the very text the
  BigQuery backend sends (``render`` with ``warehouse_backend='bigquery'``) with the query
  parameters of the BigQuery job, over tables held in memory. Each step's result replaces
  the step's date in its table, as ``table$YYYYMMDD`` with WRITE_TRUNCATE would.

Both engines start from the same orders: the rows DuckDB stored (NUMERIC as DECIMAL(38, 9)).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from retentionops.sql import bigquery_query_parameters, table_refs

from . import prod_zetasql

#: FLOAT64 columns that hold values rounded in exact integer arithmetic (basis points / 100,
#: percent to 2 decimals): they must agree exactly, not merely to 1e-9.
EXACT_FLOATS = frozenset(
    {"current_value", "baseline_value", "delta_pct", "delta_relative_pct", "threshold_warning",
     "threshold_critical", "retention_rate", "avg_days_between_orders"}
)  # fmt: skip
#: The time the statement ran (CURRENT_TIMESTAMP()): the one value that may differ.
RUN_TIME_COLUMNS = frozenset({"created_at"})
FLOAT_TOLERANCE = 1e-9
#: the date column of each derived table (the BigQuery partitioning column)
PARTITION_FIELDS = {
    "base_customers": "snapshot_date",
    "retention_snapshot": "snapshot_date",
    "churn_detection": "snapshot_date",
    "cohort_retention_evolution": "snapshot_date",
    "alert_logic": "alert_date",
    "customer_priority": "run_date",
}


class ZetaWarehouse:
    """The BigQuery side: tables in memory, every statement run by the reference engine."""

    def __init__(self, service, analysed, settings) -> None:
        self.service = service
        self.analysed = analysed
        self.settings = settings  # warehouse_backend='bigquery'; thresholds as the DuckDB side
        self.refs = {name: ref.strip("`") for name, ref in table_refs(settings).items()}
        self.contents: dict[str, list[dict[str, Any]]] = {ref: [] for ref in self.refs.values()}

    def columns(self, logical: str) -> list[tuple[str, str]]:
        return self.analysed.analysis.tables[self.refs[logical]]

    def query(self, sql_name: str, values: dict[str, Any], types=None) -> list[dict[str, Any]]:
        text = self.analysed.texts[sql_name]
        parameters = prod_zetasql.job_parameters(bigquery_query_parameters(text, values, types))
        # only the tables the statement names travel into the engine
        contents = {ref: rows for ref, rows in self.contents.items() if f"`{ref}`" in text}
        if self.refs["ops_health_daily"] in contents:
            contents[self.refs["ops_health_daily"]] = self.health_view()
        return prod_zetasql.evaluate(
            self.service,
            f"include/sql/{sql_name}.sql",
            text,
            parameters,
            self.analysed.analysis.tables,
            contents,
        )

    def replace_partition(self, sql_name, *, table, partition_field, params) -> list[dict]:
        rows = self.query(sql_name, params)
        start, end = params.get("from_date", params["run_date"]), params["run_date"]
        ref = self.refs[table]
        kept = [r for r in self.contents[ref] if not start <= r[partition_field] <= end]
        self.contents[ref] = kept + rows
        return rows

    def keep_only(self, days: set[dt.date]) -> None:
        """Drop other dates of the per-customer tables (orders and alert_logic stay whole).

        The engine is a reference implementation, not a fast one: a long run over many
        dates keeps the run date and the date before it, so every ``= @run_date`` filter
        still has another date's rows to exclude.
        """
        for table, field in PARTITION_FIELDS.items():
            if table == "alert_logic":
                continue  # one row per date: kept whole
            ref = self.refs[table]
            self.contents[ref] = [r for r in self.contents[ref] if r[field] in days]

    def health_view(self) -> list[dict[str, Any]]:
        """ops_health_daily is a view: its body runs on the engine over ops_runs_log."""
        view = self.analysed.statement("ddl/create_ops_health_daily")
        ref = self.refs["ops_runs_log"]
        return prod_zetasql.evaluate(
            self.service,
            "include/sql/ddl/create_ops_health_daily.sql",
            view.sql,
            [],
            self.analysed.analysis.tables,
            {ref: self.contents[ref]},
        )

    def rows(self, table: str, partition_field: str, day: dt.date) -> list[dict[str, Any]]:
        return [r for r in self.contents[self.refs[table]] if r[partition_field] == day]


def duckdb_rows(warehouse, table: str, where: str = "", params=None) -> list[dict[str, Any]]:
    cursor = warehouse.con.execute(f"select * from {table} {where}", params or {})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- comparison ------------------------------------------------------------------------


def _kind(value: Any) -> str:
    for kind in (bool, int, float, decimal.Decimal, str, dt.datetime, dt.date, list):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def _same(column: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if _kind(left) != _kind(right):
        return False  # e.g. DECIMAL on one engine and FLOAT64 on the other
    if isinstance(left, float) and column not in EXACT_FLOATS:
        return math.isclose(left, right, rel_tol=FLOAT_TOLERANCE, abs_tol=0.0) or left == right
    return left == right


def _sort_key(row: dict[str, Any]) -> tuple:
    # floats rounded so that 1e-9 noise cannot reorder rows
    return tuple(
        (v is None, _kind(v), round(v, 6) if isinstance(v, float) else v)
        for _, v in sorted(row.items())
    )


def differences(
    duck: list[dict[str, Any]], zeta: list[dict[str, Any]], *, ordered: bool = False
) -> list[str]:
    """What differs between two results (empty when they agree cell by cell)."""
    problems = []
    duck_columns = list(duck[0]) if duck else None
    zeta_columns = list(zeta[0]) if zeta else None
    if duck and zeta and duck_columns != zeta_columns:
        problems.append(f"columns differ: duckdb {duck_columns} vs zetasql {zeta_columns}")
        return problems
    if len(duck) != len(zeta):
        problems.append(f"row counts differ: duckdb {len(duck)} vs zetasql {len(zeta)}")
        return problems
    strip = [{k: v for k, v in r.items() if k not in RUN_TIME_COLUMNS} for r in duck]
    other = [{k: v for k, v in r.items() if k not in RUN_TIME_COLUMNS} for r in zeta]
    if not ordered:
        strip, other = sorted(strip, key=_sort_key), sorted(other, key=_sort_key)
    for number, (left, right) in enumerate(zip(strip, other, strict=True)):
        cells = [
            f"{c}: duckdb {left[c]!r} vs zetasql {right[c]!r}"
            for c in left
            if not _same(c, left[c], right[c])
        ]
        if cells:
            problems.append(f"row {number}: " + "; ".join(cells))
    return problems


def compare(label: str, duck, zeta, *, ordered: bool = False) -> None:
    """Compare two results, count them for the summary, and fail with the differences."""
    found = differences(duck, zeta, ordered=ordered)
    stats = prod_zetasql.STATS
    stats["compared"] += 1
    stats["rows"] += len(duck)
    if found:
        stats["mismatches"] += 1
        shown = "\n  ".join(found[:10])
        raise AssertionError(f"{label}: DuckDB and ZetaSQL differ ({len(found)}):\n  {shown}")
