"""End-to-end fixtures: a real Airflow metadata database and the playbook simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def airflow_db():
    """A real (SQLite) Airflow metadata database in the test session's AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )


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
