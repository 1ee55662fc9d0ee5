"""`make bigquery-smoke` without a project or credentials: one line, exit 2, no network.

The smoke check itself talks to BigQuery and is never run by the tests.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bigquery_smoke.py"


def smoke(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTIONOPS_", "GOOGLE_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_without_a_project_it_says_what_it_needs():
    result = smoke({})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "RETENTIONOPS_BIGQUERY_PROJECT" in lines[0]
    assert "application default credentials" in lines[0]
    assert lines[0].endswith("RETENTIONOPS_BIGQUERY_PROJECT is not set")


def test_without_credentials_it_says_so(tmp_path):
    # a key file that does not exist: google.auth fails at once, before any request
    result = smoke(
        {
            "RETENTIONOPS_BIGQUERY_PROJECT": "p",
            "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "k"),
        }
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "no application default credentials" in line and str(tmp_path / "k") in line


def test_the_smoke_steps_run_on_the_embedded_warehouse(tmp_path, sample_orders):
    # the same step list the smoke runs on BigQuery, on DuckDB (its reference side), so a
    # broken script is found here and not on the first real project
    sys.path.insert(0, str(SCRIPT.parent))
    import bigquery_smoke

    from retentionops.settings import load_settings
    from retentionops.warehouse import DuckDBWarehouse

    settings = load_settings(
        env={}, duckdb_path=str(tmp_path / "smoke.duckdb"), artifacts_dir=str(tmp_path / "runs")
    )
    day = dt.date(2011, 5, 13)
    first, again = [], []
    with DuckDBWarehouse(settings) as warehouse:
        result = bigquery_smoke.run(warehouse, settings, day, sample_orders, first.append)
        # a re-run on the same dataset: the load changes nothing, the answers are the same
        rerun = bigquery_smoke.run(warehouse, settings, day, sample_orders, again.append)
    assert len(first) == len(again) == 9
    assert first[2] == "orders changed from 2010-12-01"  # the sample's first order date
    assert again[2] == "orders unchanged"
    assert bigquery_smoke.same(result, rerun)
    # the documented CRITICAL day of the sample (README)
    decision = result["decision"]
    assert (decision["severity"], decision["current_value"], decision["sample_size"]) == (
        "CRITICAL", 45.2, 2396
    )  # fmt: skip
    assert result["completed steps"] == ["customer_priority", "detection"]
    assert result["tier counts"]["P1"] == len(result["P1 audience"]) == 47
    assert result["run log"]["status"] == "success"
    assert result["run log"]["playbook_status"] == "dry_run"
    assert (tmp_path / "runs" / "2011-05-13").is_dir()  # the JSON copy stays in the work folder
    assert bigquery_smoke.same(result, result)
    assert not bigquery_smoke.same({"x": 1.0}, {"x": 1.0 + 1e-6})
