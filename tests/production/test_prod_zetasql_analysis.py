"""Every statement under include/sql analysed by ZetaSQL, as the BigQuery backend sends it.

Each file is rendered by ``retentionops.sql.render`` with ``warehouse_backend='bigquery'``,
its query parameters are declared with the types ``bigquery_query_parameters`` puts in the
job, and the catalog holds exactly what ``include/sql/ddl/`` creates. A failure reads
``include/sql/<file>.sql:<line>:<column>: ZetaSQL: <message>``. The statements the package
builds in code (retention, invalidation after a load) and the transaction script of the
BigQuery load are analysed the same way.
"""

from __future__ import annotations

import pytest

from retentionops.actions import QUEUE_STEP
from retentionops.detection import DETECTION_STEPS
from retentionops.sql import DERIVED_TABLES, SQL_DIR, TABLES, table, table_columns

from . import prod_zetasql
from .conftest import LOAD_SCRIPT
from .prod_statements import CALLS, built_labels, sql_names

DDL_NAMES = [n for n in sql_names() if n.startswith("ddl/")]


def test_coverage_is_derived_from_the_file_list():
    files = {str(p.relative_to(SQL_DIR).with_suffix("")) for p in SQL_DIR.rglob("*.sql")}
    assert files == set(sql_names())
    assert len(files) >= 32  # the package's 32 files at the time of writing
    missing = sorted(files - set(CALLS))
    assert not missing, f"no ZetaSQL coverage (add to prod_statements.CALLS): {missing}"
    stale = sorted(set(CALLS) - files)
    assert not stale, f"CALLS names files that no longer exist: {stale}"


@pytest.mark.parametrize("name", sql_names())
def test_statement_is_valid_googlesql(analysed, name):
    statement = analysed.resolved(name)
    expected = {
        "ddl": ("ResolvedCreateTableStmt", "ResolvedCreateViewStmt"),
        "action/write_run_log": ("ResolvedMergeStmt",),
        "markers/mark_step_complete": ("ResolvedMergeStmt",),
        "markers/clear_run_markers": ("ResolvedDeleteStmt",),
        "markers/clear_step_marker": ("ResolvedDeleteStmt",),
        "markers/clear_other_history_markers": ("ResolvedDeleteStmt",),
        "action/clear_audience_export": ("ResolvedDeleteStmt",),
        "action/record_audience_export": ("ResolvedInsertStmt",),
        "holdout/draw_incident_holdout": ("ResolvedInsertStmt",),
        "holdout/release_incident_holdout": ("ResolvedUpdateStmt",),
        "incidents/record_delivery": ("ResolvedMergeStmt",),
        "ledger/record_event": ("ResolvedMergeStmt",),
        "ledger/claim_event": ("ResolvedMergeStmt",),
        "ledger/settle_event": ("ResolvedUpdateStmt",),
        "ledger/withhold_event": ("ResolvedUpdateStmt",),
        "maintenance/refresh_first_orders_clear": ("ResolvedDeleteStmt",),
        "maintenance/refresh_first_orders_add": ("ResolvedInsertStmt",),
        "maintenance/refresh_cohort_activity_clear": ("ResolvedDeleteStmt",),
        "maintenance/refresh_cohort_activity_add": ("ResolvedInsertStmt",),
    }
    kinds = expected.get(name, expected.get(name.split("/")[0], ("ResolvedQueryStmt",)))
    assert statement.kind in kinds


@pytest.mark.parametrize("label", built_labels())
def test_built_statement_is_valid_googlesql(analysed, label):
    # retention_statements / invalidation_statements, as BigQuery receives them: the
    # partitions retention drops are a query (the tables API drops them), the rest DELETEs
    kind = "ResolvedQueryStmt" if label.endswith("[due partitions]") else "ResolvedDeleteStmt"
    assert analysed.resolved(label).kind == kind


def test_the_bigquery_load_script_is_valid_googlesql(analysed):
    # the script BigQueryWarehouse.replace_orders sends, as ZetaSQL splits it
    kinds = [s.kind for s in analysed.resolved(LOAD_SCRIPT)]
    assert kinds == (
        ["ResolvedBeginStmt", "ResolvedDeleteStmt", "ResolvedInsertStmt"]
        + ["ResolvedDeleteStmt"] * len(DERIVED_TABLES)
        # the orders' summaries (warehouse.SUMMARY_REFRESH): clear and add, twice
        + ["ResolvedDeleteStmt", "ResolvedInsertStmt"] * 2
        + ["ResolvedCommitStmt"]
    )
    assert analysed.parameters[LOAD_SCRIPT] == [("changed_from", "DATE", "2011-05-13")]


@pytest.mark.parametrize("name", [n for n in TABLES if n != "ops_health_daily"])
def test_load_schema_columns_are_the_ddl_as_zetasql_resolves_it(analysed, name):
    # sql.table_columns (the schema of a load job, e.g. orders_incoming's) parses the DDL
    # itself: its names and types must be what ZetaSQL resolved, NOT NULL what the DDL says
    columns = table_columns(name)
    assert [(c.name, c.type) for c in columns] == analysed.table(name)
    not_null = {
        c.name for c in analysed.statement(f"ddl/create_{name}").column_definition_list
        if c.annotations and c.annotations.not_null
    }  # fmt: skip
    assert {c.name for c in columns if c.required} == not_null


@pytest.mark.parametrize("name", DDL_NAMES)
def test_partitioning_and_clustering_follow_bigquery_rules(analysed, name):
    statement = analysed.statement(name)
    if type(statement).__name__ != "ResolvedCreateTableStmt":
        return  # a view has no storage options
    assert prod_zetasql.partitioning_problems(statement) == []


@pytest.mark.parametrize("step", [*DETECTION_STEPS, QUEUE_STEP], ids=lambda step: step.table)
def test_each_step_table_is_partitioned_by_its_run_date_column(analysed, step):
    # BigQuery writes a step's result into table$YYYYMMDD with timePartitioning.field set
    # to the catalog's partition_field: the table must be partitioned by that bare column
    statement = analysed.statement(f"ddl/create_{step.table}")
    [partition] = statement.partition_by_list
    assert type(partition).__name__ == "ResolvedColumnRef"
    assert partition.column.name == table(step.table).partition_field


def test_a_missing_file_entry_fails_with_the_file_name(analysed):
    # what a new .sql file without an entry in CALLS looks like to the suite
    from . import conftest

    original = dict(CALLS)
    try:
        del CALLS["impact/last_order_date"]
        run = conftest.SessionAnalysis(
            analysed.analysis.service, analysed.settings, ["impact/last_order_date"]
        )
        with pytest.raises(AssertionError, match=r"include/sql/impact/last_order_date\.sql has no"):
            run.resolved("impact/last_order_date")
    finally:
        CALLS.clear()
        CALLS.update(original)


@pytest.mark.parametrize(
    ("sql_name", "table"),
    [(step.sql_name, step.table) for step in DETECTION_STEPS]
    + [("action/build_priority_queue", "customer_priority")],
)
def test_query_result_fits_its_destination_table(analysed, sql_name, table):
    # BigQuery writes the result into table$YYYYMMDD (WRITE_TRUNCATE, CREATE_NEVER): the
    # columns must be those of the DDL, by name, in order, of the same types.
    statement = analysed.resolved(sql_name).node
    assert prod_zetasql.output_columns(statement) == analysed.table(table)


def test_every_enabled_language_feature_is_needed(analysed):
    # Each feature beyond ZetaSQL's bare dialect is there because a statement needs it:
    # without it, at least one of the package's statements fails.
    # DDL first, then the load script, then the rest: most features fail early
    statements = [
        (name, analysed.texts[name], analysed.parameters[name])
        for name in sorted(
            analysed.texts, key=lambda n: (not n.startswith("ddl/"), n != LOAD_SCRIPT, n)
        )
    ]
    features = prod_zetasql.BIGQUERY_FEATURES
    try:
        for feature in features:
            prod_zetasql.BIGQUERY_FEATURES = tuple(f for f in features if f != feature)
            tables = dict(analysed.analysis.tables)
            probe = prod_zetasql.Analysis(analysed.analysis.service)
            probe.tables = tables
            failed = []
            for name, text, parameters in statements:
                try:
                    if name == LOAD_SCRIPT:
                        probe.analyse_script(name, text, parameters)
                    else:
                        probe.check(name, text, parameters)
                except prod_zetasql.ZetaSqlFailure as error:
                    failed.append(str(error))
                    break
            assert failed, f"{feature} is enabled but no statement needs it"
    finally:
        prod_zetasql.BIGQUERY_FEATURES = features


# -- the checks can fail: hand-made wrong statements -----------------------------------


@pytest.fixture
def probe(analysed):
    analysis = prod_zetasql.Analysis(analysed.analysis.service)
    analysis.tables = dict(analysed.analysis.tables)
    return analysis


def orders_ref(analysed) -> str:
    from retentionops.sql import table_refs

    return table_refs(analysed.settings)["orders"]


def test_a_wrong_column_names_file_line_and_column(analysed, probe):
    text = f"select\n    customer_id,\n    order_total\nfrom {orders_ref(analysed)}\n"
    with pytest.raises(prod_zetasql.ZetaSqlFailure) as caught:
        probe.analyse("include/sql/x.sql", text)
    assert str(caught.value).startswith("include/sql/x.sql:3:5: ZetaSQL: Unrecognized name:")


def test_a_wrong_parameter_type_is_caught(analysed, probe):
    # order_date is DATE in the DDL; an INT64 parameter does not compare with it (a STRING
    # one would: BigQuery, like ZetaSQL, coerces STRING parameters to DATE)
    text = f"select count(*) as n from {orders_ref(analysed)} where order_date <= @run_date"
    probe.analyse("ok.sql", text, [("run_date", "DATE", "2011-05-13")])
    probe.analyse("ok.sql", text, [("run_date", "STRING", "2011-05-13")])
    wrong = r"ok\.sql:1:\d+: ZetaSQL: No matching signature for operator <="
    with pytest.raises(prod_zetasql.ZetaSqlFailure, match=wrong):
        probe.analyse("ok.sql", text, [("run_date", "INT64", 20110513)])


def test_an_undeclared_parameter_is_caught(analysed, probe):
    text = f"select count(*) as n from {orders_ref(analysed)} where order_date <= @run_date"
    with pytest.raises(prod_zetasql.ZetaSqlFailure, match="Query parameter 'run_date' not found"):
        probe.analyse("p.sql", text, [])


def create(columns: str, tail: str) -> str:
    return f"create table if not exists `p.d.t` (\n{columns}\n)\n{tail}"


COLUMNS = "d date not null, ts timestamp, s string, i int64, f float64, n numeric, b bool"


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        # ZetaSQL itself refuses a FLOAT64 clustering column, as BigQuery does
        ("partition by d cluster by f", "CLUSTER BY expression may not be a floating point"),
        ("partition by d cluster by s, i, n, b, d", "at most 4"),
        ("partition by i", "PARTITION BY column i is INT64"),
        ("partition by ts", "PARTITION BY column ts is TIMESTAMP"),
        ("partition by date_trunc(d, day)", "date_trunc(..., DAY)"),
        ("cluster by s options (partition_expiration_days = 3)", "time-unit partitioned"),
        ("partition by d options (partition_expiration_days = 0)", "positive"),
    ],
)
def test_partitioning_rules_catch_what_bigquery_refuses(probe, tail, problem):
    assert any(problem in p for p in refusals(probe, create(COLUMNS, tail))), tail


def refusals(probe, text: str) -> list[str]:
    """Why BigQuery would refuse a CREATE TABLE: ZetaSQL's error or the rules' problems."""
    try:
        statement = probe.analyse("t.sql", text)
    except prod_zetasql.ZetaSqlFailure as error:
        return [str(error)]
    return prod_zetasql.partitioning_problems(statement)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("partition by d cluster by s desc", "Syntax error"),  # no DESC in CLUSTER BY
        ("partition by d options (partition_expiry_days = 3)", "Unknown option"),
        ("partition by d options (require_partition_filter = 3)", "BOOL"),
    ],
)
def test_options_and_syntax_bigquery_refuses_fail_analysis(probe, tail, message):
    with pytest.raises(prod_zetasql.ZetaSqlFailure, match=message):
        probe.analyse("t.sql", create(COLUMNS, tail))


def test_accepted_partitionings(probe):
    for tail in (
        "partition by d cluster by s, i, n, b",
        "partition by date(ts)",
        "partition by date_trunc(d, month)",
        "partition by timestamp_trunc(ts, hour)",
    ):
        statement = probe.analyse("t.sql", create(COLUMNS, tail))
        assert prod_zetasql.partitioning_problems(statement) == [], tail
