"""A person's approval in a real Airflow: runs rejected, timed out and approved through
Airflow's own REST API (the HITL endpoints of Airflow 3.1+).

One Airflow for the three cases, started as ``test_backfill_pool.py`` starts it: the
api-server and the scheduler (LocalExecutor, SQLite) from ``devtools.airflow_local``, which
also gives the UI its login (the simple auth manager's ``admin``, whose password it writes
once) and stops every process afterwards; the bundled sample on DuckDB; the playbook
simulator as ``make_webhook``; a loopback Slack webhook as ``slack_fallback``;
``approval_required: critical`` and a 30-second ``approval_timeout_minutes`` (0.5).

One run of the CRITICAL date 2011-05-13 (the open of INC-20110513). Its playbook part runs
three times, cleared from ``prepare_playbook`` through the API as a person re-runs a day
(a second run of the same logical date cannot exist): rejected with a reason (nothing
sent, the log row names who and why), left unanswered (withheld by default after 30 s,
logged so), then approved (the simulator gets the open, its brief naming the approver).
Each time Slack is told an approval waits, with the link to it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from support import ROOT, airflow_cli, airflow_env, free_port, query_warehouse

from retentionops.operators import DUCKDB_POOL

DAG = "retention_ops"
RUN = "approval_2011-05-13"
DAY = "2011-05-13"
RUN_PATH = f"/api/v2/dags/{DAG}/dagRuns/{RUN}"
APPROVE = f"{RUN_PATH}/taskInstances/approve_playbook"
WAIT = 600  # seconds for one step (the first run of the date: about a minute on 2 cores)

class Airflow:
    """The REST API of the api-server on ``port``, logged in as ``admin``."""

    def __init__(self, port: int, home: Path, launcher: subprocess.Popen, log: Path) -> None:
        from devtools.airflow_local import passwords_file

        self.base, self.launcher, self.log = f"http://127.0.0.1:{port}", launcher, log
        self.scheduler_log = home / "logs" / "local" / "scheduler.log"
        self.session = requests.Session()
        self.wait_for(lambda: self._healthy(), "the api-server to answer")
        passwords = json.loads(passwords_file(home, {}).read_text())
        login = {"username": "admin", "password": passwords["admin"]}
        token = self.call("POST", "/auth/token", login)
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"

    def _healthy(self) -> bool:
        try:
            return self.session.get(f"{self.base}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        answer = self.session.request(method, f"{self.base}{path}", json=body, timeout=30)
        assert answer.ok, (method, path, answer.status_code, answer.text[:2000])
        return answer.json()

    def wait_for(self, ready, what: str):
        """Poll ``ready()`` until it is true (returned), while Airflow is still running."""
        deadline = time.monotonic() + WAIT
        while not (value := ready()):
            assert self.launcher.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
            time.sleep(0.5)
        return value

    def states(self) -> dict[str, tuple[str | None, int]]:
        tis = self.call("GET", f"{RUN_PATH}/taskInstances?limit=100")["task_instances"]
        return {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}

    def asked(self, attempt: int) -> dict:
        """The approval request of the playbook's ``attempt``-th run, once it waits."""

        def waiting():
            state, tried = self.states().get("approve_playbook", (None, 0))
            return state == "awaiting_input" and tried == attempt

        self.wait_for(waiting, f"approve_playbook to wait for an answer (try {attempt})")
        # and until the scheduler has taken the paused worker's exit: an answer before that
        # (no person answers within a second; a test does) races Airflow, which then marks
        # the resumed task failed ("finished with state success, but the task instance's
        # state attribute is queued")
        exited = (
            "Received executor event with state success for task instance TaskInstanceKey("
            f"dag_id='{DAG}', task_id='approve_playbook', run_id='{RUN}', "
            f"try_number={attempt},"
        )
        self.wait_for(
            lambda: self.scheduler_log.exists() and exited in self.scheduler_log.read_text(),
            f"the scheduler to take approve_playbook's pause (try {attempt})",
        )
        return self.call("GET", f"{APPROVE}/-1/hitlDetails")

    def finished(self, attempt: int) -> dict[str, str | None]:
        """Each task's state once the run logged the playbook's ``attempt``-th run."""

        def done():
            state, tried = self.states()["write_run_log"]
            run = self.call("GET", RUN_PATH)["state"]
            return tried == attempt and state in ("success", "failed") and run != "running"

        self.wait_for(done, f"the run to log its playbook (try {attempt})")
        return {task: state for task, (state, _) in self.states().items()}

    def again(self) -> None:
        """Run the playbook's part of the run again: cleared from prepare_playbook."""
        self.call(
            "POST",
            f"/api/v2/dags/{DAG}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": RUN, "task_ids": ["prepare_playbook"],
             "include_downstream": True, "only_failed": False, "reset_dag_runs": True},
        )  # fmt: skip


def log_row(folder: Path) -> tuple:
    [row] = query_warehouse(
        folder,
        "select status, playbook_status, note, ticket_id from ops_runs_log where run_id = ?",
        [RUN],
    )
    return row


def test_runs_rejected_timed_out_and_approved_through_the_rest_api(
    sample_warehouse_file, tmp_path, httpserver
):
    from devtools.playbook_sim import PlaybookSimulator

    home = tmp_path / "airflow-home"
    home.mkdir()
    shutil.copyfile(sample_warehouse_file, tmp_path / "warehouse.duckdb")
    port = free_port()
    slack_path = "/services/T0000/B0000/approvalsecret"
    httpserver.expect_request(slack_path, method="POST").respond_with_data("ok")
    sim = PlaybookSimulator(tmp_path / "sim", log_stream=open(os.devnull, "w"))  # noqa: SIM115
    env = airflow_env(
        tmp_path,
        home,
        # the Slack notice links the request's page; the timeout sweep looks every second
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL="1",
        AIRFLOW_CONN_SLACK_FALLBACK=json.dumps(
            {"conn_type": "slackwebhook", "password": httpserver.url_for(slack_path)}
        ),
        RETENTIONOPS_NOTIFY_MAX_AGE_DAYS="0",  # the sample is from 2011
        RETENTIONOPS_ROLLOUT_MODE="production",
        RETENTIONOPS_APPROVAL_REQUIRED="critical",
        RETENTIONOPS_APPROVAL_TIMEOUT_MINUTES="0.5",
        # no scheduled run besides ours: catch-up off, the schedule ends before today
        RETENTIONOPS_CATCHUP="false",
        RETENTIONOPS_SCHEDULE_END_DATE="2011-05-14",
        RETENTIONOPS_RETRY_DELAY_SECONDS="1",
    )
    setup = [
        ["db", "migrate"],
        ["pools", "set", DUCKDB_POOL, "1", "DuckDB: one writer"],
        ["dags", "reserialize"],
        ["dags", "unpause", DAG],
    ]
    with sim:
        env["AIRFLOW_CONN_MAKE_WEBHOOK"] = json.dumps({"conn_type": "http", "host": sim.url})
        airflow_cli(setup, env, tmp_path)
        log = tmp_path / "airflow-local.log"
        with log.open("w") as stream:
            launcher = subprocess.Popen(
                [sys.executable, "-m", "devtools.airflow_local", "--port", str(port),
                 "--components", "api-server,scheduler", "--grace", "10"],
                env=env, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started, took = time.monotonic(), {}
        try:
            airflow = Airflow(port, home, launcher, log)
            airflow.call(
                "POST",
                f"/api/v2/dags/{DAG}/dagRuns",
                {"dag_run_id": RUN, "logical_date": f"{DAY}T00:00:00Z", "conf": {}},
            )

            # 1. rejected, with a reason: nothing is sent, the log row says who and why
            request = airflow.asked(1)
            assert request["subject"] == f"Send the CRITICAL open of INC-20110513 ({DAY})?"
            assert (request["options"], request["defaults"]) == (["Approve", "Reject"], ["Reject"])
            assert "With no answer within 0.5 min it is withheld by default" in request["body"]
            airflow.call(
                "PATCH",
                f"{APPROVE}/-1/hitlDetails",
                {"chosen_options": ["Reject"], "params_input": {"reason": "not during the sale"}},
            )
            states = airflow.finished(1)
            took["rejected"] = time.monotonic() - started
            assert states["approve_playbook"] == "success"
            assert states["trigger_playbook"] == states["post_slack_fallback"] == "skipped"
            assert states["write_run_log"] == "success"
            assert log_row(tmp_path) == (
                "success", "suppressed", "withheld: rejected by admin: not during the sale", None,
            )  # fmt: skip
            assert sim.requests == []
            # nothing is owed: no later run delivers what a person withheld
            assert query_warehouse(tmp_path, "select count(*) from incident_events") == [(0,)]

            # 2. nobody answers: after 30 s the default (withhold) applies, and is logged
            mark = time.monotonic()
            airflow.again()
            airflow.asked(2)
            states = airflow.finished(2)
            took["timed out"] = time.monotonic() - mark
            assert states["trigger_playbook"] == "skipped"
            answered = airflow.call("GET", f"{APPROVE}/-1/hitlDetails")
            assert answered["chosen_options"] == ["Reject"]
            assert answered["responded_by_user"] is None  # the default, not a person
            assert log_row(tmp_path) == (
                "success", "suppressed", "no answer within 0.5 min: withheld by default", None,
            )  # fmt: skip
            assert sim.requests == []

            # 3. approved: the open reaches the simulator, its brief naming the approver
            mark = time.monotonic()
            airflow.again()
            airflow.asked(3)
            airflow.call(
                "PATCH",
                f"{APPROVE}/-1/hitlDetails",
                {"chosen_options": ["Approve"], "params_input": {"reason": "checked"}},
            )
            states = airflow.finished(3)
            took["approved"] = time.monotonic() - mark
            assert states["trigger_playbook"] == "success"
            assert states["post_slack_fallback"] == "skipped"
            [sent] = sim.requests
            assert (sent["run_date"], sent["severity"], sent["incident"]["event"]) == (
                DAY, "CRITICAL", "open",
            )  # fmt: skip
            first = sent["brief"]["text"].splitlines()[0]
            assert first == ":white_check_mark: Approved by admin: checked."
            assert log_row(tmp_path) == (
                "success", "sent", "approved by admin: checked", "RET-0001",
            )  # fmt: skip
            assert airflow.call("GET", RUN_PATH)["state"] == "success"
        finally:
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(timeout=120)
    print("seconds:", {k: round(v) for k, v in took.items()})  # shown with -s

    # Slack was told each time that an approval waits, with the link to the request
    posts = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert len(posts) == 3
    link = f"http://127.0.0.1:{port}/dags/{DAG}/runs/{RUN}/tasks/approve_playbook/required_actions"
    for post in posts:
        assert post["text"].startswith(":raised_hand: Approval needed: RetentionOps waits to send")
        assert f"<{link}?map_index=-1|Airflow's Required actions>" in post["text"]
