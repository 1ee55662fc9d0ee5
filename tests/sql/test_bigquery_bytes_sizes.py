"""The benchmark's BigQuery sizes per column and partition, read from DuckDB tables."""

from __future__ import annotations

import datetime as dt
import sys

import duckdb
from support import ROOT

from retentionops.sql import to_duckdb

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bigquery_bytes as bb  # noqa: E402

DDL = {
    "orders": "create table orders (customer_id string not null, order_date date not null, "
    "order_amount numeric not null, country string, primary key (customer_id) not enforced) "
    "partition by date_trunc(order_date, month)",
    "events": "create table events (at timestamp not null, n int64, x float64, ok bool) "
    "partition by date(at)",
    "plain": "create table plain (name string)",
}


def test_column_bytes_per_partition_at_bigquery_sizes():
    catalog = bb.table_catalog(DDL)
    con = duckdb.connect()
    for text in DDL.values():
        con.execute(to_duckdb(text))
    con.execute(
        "insert into orders values ('c1', '2024-01-05', 10, 'UK'), ('c12', '2024-01-31', 1, null),"
        " ('c2', '2024-02-10', 7, 'Éire')"
    )
    con.execute(
        "insert into events values ('2024-01-01 10:00', 1, null, true), "
        "('2024-01-01 23:59', null, 2.5, null), ('2024-01-02 00:00', 3, 1.0, false)"
    )
    con.execute("insert into plain values ('ab'), (null), ('€')")  # '€' is 3 bytes in UTF-8
    assert bb.column_bytes(con, catalog["orders"]) == {
        # ids (2+2) + (2+3); 2 dates x 8; 2 x NUMERIC 16; (2+2) + NULL 0
        dt.date(2024, 1, 1): {"customer_id": 9, "order_date": 16, "order_amount": 32, "country": 4},
        # 2+2; 8; 16; 'Éire' 2 + 5
        dt.date(2024, 2, 1): {"customer_id": 4, "order_date": 8, "order_amount": 16, "country": 7},
    }
    assert bb.column_bytes(con, catalog["events"]) == {
        # day partitions of a TIMESTAMP column; every non-NULL INT64/FLOAT64 8, BOOL 1
        dt.date(2024, 1, 1): {"at": 16, "n": 8, "x": 8, "ok": 1},
        dt.date(2024, 1, 2): {"at": 8, "n": 8, "x": 8, "ok": 1},
    }
    assert bb.column_bytes(con, catalog["plain"]) == {None: {"name": (2 + 2) + (2 + 3)}}
    # a table the warehouse never created holds nothing
    con.execute("drop table plain")
    assert bb.column_bytes(con, catalog["plain"]) == {}
