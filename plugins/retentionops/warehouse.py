"""Warehouse backends: embedded DuckDB (default) and BigQuery, behind one small interface.

Both run the same BigQuery SQL files from ``include/sql`` (see ``retentionops.sql``). A
write always replaces one date range of one table inside a transaction (DuckDB) or one
partition with WRITE_TRUNCATE (BigQuery), so re-running a date never duplicates rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from retentionops import bigquery
from retentionops.errors import UserError
from retentionops.settings import Settings
from retentionops.sql import (
    DERIVED_TABLES,
    TABLES,
    bigquery_query_parameters,
    parameter_names,
    render,
    table,
    table_refs,
    to_duckdb,
)

if TYPE_CHECKING:
    import pandas as pd


class WarehouseError(UserError):
    """A warehouse operation failed; the message says what to do."""


class Warehouse(Protocol):
    """What every backend offers; the package talks to a warehouse through this only."""

    settings: Settings

    def close(self) -> None: ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(self, *exc: object) -> None: ...

    def fetch(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        """Run rendered BigQuery SQL; return its rows as dicts."""

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict]:
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

    def delete_before(self, table: str, cutoff: dt.date) -> int:
        """Delete a table's rows dated before ``cutoff``; return how many."""

    def replace_orders(self, frame: pd.DataFrame) -> int:
        """Replace the orders table; derived tables are cleared as stale."""


class DuckDBWarehouse:
    """The embedded warehouse: one DuckDB file, one writer at a time."""

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        import duckdb

        self.settings = settings
        path = settings.duckdb_file
        if read_only and not path.exists():
            raise WarehouseError(
                f"no warehouse at {path}: load orders first "
                "(`retentionops load-sample` or `retentionops load-orders PATH`)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            raise WarehouseError(
                f"cannot open the DuckDB warehouse {path}: {error}. Another process (a DAG "
                "run?) may be writing to it; DuckDB allows one writer. Retry when it is done."
            ) from None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def execute(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run one rendered BigQuery statement on DuckDB with its parameters."""
        import duckdb

        used = parameter_names(bigquery_sql)
        missing = sorted(used - set(params or {}))
        if missing:
            raise KeyError(f"no value for query parameter(s) {', '.join(missing)}")
        try:
            return self.con.execute(to_duckdb(bigquery_sql), {k: params[k] for k in used})
        except duckdb.CatalogException as error:
            raise WarehouseError(
                f"{str(error).splitlines()[0]} in {self.settings.duckdb_file}: load orders "
                "(`retentionops load-sample` or `load-orders`) and run detection first"
            ) from None

    def fetch(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        cursor = self.execute(bigquery_sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict]:
        return self.fetch(render(sql_name, self.settings), params)

    def execute_file(
        self, sql_name: str, params: dict[str, Any], types: dict[str, str] | None = None
    ) -> None:
        """Run one statement file for its effect (e.g. a MERGE); ``types`` is for BigQuery."""
        self.execute(render(sql_name, self.settings), params)

    def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for name in names:
            self.execute(render(f"ddl/create_{name}", self.settings))

    def replace_partition(self, sql_name: str, *, table: str, params: dict[str, Any]) -> int:
        """Replace rows of ``table`` for dates from_date..run_date with the query's rows."""
        select_sql = render(sql_name, self.settings)
        target = table_refs(self.settings)[table]
        partition_field = _partition_field(table)
        self.ensure_tables((table,))
        with self.transaction():
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

    def delete_before(self, table: str, cutoff: dt.date) -> int:
        """Drop a table's rows dated before ``cutoff`` (retention of old partitions)."""
        target = table_refs(self.settings)[table]
        self.ensure_tables((table,))
        (deleted,) = self.con.execute(
            f"delete from {target} where {_partition_field(table)} < $cutoff", {"cutoff": cutoff}
        ).fetchone()
        return int(deleted)

    def replace_orders(self, frame: pd.DataFrame) -> int:
        """Replace the whole orders table atomically; derived tables are cleared as stale.

        On any error the transaction rolls back and the warehouse is exactly as it was.
        """
        self.ensure_tables()
        refs = table_refs(self.settings)
        self.con.register("incoming_orders", frame)
        try:
            with self.transaction():
                self.con.execute(f"delete from {refs['orders']}")
                (written,) = self.con.execute(
                    f"""
                    insert into {refs["orders"]} by name
                    select
                        cast(customer_id as varchar) as customer_id,
                        cast(order_id as varchar) as order_id,
                        cast(order_date as date) as order_date,
                        cast(order_amount as decimal(38, 9)) as order_amount,
                        cast(country as varchar) as country
                    from incoming_orders
                    """
                ).fetchone()
                for name in DERIVED_TABLES:
                    self.con.execute(f"delete from {refs[name]}")
        finally:
            self.con.unregister("incoming_orders")
        return int(written)


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

    def _run(self, configuration: dict[str, Any]) -> Any:
        return self.hook.insert_job(
            configuration=configuration,
            project_id=self.settings.bigquery_project,
            location=self.settings.bigquery_location,
        )

    def fetch(self, bigquery_sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        config = bigquery.query_job(
            bigquery_sql, bigquery_query_parameters(bigquery_sql, params or {})
        )
        return [dict(row.items()) for row in self._run(config).result()]

    def query(self, sql_name: str, params: dict[str, Any]) -> list[dict]:
        return self.fetch(render(sql_name, self.settings), params)

    def execute_file(
        self, sql_name: str, params: dict[str, Any], types: dict[str, str] | None = None
    ) -> None:
        text = render(sql_name, self.settings)
        self._run(bigquery.query_job(text, bigquery_query_parameters(text, params, types))).result()

    def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for name in names:
            self._run(bigquery.query_job(render(f"ddl/create_{name}", self.settings), []))

    def replace_partition(self, sql_name: str, *, table: str, params: dict[str, Any]) -> int:
        if params.get("from_date", params["run_date"]) != params["run_date"]:
            raise WarehouseError("BigQuery writes replace one day partition at a time")
        select_sql = render(sql_name, self.settings)
        day = params["run_date"]
        job = self._run(
            bigquery.partition_job(
                self.settings,
                query=select_sql,
                parameters=bigquery_query_parameters(select_sql, params),
                table=table,
                partition_field=_partition_field(table),
                partition=day.strftime("%Y%m%d"),
            )
        )
        job.result()
        return int(job.num_dml_affected_rows or getattr(job, "total_rows", 0) or 0)

    def count_rows(self, table: str, day: dt.date) -> int:
        ref = table_refs(self.settings)[table]
        rows = self.fetch(
            f"select count(*) as n from {ref} where {_partition_field(table)} = @day",
            {"day": day},
        )
        return int(rows[0]["n"])

    def delete_before(self, table: str, cutoff: dt.date) -> int:
        ref = table_refs(self.settings)[table]
        text = f"delete from {ref} where {_partition_field(table)} < @cutoff"
        job = self._run(
            bigquery.query_job(text, bigquery_query_parameters(text, {"cutoff": cutoff}))
        )
        job.result()
        return int(job.num_dml_affected_rows or 0)

    def replace_orders(self, frame: pd.DataFrame) -> int:
        from google.cloud import bigquery as bq

        table = f"{self.settings.bigquery_project}.{self.settings.bigquery_dataset}.orders"
        job = self.hook.get_client(
            project_id=self.settings.bigquery_project, location=self.settings.bigquery_location
        ).load_table_from_dataframe(
            frame, table, job_config=bq.LoadJobConfig(write_disposition="WRITE_TRUNCATE")
        )
        job.result()
        return len(frame)


def _partition_field(name: str) -> str:
    field = table(name).partition_field
    if field is None:
        raise KeyError(f"table '{name}' has no date partition")
    return field


def open_warehouse(settings: Settings, *, read_only: bool = False) -> Warehouse:
    """Open the configured backend; close it (or use ``with``) when done."""
    if settings.warehouse_backend == "bigquery":
        return BigQueryWarehouse(settings)
    return DuckDBWarehouse(settings, read_only=read_only)
