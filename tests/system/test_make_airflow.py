"""`make airflow` stops every process it started when it gets SIGTERM (issue 14, item 9).

The real target runs in a throwaway AIRFLOW_HOME on a free port (offline: SQLite, the
bundled sample, the playbook simulator on 127.0.0.1). Once the UI answers and the
scheduler's LocalExecutor workers are up, ``make`` alone gets SIGTERM, as a process
supervisor would send it; afterwards no process of the sessions it made may be left: not a
component, not a worker, not an orphan.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import psutil
from support import ROOT

READY_TIMEOUT = 300  # seconds: migrate, load the sample, start four components (2 cores)
STOP_TIMEOUT = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sessions(root: int) -> set[int]:
    """The session ids of a process and its descendants. The launcher starts each component
    in a session of its own; workers and task processes stay in their component's session,
    also once orphaned, so these ids find them all (their environment cannot: Airflow
    retitles its processes with setproctitle, which overwrites /proc/<pid>/environ)."""
    processes = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    sessions = set()
    for process in processes:
        try:
            sessions.add(os.getsid(process.pid))
        except OSError:
            continue
    return sessions


def _in_sessions(sessions: set[int]) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in sessions and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def _healthy(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=2) as answer:
            return "metadatabase" in json.loads(answer.read())
    except (OSError, ValueError):
        return False


def _titles(processes: list[psutil.Process]) -> list[str]:
    titles = []
    for process in processes:
        try:
            titles.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return titles


def test_sigterm_to_make_airflow_leaves_no_process(tmp_path):
    home, port = tmp_path / "airflow-home", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTIONOPS_", "AIRFLOW"))}
    env.update(
        RETENTIONOPS_DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        RETENTIONOPS_ARTIFACTS_DIR=str(tmp_path / "runs"),
    )
    command = [
        "make", "--no-print-directory", "airflow", f"AIRFLOW_HOME={home}",
        f"SIM_OUT={tmp_path / 'sim'}", f"AIRFLOW_PORT={port}", "AIRFLOW_PARALLELISM=2",
    ]  # fmt: skip
    with (tmp_path / "make.log").open("w") as log:
        make = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # SIGTERM goes to make alone, not to this test
        )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert make.poll() is None, (tmp_path / "make.log").read_text()[-3000:]
            running = _titles(psutil.Process(make.pid).children(recursive=True))
            workers = [t for t in running if "LocalExecutor" in t]
            if _healthy(port) and len(workers) == 2:
                break
            assert time.monotonic() < deadline, f"not ready in {READY_TIMEOUT} s: {running}"
            time.sleep(1)
        sessions = _sessions(make.pid)
        assert len(sessions) == 5  # make's own, and one per component
        started = _in_sessions(sessions)
        names = " ".join(_titles(started))
        for part in ("api_server", "scheduler", "dag-processor", "triggerer", "airflow_local"):
            assert part in names, names
        assert len(started) >= 9  # make, launcher, 4 components, 2 workers, serve-logs...

        stopping = time.monotonic()
        os.kill(make.pid, signal.SIGTERM)
        make.wait(timeout=STOP_TIMEOUT)
        took = time.monotonic() - stopping
    finally:
        if make.poll() is None:  # the test failed: do not leave the target running
            sessions = _sessions(make.pid)
            make.terminate()
            try:
                make.wait(timeout=STOP_TIMEOUT)
            finally:
                for process in _in_sessions(sessions):
                    process.kill()
    left = _in_sessions(sessions)
    assert _titles(left) == [] and left == [], (tmp_path / "make.log").read_text()[-3000:]
    output = (tmp_path / "make.log").read_text()
    assert "SIGTERM: stopping every process started here" in output
    assert "0 process(es) left" in output
    assert took < 60, f"stopping took {took:.0f} s"
