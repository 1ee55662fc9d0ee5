"""Every SQL file parses as BigQuery, transpiles, and runs on DuckDB; the seam's own rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import sqlglot

from retentionops.detection import DETECTION_STEPS
from retentionops.settings import load_settings
from retentionops.sql import (
    SQL_DIR,
    TABLES,
    detection_parameters,
    parameter_names,
    render,
    to_duckdb,
)

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))


def test_there_are_sql_files():
    names = {p.name for p in SQL_FILES}
    assert {f"{n}.sql" for n in ("create_" + t for t in TABLES)} <= names
    # SQL1-SQL5, SQL5 in two files: the orders-based pass and a daily run's (which extends it)
    assert [p.name[:2] for p in sorted((SQL_DIR / "detection").glob("0*.sql"))] == [
        "01",
        "02",
        "03",
        "04",
        "05",
        "05",
    ]


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
@pytest.mark.parametrize("backend", ["duckdb", "bigquery"])
def test_every_file_parses_as_bigquery(path: Path, backend: str):
    settings = load_settings(env={}, warehouse_backend=backend, bigquery_project="demo-project")
    text = render(str(path.relative_to(SQL_DIR)), settings)
    statements = sqlglot.parse(text, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    assert len([s for s in statements if s is not None]) == 1  # one statement per file
    if backend == "bigquery":
        assert "`demo-project.retentionops." in text


def test_every_file_runs_on_duckdb(warehouse, settings):
    warehouse.ensure_tables()
    params = detection_parameters(settings, dt.date(2011, 1, 31))
    for step in DETECTION_STEPS:
        warehouse.replace_partition(step.sql_name, table=step.table, params=params)
    assert warehouse.query("detection/read_alert_decision", params) == []


def test_values_only_enter_as_parameters(settings):
    text = render("detection/05_alert_logic", settings)
    assert {"run_date", "from_date", "active_days", "threshold_critical_bp"} <= parameter_names(
        text
    )
    assert "2011" not in text and "15" not in text.replace("1/100", "")


def test_integer_division_keeps_its_operands():
    # sqlglot alone prints DIV(a + b, c) as `a + b // c`, which DuckDB reads as a + (b // c).
    sql = to_duckdb("select div(7 + 1, 2) as q")
    assert duckdb.connect().execute(sql).fetchone() == (4,)


def test_date_arithmetic_is_a_date_even_inside_another_cast():
    # BigQuery: DATE_SUB of a DATE is a DATE, so its string is 'YYYY-MM-DD' (the holdout
    # period's hash key depends on it); DuckDB's date - INTERVAL alone is a TIMESTAMP.
    sql = to_duckdb(
        "select cast(date_sub(date '2011-03-01', interval 26 day) as string) as s, "
        "date_add(date '2011-03-01', interval 1 day) as d"
    )
    assert duckdb.connect().execute(sql).fetchone() == ("2011-02-03", dt.date(2011, 3, 2))


def test_numeric_keeps_bigquery_precision():
    sql = to_duckdb("select cast('1234567.123456789' as numeric) as n")
    assert str(duckdb.connect().execute(sql).fetchone()[0]) == "1234567.123456789"


def test_a_not_enforced_key_is_enforced_on_duckdb():
    # BigQuery only takes `primary key (...) not enforced`; DuckDB has no such clause
    sql = to_duckdb("create table t (a string not null, primary key (a) not enforced)")
    assert "ENFORCED" not in sql.upper() and "PRIMARY KEY (a)" in sql
    con = duckdb.connect()
    con.execute(sql)
    con.execute("insert into t values ('x')")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("insert into t values ('x')")


def test_decision_row_is_json_friendly(load_orders, settings):
    from retentionops import detection

    warehouse = load_orders([("a", "1", "2011-01-01", 10)])
    row = detection.run_detection(warehouse, settings, dt.date(2011, 1, 1))
    assert row["alert_date"] == "2011-01-01"
    assert isinstance(row["alert_flag"], bool) and isinstance(row["current_value"], float)
    # one customer, ordered today: ACTIVE, so 0 % AT_RISK, no baseline yet
    assert (row["current_value"], row["baseline_value"], row["sample_size"]) == (0.0, None, 1)


def test_run_log_merge_parameters_are_typed_even_when_null():
    from retentionops.runlog import RUN_LOG_TYPES, RunOutcome, summarize
    from retentionops.sql import bigquery_query_parameters

    settings = load_settings(env={}, warehouse_backend="bigquery", bigquery_project="p")
    text = render("action/write_run_log", settings)
    assert text.lstrip().startswith("-- Upsert") and "merge `p.retentionops.ops_runs_log`" in text
    record = summarize(
        RunOutcome(
            "r1", "2011-05-13", "dag", daily=True,
            decision={"severity": "INFO", "alert_flag": False, "sample_size": 2391},
            plan={"event": None, "incident_id": None, "send": False, "alerting": False},
        ),
        now=dt.datetime(2011, 5, 14, 6, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    assert record["status"] == "skipped"
    params = {p["name"]: p for p in bigquery_query_parameters(text, record, RUN_LOG_TYPES)}
    assert params["ticket_id"] == {
        "name": "ticket_id",
        "parameterType": {"type": "STRING"},
        "parameterValue": {},
    }
    assert params["run_timestamp"]["parameterType"]["type"] == "TIMESTAMP"
    assert params["run_timestamp"]["parameterValue"]["value"] == "2011-05-14T06:00:00+00:00"
    assert params["alert_flag"]["parameterValue"] == {"value": "false"}
    assert params["sample_size"]["parameterType"]["type"] == "INT64"
    assert params["p1_count"]["parameterType"]["type"] == "INT64"
    assert set(params) == set(RUN_LOG_TYPES)
