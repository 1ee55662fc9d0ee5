"""Seam fixes found by the differential run, each pinned on DuckDB directly."""

from __future__ import annotations

import datetime as dt

import duckdb

from retentionops.sql import to_duckdb


def test_date_trunc_of_a_date_is_a_date():
    # BigQuery: DATE_TRUNC(DATE, MONTH) -> DATE. DuckDB's date_trunc returns a TIMESTAMP,
    # which get_health returned as `month` until the seam cast it back.
    sql = to_duckdb("select date_trunc(date '2011-05-13', month) as m")
    assert duckdb.connect().execute(sql).fetchone() == (dt.date(2011, 5, 1),)


def test_date_trunc_inside_date_diff_keeps_its_meaning():
    sql = to_duckdb(
        "select date_diff(date_trunc(date '2011-05-13', month), date '2010-12-01', month) as k"
    )
    assert duckdb.connect().execute(sql).fetchone() == (5,)
