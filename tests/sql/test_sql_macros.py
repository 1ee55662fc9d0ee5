"""The SQL fragments several queries share (``include/sql/macros/``, issue 26), on DuckDB.

Each rule there is written once and imported by every query that needs it, so a test pins
the rule itself, on hand-made rows: when a holdout holds, and the long table of the
operational context (its columns, in order, and a name that is no column refused).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import jinja2
import pytest

from retentionops.sql import TABLES, _jinja, to_duckdb

TABLE_NAMES = {name: name for name in TABLES}


def rendered(template: str) -> str:
    """A template using the fragments, rendered as the package renders a SQL file."""
    return _jinja().from_string(template).render(tables=TABLE_NAMES)


@pytest.mark.parametrize(
    ("day", "holding"),
    [
        (dt.date(2011, 4, 30), []),  # before every opening
        (dt.date(2011, 5, 1), ["released", "running"]),  # the opening day
        (dt.date(2011, 5, 10), ["released", "running"]),  # the released one's last day
        (dt.date(2011, 5, 11), ["opened_later", "running"]),  # released the day before
    ],
)
def test_a_holdout_holds_from_its_opening_to_its_release(day: dt.date, holding: list[str]):
    db = duckdb.connect()
    db.execute("create table h (name varchar, opened_on date, held_until date)")
    db.execute(
        "insert into h values ('running', date '2011-05-01', null), "
        "('released', date '2011-05-01', date '2011-05-10'), "
        "('opened_later', date '2011-05-11', null)"
    )
    sql = rendered(
        '{% import "sql/macros/holdouts.jinja" as holdouts with context -%}'
        'select name from h where {{ holdouts.holds_on("@run_date") }} order by name'
    )
    assert [name for (name,) in db.execute(to_duckdb(sql), {"run_date": day}).fetchall()] == (
        holding
    )


CONTEXT = '{% from "sql/action/get_operational_context.sql" import facet_row with context -%}'


def test_a_facet_row_names_every_column_of_the_long_table_in_order():
    assert rendered(CONTEXT + '{{ facet_row("tier", customers="count(*)") }}').splitlines() == [
        "'tier' as facet,",
        "cast(null as string) as status,",
        "cast(null as string) as risk_level,",
        "cast(null as string) as tier,",
        "count(*) as customers,",
        "cast(null as float64) as metric_value,",
        "0 as holdout_customers,",
        "0 as new_customers,",
        "0 as cooldown_suppressed,",
        "0 as cooldown_bypassed,",
        "0 as exportable,",
        "0 as previous_customers,",
        "cast(null as date) as previous_run_date",
    ]


def test_a_facet_row_refuses_a_name_that_is_no_column():
    # a misspelled value would otherwise leave its column empty without a word
    with pytest.raises(jinja2.UndefinedError, match="facet_row_has_no_such_column"):
        rendered(CONTEXT + '{{ facet_row("tier", metric_valu="1.0") }}')
