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


def test_the_smoke_steps_run_on_the_embedded_warehouse(tmp_path):
    # the same step list the smoke runs on BigQuery, on DuckDB (its reference side), so a
    # broken script is found here and not on the first real project
    sys.path.insert(0, str(SCRIPT.parent))
    import bigquery_smoke

    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample
    from retentionops.settings import load_settings
    from retentionops.warehouse import DuckDBWarehouse

    settings = load_settings(env={}, duckdb_path=str(tmp_path / "smoke.duckdb"))
    lines = []
    with DuckDBWarehouse(settings) as warehouse:
        result = bigquery_smoke.run(
            warehouse, settings, dt.date(2011, 5, 13),
            clean_uci(generate_uci_sample()).orders, lines.append,
        )  # fmt: skip
    assert len(lines) == 8
    # the documented CRITICAL day of the sample (README)
    decision = result["decision"]
    assert (decision["severity"], decision["current_value"], decision["sample_size"]) == (
        "CRITICAL", 45.2, 2396
    )  # fmt: skip
    assert result["tier counts"]["P1"] == len(result["P1 audience"]) == 47
    assert result["run log"]["status"] == "success"
    assert bigquery_smoke.same(result, result)
    assert not bigquery_smoke.same({"x": 1.0}, {"x": 1.0 + 1e-6})
