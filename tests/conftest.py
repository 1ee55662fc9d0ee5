"""Shared fixtures: every test gets its own DuckDB file and Airflow home; nothing global."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its home at import time: point it at a throwaway folder before any test
# imports airflow, and keep example DAGs out of DagBag loads.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="retentionops-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
for name in [n for n in os.environ if n.startswith("RETENTIONOPS_")]:
    del os.environ[name]
sys.path.insert(0, str(ROOT / "plugins"))


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Default settings with a fresh DuckDB file (also seen by code that reads the env)."""
    from retentionops.settings import load_settings

    monkeypatch.setenv("RETENTIONOPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    return load_settings()


@pytest.fixture
def warehouse(settings):
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings) as wh:
        yield wh


def make_orders(rows):
    """Orders frame from (customer_id, order_id, 'YYYY-MM-DD', amount) tuples."""
    import pandas as pd

    return pd.DataFrame(
        {
            "customer_id": [str(r[0]) for r in rows],
            "order_id": [str(r[1]) for r in rows],
            "order_date": [dt.date.fromisoformat(r[2]) for r in rows],
            "order_amount": [float(r[3]) for r in rows],
            "country": ["United Kingdom"] * len(rows),
        }
    )


@pytest.fixture
def load_orders(warehouse):
    """Replace the warehouse's orders with hand-made rows; returns the warehouse."""

    def load(rows):
        warehouse.replace_orders(make_orders(rows))
        return warehouse

    return load
