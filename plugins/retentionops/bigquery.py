"""BigQuery job configurations, as plain dicts (no Google client import needed to build them).

The DAG passes these to ``BigQueryInsertJobOperator``; ``BigQueryWarehouse`` passes the same
shape to ``BigQueryHook.insert_job``. A write replaces exactly one partition: the destination
is ``table$YYYYMMDD`` with ``WRITE_TRUNCATE``, so a retry or a backfill never duplicates.
"""

from __future__ import annotations

from typing import Any

from retentionops.settings import Settings


def query_job(query: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """A read-only query job (results come back to the caller)."""
    return {
        "query": {
            "query": query,
            "useLegacySql": False,
            "parameterMode": "NAMED",
            "queryParameters": parameters,
        }
    }


def partition_job(
    settings: Settings,
    *,
    query: str,
    parameters: list[dict[str, Any]],
    table: str,
    partition_field: str,
    partition: str,
) -> dict[str, Any]:
    """A query job whose result replaces one day partition (``partition`` is ``YYYYMMDD``)."""
    config = query_job(query, parameters)
    config["query"].update(
        {
            "destinationTable": {
                "projectId": settings.bigquery_project,
                "datasetId": settings.bigquery_dataset,
                "tableId": f"{table}${partition}",
            },
            "writeDisposition": "WRITE_TRUNCATE",
            # Tables are created by the DDL under include/sql/ddl (partitioning, clustering).
            "createDisposition": "CREATE_NEVER",
            "timePartitioning": {"type": "DAY", "field": partition_field},
        }
    )
    return config


def include(sql_name: str) -> str:
    """A Jinja include of a SQL file, rendered by Airflow (``template_searchpath=include/``)."""
    from retentionops.sql import sql_path

    return "{% include '" + sql_path(sql_name) + "' %}"


def step_job(settings: Settings, step: Any, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``BigQueryInsertJobOperator`` configuration of one daily SQL step.

    The query is the step's SQL file itself (included at render time); the run date arrives
    as the ``@run_date`` DATE parameter from ``{{ ds }}`` and the result replaces the run
    date's partition (``table${{ ds_nodash }}``, WRITE_TRUNCATE). A history step (SQL5)
    replaces the dates ``@from_date``..``@run_date`` in one transaction instead.

    ``values`` gives the parameters decided when the run starts, from the warehouse (SQL5's
    ``from_date``, the queue's ``previous_run_date``): name -> ``parameterValue``, where the
    DAG passes the output of the task that reads it (an ``XComArg``, rendered with the job;
    ``{}`` is a typed NULL).
    """
    from retentionops.sql import bigquery_query_parameters, render, table

    values = values or {}
    if step.history and "from_date" not in values:
        raise ValueError(f"the {step.name} job needs its from_date (decided at run time)")
    parameters = bigquery_query_parameters(
        render(step.sql_name, settings), step.parameters(settings, "{{ ds }}")
    )
    for parameter in parameters:
        if parameter["name"] in values:
            parameter["parameterValue"] = values[parameter["name"]]
    if step.history:
        return range_job(
            settings, query=include(step.sql_name), parameters=parameters, table=step.table
        )
    return partition_job(
        settings,
        query=include(step.sql_name),
        parameters=parameters,
        table=step.table,
        partition_field=table(step.table).partition_field,
        partition="{{ ds_nodash }}",
    )


def range_job(
    settings: Settings, *, query: str, parameters: list[dict[str, Any]], table: str
) -> dict[str, Any]:
    """A query replacing the table's rows of ``@from_date``..``@run_date`` in one
    transaction (a multi-statement job: delete the range, insert the query's rows)."""
    from retentionops.sql import table as table_spec
    from retentionops.sql import table_refs

    ref = table_refs(settings)[table]
    field = table_spec(table).partition_field
    script = ";\n".join(
        [
            "begin transaction",
            f"delete from {ref} where {field} between @from_date and @run_date",
            f"insert into {ref}\n{query}",
            "commit transaction",
        ]
    )
    return query_job(script, parameters)


def dml_job(settings: Settings, sql_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A DML statement file as a job (a run marker: no destination table)."""
    from retentionops.sql import bigquery_query_parameters, render

    return query_job(
        include(sql_name), bigquery_query_parameters(render(sql_name, settings), values)
    )


def history_marker_job(settings: Settings, step: str) -> dict[str, Any]:
    """One script: forget the alert-history coverage of other settings, then mark ``step``
    (the current settings' history marker) complete for the run date."""
    from retentionops.sql import bigquery_query_parameters, render

    names = ("markers/clear_other_history_markers", "markers/mark_step_complete")
    text = ";\n".join(render(name, settings) for name in names)
    return query_job(
        ";\n".join(include(name) for name in names),
        bigquery_query_parameters(text, {"run_date": "{{ ds }}", "step": step}),
    )


def create_tables_job(settings: Settings, table_names: tuple[str, ...]) -> dict[str, Any]:
    """One multi-statement job running every ``CREATE TABLE IF NOT EXISTS`` of ``ddl/`` and
    adding the columns later versions added (``alter table ... add column if not exists``)."""
    from retentionops.sql import table, table_refs

    refs = table_refs(settings)
    statements = []
    for name in table_names:
        statements.append(include(f"ddl/create_{name}"))
        statements += [
            f"alter table {refs[name]} add column if not exists {column} {kind}"
            for column, kind in table(name).added_columns
        ]
    return query_job(";\n".join(statements), [])
