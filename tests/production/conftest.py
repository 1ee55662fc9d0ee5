"""Fixtures of the production-path suite: one ZetaSQL service per session, the analysis of
every statement under include/sql, and the summary line `make test` prints."""

from __future__ import annotations

import pytest

from . import prod_zetasql
from .prod_statements import CALLS, sql_names


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


class SessionAnalysis:
    """Every statement analysed once, tables and views first; errors kept per file."""

    def __init__(self, service, settings, names: list[str] | None = None) -> None:
        from retentionops.sql import bigquery_query_parameters, render

        self.analysis = prod_zetasql.Analysis(service)
        self.settings = settings
        self.texts: dict[str, str] = {}
        self.parameters: dict[str, list] = {}
        self.errors: dict[str, Exception] = {}
        names = sql_names() if names is None else names
        for name in names:
            self.texts[name] = render(name, settings)
        creates_table = [n for n in names if n.startswith("ddl/") and "view" not in self.texts[n]]
        creates_view = [n for n in names if n.startswith("ddl/") and n not in creates_table]
        for name in creates_table + creates_view + [n for n in names if not n.startswith("ddl/")]:
            path = f"include/sql/{name}.sql"
            try:
                if name not in CALLS:
                    raise AssertionError(
                        f"{path} has no ZetaSQL coverage: add how the package calls it (its "
                        "parameter values) to CALLS in tests/production/prod_statements.py"
                    )
                values, types = CALLS[name](settings)
                parameters = prod_zetasql.job_parameters(
                    bigquery_query_parameters(self.texts[name], values, types)
                )
                self.parameters[name] = parameters
                self.analysis.analyse(path, self.texts[name], parameters)
            except Exception as error:  # reported by the test of that file
                self.errors[name] = error

    def statement(self, name: str):
        if name in self.errors:
            raise self.errors[name]
        return self.analysis.statements[f"include/sql/{name}.sql"]

    def table(self, logical: str) -> list[tuple[str, str]]:
        from retentionops.sql import table_refs

        return self.analysis.tables[table_refs(self.settings)[logical].strip("`")]


@pytest.fixture(scope="session")
def analysed(zetasql_service, bigquery_settings) -> SessionAnalysis:
    session = SessionAnalysis(zetasql_service, bigquery_settings)
    prod_zetasql.STATS["analysed"] = len(session.analysis.statements)
    return session
