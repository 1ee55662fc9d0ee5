"""The bytes a daily run would make BigQuery scan (on-demand pricing), estimated offline.

BigQuery bills an on-demand query by the bytes of the columns it references, in the
partitions it reads, whatever the query does with them. No BigQuery runs here, so the
figure is computed from the rendered BigQuery SQL and the data:

1. Each table's columns, types and partitioning come from its DDL (``include/sql/ddl``).
2. Each query is the rendered BigQuery text the DAG sends, parsed with sqlglot
   (``references``): in every scope, a table reference reads the columns used through it,
   in the partitions its ``WHERE`` keeps. A comparison of the partitioning column with an
   expression of parameters prunes: ``snapshot_date = @run_date`` reads one day,
   ``order_date <= @run_date`` every month of ``orders`` up to D's, a ``BETWEEN`` a range.
   Anything else (an ``OR``, a filter on another column) reads every partition.
3. Each column's bytes per partition come from the warehouse's rows at BigQuery's sizes
   (``column_bytes``): INT64, FLOAT64, DATE, TIMESTAMP 8; NUMERIC 16; BOOL 1; STRING 2 +
   its UTF-8 length; NULL 0.
4. Per query and table, a column is billed once over the union of the partitions its
   references read (a table referenced twice in one query is billed once: BigQuery reports
   the same bytes for a CTE read twice and for two reads of the table), and every table
   referenced, like every query, costs at least 10 MB (``MINIMUM_BYTES``).

An ``INSERT ... SELECT`` is priced by its query (BigQuery bills an INSERT for what it
reads, not for the table it writes). A ``DELETE`` is billed q' + t' on a partitioned
table: the columns its condition reads in the partitions it scans, plus every column of
the partitions it changes; it is priced as every column of the partitions its ``WHERE``'s
top-level conditions keep (those it may change: an upper bound), plus what its subqueries
read. Any other statement sqlglot cannot split into scopes (a ``MERGE``) is counted as
reading every column of every partition of its tables, an upper bound.

``daily_run`` lists every statement of one DAG run on an alerting (CRITICAL) day, the most
expensive branch, in the DAG's order: apply_retention's read of the dates due, of the
partitions due (on a steady morning: one date expires, D's partitions stand in for it;
the tables API drops them, free) and its DELETE of the old markers, the detection markers,
SQL1, the summaries' check, SQL2-SQL4, the history marker and SQL5 for D only (the runs
before D stored the alert history up to D-1: ``detection.history_start``, the DAG's
from-date task) with its range DELETE, the decision and the orders' range, the last
delivered run (the day before) and the queue, which reads that run's queue partition, the
operational context (read once, by its task: the exports, the brief and the playbook take
it from that task's XCom) with the day's incident, ledger and thread, the chart's stored
60 days, the audiences' clear, record and read (once for every tier), the playbook's
check of the delivery ledger, the ledger MERGE and the run-log MERGE. Writes (the
partition jobs' destinations) and DDL cost nothing on demand.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from typing import Any

#: BigQuery bills at least 10 MB per table referenced and per query (MB = 2**20 bytes).
MINIMUM_BYTES = 10 * 2**20
#: Bytes per non-NULL value of each fixed-size type (STRING and BYTES: 2 + length).
FIXED_SIZES = {
    "INT64": 8,
    "FLOAT64": 8,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "TIMESTAMP": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "BOOL": 1,
}
#: Partition keys of an unpartitioned table: one partition.
WHOLE_TABLE = "whole table"


@dataclass(frozen=True)
class TableInfo:
    """A table's columns (BigQuery types) and how it is partitioned.

    ``partition_unit`` is ``day`` (``partition by d`` or ``partition by date(ts)``),
    ``month`` (``partition by date_trunc(d, month)``) or ``None`` (unpartitioned).
    """

    name: str
    columns: dict[str, str]
    partition_column: str | None = None
    partition_unit: str | None = None


@dataclass(frozen=True)
class Reference:
    """One read of a table: the columns used through it and the bounds of its partitions."""

    table: str
    columns: frozenset[str]
    #: inclusive bounds on the partitioning column (None: unbounded on that side)
    low: dt.date | None = None
    high: dt.date | None = None
    #: False when the statement could not be split into scopes (every column read)
    resolved: bool = True


@dataclass
class QueryBytes:
    """What one query reads, per table, and what it is billed."""

    label: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    billed: int = 0


# -- 1. the tables, from their DDL --------------------------------------------------------


def table_catalog(ddl_texts: dict[str, str]) -> dict[str, TableInfo]:
    """Parse ``create table`` statements (BigQuery) into columns, types and partitioning."""
    import sqlglot
    from sqlglot import exp

    catalog = {}
    for name, text in ddl_texts.items():
        ddl = sqlglot.parse_one(text, read="bigquery")
        if str(ddl.args.get("kind", "")).upper() != "TABLE":
            continue  # a view reads its tables; no daily query reads one
        columns = {
            col.name: col.args["kind"].sql("bigquery").upper()
            for col in ddl.find_all(exp.ColumnDef)
        }
        column, unit = None, None
        partition = ddl.find(exp.PartitionedByProperty)
        if partition is not None:
            key = partition.this  # an identifier, or date_trunc(d, month) / date(ts)
            named = key if isinstance(key, exp.Identifier) else key.find(exp.Column)
            column = named.name
            unit = "month" if "MONTH" in key.sql("bigquery").upper() else "day"
        catalog[name] = TableInfo(name, columns, column, unit)
    return catalog


# -- 2. what each query references ------------------------------------------------------------


def _value(node: Any, params: dict[str, Any]) -> Any:
    """A constant expression of parameters and literals, or None if it is not one."""
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _value(node.this, params)
    if isinstance(node, exp.Parameter):
        return params.get(node.name)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else int(node.this)
    if isinstance(node, exp.Cast) and node.to.is_type("date"):
        inner = _value(node.this, params)
        return dt.date.fromisoformat(inner) if isinstance(inner, str) else inner
    if isinstance(node, exp.Add | exp.Sub):
        left, right = _value(node.this, params), _value(node.expression, params)
        if isinstance(left, int) and isinstance(right, int):
            return left + right if isinstance(node, exp.Add) else left - right
        return None
    if isinstance(node, exp.DateAdd | exp.DateSub):
        day, amount = _value(node.this, params), _value(node.expression, params)
        if isinstance(amount, str) and amount.lstrip("-").isdigit():  # `interval 1 day`
            amount = int(amount)
        unit = str(node.args.get("unit") or "DAY").upper()
        if isinstance(day, dt.date) and isinstance(amount, int) and unit == "DAY":
            sign = 1 if isinstance(node, exp.DateAdd) else -1
            return day + dt.timedelta(days=sign * amount)
    return None


def _bounds(where: Any, alias: str, column: str, params: dict[str, Any]) -> tuple:
    """Inclusive (low, high) dates the WHERE's top-level conjuncts put on alias.column."""
    from sqlglot import exp

    low, high = None, None
    if where is None:
        return low, high

    def on_column(node: Any) -> bool:
        return isinstance(node, exp.Column) and node.name == column and node.table == alias

    one_day = dt.timedelta(days=1)
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found: list[tuple[str, Any]] = []
        if isinstance(condition, exp.Between) and on_column(condition.this):
            found = [(">=", condition.args["low"]), ("<=", condition.args["high"])]
        elif isinstance(condition, exp.EQ | exp.GTE | exp.GT | exp.LTE | exp.LT):
            symbol = {exp.EQ: "=", exp.GTE: ">=", exp.GT: ">", exp.LTE: "<=", exp.LT: "<"}[
                type(condition)
            ]
            if on_column(condition.this):
                found = [(symbol, condition.expression)]
            elif on_column(condition.expression):
                flipped = {"=": "=", ">=": "<=", ">": "<", "<=": ">=", "<": ">"}[symbol]
                found = [(flipped, condition.this)]
        for symbol, node in found:
            value = _value(node, params)
            if not isinstance(value, dt.date):
                continue
            if symbol in ("=", ">=", ">"):
                start = value + one_day if symbol == ">" else value
                low = start if low is None else max(low, start)
            if symbol in ("=", "<=", "<"):
                end = value - one_day if symbol == "<" else value
                high = end if high is None else min(high, end)
    return low, high


def references(
    bigquery_sql: str, catalog: dict[str, TableInfo], params: dict[str, Any]
) -> list[Reference]:
    """Every read of a catalog table in one statement: its columns and partition bounds."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    tree = sqlglot.parse_one(bigquery_sql, read="bigquery")
    schema: dict[str, Any] = {}
    for table in tree.find_all(exp.Table):
        if table.name in catalog:
            level = schema
            for part in (table.catalog, table.db):
                if part:
                    level = level.setdefault(part, {})
            level[table.name] = catalog[table.name].columns
    found: list[Reference] = []
    # an INSERT ... SELECT bills its query only (BigQuery's DML pricing: q); the table it
    # writes is not read
    target = None
    queries: list[Any] = []
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Query):
        target = tree.this.find(exp.Table)
        queries = [tree.expression]
    elif isinstance(tree, exp.Delete) and isinstance(tree.this, exp.Table):
        # a DELETE on a partitioned table bills q' + t' (BigQuery's DML pricing): the
        # columns its condition reads in the partitions it scans, plus every column of the
        # partitions it changes. Priced as every column of the partitions its WHERE's
        # top-level conditions keep (an upper bound), plus what its subqueries read.
        target = tree.this
        where = tree.args.get("where")
        info = catalog.get(target.name)
        if info is not None:
            low, high = (None, None)
            if info.partition_column:
                low, high = _bounds(where, target.alias, info.partition_column, params)
            found.append(Reference(info.name, frozenset(info.columns), low, high))
        if where is not None:
            queries = [q for q in where.find_all(exp.Select) if q.find_ancestor(exp.Select) is None]
    elif isinstance(tree, exp.Query):
        queries = [tree]
    for query in queries:
        for scope in traverse_scope(qualify(query, schema=schema, dialect="bigquery")):
            where = scope.expression.args.get("where")
            for alias, source in scope.sources.items():
                if not isinstance(source, exp.Table) or source.name not in catalog:
                    continue
                info = catalog[source.name]
                columns = frozenset(c.name for c in scope.columns if c.table == alias)
                low, high = (None, None)
                if info.partition_column:
                    low, high = _bounds(where, alias, info.partition_column, params)
                found.append(Reference(info.name, columns, low, high))
    seen = {ref.table for ref in found} | ({target.name} if target is not None else set())
    for table in tree.find_all(exp.Table):  # not split into scopes: read it all
        if table.name in catalog and table.name not in seen:
            info = catalog[table.name]
            found.append(Reference(info.name, frozenset(info.columns), resolved=False))
            seen.add(table.name)
    return found


# -- 3. and 4. the bytes ----------------------------------------------------------------------


def _partition_key(info: TableInfo, day: dt.date | None) -> Any:
    if day is None or info.partition_unit is None:
        return day
    return day.replace(day=1) if info.partition_unit == "month" else day


def partitions_read(info: TableInfo, ref: Reference, keys: list[Any]) -> list[Any]:
    """The partition keys (as in ``column_bytes``) one reference reads."""
    if info.partition_unit is None:
        return list(keys)
    low, high = _partition_key(info, ref.low), _partition_key(info, ref.high)
    checks = [(operator.ge, low), (operator.le, high)]
    return [k for k in keys if all(bound is None or test(k, bound) for test, bound in checks)]


def query_bytes(
    label: str,
    refs: list[Reference],
    catalog: dict[str, TableInfo],
    sizes: dict[str, dict[Any, dict[str, int]]],
    minimum: int = MINIMUM_BYTES,
) -> QueryBytes:
    """Bill one query: per table, each column once over the union of partitions read."""
    result = QueryBytes(label)
    for table in dict.fromkeys(ref.table for ref in refs):
        info, per_partition = catalog[table], sizes.get(table, {})
        read: dict[str, set[Any]] = {}
        for ref in (r for r in refs if r.table == table):
            keys = partitions_read(info, ref, list(per_partition))
            for column in ref.columns:
                read.setdefault(column, set()).update(keys)
        scanned = sum(
            per_partition[key].get(column, 0) for column, keys in read.items() for key in keys
        )
        partitions = set().union(*read.values()) if read else set()
        result.tables[table] = {
            "columns": sorted(read),
            "partitions": len(partitions),
            "scanned_bytes": scanned,
            "billed_bytes": max(scanned, minimum),
            "whole_statement": not all(r.resolved for r in refs if r.table == table),
        }
    result.billed = max(sum(t["billed_bytes"] for t in result.tables.values()), minimum)
    return result


def column_bytes(con: Any, info: TableInfo) -> dict[Any, dict[str, int]]:
    """BigQuery's bytes of every column of a DuckDB table, per partition key."""
    import duckdb

    parts = []
    for column, kind in info.columns.items():
        name = f'"{column}"'
        if kind == "STRING":
            size = f"coalesce(sum(2 + strlen({name})), 0)"  # strlen counts UTF-8 bytes
        elif kind == "BYTES":
            size = f"coalesce(sum(2 + octet_length({name})), 0)"
        elif kind in FIXED_SIZES:
            size = f"{FIXED_SIZES[kind]} * count({name})"
        else:
            raise ValueError(f"{info.name}.{column}: no BigQuery size for type {kind}")
        parts.append(f"{size} as {name}")
    key = {
        None: "null",
        "month": f"""cast(date_trunc('month', "{info.partition_column}") as date)""",
        "day": f'cast("{info.partition_column}" as date)',
    }[info.partition_unit]
    try:
        rows = con.execute(
            f"select {key} as partition_key, {', '.join(parts)} from {info.name} group by all"
        ).fetchall()
    except duckdb.CatalogException:
        return {}  # a table this warehouse never created holds no bytes
    names = list(info.columns)
    return {row[0]: dict(zip(names, map(int, row[1:]), strict=True)) for row in rows}


# -- the daily run ---------------------------------------------------------------------------


def daily_run(settings: Any, run_date: dt.date, chart_days: int | None = None) -> list[tuple]:
    """``(label, BigQuery text, parameters)`` of each query of a CRITICAL day's DAG run."""
    from retentionops.actions import QUEUE_STEP
    from retentionops.bigquery import range_job
    from retentionops.detection import (
        ALERT_STEP,
        DETECTION_MARKER,
        DETECTION_STEPS,
        QUEUE_MARKER,
        alert_step,
        history_marker,
        history_start,
    )
    from retentionops.incidents import parameters as incident_parameters
    from retentionops.pack import CHART_DAYS
    from retentionops.playbook import dedupe_key
    from retentionops.runlog import RUN_LOG_TYPES
    from retentionops.sql import parameter_names, render
    from retentionops.vocabulary import TIERS
    from retentionops.warehouse import (
        retention_cutoff,
        retention_parameters,
        retention_statements,
    )

    day = run_date
    chart_days = chart_days or CHART_DAYS

    def file(label: str, name: str, params: dict[str, Any]) -> tuple:
        return (label, render(name, settings), params)

    def require_queue(label: str) -> tuple:  # detection.require_queue: the date's markers
        return file(label, "markers/read_run_markers", {"run_date": day})

    def context(task: str) -> list[tuple]:  # service.context.operational_context, per task
        return [
            require_queue(f"{task}: require_queue"),
            file(f"{task}: decision", "detection/read_alert_decision", one_day),
            # the last delivered run's date, then the context, which reads that date's queue
            file(f"{task}: previous run", "action/read_previous_run_date", {"run_date": day}),
            file(f"{task}: context", "action/get_operational_context",
                 {"run_date": day, "previous_run_date": day - dt.timedelta(days=1)}),
        ]

    one_day = {"from_date": day, "run_date": day}
    chart = {"from_date": day - dt.timedelta(days=chart_days - 1), "run_date": day}
    def mark(label: str, step: str) -> tuple:  # markers/mark_step_complete (a MERGE)
        return file(label, "markers/mark_step_complete", {"run_date": day, "step": step})

    # apply_retention: the newest date due, then the partitions due (their date column, in
    # the partitions up to it), dropped through the tables API (free), then the old
    # markers. The estimate's morning is a steady one: every day, one date written
    # retention_days ago expires. The bench's warehouse holds no such date, so D itself
    # stands in for it (partitions of the same size): the newest date due is D.
    kept = retention_parameters(
        retention_cutoff(settings, dt.datetime.combine(day, dt.time(6), dt.UTC)), day
    )
    due_partitions, old_markers = retention_statements(settings)
    queries = [
        file("apply_retention: due dates", "markers/read_retention_due",
             {"cutoff_ts": kept["cutoff_ts"]}),
        ("apply_retention: due partitions", due_partitions, kept),
        ("apply_retention: old markers", old_markers, kept),
    ]  # fmt: skip
    queries.append(file("start_detection", "markers/clear_run_markers", {"run_date": day}))
    for x in DETECTION_STEPS:
        if x is ALERT_STEP:
            continue
        queries.append(file(x.name, x.sql_name, x.parameters(settings, day)))
        if x is DETECTION_STEPS[0]:  # the DAG's check_summaries task, after SQL1
            queries.append(file("check_summaries", "maintenance/check_summaries", one_day))
    # SQL5 extends the stored history: the runs before D stored it up to D-1, so the
    # DAG's history_from_date branch (detection.history_start, alert_step) gives D and
    # picks the daily job: D from SQL2's snapshot and the stored baseline days, written to
    # D's partition (WRITE_TRUNCATE), no orders read
    marker = {"step": history_marker(settings)}
    queries.append(file("history_from_date", "markers/read_history_coverage", marker))
    first = history_start(day - dt.timedelta(days=1), day)
    step = alert_step(first, day, snapshot=True)
    sql5 = step.parameters(settings, day, first)
    if step.history:  # the range job: DELETE of the dates, then INSERT (bigquery.range_job)
        script = range_job(settings, query="select 1", parameters=[], table=step.table)
        [delete] = [x for x in script["query"]["query"].split(";\n") if x.startswith("delete")]
        queries.append((f"{step.name}: delete the dates", delete, sql5))
    queries.append(file(step.name, step.sql_name, sql5))
    queries.append(
        file("mark_history_complete: other settings", "markers/clear_other_history_markers",
             marker)
    )  # fmt: skip
    queries.append(mark("mark_history_complete", history_marker(settings)))
    queries.append(mark("mark_detection_complete", DETECTION_MARKER))
    queries.append(file("get_alert_decision", "detection/read_alert_decision", one_day))
    # service.data_warnings: is D inside the order history?
    queries.append(file("get_alert_decision: orders range", "maintenance/orders_range", {}))
    # the queue: the last delivered run first (the DAG's last_delivered_run task; on a
    # steady morning, the day before), then the job, which reads that run's queue
    queries.append(
        file("last_delivered_run", "action/read_last_delivered_run", {"run_date": day})
    )
    queue = {**QUEUE_STEP.parameters(settings, day), "previous_run_date": day - dt.timedelta(1)}
    queries.append(file(QUEUE_STEP.name, QUEUE_STEP.sql_name, queue))
    queries.append(mark("mark_queue_complete", QUEUE_MARKER))
    # read once per run: the exports, the brief and the playbook take it from this task's
    # XCom (service.context.run_context); with it, the day's incident state, its delivery in the
    # ledger and the incident's thread
    queries += context("get_operational_context")
    incident = f"INC-{day:%Y%m%d}"
    queries.append(
        file("get_operational_context: incident", "incidents/incident_days",
             incident_parameters(settings, day, day))
    )  # fmt: skip
    ledger = {"dedupe_key": dedupe_key(incident, "open", day, "production")}
    queries.append(file("get_operational_context: ledger", "incidents/read_delivery", ledger))
    thread = {"incident_id": incident, "rollout_mode": "production"}
    queries.append(
        file("get_operational_context: thread", "incidents/read_incident_thread", thread)
    )
    queries.append(file("render_brief: chart, stored days", "detection/read_alert_decision", chart))
    # export_audience: every tier of the day's playbook in one task (actions.record_audiences:
    # forget the run's tiers, record them, read them back, once for all of them)
    run = f"scheduled__{day}T00:00:00+00:00"
    audience = {"run_id": run, "run_date": day, "tiers": list(TIERS),
                "row_limit": settings.export_limit, "new_only": False}  # fmt: skip
    queries.append(require_queue("export_audience: require_queue"))
    queries.append(file("export_audience: clear", "action/clear_audience_export", audience))
    queries.append(file("export_audience: record", "action/record_audience_export", audience))
    queries.append(file("export_audience", "action/read_audience", audience))
    # the playbook settles the delivery against the ledger again just before sending
    queries.append(file("prepare_playbook: delivery ledger", "incidents/read_delivery", ledger))
    # trigger_playbook: the event recorded in the ledger once delivered (a MERGE)
    queries.append(file("trigger_playbook: ledger", "incidents/record_delivery",
                        dict.fromkeys(parameter_names(render("incidents/record_delivery",
                                                             settings)))))  # fmt: skip
    run_log = render("action/write_run_log", settings)
    queries.append(
        ("write_run_log", run_log, dict.fromkeys(parameter_names(run_log) | set(RUN_LOG_TYPES)))
    )
    return queries


def estimate(duckdb_path: str, run_date: dt.date) -> dict[str, Any]:
    """Bytes of a CRITICAL day's DAG run on BigQuery, from a DuckDB warehouse's data."""
    import duckdb

    from retentionops.settings import load_settings
    from retentionops.sql import TABLES, render

    settings = load_settings(env={}, warehouse_backend="bigquery", bigquery_project="bench-project")
    catalog = table_catalog({name: render(f"ddl/create_{name}", settings) for name in TABLES})
    con = duckdb.connect(duckdb_path, read_only=True)
    try:
        sizes = {name: column_bytes(con, info) for name, info in catalog.items()}
    finally:
        con.close()
    queries = [
        query_bytes(label, references(text, catalog, params), catalog, sizes)
        for label, text, params in daily_run(settings, run_date)
    ]
    orders_columns = sorted(
        set().union(*(q.tables["orders"]["columns"] for q in queries if "orders" in q.tables))
    )
    orders = catalog["orders"]
    everything_to_d = Reference("orders", frozenset(), high=run_date)
    up_to_d = partitions_read(orders, everything_to_d, list(sizes["orders"]))
    one_scan = sum(sizes["orders"][key][column] for key in up_to_d for column in orders_columns)
    total = sum(q.billed for q in queries)
    return {
        "run_date": run_date.isoformat(),
        "queries": [
            {"label": q.label, "billed_bytes": q.billed, "tables": q.tables} for q in queries
        ],
        "total_billed_bytes": total,
        "orders_columns": orders_columns,
        "orders_scan_bytes": one_scan,
        "ratio_to_orders_scan": total / one_scan if one_scan else None,
        "orders_billed_bytes": sum(
            q.tables["orders"]["billed_bytes"] for q in queries if "orders" in q.tables
        ),
    }
