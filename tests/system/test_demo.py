"""`make demo`, twice in a row, in a throwaway AIRFLOW_HOME and warehouse (issue 14, item 3).

The first run delivers the April incident's ``open`` event to the playbook simulator (one
ticket); the second finds it in the deliveries ledger, sends nothing, and says so instead of
printing the first run's ticket again. Both succeed. ``airflow dags test`` keeps its runs in
a metadata database of its own (``dags-test.db``): after two demos it holds one run of the
date, and the UI's database (``airflow.db``, ``make airflow``) was never touched, so no
15-year-long run shows there and the date can still be triggered from the UI.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess

from support import ROOT

DEMO_DATE = "2011-05-13"


def _make_demo(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTIONOPS_", "AIRFLOW"))}
    env.update(
        RETENTIONOPS_DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        RETENTIONOPS_ARTIFACTS_DIR=str(tmp_path / "runs"),
        RETENTIONOPS_EXPORT_ROOT=str(tmp_path),
    )
    return subprocess.run(
        ["make", "--no-print-directory", "demo", f"AIRFLOW_HOME={tmp_path / 'airflow-home'}",
         f"SIM_OUT={tmp_path / 'sim'}", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_make_demo_twice(tmp_path):
    first = _make_demo(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (
        "The playbook: sent the open event of INC-20110513; the receiver answered ticket "
        "RET-0001" in first.stdout
    )
    assert '"priority": "URGENT"' in first.stdout  # the ticket file the simulator keeps
    assert '"severity": "CRITICAL"' in first.stdout and '"status": "success"' in first.stdout

    second = _make_demo(tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "The playbook: NOT sent this time: already delivered (open of INC-20110513" in (
        second.stdout
    )
    assert "make demo RESEND=1" in second.stdout
    assert "RET-0001" not in second.stdout.split("Alert decision")[0]  # no old ticket shown
    assert '"playbook_status": "suppressed"' in second.stdout
    # one ticket and one Slack message: the second run posted nothing
    sim = tmp_path / "sim"
    assert sorted(p.name for p in sim.glob("ticket_*.json")) == ["ticket_RET-0001.json"]
    assert len(list(sim.glob("slack_*.json"))) == 1

    home = tmp_path / "airflow-home"
    with sqlite3.connect(f"file:{home / 'dags-test.db'}?mode=ro", uri=True) as db:
        runs = db.execute("select logical_date, state from dag_run").fetchall()
        [(pool_slots,)] = db.execute(
            "select slots from slot_pool where pool = 'retentionops_duckdb'"
        ).fetchall()
    assert [(str(day)[:10], state) for day, state in runs] == [(DEMO_DATE, "success")]
    assert pool_slots == 1
    assert not (home / "airflow.db").exists()  # the UI's database: never touched
