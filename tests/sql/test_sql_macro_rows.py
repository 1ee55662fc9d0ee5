"""The shared rows of ``include/sql/macros/`` (issue 26) on DuckDB: a new ledger event's
insert (``ledger.jinja``), and a customer's rows of one day in two detection tables
(``detection.jinja``).

claim_event.sql and record_event.sql insert a new event through ``ledger.insert_event``;
SQL3, the priority queue and the operational context join two detection tables through
``detection.customer_day``. Each is pinned here on hand-made rows, with the refusals that
keep a misspelt column from passing in silence.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import jinja2
import pytest

from retentionops.sql import TABLES, _jinja, table_columns, to_duckdb

TABLE_NAMES = {name: name for name in TABLES}
LEDGER = '{% import "sql/macros/ledger.jinja" as ledger with context -%}'
DETECTION = '{% import "sql/macros/detection.jinja" as detection with context -%}'
DAY = dt.date(2011, 9, 22)


def rendered(template: str) -> str:
    """A template using the fragments, rendered as the package renders a SQL file."""
    return _jinja().from_string(template).render(tables=TABLE_NAMES)


def incident_events() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute(to_duckdb(rendered('{% include "sql/ddl/create_incident_events.sql" %}')))
    return db


DECIDED = {
    "dedupe_key": "inc-1:open",
    "incident_id": "inc-1",
    "event": "open",
    "run_date": DAY,
    "rollout_mode": "live",
    "severity": "WARNING",
    "settings_fingerprint": "f1",
    "built_by": "run-1",
}


def test_the_ledger_columns_are_the_ddl_columns_in_order():
    assert rendered(LEDGER + "{{ ledger.columns | join(',') }}").split(",") == [
        column.name for column in table_columns("incident_events")
    ]


def test_a_new_event_takes_the_decision_what_the_caller_writes_and_now():
    db = incident_events()
    merge = rendered(
        LEDGER + "merge incident_events as ledger\n"
        "using (select {{ ledger.decided_event() }}) as wanted\n"
        "    on ledger.dedupe_key = wanted.dedupe_key\n"
        "when not matched then\n"
        "{{ ledger.insert_event('wanted', state=\"'pending'\", attempts='0', note='@note') }}"
    )
    db.execute(to_duckdb(merge), {**DECIDED, "note": "owed"})
    (row,) = db.execute("select * from incident_events").fetchall()
    stored = dict(zip([column[0] for column in db.description], row, strict=True))
    assert {name: stored[name] for name in DECIDED} == DECIDED
    assert (stored["state"], stored["attempts"], stored["note"]) == ("pending", 0, "owed")
    # nothing else given: NULL; recorded and updated in the same statement, now
    assert [stored[name] for name in ("claim_token", "lease_until", "payload")] == [None] * 3
    assert stored["recorded_at"] is not None
    assert stored["recorded_at"] == stored["updated_at"]


@pytest.mark.parametrize(
    "written",
    [
        "notes='@note'",  # no such column
        "severity='@severity'",  # a decided column: the decision says it
    ],
)
def test_a_new_event_refuses_a_name_it_may_not_write(written: str):
    with pytest.raises(jinja2.UndefinedError, match="insert_event_takes_no_such_column"):
        rendered(LEDGER + f"{{{{ ledger.insert_event('w', state='1', attempts='0', {written}) }}}}")


def test_a_customer_day_pairs_the_rows_of_that_day_only():
    db = duckdb.connect()
    for name in ("left_rows", "right_rows"):
        db.execute(f"create table {name} (customer_id varchar, snapshot_date date, v varchar)")
    before = DAY - dt.timedelta(days=1)
    db.executemany(
        "insert into left_rows values (?, ?, ?)",
        [("c1", DAY, "l1"), ("c2", DAY, "l2"), ("c3", before, "l3"), ("c4", DAY, "l4")],
    )
    db.executemany(
        "insert into right_rows values (?, ?, ?)",
        [("c1", DAY, "r1"), ("c2", before, "r2"), ("c3", DAY, "r3"), ("c1", before, "r0")],
    )
    tables = {"base_customers": "left_rows", "retention_snapshot": "right_rows"}
    sql = (
        _jinja()
        .from_string(
            DETECTION + "select a.customer_id, a.v, b.v\n"
            '{{ detection.customer_day("@run_date", ("base_customers", "a"), '
            '("retention_snapshot", "b")) }}\n'
            "    and a.customer_id != 'c9'\n"
            "order by a.customer_id"
        )
        .render(tables=tables)
    )
    # c2 and c3 have a row of the day in one table only, c4 no row at all in the other
    assert db.execute(to_duckdb(sql), {"run_date": DAY}).fetchall() == [("c1", "l1", "r1")]


def test_a_tiers_rule_picks_its_status_and_risk_levels_on_duckdb():
    """``tiers.rule(n)``: tier n's status and risk levels, the queue's one spelling of them.
    Four customers against P2's rule (AT_RISK + HIGH or MEDIUM): only b matches."""
    rule = rendered(
        '{% import "sql/macros/tiers.jinja" as tiers -%}'
        'select customer_id from people where {{ tiers.rule(2, "status", "risk") }} '
        "order by customer_id"
    )
    db = duckdb.connect()
    db.execute("create table people (customer_id text, status text, risk text)")
    db.execute(
        "insert into people values ('a', 'ACTIVE', 'HIGH'), ('b', 'AT_RISK', 'MEDIUM'), "
        "('c', 'AT_RISK', 'LOW'), ('d', 'INACTIVE', 'HIGH')"
    )
    params = {"p2_status": "AT_RISK", "p2_risk_levels": ["HIGH", "MEDIUM"]}
    assert db.execute(to_duckdb(rule), params).fetchall() == [("b",)]
