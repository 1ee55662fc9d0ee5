"""Shared fixtures: every test gets its own DuckDB file and Airflow home; nothing global.

Tests live in layers, one folder each, and carry the folder's marker (added here):
``unit`` (pure Python), ``sql`` (the SQL on a real DuckDB), ``dags`` (DAG integrity),
``e2e`` (whole DAG runs, the CLI, the MCP server, the benchmark harness), ``production``
(the BigQuery / GCS path offline) and ``system`` (the real commands and processes: a
scheduler's backfill, ``make demo``, ``make airflow``, ``pip install``). A few whole-DAG
runs of ``e2e`` also carry ``smoke``: one per branch and one failing webhook, the part of
``e2e`` that ``make test`` runs (README, "Tests"). Expensive inputs are built once per
session: the bundled sample, a warehouse holding it, a migrated Airflow metadata database,
and the DAG parsed once per backend.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from support import ROOT, make_orders, parse_dag

LAYERS = ("unit", "sql", "dags", "e2e", "production", "system")

# Airflow reads its home at import time: point it at a throwaway folder before any test
# imports airflow, and keep example DAGs out of DagBag loads.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="retentionops-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
for name in [n for n in os.environ if n.startswith("RETENTIONOPS_")]:
    del os.environ[name]
# transpiled SQL is cached on disk for the session's processes (DAG tasks, CLI runs), in a
# folder of its own rather than the user's ~/.cache
os.environ["RETENTIONOPS_SQL_CACHE_DIR"] = tempfile.mkdtemp(prefix="retentionops-sql-")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its layer (its folder under tests/)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Default settings with a fresh DuckDB file (also seen by code that reads the env).

    The sample's dates are from 2011: the age rule (notify_max_age_days) would withhold
    every delivery, so it is off here, as in ``make demo``; its own tests turn it on."""
    from retentionops.settings import load_settings

    monkeypatch.setenv("RETENTIONOPS_NOTIFY_MAX_AGE_DAYS", "0")
    monkeypatch.setenv("RETENTIONOPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("RETENTIONOPS_ARTIFACTS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("RETENTIONOPS_EXPORT_ROOT", str(tmp_path))
    return load_settings()


@pytest.fixture
def warehouse(settings):
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings) as wh:
        yield wh


@pytest.fixture
def load_orders(warehouse):
    """Replace the warehouse's orders with hand-made rows; returns the warehouse."""

    def load(rows):
        warehouse.replace_orders(make_orders(rows))
        return warehouse

    return load


# -- built once per session ----------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_orders():
    """The bundled sample's cleaned orders (generated once per test session)."""
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample

    return clean_uci(generate_uci_sample()).orders


@pytest.fixture(scope="session")
def sample_warehouse_file(sample_orders, tmp_path_factory):
    """A DuckDB file holding the sample's orders; copy it, never write to it."""
    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    path = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    with open_warehouse(load_settings(env={}, duckdb_path=str(path))) as wh:
        wh.replace_orders(sample_orders)
    return path


@pytest.fixture
def sample_settings(settings, sample_warehouse_file):
    """``settings`` whose DuckDB file starts as a copy of the loaded sample."""
    shutil.copyfile(sample_warehouse_file, settings.duckdb_file)
    return settings


@pytest.fixture(scope="session")
def duckdb_dag():
    """The DAG on the embedded backend, parsed once; tasks do not retry (tests see failures)."""
    return parse_dag("duckdb", RETENTIONOPS_TASK_RETRIES="0")


@pytest.fixture(scope="session")
def bigquery_dag():
    """The DAG on the BigQuery backend, parsed once (no Google call is made by parsing)."""
    return parse_dag(
        "bigquery",
        RETENTIONOPS_BIGQUERY_PROJECT="acme-analytics",
        RETENTIONOPS_BIGQUERY_DATASET="retention",
    )
