"""End-to-end fixtures: a real Airflow metadata database and the playbook simulator."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import INCIDENT_DAYS, INCIDENT_RESOLVED


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


def _fast_dag_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """dag.test() sleeps a whole second whenever no task is ready (skips propagating, a
    mapped task expanding); it polls every 20 ms here. Only that sleep, called from
    ``DAG.test`` itself, is shortened: the product's own waits (webhook retries, timeouts)
    keep the real clock."""
    import time

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        caller = sys._getframe(1).f_code
        if caller.co_name == "test" and caller.co_filename.endswith("definitions/dag.py"):
            seconds = min(seconds, 0.02)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)


@pytest.fixture
def fast_dag_test(monkeypatch):
    _fast_dag_test(monkeypatch)


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


def _dag_runner(dag, monkeypatch: pytest.MonkeyPatch):
    """A function running ``dag`` for a date with dag.test() (conf as keywords), returning
    the run and each task's state; the webhook is quick to give up, the rollout production."""
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("RETENTIONOPS_ROLLOUT_MODE", "production")
    _fast_dag_test(monkeypatch)

    # dag.test() runs every task in this process, and merging a run's conf into the params
    # sets the value of each task's own Param objects: without a reset, one test's conf
    # would be the next run's defaults (the DAG is parsed once per session)
    params = [
        holder.get_param(key)
        for holder in [dag.params, *(task.params for task in dag.tasks)]
        for key in holder
    ]
    defaults = [param.value for param in params]

    def run(day: str, **conf):
        try:
            dag_run = dag.test(
                logical_date=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC),
                run_conf=conf,
            )
        finally:
            for param, value in zip(params, defaults, strict=True):
                param.value = value
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, states

    return run


@pytest.fixture
def run_dag(airflow_db, duckdb_dag, sample_settings, playbook_sim, monkeypatch):
    """Run the (session-parsed) DAG for a date with dag.test() on a copy of the sample."""
    return _dag_runner(duckdb_dag, monkeypatch)


# -- one incident's days, run once for every test that reads them -------------------------

def _files(folder: Path, pattern: str) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob(pattern))}


@dataclasses.dataclass
class IncidentDays:
    """What the incident's days left, for the tests that check them (never written to).

    ``folder`` holds the warehouse and the runs as the six days left them (``states``:
    each day's run state); ``requests``, ``tickets`` and ``slack`` are what the playbook
    simulator had received and kept by then. Then, in a copy of the folder
    (``rerun_folder``) and against the same simulator, 05-14 was run again, then again
    with ``resend``, then 07-01 with ``resend``: ``after_rerun`` (after the first) and
    ``after_resend`` (after the last) hold the simulator's requests, tickets and Slack
    posts, ``rerun_states`` the three runs' states."""

    folder: Path
    states: dict[str, str]
    requests: list[dict]
    tickets: dict[str, dict]
    slack: dict[str, dict]
    rerun_folder: Path
    rerun_states: list[str]
    after_rerun: dict[str, Any]
    after_resend: dict[str, Any]


@pytest.fixture(scope="session")
def incident_days(airflow_db, duckdb_dag, sample_warehouse_file, tmp_path_factory):
    """The April incident's week and its resolution as daily DAG runs, once per session,
    with a 10 % holdout (``test_incident_runs`` reads the incident, ``test_audience_runs``
    the audiences of the same runs), then a re-run and a resend of 05-14 and a resend of
    the resolution in a copy."""
    from devtools.playbook_sim import PlaybookSimulator

    folder = tmp_path_factory.mktemp("incident-days")
    rerun_folder = tmp_path_factory.mktemp("incident-days-rerun")
    shutil.copyfile(sample_warehouse_file, folder / "warehouse.duckdb")
    sim_out = tmp_path_factory.mktemp("incident-days-sim")

    def where(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RETENTIONOPS_DUCKDB_PATH", str(root / "warehouse.duckdb"))
        monkeypatch.setenv("RETENTIONOPS_ARTIFACTS_DIR", str(root / "runs"))
        monkeypatch.setenv("RETENTIONOPS_EXPORT_ROOT", str(root))

    def seen(sim: PlaybookSimulator) -> dict[str, Any]:
        return {
            "requests": sim.requests,
            "tickets": _files(sim.out_dir, "ticket_*.json"),
            "slack": _files(sim.out_dir, "slack_*.json"),
        }

    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        PlaybookSimulator(sim_out, log_stream=open(os.devnull, "w")) as sim,  # noqa: SIM115
    ):
        monkeypatch.setenv(
            "AIRFLOW_CONN_MAKE_WEBHOOK", json.dumps({"conn_type": "http", "host": sim.url})
        )
        monkeypatch.setenv("RETENTIONOPS_NOTIFY_MAX_AGE_DAYS", "0")
        monkeypatch.setenv("RETENTIONOPS_HOLDOUT_PCT", "10")
        where(folder, monkeypatch)
        run = _dag_runner(duckdb_dag, monkeypatch)
        states = {day: str(run(day)[0].state) for day in [*INCIDENT_DAYS, INCIDENT_RESOLVED]}
        week = seen(sim)

        shutil.copyfile(folder / "warehouse.duckdb", rerun_folder / "warehouse.duckdb")
        where(rerun_folder, monkeypatch)
        rerun_states = [str(run("2011-05-14")[0].state)]
        after_rerun = seen(sim)
        # a resend of 05-14 would update the closed ticket: withheld; the resolve itself
        # can be sent again
        rerun_states.append(str(run("2011-05-14", resend=True)[0].state))
        rerun_states.append(str(run(INCIDENT_RESOLVED, resend=True)[0].state))
        after_resend = seen(sim)
    return IncidentDays(
        folder=folder,
        states=states,
        requests=week["requests"],
        tickets=week["tickets"],
        slack=week["slack"],
        rerun_folder=rerun_folder,
        rerun_states=rerun_states,
        after_rerun=after_rerun,
        after_resend=after_resend,
    )


@pytest.fixture(scope="session", autouse=True)
def _airflow_logging_on_the_real_streams():
    """Airflow binds its log handlers to sys.stdout / sys.stderr when it is first imported.
    Imported inside a test that captures output (capsys), a handler would keep that test's
    capture file and fail ("I/O operation on closed file") when a later thread logs; import
    it once here, before any test captures."""
    import airflow  # noqa: F401
    from airflow.sdk import BaseHook  # noqa: F401
