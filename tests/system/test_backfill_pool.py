"""A real backfill on DuckDB: two dates side by side, every task on its first try.

Airflow 3 gives a backfill its own ``max_active_runs`` (here 10, the CLI's default, passed
explicitly) whatever the DAG's own limit, and applies ``max_active_tasks`` per run: before
the one-slot pool, five runs each ran a task at once against the one-writer DuckDB file and
tasks passed only on retry (issue 14). Here a real scheduler runs ``airflow backfill create``
for 2011-09-08..09 (a quiet day and an alert day: both branches, 18 pooled tasks) with the
LocalExecutor (Airflow 3 runs it on SQLite: task processes reach
the metadata only through the api-server's execution API), on the bundled sample, offline:
the api-server and the scheduler come from ``devtools.airflow_local`` (which stops them and
their workers afterwards) on free ports of 127.0.0.1.

DuckDB's lock wait is 0 here (``duckdb_lock_wait_seconds``), so any two tasks opening the file
at once would fail at once; the test then reads the metadata database: every task succeeded
(or was skipped by its branch) on try 1, no task has an earlier try in the history, the
pooled tasks never overlapped, and the two runs were active at the same time (the DAG's own
``max_active_runs`` is 1 on DuckDB: two runs at once prove the backfill's limit applies, and
two runs are as many as it takes to prove the pool keeps their tasks apart).
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from support import ROOT, airflow_cli, airflow_env, free_port, query_warehouse

from retentionops.operators import DUCKDB_POOL

DATES = ["2011-09-08", "2011-09-09"]
RUN_TIMEOUT = 900  # seconds for the two runs (about a minute on 2 busy cores)

def _metadata(home):
    return sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True)


def _moment(text: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text)).replace(tzinfo=None)


def test_a_backfill_of_two_dates_runs_every_task_once(sample_warehouse_file, tmp_path):
    home = tmp_path / "airflow-home"
    home.mkdir()
    shutil.copyfile(sample_warehouse_file, tmp_path / "warehouse.duckdb")
    port = free_port()
    env = airflow_env(
        tmp_path,
        home,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        # no scheduled run besides the backfill: catch-up off, the schedule ends before today
        RETENTIONOPS_CATCHUP="false",
        RETENTIONOPS_SCHEDULE_END_DATE="2011-09-12",
        # two tasks opening the file at once would fail at once, and be retried at once
        RETENTIONOPS_DUCKDB_LOCK_WAIT_SECONDS="0",
        RETENTIONOPS_RETRY_DELAY_SECONDS="1",
    )
    setup = [
        ["db", "migrate"],
        ["pools", "set", DUCKDB_POOL, "1", "DuckDB: one writer"],
        ["dags", "reserialize"],
        ["dags", "unpause", "retention_ops"],
        ["backfill", "create", "--dag-id", "retention_ops", "--from-date", DATES[0],
         "--to-date", DATES[-1], "--max-active-runs", "10"],
    ]  # fmt: skip
    airflow_cli(setup, env, tmp_path)

    started = time.monotonic()
    with (tmp_path / "airflow-local.log").open("w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "devtools.airflow_local", "--port", str(port),
             "--components", "api-server,scheduler", "--grace", "10"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        while True:
            with _metadata(home) as db:
                states = [s for (s,) in db.execute("select state from dag_run")]
            if len(states) == len(DATES) and not {"queued", "running"} & set(states):
                break
            assert launcher.poll() is None, (tmp_path / "airflow-local.log").read_text()
            assert time.monotonic() - started < RUN_TIMEOUT, states
            time.sleep(2)
        took = time.monotonic() - started
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)
    print(f"{len(DATES)} backfill runs took {took:.0f} s")  # shown with -s; the report quotes it

    with _metadata(home) as db:
        runs = db.execute(
            "select id, logical_date, run_type, state, start_date, end_date, backfill_id "
            "from dag_run order by logical_date"
        ).fetchall()
        tis = db.execute(
            "select dag_run.logical_date, ti.task_id, ti.map_index, ti.state, ti.try_number, "
            "ti.pool, ti.start_date, ti.end_date from task_instance ti join dag_run "
            "on ti.dag_id = dag_run.dag_id and ti.run_id = dag_run.run_id"
        ).fetchall()
        earlier_tries = db.execute("select count(*) from task_instance_history").fetchone()[0]
        [max_active_runs] = db.execute("select max_active_runs from backfill").fetchone()

    # the dates, one backfill, every run successful
    assert [str(r[1])[:10] for r in runs] == DATES
    assert {(r[2], r[3]) for r in runs} == {("backfill", "success")}
    assert len({r[6] for r in runs}) == 1 and max_active_runs == 10
    # the runs were active side by side: the last one started before the first one ended
    assert max(_moment(r[4]) for r in runs) < min(_moment(r[5]) for r in runs)

    # every task ran once: success on try 1, or skipped by its branch without running
    ran = [t for t in tis if t[3] == "success"]
    assert {t[3] for t in tis} == {"success", "skipped"}
    assert {t[4] for t in ran} == {1}, [t[:5] for t in ran if t[4] != 1]
    assert earlier_tries == 0  # a retried task keeps its earlier try in the history
    # quiet days run the warehouse tasks and the log; alert days also the brief and exports
    ran_by_date = {d: {t[1] for t in ran if str(t[0])[:10] == d} for d in DATES}
    both = {"create_tables", "apply_retention", "wait_for_orders", "detection",
            "get_alert_decision",
            "build_priority_queue", "get_operational_context", "choose_playbook",
            "write_run_log"}  # fmt: skip
    quiet = both | {"no_alert", "deliver_owed"}
    alert = both | {"warning", "render_brief", "export_audience", "prepare_playbook"}
    assert ran_by_date == {d: quiet if d < "2011-09-09" else alert for d in DATES}

    # the pool held: no two warehouse tasks (of any run) were running at the same time;
    # the tasks that ran are those with a try
    pooled = sorted(
        (_moment(t[6]), _moment(t[7]), t[1]) for t in tis if t[5] == DUCKDB_POOL and t[4] >= 1
    )
    # quiet days: 8 warehouse tasks (wait_for_orders reads it too) + deliver_owed (what
    # earlier days owe); alert days: the 8, the brief, the exports (one task for the
    # playbook's tiers), prepare_playbook
    assert len(pooled) == 9 + 11
    for (_, end, task), (start, _, following) in zip(pooled, pooled[1:], strict=False):
        assert start >= end, f"{following} started before {task} ended"

    # and each date's run left its log row, as the incident rules say (docs/incidents.md)
    rows = query_warehouse(
        tmp_path,
        "select cast(alert_date as varchar), status, incident_event, playbook_status, interface "
        "from ops_runs_log order by alert_date",
    )
    assert rows == [
        ("2011-09-08", "skipped", None, "not_needed", "dag"),
        # backfilled today, the event is history (notify_max_age_days): built, not sent
        ("2011-09-09", "success", "open", "suppressed", "dag"),
    ]
