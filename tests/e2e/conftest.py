"""End-to-end fixtures: a real Airflow metadata database and the playbook simulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def airflow_db():
    """A real (SQLite) Airflow metadata database in the test session's AIRFLOW_HOME, with
    the DuckDB tasks' one-slot pool, as ``make`` and compose's init create them."""
    from retentionops.operators import DUCKDB_POOL, DUCKDB_POOL_SLOTS

    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], check=True, capture_output=True)
    pool = [*airflow, "pools", "set", DUCKDB_POOL, str(DUCKDB_POOL_SLOTS), "DuckDB: one writer"]
    subprocess.run(pool, check=True, capture_output=True)


@pytest.fixture
def playbook_sim(tmp_path, monkeypatch):
    """The local Make webhook (real HTTP on 127.0.0.1), wired as the make_webhook connection."""
    from devtools.playbook_sim import PlaybookSimulator

    with PlaybookSimulator(tmp_path / "sim", log_stream=open(os.devnull, "w")) as sim:  # noqa: SIM115
        monkeypatch.setenv(
            "AIRFLOW_CONN_MAKE_WEBHOOK", json.dumps({"conn_type": "http", "host": sim.url})
        )
        yield sim


@pytest.fixture
def fast_dag_test(monkeypatch):
    """dag.test() sleeps a whole second whenever no task is ready (skips propagating, a
    mapped task expanding); it polls every 20 ms here. Only that sleep, called from
    ``DAG.test`` itself, is shortened: the product's own waits (webhook retries, timeouts)
    keep the real clock."""
    import sys
    import time

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        caller = sys._getframe(1).f_code
        if caller.co_name == "test" and caller.co_filename.endswith("definitions/dag.py"):
            seconds = min(seconds, 0.02)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)


@pytest.fixture
def bigquery_jobs(monkeypatch):
    """The BigQuery backend's tasks run without BigQuery: the settings name the backend (the
    tasks read them when they run, as in production), the warehouse's hook finds its
    connection (no credential is used), and every ``BigQueryInsertJobOperator`` records the
    configuration it would send (rendered by Airflow, XCom included) in the returned dict,
    by task id, instead of sending it."""
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    monkeypatch.setenv("RETENTIONOPS_WAREHOUSE_BACKEND", "bigquery")
    monkeypatch.setenv("RETENTIONOPS_BIGQUERY_PROJECT", "acme-analytics")
    gcp = '{"conn_type": "google_cloud_platform"}'
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", gcp)
    sent: dict[str, dict] = {}

    def execute(self, context):
        sent[self.task_id] = self.configuration  # rendered by now
        return f"job-{self.task_id}"

    monkeypatch.setattr(BigQueryInsertJobOperator, "execute", execute)
    return sent


@pytest.fixture
def run_dag(airflow_db, duckdb_dag, sample_settings, playbook_sim, fast_dag_test, monkeypatch):
    """Run the (session-parsed) DAG for a date with dag.test() on a copy of the sample."""
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("RETENTIONOPS_ROLLOUT_MODE", "production")

    # dag.test() runs every task in this process, and merging a run's conf into the params
    # sets the value of each task's own Param objects: without a reset, one test's conf
    # would be the next run's defaults (the DAG is parsed once per session)
    params = [
        holder.get_param(key)
        for holder in [duckdb_dag.params, *(task.params for task in duckdb_dag.tasks)]
        for key in holder
    ]
    defaults = [param.value for param in params]

    def run(day: str, **conf):
        try:
            dag_run = duckdb_dag.test(
                logical_date=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC),
                run_conf=conf,
            )
        finally:
            for param, value in zip(params, defaults, strict=True):
                param.value = value
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, states

    return run


@pytest.fixture(scope="session", autouse=True)
def _airflow_logging_on_the_real_streams():
    """Airflow binds its log handlers to sys.stdout / sys.stderr when it is first imported.
    Imported inside a test that captures output (capsys), a handler would keep that test's
    capture file and fail ("I/O operation on closed file") when a later thread logs; import
    it once here, before any test captures."""
    import airflow  # noqa: F401
    from airflow.sdk import BaseHook  # noqa: F401
