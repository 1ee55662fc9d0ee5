"""Helpers shared by the tests (importable as ``support``; fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The sample's April incident INC-20110513 (docs/incidents.md): open on 05-13 (CRITICAL),
#: updates on 05-14, 05-15 and 05-16 (SQL5 says WARNING on 05-16, but the share is still
#: +41 % above the pre-incident level: CRITICAL), no alert on 05-17, resolved 07-01.
INCIDENT_DAYS = ["2011-05-13", "2011-05-14", "2011-05-15", "2011-05-16", "2011-05-17"]
INCIDENT_RESOLVED = "2011-07-01"


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


def parse_dag(backend: str = "duckdb", **env: str):
    """Parse dags/ with the given backend and settings (environment) and return the DAG."""
    from airflow.dag_processing.dagbag import DagBag

    overrides = {"RETENTIONOPS_WAREHOUSE_BACKEND": backend, **env}
    if backend == "bigquery":
        overrides.setdefault("RETENTIONOPS_BIGQUERY_PROJECT", "demo-project")
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["retention_ops"]


def query_warehouse(folder: Path, sql: str, params=()) -> list[tuple]:
    """Rows of a query on the DuckDB warehouse in ``folder`` (read-only)."""
    import duckdb

    with duckdb.connect(str(Path(folder) / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def run_folder(root: Path, day: str, run_id: str) -> Path:
    """A run's own folder under ``<root>/runs`` (artifacts/runs/<date>/<run id>/)."""
    from retentionops.pack import safe_name

    return Path(root) / "runs" / day / safe_name(run_id)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a server of a test binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(tmp_path: Path, home: Path, **settings: str) -> dict[str, str]:
    """The environment of a real Airflow (the system tests' scheduler and api-server) on a
    copy of the sample warehouse in ``tmp_path``: none of the caller's ``RETENTIONOPS_*`` or
    ``AIRFLOW*`` variables, this repository's dags/ and plugins/, a LocalExecutor, the
    run's files under ``tmp_path``; ``settings`` adds or overrides variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTIONOPS_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        RETENTIONOPS_DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        RETENTIONOPS_ARTIFACTS_DIR=str(tmp_path / "runs"),
        RETENTIONOPS_EXPORT_ROOT=str(tmp_path),
    )
    env.update(settings)
    return env


# One process runs the setup CLI commands (each `airflow ...` would import Airflow again).
_AIRFLOW_CLI = """
import json, sys
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
for argv in json.loads(sys.argv[1]):
    args = parser.parse_args(argv)
    args.func(args)
"""


def airflow_cli(commands: list[list[str]], env: dict[str, str], cwd: Path) -> None:
    """Run ``airflow`` CLI commands (each an argv list) in one process; fail with its
    stderr's tail if one fails."""
    done = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_CLI, json.dumps(commands)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def queue_day_from_rows(warehouse, day: dt.date, members: dict, settings) -> None:
    """Build ``day``'s queue from hand rows: each ``customer: (status, risk)`` gets SQL1-SQL3
    rows (40 days since a last order, 2 orders, a frequency drop), the day a quiet SQL5 row
    and the detection marker, then the queue is built with ``settings``."""
    from retentionops import actions
    from retentionops.detection import DETECTION_MARKER, mark_complete

    for table in ("retention_snapshot", "churn_detection", "base_customers"):
        warehouse.con.execute(f"delete from {table} where snapshot_date = ?", [day])
    for customer, (status, risk) in members.items():
        warehouse.con.execute(
            "insert into retention_snapshot values (?, ?, ?, 40, ?)",
            [day, customer, day - dt.timedelta(days=40), status],
        )
        warehouse.con.execute(
            "insert into churn_detection values (?, ?, 2, 40, 10.0, true, false, false, ?, ?)",
            [day, customer, {"HIGH": 80, "MEDIUM": 50, "LOW": 0}[risk], risk],
        )
        warehouse.con.execute(
            "insert into base_customers values (?, ?, ?, ?, 2, 100, 50, 'UK')",
            [day, customer, day - dt.timedelta(days=90), day - dt.timedelta(days=40)],
        )
    # the day's SQL5 row (a quiet day) and one order: the context reads the decision
    warehouse.con.execute("delete from alert_logic where alert_date = ?", [day])
    warehouse.con.execute(
        "insert into alert_logic values (?, 'retention_status_degradation', 'at_risk_pct', "
        "'global', 20.0, 20.0, 0.0, 0.0, 15.0, 25.0, 'INFO', false, ?)",
        [day, len(members)],
    )
    warehouse.con.execute("delete from orders")
    warehouse.con.execute("insert into orders values ('a', 'o1', date '2010-12-01', 10, 'UK')")
    mark_complete(warehouse, day, DETECTION_MARKER)
    actions.build_priority_queue(warehouse, settings, day)
