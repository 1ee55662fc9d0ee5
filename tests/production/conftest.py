"""Fixtures of the production-path suite: one ZetaSQL service per session, the analysis of
every statement under include/sql, and the summary line `make test` prints."""

from __future__ import annotations

import datetime as dt

import pytest

from . import prod_zetasql
from .prod_statements import CALLS, built_statements, sql_names


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/production/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.production)


def pytest_terminal_summary(terminalreporter):
    stats = prod_zetasql.STATS
    if not (stats["analysed"] or stats["compared"]):
        return
    terminalreporter.write_line(
        f"production path: ZetaSQL analysed {stats['analysed']} statements; "
        f"{stats['compared']} query results ({stats['rows']} rows) compared between the "
        f"ZetaSQL reference engine and DuckDB; {stats['mismatches']} mismatches"
    )


@pytest.fixture(scope="session")
def zetasql_service():
    """Google's analyzer and reference engine, started once (compiled wasm is cached)."""
    return prod_zetasql.start_service()


@pytest.fixture(scope="session")
def bigquery_settings():
    from retentionops.settings import load_settings

    return load_settings(env={}, warehouse_backend="bigquery", bigquery_project="retentionops-ci")


#: The label of the BigQuery load script (``BigQueryWarehouse.replace_orders``)
LOAD_SCRIPT = "BigQueryWarehouse.replace_orders script"


class SessionAnalysis:
    """Every statement analysed once, tables and views first; errors kept per name.

    Names: each SQL file (``detection/01_base_customers``), each statement built in code
    (``retention_statements[due partitions]``, ...) and ``LOAD_SCRIPT``, the transaction
    script ``BigQueryWarehouse.replace_orders`` sends, as it sends it (captured from the
    warehouse itself, run against the reference engine) and analysed statement by statement.
    """

    def __init__(self, service, settings, names: list[str] | None = None) -> None:
        from retentionops.sql import render

        self.analysis = prod_zetasql.Analysis(service)
        self.settings = settings
        self.texts: dict[str, str] = {}
        self.parameters: dict[str, list] = {}
        self.errors: dict[str, Exception] = {}
        self.paths: dict[str, str] = {}
        files = sql_names() if names is None else names
        for name in files:
            self.texts[name] = render(name, settings)
        creates_table = [n for n in files if n.startswith("ddl/") and "view" not in self.texts[n]]
        creates_view = [n for n in files if n.startswith("ddl/") and n not in creates_table]
        for name in creates_table + creates_view + [n for n in files if not n.startswith("ddl/")]:
            path = f"include/sql/{name}.sql"
            if name not in CALLS:
                self.errors[name] = AssertionError(
                    f"{path} has no ZetaSQL coverage: add how the package calls it (its "
                    "parameter values) to CALLS in tests/production/prod_statements.py"
                )
                continue
            self._analyse(name, path, self.texts[name], *CALLS[name](settings))
        if names is not None:
            return
        for label, (text, values) in built_statements(settings).items():
            self.texts[label] = text
            self._analyse(label, label, text, values, None)
        try:
            text, values = load_script(service, self, settings)
            self.texts[LOAD_SCRIPT] = text
            self._analyse(LOAD_SCRIPT, LOAD_SCRIPT, text, values, None, script=True)
        except Exception as error:  # reported by the test of the script
            self.errors[LOAD_SCRIPT] = error

    def _analyse(self, name, path, text, values, types, *, script=False) -> None:
        from retentionops.sql import bigquery_query_parameters

        self.paths[name] = path
        try:
            parameters = prod_zetasql.job_parameters(bigquery_query_parameters(text, values, types))
            self.parameters[name] = parameters
            if script:
                self.analysis.analyse_script(path, text, parameters)
            else:
                self.analysis.check(path, text, parameters)
        except Exception as error:  # reported by the test of that statement
            self.errors[name] = error

    def resolved(self, name: str):
        """The ``prod_zetasql.Resolved`` statement of a name (a list for the load script);
        a name whose analysis failed raises that failure."""
        if name in self.errors:
            raise self.errors[name]
        return self.analysis.statements[self.paths[name]]

    def statement(self, name: str):
        """zetasql's Python model of the resolved statement (built on demand)."""
        return self.resolved(name).model

    def table(self, logical: str) -> list[tuple[str, str]]:
        from retentionops.sql import table_refs

        return self.analysis.tables[table_refs(self.settings)[logical].strip("`")]


def load_script(service, analysed, settings) -> tuple[str, dict]:
    """The script ``BigQueryWarehouse.replace_orders`` sends when the orders change, and its
    parameter values: the warehouse loads one order into an empty BigQuery on the engine."""
    from support import make_orders

    from .prod_differential import ZetaBigQuery

    bigquery = ZetaBigQuery(service, analysed, settings)
    changed_from = bigquery.warehouse().replace_orders(
        make_orders([("c1", "o1", "2011-05-13", 10.5)])
    )
    assert changed_from == dt.date(2011, 5, 13)
    [script] = [j for j in bigquery.jobs if "begin transaction" in j["query"]["query"]]
    values = {p["name"]: p["parameterValue"]["value"] for p in script["query"]["queryParameters"]}
    return script["query"]["query"], {k: dt.date.fromisoformat(v) for k, v in values.items()}


@pytest.fixture(scope="session")
def analysed(zetasql_service, bigquery_settings) -> SessionAnalysis:
    session = SessionAnalysis(zetasql_service, bigquery_settings)
    prod_zetasql.STATS["analysed"] = session.analysis.count
    return session
