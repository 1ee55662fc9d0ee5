"""`make airflow` stops every process it started when it gets SIGTERM (issue 14, item 9),
and is private while it runs (issue 24).

The real target runs in a throwaway AIRFLOW_HOME on a free port (offline: SQLite, the
bundled sample, the playbook simulator on 127.0.0.1). Once the UI answers and the
scheduler's LocalExecutor workers are up, it must listen on 127.0.0.1 only and refuse the
REST API without a login, which the password it showed once opens. Then ``make`` alone gets
SIGTERM, as a process supervisor would send it; afterwards no process of the sessions it
made may be left: not a component, not a worker, not an orphan.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import psutil
from support import ROOT, free_port

READY_TIMEOUT = 300  # seconds: migrate, load the sample, start four components (2 cores)
STOP_TIMEOUT = 90



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


def _status(port: int, path: str, token: str | None = None, body: dict | None = None) -> tuple:
    """(HTTP status, JSON answer) of a GET, or of a POST when there is a body."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _assert_private(port: int, processes: list[psutil.Process], output: str) -> None:
    """Listening on 127.0.0.1 only; the REST API refused without a login; the password shown
    once (and only once) opens it."""
    listening = set()
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening |= {
            c.laddr.ip for c in connections if c.status == "LISTEN" and c.laddr.port == port
        }
    assert listening == {"127.0.0.1"}, listening
    assert _status(port, "/api/v2/dags")[0] == 401
    shown = re.findall(r"login: admin / (\S+) \(shown once", output)
    assert len(shown) == 1, output[-3000:]
    assert _status(port, "/auth/token", body={"username": "admin", "password": "wrong"})[0] == 401
    code, answer = _status(port, "/auth/token", body={"username": "admin", "password": shown[0]})
    assert code == 201, answer
    assert _status(port, "/api/v2/dags", token=answer["access_token"])[0] == 200


def _titles(processes: list[psutil.Process]) -> list[str]:
    titles = []
    for process in processes:
        try:
            titles.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return titles


def test_sigterm_to_make_airflow_leaves_no_process(tmp_path):
    home, port = tmp_path / "airflow-home", free_port()
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
        _assert_private(port, started, (tmp_path / "make.log").read_text())

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
