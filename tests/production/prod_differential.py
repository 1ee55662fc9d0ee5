"""Run the package on two engines and compare the results row by row.

* DuckDB: the real ``DuckDBWarehouse`` and the package's own functions (``run_detection``,
  ``build_priority_queue``, ``replace_orders``, ``apply_retention``, ``runlog.write``), i.e.
  the embedded backend as the DAG runs it.
* ZetaSQL: the package's own ``BigQueryWarehouse`` whose BigQuery is :class:`ZetaBigQuery`:
  every job the warehouse sends (its SQL text, its ``queryParameters``, its destination) is
  run by Google's reference implementation of GoogleSQL over tables held in memory, with
  BigQuery's job semantics: a query job writing ``table$YYYYMMDD`` with WRITE_TRUNCATE
  replaces that partition (and refuses rows outside it), a script runs statement by
  statement (as ZetaSQL splits it) and a failed transaction rolls back, a load with
  WRITE_TRUNCATE replaces the table's rows and gives the table the load's schema.

The one statement kind the reference engine cannot execute is MERGE (its local service
runs queries and INSERT / UPDATE / DELETE only). A MERGE job is analysed by ZetaSQL like
every other, and its effect on the row it targets (the ``ON`` key, from the job's
parameters) is taken from the DuckDB twin, which ran the same operation first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import re
from typing import Any

from retentionops.sql import TABLE_CATALOG, table, table_refs

from . import prod_zetasql

#: FLOAT64 columns that hold values rounded in exact integer arithmetic (basis points / 100,
#: percent to 2 decimals): they must agree exactly, not merely to 1e-9.
EXACT_FLOATS = frozenset(
    {"current_value", "baseline_value", "delta_pct", "delta_relative_pct", "threshold_warning",
     "threshold_critical", "retention_rate", "avg_days_between_orders"}
)  # fmt: skip
#: The time the statement ran (CURRENT_TIMESTAMP()): the one value that may differ
#: (created_at of the queue, exported_at of the audience ledger).
RUN_TIME_COLUMNS = frozenset({"created_at", "exported_at", "assigned_at"})
FLOAT_TOLERANCE = 1e-9
#: The ON key of each MERGE of the package (action/write_run_log, markers/mark_step_complete)
MERGE_KEYS = {"ops_runs_log": ("run_id",), "run_markers": ("run_date", "step")}
#: Statement kinds the reference engine executes as DML
DML = ("ResolvedDeleteStmt", "ResolvedInsertStmt", "ResolvedUpdateStmt")
#: An INSERT whose source query has a WITH clause (SQL5's history range, an incident's
#: holdout draw), after the file's comments: its query part.
_INSERT_WITH = re.compile(
    r"\s*(?:--[^\n]*\n\s*)*insert\s+into\s+`[^`]+`\s*((?:--[^\n]*\n\s*)*with\b.*)",
    re.IGNORECASE | re.DOTALL,
)
#: BigQuery's legacy type names (what the Python client's SchemaField says) -> GoogleSQL
_LEGACY_TYPES = {"FLOAT": "FLOAT64", "INTEGER": "INT64", "BOOLEAN": "BOOL"}
#: DDL that changes nothing when its table exists (the package's, on every run)
_CREATE_IF_MISSING = re.compile(r"\bif\s+not\s+exists\b|\bor\s+replace\b", re.IGNORECASE)


#: (text, parameter types, schemas) -> [(kind, target table, text)] of its statements
_SPLITS: dict[tuple, list] = {}
_SESSION_STATEMENTS: dict[int, dict] = {}


def _session_statements(analysed) -> dict[tuple, Any]:
    """(text, parameter types) -> resolved statement, of everything the session analysed
    as one statement."""
    if id(analysed) not in _SESSION_STATEMENTS:
        index = {}
        for name, text in analysed.texts.items():
            if name in analysed.errors or name not in analysed.parameters:
                continue
            statement = analysed.resolved(name)
            if not isinstance(statement, list):
                kinds = tuple((n, k) for n, k, _ in analysed.parameters[name])
                index[(text, kinds)] = statement
        _SESSION_STATEMENTS[id(analysed)] = index
    return _SESSION_STATEMENTS[id(analysed)]


def _target(statement) -> str | None:
    """The table a DML statement or MERGE writes."""
    if statement.kind in (*DML, "ResolvedMergeStmt"):
        return statement.node.table_scan.table.full_name
    return None


@dataclasses.dataclass
class Job:
    """What ``BigQueryWarehouse`` reads of a finished job."""

    rows: list[dict[str, Any]]
    num_dml_affected_rows: int | None = None
    total_rows: int | None = None

    def result(self) -> list[dict[str, Any]]:
        return self.rows


class _Hook:
    """The calls ``BigQueryWarehouse`` makes on the Google provider's BigQueryHook."""

    def __init__(self, bigquery: ZetaBigQuery) -> None:
        self.bigquery = bigquery

    def insert_job(self, configuration, project_id, location) -> Job:
        settings = self.bigquery.settings
        assert (project_id, location) == (settings.bigquery_project, settings.bigquery_location)
        return self.bigquery.run_job(configuration)

    def get_client(self, project_id, location) -> _Client:
        return _Client(self.bigquery)


class _Client:
    def __init__(self, bigquery: ZetaBigQuery) -> None:
        self.bigquery = bigquery

    def load_table_from_dataframe(self, frame, destination, job_config=None) -> Job:
        return self.bigquery.load_dataframe(frame, destination, job_config)

    def delete_table(self, table, not_found_ok=False) -> None:
        self.bigquery.delete_partition(table, not_found_ok)


class ZetaBigQuery:
    """BigQuery, as far as the package uses it, with ZetaSQL's reference engine inside.

    ``twin`` is the DuckDB warehouse whose MERGE results stand in for the engine's (see
    the module docstring). ``loads``: the ``(frame, destination, job_config)`` of every
    load job, as the warehouse sent them.
    """

    def __init__(self, service, analysed, settings, *, twin=None):
        self.service = service
        self.analysed = analysed
        self.settings = settings  # warehouse_backend='bigquery'; thresholds as the DuckDB side
        self.twin = twin
        self.refs = {name: ref.strip("`") for name, ref in table_refs(settings).items()}
        self.logical = {ref: name for name, ref in self.refs.items()}
        self.tables = dict(analysed.analysis.tables)  # schemas, as ZetaSQL resolved the DDL
        self.contents: dict[str, list[dict[str, Any]]] = {ref: [] for ref in self.refs.values()}
        self.jobs: list[dict[str, Any]] = []
        self.loads: list[tuple[Any, str, Any]] = []
        self.deleted_partitions: list[str] = []
        self._content_protos: dict[tuple, tuple] = {}
        self._results: dict[tuple, tuple] = {}

    # -- the tables -------------------------------------------------------------------

    def rows(self, logical: str, day: dt.date | None = None) -> list[dict[str, Any]]:
        """A table's rows (of one date of its partition field)."""
        rows = self.contents[self.refs[logical]]
        if day is None:
            return rows
        field = table(logical).partition_field
        return [r for r in rows if r[field] == day]

    def set_rows(self, logical: str, rows: list[dict[str, Any]]) -> None:
        self.contents[self.refs[logical]] = list(rows)

    def keep_only(self, days: set[dt.date]) -> None:
        """Drop other dates of the per-customer tables (orders and alert_logic stay whole).

        The engine is a reference implementation, not a fast one: a run over several dates
        keeps the run date and the date before it, so every ``= @run_date`` filter still
        has another date's rows to exclude.
        """
        for entry in TABLE_CATALOG:
            if entry.retained:
                field = entry.partition_field
                self.set_rows(entry.name, [r for r in self.rows(entry.name) if r[field] in days])

    def delete_partition(self, table_id: str, not_found_ok: bool) -> None:
        """``tables.delete`` of one partition, ``project.dataset.table$YYYYMMDD`` (what the
        API accepts: a day-partitioned table's partition decorator)."""
        ref, _, decorator = table_id.partition("$")
        assert ref in self.logical and len(decorator) == 8, table_id
        self.deleted_partitions.append(table_id)
        day = dt.datetime.strptime(decorator, "%Y%m%d").date()
        field = table(self.logical[ref]).partition_field
        kept = [r for r in self.contents[ref] if r[field] != day]
        if len(kept) == len(self.contents[ref]) and not not_found_ok:
            raise LookupError(f"Not found: partition {table_id}")
        self.contents[ref] = kept

    def _content(self, ref: str, row_key: bool = False):
        # a table's content is built once per version of its rows (writes replace the list)
        rows, columns = self.contents[ref], tuple(self.tables[ref])
        cached = self._content_protos.get((ref, row_key))
        if cached is None or cached[0] is not rows or cached[1] != columns:
            content = prod_zetasql.table_content(list(columns), rows, row_key)
            cached = (rows, columns, content)
            self._content_protos[(ref, row_key)] = cached
        return cached[2]

    def _contents_for(self, text: str, row_key: bool = False) -> dict[str, Any]:
        # only the tables the statement names travel into the engine
        contents = {ref: self._content(ref, row_key) for ref in self.contents if f"`{ref}`" in text}
        view = self.refs["ops_health_daily"]
        if view in contents:
            contents[view] = prod_zetasql.table_content(
                self.tables[view], self.health_view(), row_key
            )
        return contents

    def health_view(self) -> list[dict[str, Any]]:
        """ops_health_daily is a view: its body runs on the engine over ops_runs_log."""
        statement = self.analysed.statement("ddl/create_ops_health_daily")
        ref = self.refs["ops_runs_log"]
        return prod_zetasql.evaluate(
            self.service, "include/sql/ddl/create_ops_health_daily.sql", statement.sql, [],
            self.tables, {ref: self._content(ref)},
        )  # fmt: skip

    # -- statements -------------------------------------------------------------------

    def _split(self, path: str, text: str, parameters) -> list[tuple[str, str | None, str]]:
        """(kind, target table, text) of each statement, as ZetaSQL splits and analyses it.

        A statement the session analysed already (a file of the package, a statement built
        in code) with the same parameter types over the same schemas is not analysed
        again; any other text is analysed once per session.
        """
        kinds = tuple((n, k) for n, k, _ in parameters)
        if self.tables == self.analysed.analysis.tables:
            known = _session_statements(self.analysed).get((text, kinds))
            if known is not None:
                return [(known.kind, _target(known), text)]
        schemas = tuple((name, tuple(columns)) for name, columns in sorted(self.tables.items()))
        key = (text, kinds, schemas)
        if key not in _SPLITS:
            analysis = prod_zetasql.Analysis(self.service)
            analysis.tables = dict(self.tables)
            _SPLITS[key] = [
                (statement.kind, _target(statement), piece)
                for statement, piece in analysis.analyse_script(path, text, parameters)
            ]
        return _SPLITS[key]

    def _query(self, path: str, piece: str, parameters) -> list[dict[str, Any]]:
        """A query's rows. The same query with the same values over the same table contents
        is evaluated once: every write replaces a table's list of rows, so the lists the
        query read (compared by identity) tell whether its inputs changed."""
        refs = [ref for ref in self.contents if f"`{ref}`" in piece]
        if self.refs["ops_health_daily"] in refs:
            refs.append(self.refs["ops_runs_log"])
        inputs = tuple(self.contents[ref] for ref in refs)
        key = (piece, tuple((n, k, tuple(v) if isinstance(v, list) else v)
                            for n, k, v in parameters))  # fmt: skip
        cached = self._results.get(key)
        if cached is None or any(a is not b for a, b in zip(cached[0], inputs, strict=True)):
            rows = prod_zetasql.evaluate(
                self.service, path, piece, parameters, self.tables, self._contents_for(piece)
            )
            cached = (inputs, rows)
            self._results[key] = cached
        return [dict(row) for row in cached[1]]

    def execute(self, text: str, parameters, path: str = "job") -> tuple[list | None, int]:
        """Run a job's SQL (one statement or a script); return the last query's rows and the
        rows DML statements touched. A script's transaction rolls back on an error."""
        rows, affected, snapshot = None, 0, None
        try:
            for kind, target, piece in self._split(path, text, parameters):
                if kind == "ResolvedQueryStmt":
                    rows = self._query(path, piece, parameters)
                elif kind in DML and kind != "ResolvedInsertStmt" and not self.contents[target]:
                    pass  # a DELETE or UPDATE of an empty table changes nothing
                elif kind == "ResolvedInsertStmt" and _INSERT_WITH.match(piece):
                    affected += self._insert_query(path, target, piece, parameters)
                elif kind in DML:
                    row_key = kind != "ResolvedInsertStmt"
                    name, after, touched = prod_zetasql.modify(
                        self.service, path, piece, parameters, self.tables,
                        self._contents_for(piece, row_key), lambda ref: self.contents[ref],
                        row_key=row_key,
                    )  # fmt: skip
                    self.contents[name] = after
                    affected += touched
                elif kind in ("ResolvedCreateTableStmt", "ResolvedCreateViewStmt"):
                    # CREATE ... IF NOT EXISTS: the catalog holds every table of ddl/ already
                    assert _CREATE_IF_MISSING.search(piece), piece
                elif kind == "ResolvedAlterTableStmt":
                    # ensure_tables' migration of an older warehouse: the catalog holds every
                    # table of ddl/ with its current columns already
                    # (and the columns a later version retired: the DDL no longer has them)
                    text = piece.lower()
                    assert "column if not exists" in text or "column if exists" in text, piece
                elif kind == "ResolvedBeginStmt":
                    snapshot = dict(self.contents)
                elif kind == "ResolvedCommitStmt":
                    snapshot = None
                elif kind == "ResolvedMergeStmt":
                    affected += self._merge_from_twin(target, parameters)
                else:
                    raise AssertionError(f"{path}: no BigQuery job semantics for {kind}")
        except BaseException:
            if snapshot is not None:
                self.contents = snapshot  # BigQuery rolls the transaction back
            raise
        return rows, affected

    def _insert_query(self, path: str, target: str, piece: str, parameters) -> int:
        """``INSERT INTO t WITH ... SELECT``: BigQuery runs it, the reference engine does
        not ("WITH clauses under subquery in DML statement is not supported yet"). The
        statement was analysed whole; its query runs on the engine and its rows are
        appended by position, as an INSERT without a column list does."""
        query = _INSERT_WITH.match(piece).group(1)
        rows = self._query(path, query, parameters)
        columns = [name for name, _ in self.tables[target]]
        added = [dict(zip(columns, row.values(), strict=True)) for row in rows]
        self.contents[target] = [*self.contents[target], *added]
        return len(added)

    def _merge_from_twin(self, target: str, parameters) -> int:
        """The MERGE's effect on its ON key, as DuckDB's MERGE of the same call left it."""
        logical = self.logical[target]
        if self.twin is None:
            raise AssertionError(
                f"MERGE into {logical}: ZetaSQL's reference engine cannot execute MERGE and "
                "no DuckDB twin ran it"
            )
        values = {name: value for name, _, value in parameters}
        key = MERGE_KEYS[logical]
        wanted = tuple(values[k] for k in key)

        def key_of(row):
            return tuple(_text(row[k]) for k in key)

        twin_rows = [r for r in duckdb_rows(self.twin, logical) if key_of(r) == wanted]
        assert len(twin_rows) == 1, f"the twin's MERGE left {len(twin_rows)} rows for {wanted}"
        kept = [r for r in self.contents[target] if key_of(r) != wanted]
        self.contents[target] = kept + twin_rows
        return 1

    # -- BigQuery's job API (what BigQueryWarehouse calls) ----------------------------

    def run_job(self, configuration: dict[str, Any]) -> Job:
        self.jobs.append(configuration)
        query = configuration["query"]
        assert query["useLegacySql"] is False and query["parameterMode"] == "NAMED"
        parameters = prod_zetasql.job_parameters(query["queryParameters"])
        destination = query.get("destinationTable")
        if destination is None:
            rows, affected = self.execute(query["query"], parameters)
            return Job(rows or [], num_dml_affected_rows=affected)
        # bigquery.partition_job: the result replaces one day partition of the table
        assert (destination["projectId"], destination["datasetId"]) == (
            self.settings.bigquery_project,
            self.settings.bigquery_dataset,
        )
        assert (query["writeDisposition"], query["createDisposition"]) == (
            "WRITE_TRUNCATE",
            "CREATE_NEVER",
        )
        name, _, partition = destination["tableId"].partition("$")
        ref = self.refs[name]
        assert query["timePartitioning"]["type"] == "DAY"
        field = query["timePartitioning"]["field"]
        day = dt.datetime.strptime(partition, "%Y%m%d").date()
        rows, _ = self.execute(query["query"], parameters, f"job writing {name}${partition}")
        columns = [column for column, _ in self.tables[ref]]
        for row in rows:
            assert list(row) == columns, f"{name}: result columns {list(row)} vs {columns}"
            assert row[field] == day, f"{name}: a row of {row[field]} outside ${partition}"
        self.contents[ref] = [r for r in self.contents[ref] if r[field] != day] + rows
        return Job(rows, total_rows=len(rows))

    def load_dataframe(self, frame, destination: str, job_config) -> Job:
        """``load_table_from_dataframe`` with WRITE_TRUNCATE: the frame replaces the rows
        and the load's schema replaces the table's.

        The schema is the one the Python client sends: ``job_config.schema`` or, without
        one, its inference from the frame (with WRITE_TRUNCATE the client does not look at
        the table). The values are what the client's own conversion to Arrow (the Parquet
        it uploads) makes of the frame under that schema: a float64 column under NUMERIC,
        or a Decimal with more places than the type keeps, fails there as it does for real.
        """
        from google.cloud.bigquery import _pandas_helpers

        self.loads.append((frame, destination, job_config))
        assert job_config.write_disposition == "WRITE_TRUNCATE"
        fields = _pandas_helpers.dataframe_to_bq_schema(frame, job_config.schema or [])
        arrow = _pandas_helpers.dataframe_to_arrow(frame, fields)
        self.tables[destination] = [
            (f.name, _LEGACY_TYPES.get(f.field_type, f.field_type)) for f in fields
        ]
        self.contents[destination] = arrow.to_pylist()
        return Job([])

    def warehouse(self):
        """The package's BigQueryWarehouse, talking to this BigQuery."""
        from retentionops.warehouse import BigQueryWarehouse

        # __init__ would build the Google provider's hook (and import it: 2 s); the
        # warehouse needs only its settings and a hook
        warehouse = object.__new__(BigQueryWarehouse)
        warehouse.settings = self.settings
        warehouse.hook = _Hook(self)
        return warehouse


def _text(value: Any) -> str:
    """A value as a job parameter carries it (dates in ISO form)."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


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
