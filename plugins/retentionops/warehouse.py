"""Warehouse backends: embedded DuckDB (default) and BigQuery, behind one protocol.

Both run the same BigQuery SQL files from ``include/sql`` (see ``retentionops.sql``). A
write always replaces one date range of one table inside a transaction (DuckDB) or one
partition with WRITE_TRUNCATE (BigQuery), so re-running a date never duplicates rows.
Statements built here (deletes by date) use table names from the catalog and values as
``@parameters`` only, like the SQL files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from retentionops import bigquery, progress
from retentionops.errors import UserError
from retentionops.settings import Settings
from retentionops.sql import (
    DERIVED_TABLES,
    TABLE_CATALOG,
    TABLES,
    Column,
    bigquery_query_parameters,
    parameter_names,
    render,
    table,
    table_columns,
    table_refs,
    to_duckdb,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The orders as the warehouse stores them (the staged frame is cast to this).
_ORDERS_SELECT = """
select
    cast(customer_id as varchar) as customer_id,
    cast(order_id as varchar) as order_id,
    cast(order_date as date) as order_date,
    cast(order_amount as decimal(38, 9)) as order_amount,
    cast(country as varchar) as country
from incoming_frame
"""


class WarehouseError(UserError):
    """A warehouse operation failed; the message says what to do."""


def exact_decimal(value: Any, places: int) -> decimal.Decimal | None:
    """A number as a NUMERIC column stores it: the decimal the value is written as (a
    float's shortest form, ``7.51`` not ``7.5099999...``), rounded half away from zero to
    ``places`` decimals, as DuckDB's cast to ``decimal(38, 9)`` does. None and NaN: None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, decimal.Decimal | int):
        number = decimal.Decimal(value)
    else:
        number = decimal.Decimal(repr(float(value)))
    if not number.is_finite():
        raise WarehouseError(f"cannot store the non-finite number {value!r} as NUMERIC")
    # BIGNUMERIC holds up to 77 digits: more than the default context's 28
    return number.quantize(
        decimal.Decimal(1).scaleb(-places),
        rounding=decimal.ROUND_HALF_UP,
        context=decimal.Context(prec=80),
    )


def load_frame(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """The frame a BigQuery load sends: the table's columns in its order, NUMERIC columns
    as ``Decimal`` with the table's decimal places (the client turns float64 into
    FLOAT64, or refuses it under a NUMERIC schema)."""
    import pandas as pd

    out = frame[[column.name for column in columns]].copy()
    for column in columns:
        places = column.decimal_places
        if places is not None:
            out[column.name] = pd.Series(
                [exact_decimal(v, places) for v in out[column.name]], index=out.index, dtype=object
            )
    return out


def load_schema(columns: tuple[Column, ...]) -> list[Any]:
    """The ``LoadJobConfig.schema`` of a table, from its DDL (types, NOT NULL as REQUIRED)."""
    from google.cloud import bigquery as bq

    fields = []
    for column in columns:
        # NUMERIC(p, s) only: BigQuery's own default stands when the DDL gives none
        digits: dict[str, Any] = {
            key: value
            for key, value in (("precision", column.precision), ("scale", column.scale))
            if value is not None
        }
        fields.append(
            bq.SchemaField(
                column.name,
                column.type,
                mode="REQUIRED" if column.required else "NULLABLE",
                **digits,
            )
        )
    return fields


class Warehouse(Protocol):
    """What every backend offers; the package talks to a warehouse through this only."""

    settings: Settings

    def close(self) -> None: ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(self, *exc: object) -> None: ...

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """All writes inside commit together or not at all (DuckDB); on BigQuery writes are
        one statement each and a run marker written last stands for the whole."""

    def fetch(
        self, bigquery_sql: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run rendered BigQuery SQL; return its rows as dicts."""

    def execute_sql(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> int:
        """Run one rendered DML statement; return the rows it changed."""

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one SQL file of ``include/sql``; return its rows as dicts."""

    def execute_file(
        self, sql_name: str, params: dict[str, Any], types: dict[str, str] | None = None
    ) -> None:
        """Run one statement file for its effect (a MERGE); ``types`` name NULL parameters."""

    def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        """Create the tables that do not exist yet (idempotent DDL)."""

    def replace_partition(self, sql_name: str, *, table: str, params: dict[str, Any]) -> int:
        """Replace the table's rows of the run date (from_date..run_date) with the query's."""

    def count_rows(self, table: str, day: dt.date) -> int:
        """Rows of one date of a table; 0 when the table does not exist yet."""

    def drop_partitions(self, table: str, days: list[dt.date]) -> None:
        """Remove every row of these dates of a date-partitioned table (a date it does not
        hold is no error)."""

    def refresh_summaries(self, changed_from: dt.date) -> None:
        """Bring the orders' summaries up to date for orders changed from a date on, in
        one transaction (``WHOLE_HISTORY``: rebuild them from every order)."""

    def replace_orders(self, frame: pd.DataFrame) -> dt.date | None:
        """Replace the orders; return the earliest changed order date (None: identical).

        Derived rows dated on or after it are deleted (they described other orders); rows
        of earlier dates stay, as they depend on orders up to their date only.
        """


def _partition_field(name: str) -> str:
    field = table(name).partition_field
    if field is None:
        raise KeyError(f"table '{name}' has no date partition")
    return field


def ddl_statements(settings: Settings, names: tuple[str, ...]) -> list[str]:
    """Create each table that is missing, then add the columns later versions added and
    drop those they retired."""
    refs = table_refs(settings)
    statements = []
    for name in names:
        statements.append(render(f"ddl/create_{name}", settings))
        statements += [
            f"alter table {refs[name]} add column if not exists {column} {kind}"
            for column, kind in table(name).added_columns
        ]
        statements += [
            f"alter table {refs[name]} drop column if exists {column}"
            for column in table(name).dropped_columns
        ]
    return statements


def invalidation_statements(settings: Settings) -> list[str]:
    """``delete ... where <date> >= @changed_from`` for every derived table (BigQuery SQL)."""
    refs = table_refs(settings)
    return [
        f"delete from {refs[name]} where {_partition_field(name)} >= @changed_from"
        for name in DERIVED_TABLES
    ]


#: The summaries of the orders every load keeps in the same transaction as the orders
#: (``first_orders``, then ``cohort_activity``, which reads it), in this order.
SUMMARY_REFRESH = (
    "maintenance/refresh_first_orders_clear",
    "maintenance/refresh_first_orders_add",
    "maintenance/refresh_cohort_activity_clear",
    "maintenance/refresh_cohort_activity_add",
)
#: ``changed_from`` that rebuilds the summaries from every order
WHOLE_HISTORY = dt.date.min


def summary_statements(settings: Settings) -> list[str]:
    """Bring the orders' summaries up to date after the orders changed from
    ``@changed_from`` on (BigQuery SQL, both backends; ``WHOLE_HISTORY`` rebuilds them)."""
    return [render(name, settings) for name in SUMMARY_REFRESH]


def retention_statements(settings: Settings) -> tuple[str, str]:
    """``(due partitions, old markers)``: the two statements of the retention step (BigQuery
    SQL, both backends).

    A retained table loses a date's rows once the run marker of that date (its write time)
    is older than ``@cutoff_ts``; rows no marker vouches for (a run killed half-way) go once
    their date is older than ``@cutoff_date``. Counting from the write time, a backfill of
    an old date is kept as long as a fresh run. The rule depends on the date only, so it
    removes whole partitions: the first query lists them, ``(table_name, partition_date,
    row_count)`` for every retained table, and ``Warehouse.drop_partitions`` removes them
    (BigQuery deletes a partition for free; a DML DELETE would bill every column of it).
    Then the second statement deletes the old markers themselves.

    Every part of the query keeps to dates up to ``@prune_to`` (``retention_parameters``):
    no row after it is due, so the condition changes nothing, but it is a constant bound
    on the partitioning column, which lets BigQuery prune: the query reads the date column
    of the partitions due only, not of every partition retention keeps.
    """
    refs = table_refs(settings)
    markers = refs["run_markers"]
    parts = []
    for entry in TABLE_CATALOG:
        if not entry.retained:
            continue
        field = entry.partition_field
        vouched = f"select run_date from {markers} where step = '{entry.marker}'"
        parts.append(
            f"select '{entry.name}' as table_name, {field} as partition_date, "
            f"count(*) as row_count from {refs[entry.name]} where {field} <= @prune_to and ("
            f"{field} in ({vouched} and completed_at < @cutoff_ts) or ({field} < "
            f"@cutoff_date and {field} not in ({vouched}))) group by {field}"
        )
    due = "\nunion all\n".join(parts)
    return due, f"delete from {markers} where completed_at < @cutoff_ts"


def retention_cutoff(settings: Settings, now: dt.datetime) -> dt.datetime:
    """The write time before which a date's retained rows go (``@cutoff_ts``)."""
    return now - dt.timedelta(days=settings.retention_days)


def retention_parameters(cutoff: dt.datetime, latest_due: dt.date | None) -> dict[str, Any]:
    """The parameters of ``retention_statements`` for a ``retention_cutoff``.

    ``@prune_to`` is the last date a DELETE can remove: the later of ``latest_due`` (the
    latest date whose marker is older than the cutoff, ``markers/read_retention_due``; None
    when no marker is) and the day before ``@cutoff_date``.
    """
    prune_to = cutoff.date() - dt.timedelta(days=1)
    if latest_due is not None:
        prune_to = max(prune_to, latest_due)
    return {"cutoff_ts": cutoff, "cutoff_date": cutoff.date(), "prune_to": prune_to}


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower()


class DuckDBWarehouse:
    """The embedded warehouse: one DuckDB file, one writer at a time.

    Opening waits up to ``duckdb_lock_wait_seconds`` while another process holds the file
    (a DAG task, a CLI write), saying so once, instead of failing at once.
    """

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        path = settings.duckdb_file
        if read_only and not path.exists():
            raise WarehouseError(
                f"no warehouse at {path}: load orders first "
                "(`retentionops load-sample` or `retentionops load-orders PATH`)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect(path, read_only)
        self._depth = 0
        if not read_only:
            self._summarise_older_orders()

    def _summarise_older_orders(self) -> None:
        """A warehouse whose orders predate the orders' summaries (an older version wrote
        it) gets them when first opened for writing: every reader of SQL4, SQL5, the
        incidents and the orders' range needs them."""
        names = {
            row[0]
            for row in self.con.execute(
                "select table_name from duckdb_tables() where database_name = "
                "current_database() and schema_name = current_schema() and table_name in "
                "('orders', 'cohort_activity')"
            ).fetchall()
        }
        if names == {"orders"}:
            with self.transaction():
                self.ensure_tables(("first_orders", "cohort_activity"))
                self.refresh_summaries(WHOLE_HISTORY)

    def _connect(self, path: Any, read_only: bool) -> Any:
        import duckdb

        deadline = time.monotonic() + self.settings.duckdb_lock_wait_seconds
        said = False
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as error:
                if not _is_lock_error(error) or time.monotonic() >= deadline:
                    raise WarehouseError(
                        f"cannot open the DuckDB warehouse {path}: "
                        f"{str(error).splitlines()[0]}. Another process (a DAG run?) is "
                        "writing to it and DuckDB allows one writer: retry when it is done "
                        "(or raise duckdb_lock_wait_seconds)."
                    ) from None
                if not said:
                    log.warning(
                        "waiting up to %.0f s for the DuckDB warehouse %s: another process "
                        "holds its lock",
                        self.settings.duckdb_lock_wait_seconds,
                        path,
                    )
                    said = True
                time.sleep(0.2)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested blocks join the outermost one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        finally:
            self._depth = 0
        self.con.commit()

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        return self.transaction()

    def execute(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run one rendered BigQuery statement on DuckDB with its parameters."""
        import duckdb

        used = parameter_names(bigquery_sql)
        params = params or {}
        missing = sorted(used - set(params))
        if missing:
            raise KeyError(f"no value for query parameter(s) {', '.join(missing)}")
        try:
            with progress.watch_query(self.con):
                return self.con.execute(to_duckdb(bigquery_sql), {k: params[k] for k in used})
        except duckdb.CatalogException as error:
            raise WarehouseError(
                f"{str(error).splitlines()[0]} in {self.settings.duckdb_file}: load orders "
                "(`retentionops load-sample` or `load-orders`) and run detection first"
            ) from None

    def fetch(
        self, bigquery_sql: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        cursor = self.execute(bigquery_sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def execute_sql(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> int:
        row = self.execute(bigquery_sql, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.fetch(render(sql_name, self.settings), params)

    def execute_file(
        self, sql_name: str, params: dict[str, Any], types: dict[str, str] | None = None
    ) -> None:
        """Run one statement file for its effect (e.g. a MERGE); ``types`` is for BigQuery."""
        self.execute(render(sql_name, self.settings), params)

    def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for statement in ddl_statements(self.settings, names):
            self.execute(statement)

    def refresh_summaries(self, changed_from: dt.date) -> None:
        """The orders' summaries, brought up to date for orders changed from a date on."""
        with self.transaction():
            for statement in summary_statements(self.settings):
                self.execute(statement, {"changed_from": changed_from})

    def replace_partition(self, sql_name: str, *, table: str, params: dict[str, Any]) -> int:
        """Replace rows of ``table`` for dates from_date..run_date with the query's rows."""
        select_sql = render(sql_name, self.settings)
        target = table_refs(self.settings)[table]
        partition_field = _partition_field(table)
        self.ensure_tables((table,))
        with self.transaction(), progress.watch_query(self.con):
            self.con.execute(
                f"delete from {target} where {partition_field} between $from_date and $run_date",
                {
                    "from_date": params.get("from_date", params["run_date"]),
                    "run_date": params["run_date"],
                },
            )
            used = parameter_names(select_sql)
            (written,) = self.con.execute(
                f"insert into {target} by name select * from ({to_duckdb(select_sql)})",
                {k: params[k] for k in used},
            ).fetchone()
        return int(written)

    def count_rows(self, table: str, day: dt.date) -> int:
        """Rows of one date; 0 when the table does not exist yet (works read-only)."""
        import duckdb

        target = table_refs(self.settings)[table]
        try:
            (count,) = self.con.execute(
                f"select count(*) from {target} where {_partition_field(table)} = $day",
                {"day": day},
            ).fetchone()
        except duckdb.CatalogException:
            return 0
        return int(count)

    def drop_partitions(self, table: str, days: list[dt.date]) -> None:
        target = table_refs(self.settings)[table]
        field = _partition_field(table)
        for day in days:
            self.con.execute(f"delete from {target} where {field} = $day", {"day": day})

    def replace_orders(self, frame: pd.DataFrame) -> dt.date | None:
        """Stage, compare and replace the orders in one transaction (see the protocol).

        On any error the transaction rolls back and the warehouse is exactly as it was.
        """
        self.ensure_tables()
        refs = table_refs(self.settings)
        self.con.register("incoming_frame", frame)
        try:
            with self.transaction(), progress.watch_query(self.con):
                self.con.execute(f"delete from {refs['orders_incoming']}")
                self.con.execute(f"insert into {refs['orders_incoming']} by name {_ORDERS_SELECT}")
                [row] = self.query("maintenance/orders_changed_from", {})
                changed_from: dt.date | None = row["changed_from"]
                if changed_from is not None:
                    self.con.execute(f"delete from {refs['orders']}")
                    self.con.execute(
                        f"insert into {refs['orders']} by name "
                        f"select * from {refs['orders_incoming']}"
                    )
                    for statement in invalidation_statements(self.settings):
                        self.execute(statement, {"changed_from": changed_from})
                    self.refresh_summaries(changed_from)
                self.con.execute(f"delete from {refs['orders_incoming']}")
        finally:
            self.con.unregister("incoming_frame")
        return changed_from


class BigQueryWarehouse:
    """BigQuery through the Google provider's hook (imported only when this backend is used)."""

    def __init__(self, settings: Settings) -> None:
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        self.settings = settings
        self.hook = BigQueryHook(
            gcp_conn_id=settings.gcp_conn_id,
            location=settings.bigquery_location,
            use_legacy_sql=False,
        )

    def close(self) -> None:
        """Nothing to release: the hook holds no open connection."""

    def __enter__(self) -> BigQueryWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        # Each BigQuery job is atomic; a sequence is made whole by its run marker.
        return contextlib.nullcontext()

    def _run(self, configuration: dict[str, Any]) -> Any:
        return self.hook.insert_job(
            configuration=configuration,
            project_id=self.settings.bigquery_project,
            location=self.settings.bigquery_location,
        )

    def fetch(
        self, bigquery_sql: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        config = bigquery.query_job(
            bigquery_sql, bigquery_query_parameters(bigquery_sql, params or {})
        )
        return [dict(row.items()) for row in self._run(config).result()]

    def execute_sql(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> int:
        job = self._run(
            bigquery.query_job(bigquery_sql, bigquery_query_parameters(bigquery_sql, params or {}))
        )
        job.result()
        return int(job.num_dml_affected_rows or 0)

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.fetch(render(sql_name, self.settings), params)

    def execute_file(
        self, sql_name: str, params: dict[str, Any], types: dict[str, str] | None = None
    ) -> None:
        text = render(sql_name, self.settings)
        self._run(bigquery.query_job(text, bigquery_query_parameters(text, params, types))).result()

    def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for statement in ddl_statements(self.settings, names):
            self._run(bigquery.query_job(statement, [])).result()

    def replace_partition(self, sql_name: str, *, table: str, params: dict[str, Any]) -> int:
        select_sql = render(sql_name, self.settings)
        day = params["run_date"]
        parameters = bigquery_query_parameters(select_sql, params)
        if params.get("from_date", day) != day:  # a date range: one transaction
            job = self._run(
                bigquery.range_job(
                    self.settings, query=select_sql, parameters=parameters, table=table
                )
            )
            job.result()
            return int(job.num_dml_affected_rows or 0)
        job = self._run(
            bigquery.partition_job(
                self.settings,
                query=select_sql,
                parameters=parameters,
                table=table,
                partition_field=_partition_field(table),
                partition=day.strftime("%Y%m%d"),
            )
        )
        job.result()
        return int(job.num_dml_affected_rows or getattr(job, "total_rows", 0) or 0)

    def refresh_summaries(self, changed_from: dt.date) -> None:
        script = ";\n".join(
            ["begin transaction", *summary_statements(self.settings), "commit transaction"]
        )
        self.execute_sql(script, {"changed_from": changed_from})

    def count_rows(self, table: str, day: dt.date) -> int:
        ref = table_refs(self.settings)[table]
        rows = self.fetch(
            f"select count(*) as n from {ref} where {_partition_field(table)} = @day",
            {"day": day},
        )
        return int(rows[0]["n"])

    def drop_partitions(self, table: str, days: list[dt.date]) -> None:
        """Delete each date's partition through the tables API (``table$YYYYMMDD``): a free
        metadata operation, where a DML DELETE bills every column of the partition."""
        if not days:
            return
        client = self.hook.get_client(
            project_id=self.settings.bigquery_project, location=self.settings.bigquery_location
        )
        prefix = f"{self.settings.bigquery_project}.{self.settings.bigquery_dataset}"
        for day in days:
            client.delete_table(f"{prefix}.{table}${day:%Y%m%d}", not_found_ok=True)

    def replace_orders(self, frame: pd.DataFrame) -> dt.date | None:
        """Load into ``orders_incoming``, compare, then replace and invalidate in one
        multi-statement transaction (BigQuery scripting), so readers never see a mix."""
        from google.cloud import bigquery as bq

        self.ensure_tables()
        refs = table_refs(self.settings)
        staging = f"{self.settings.bigquery_project}.{self.settings.bigquery_dataset}"
        # WRITE_TRUNCATE gives the table the load's schema: without one the client infers
        # it from the frame (order_amount float64 -> FLOAT64), and the INSERT of FLOAT64
        # into the NUMERIC orders.order_amount fails. The DDL's schema keeps NUMERIC.
        columns = table_columns("orders_incoming")
        self.hook.get_client(
            project_id=self.settings.bigquery_project, location=self.settings.bigquery_location
        ).load_table_from_dataframe(
            load_frame(frame, columns),
            f"{staging}.orders_incoming",
            job_config=bq.LoadJobConfig(
                schema=load_schema(columns), write_disposition="WRITE_TRUNCATE"
            ),
        ).result()
        [row] = self.query("maintenance/orders_changed_from", {})
        changed_from: dt.date | None = row["changed_from"]
        if changed_from is None:
            return None
        script = ";\n".join(
            [
                "begin transaction",
                f"delete from {refs['orders']} where true",
                f"insert into {refs['orders']} select * from {refs['orders_incoming']}",
                *invalidation_statements(self.settings),
                *summary_statements(self.settings),
                "commit transaction",
            ]
        )
        self.execute_sql(script, {"changed_from": changed_from})
        return changed_from


def open_warehouse(settings: Settings, *, read_only: bool = False) -> Warehouse:
    """Open the configured backend; close it (or use ``with``) when done."""
    if settings.warehouse_backend == "bigquery":
        return BigQueryWarehouse(settings)
    return DuckDBWarehouse(settings, read_only=read_only)
