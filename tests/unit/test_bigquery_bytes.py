"""The BigQuery bytes estimator of the benchmark (``bench/bigquery_bytes.py``), by hand.

Tiny tables whose bytes per column and partition are worked out below at BigQuery's sizes
(STRING 2 + UTF-8 length, DATE 8, NUMERIC 16, NULL 0); the queries are parsed as BigQuery.
"""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from support import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bigquery_bytes as bb  # noqa: E402

JAN, FEB, MAR = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
DDL = {
    "orders": "create table orders (customer_id string not null, order_date date not null, "
    "order_amount numeric not null, country string) "
    "partition by date_trunc(order_date, month) cluster by customer_id",
    "snap": "create table snap (snapshot_date date not null, customer_id string not null, "
    "status string) partition by snapshot_date",
    "health": "create or replace view health as select status from snap",
}
#: The rows behind SIZES (also loaded by tests/sql/test_bigquery_bytes_sizes.py).
ORDERS = [
    ("c1", "2024-01-05", 10, "UK"),
    ("c2", "2024-01-20", 5, "UK"),
    ("c12", "2024-01-31", 1, None),
    ("c1", "2024-02-10", 7, "Éire"),  # É is 2 bytes in UTF-8: 'Éire' is 5 bytes
    ("c2", "2024-03-01", 2, "UK"),
]
SNAP = [("2024-03-01", "c1", "ACTIVE"), ("2024-03-01", "c2", None), ("2024-03-02", "c1", "AT_RISK")]
SIZES = {
    "orders": {
        # Jan: ids (2+2) + (2+2) + (2+3) = 13; 3 dates x 8 = 24; 3 x 16 = 48; (2+2) + (2+2) + 0
        JAN: {"customer_id": 13, "order_date": 24, "order_amount": 48, "country": 8},
        # Feb: 2+2; 8; 16; 2+5
        FEB: {"customer_id": 4, "order_date": 8, "order_amount": 16, "country": 7},
        # Mar: 2+2; 8; 16; 2+2
        MAR: {"customer_id": 4, "order_date": 8, "order_amount": 16, "country": 4},
    },
    "snap": {
        # 03-01: 2 x 8; (2+2) + (2+2); (2+6) + NULL 0
        MAR: {"snapshot_date": 16, "customer_id": 8, "status": 8},
        # 03-02: 8; 2+2; 2+7
        dt.date(2024, 3, 2): {"snapshot_date": 8, "customer_id": 4, "status": 9},
    },
}


@pytest.fixture(scope="module")
def catalog():
    return bb.table_catalog(DDL)


def bill(sql: str, catalog, params, minimum: int = 0) -> bb.QueryBytes:
    return bb.query_bytes("q", bb.references(sql, catalog, params), catalog, SIZES, minimum)


def test_the_catalog_comes_from_the_ddl(catalog):
    assert set(catalog) == {"orders", "snap"}  # a view is read through its tables
    assert catalog["orders"].columns == {
        "customer_id": "STRING",
        "order_date": "DATE",
        "order_amount": "NUMERIC",
        "country": "STRING",
    }
    assert (catalog["orders"].partition_column, catalog["orders"].partition_unit) == (
        "order_date",
        "month",
    )
    assert (catalog["snap"].partition_column, catalog["snap"].partition_unit) == (
        "snapshot_date",
        "day",
    )


def test_referenced_columns_of_the_months_up_to_d(catalog):
    sql = (
        "select customer_id, min(order_date) as first_order from orders "
        "where order_date <= @run_date group by customer_id"
    )
    q = bill(sql, catalog, {"run_date": dt.date(2024, 2, 15)})
    # D in February: the January and February partitions, customer_id and order_date only:
    # (13 + 24) + (4 + 8) = 49 bytes; amounts and countries are not read
    assert q.tables["orders"]["columns"] == ["customer_id", "order_date"]
    assert q.tables["orders"]["partitions"] == 2
    assert q.billed == 49
    # every table referenced and every query cost at least 10 MB
    assert bill(sql, catalog, {"run_date": dt.date(2024, 2, 15)}, bb.MINIMUM_BYTES).billed == (
        10 * 2**20
    )


def test_a_table_read_twice_is_billed_once_per_column_over_the_union_of_partitions(catalog):
    sql = """
        with
        on_d as (select customer_id from orders where order_date = @run_date),
        recent as (
            select country from orders
            where order_date between date_sub(@run_date, interval (@a + @b) day) and @run_date
        ),
        statuses as (
            select snap.status, snap.customer_id from snap as snap
            where snap.snapshot_date = @run_date
        )
        select * from on_d cross join recent cross join statuses
    """
    q = bill(sql, catalog, {"run_date": MAR, "a": 30, "b": 10})
    # on_d: March only (customer_id, order_date); recent: 2024-01-21 .. 03-01 = Jan, Feb, Mar
    # (country, order_date). Billed once each: customer_id Mar 4; order_date Jan + Feb + Mar
    # 24 + 8 + 8 = 40; country 8 + 7 + 4 = 19: 63 bytes
    assert q.tables["orders"]["scanned_bytes"] == 63
    assert q.tables["orders"]["partitions"] == 3
    # snap on 03-01 only: status 8 + customer_id 8 + snapshot_date 16 = 32
    assert q.tables["snap"]["scanned_bytes"] == 32
    assert q.billed == 63 + 32


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # the filter's column is read too (snapshot_date, customer_id, status per day:
        # 03-01 16 + 8 + 8, 03-02 8 + 4 + 9); an OR prunes nothing: both days
        ("snapshot_date = @run_date or customer_id = 'c9'", 16 + 8 + 8 + 8 + 4 + 9),
        ("snapshot_date > @run_date", 8 + 4 + 9),  # 03-02 only
        ("@run_date >= snapshot_date", 16 + 8 + 8),  # 03-01 only (the column on the right)
        ("snapshot_date < date '2024-03-01'", 0),  # no partition
        # a literal interval (`interval 1 day`): the day after the run date, 03-02 only
        ("snapshot_date >= date_add(@run_date, interval 1 day)", 8 + 4 + 9),
    ],
)
def test_partition_filters(catalog, where, expected):
    sql = f"select customer_id, status from snap where {where}"
    q = bill(sql, catalog, {"run_date": MAR})
    assert q.tables["snap"]["scanned_bytes"] == expected


def test_a_statement_without_scopes_reads_every_column_of_every_partition(catalog):
    sql = (
        "merge snap as s using (select @id as customer_id) as n on s.customer_id = n.customer_id "
        "when matched then update set status = 'X'"
    )
    q = bill(sql, catalog, {"id": "c1"})
    # 16 + 8 + 8 + 8 + 4 + 9: the whole table, an upper bound
    assert q.tables["snap"]["scanned_bytes"] == 53
    assert q.tables["snap"]["whole_statement"] is True


@pytest.mark.parametrize(
    ("bound", "snap_bytes"),
    [
        # the partitions up to 03-01 (one): every column, 16 + 8 + 8
        ("snapshot_date <= @prune_to and ", 32),
        # no constant bound on the partitioning column: every column of both partitions,
        # 32 + 8 + 4 + 9
        ("", 53),
    ],
)
def test_a_delete_bills_every_column_of_the_partitions_it_may_change(catalog, bound, snap_bytes):
    sql = (
        f"delete from snap where {bound}customer_id in "
        "(select customer_id from orders where order_date >= @run_date)"
    )
    q = bill(sql, catalog, {"prune_to": MAR, "run_date": MAR})
    assert q.tables["snap"]["scanned_bytes"] == snap_bytes
    assert q.tables["snap"]["whole_statement"] is False
    # its subquery reads orders' March partition, customer_id and order_date: 4 + 8
    assert q.tables["orders"]["columns"] == ["customer_id", "order_date"]
    assert q.tables["orders"]["scanned_bytes"] == 12
    assert q.billed == snap_bytes + 12


def test_an_insert_select_bills_what_its_query_reads_not_the_table_it_writes(catalog):
    sql = (
        "insert into snap (snapshot_date, customer_id, status) "
        "select @run_date, customer_id, 'NEW' from orders where order_date >= @run_date"
    )
    q = bill(sql, catalog, {"run_date": dt.date(2024, 3, 1)})
    # orders' March partition, customer_id and order_date: 4 + 8 = 12 bytes; snap (the
    # table written) is not read
    assert set(q.tables) == {"orders"}
    assert q.tables["orders"]["columns"] == ["customer_id", "order_date"]
    assert q.tables["orders"]["partitions"] == 1
    assert q.tables["orders"]["whole_statement"] is False
    assert q.billed == 12


# -- the daily run the estimate prices --------------------------------------------------------


@pytest.fixture(scope="module")
def daily_queries():
    from retentionops.settings import load_settings

    settings = load_settings(env={}, warehouse_backend="bigquery", bigquery_project="p")
    return settings, bb.daily_run(settings, dt.date(2011, 5, 13))


def test_the_daily_run_computes_sql5_for_its_own_date_from_the_snapshot(daily_queries):
    """As the DAG does on a daily run: the history is stored up to D-1, so the from-date
    branch (it reads the marker) picks the daily job, which computes D only, from SQL2's
    snapshot of D and the stored days: a partition job (no DELETE) reading no orders."""
    from retentionops.detection import history_marker

    settings, queries = daily_queries
    by_label = {label: params for label, _, params in queries}
    assert by_label["history_from_date"] == {"step": history_marker(settings)}
    sql5 = by_label["alert_logic_daily"]
    assert (sql5["from_date"], sql5["run_date"]) == (dt.date(2011, 5, 13), dt.date(2011, 5, 13))
    labels = [label for label, _, _ in queries]
    assert labels.index("retention_snapshot") < labels.index("history_from_date")
    assert labels.index("history_from_date") == labels.index("alert_logic_daily") - 1
    assert not [label for label in labels if label.startswith("alert_logic:")]
    [text] = [text for label, text, _ in queries if label == "alert_logic_daily"]
    assert "`p.retentionops.orders`" not in text
    assert "`p.retentionops.retention_snapshot`" in text


def test_the_daily_run_reads_the_operational_context_once(daily_queries):
    """The exports, the brief and the playbook take the context from the XCom of
    get_operational_context: its SQL is priced once, under that task."""
    _, queries = daily_queries
    reads = [label for label, _, params in queries if label.endswith(": context")]
    assert reads == ["get_operational_context: context"]
    texts = [text for _, text, _ in queries]
    assert sum("facet" in text and "risk_by_status" in text for text in texts) == 1
    # the playbook's last check before sending: the delivery ledger, one small read
    by_label = {label: params for label, _, params in queries}
    assert by_label["prepare_playbook: delivery ledger"] == {
        "dedupe_key": "INC-20110513:open:2011-05-13:production"
    }


def test_the_daily_run_prices_a_steady_morning_of_retention(daily_queries):
    """Every day one date expires. The bench's warehouse holds none, so D stands in for it:
    the query of the partitions due is bounded by D (prune_to), and so reads the date column
    of D's partitions, not of every partition retention keeps; the partitions themselves
    are dropped through the tables API, which no query prices."""
    _, queries = daily_queries
    retention = [(label, text, params) for label, text, params in queries
                 if label.startswith("apply_retention: ")]  # fmt: skip
    assert [label for label, _, _ in retention] == [
        "apply_retention: due dates", "apply_retention: due partitions",
        "apply_retention: old markers",
    ]  # fmt: skip
    _, due, params = retention[1]
    assert params["prune_to"] == dt.date(2011, 5, 13)
    assert due.count(" <= @prune_to and (") == 5  # one part per retained table
    assert not any(text.lstrip().startswith("delete") and "@prune_to" in text
                   for _, text, _ in retention)  # fmt: skip


def test_an_export_reads_only_the_queue_of_its_date(daily_queries):
    """Retention keeps retention_days of queue partitions in production: an export's read
    back states the queue's date itself (not only through its join), so BigQuery prunes to
    that one partition."""
    from retentionops.sql import TABLES, render

    settings, queries = daily_queries
    catalog = bb.table_catalog({name: render(f"ddl/create_{name}", settings) for name in TABLES})
    day = dt.date(2011, 5, 13)
    # the read back only (not its marker check, clear or record), once for every tier
    [(text, params)] = [(t, p) for label, t, p in queries if label == "export_audience"]
    assert params["tiers"] == ["P1", "P2", "P3"]
    refs = {ref.table: ref for ref in bb.references(text, catalog, params)}
    assert (refs["customer_priority"].low, refs["customer_priority"].high) == (day, day)
    assert (refs["audience_exports"].low, refs["audience_exports"].high) == (day, day)


def test_the_context_reads_two_queue_partitions_at_most(daily_queries):
    """The context compares D's queue with the last delivered run's: that run's date is
    read first and passed as a parameter, so each read of customer_priority is bounded to
    one date (a date found by a subquery would make BigQuery read every kept partition)."""
    from retentionops.sql import TABLES, render

    settings, queries = daily_queries
    catalog = bb.table_catalog({name: render(f"ddl/create_{name}", settings) for name in TABLES})
    [(text, params)] = [(t, p) for label, t, p in queries if label.endswith(": context")]
    bounds = sorted(
        (ref.low, ref.high)
        for ref in bb.references(text, catalog, params)
        if ref.table == "customer_priority"
    )
    day = dt.date(2011, 5, 13)
    assert bounds == [(day - dt.timedelta(days=1),) * 2, (day, day)]
