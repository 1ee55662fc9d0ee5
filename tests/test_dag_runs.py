"""Whole-DAG runs with ``dag.test()`` on the bundled sample: each branch, re-runs, failures.

Dates (README): 2011-05-13 CRITICAL, 2011-09-09 WARNING, 2011-07-01 no alert.
"""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys

import duckdb
import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def airflow_db():
    """A real (SQLite) Airflow metadata database in the test session's AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def sample_orders():
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample

    return clean_uci(generate_uci_sample()).orders


@pytest.fixture
def run_dag(airflow_db, sample_orders, tmp_path, monkeypatch):
    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    monkeypatch.setenv("RETENTIONOPS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("RETENTIONOPS_ARTIFACTS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("RETENTIONOPS_TASK_RETRIES", "0")
    with open_warehouse(load_settings()) as warehouse:
        warehouse.replace_orders(sample_orders)

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["retention_ops"]

    def run(day: str):
        dag_run = dag.test(logical_date=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, states

    return run


def query(tmp_path, sql, params=()):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def log_rows(tmp_path, day):
    return query(
        tmp_path,
        "select run_id, status, p1_count, p2_count, p3_count, total_exported, export_p1_link,"
        " export_p2_link, export_p3_link, error_message from ops_runs_log where alert_date = ?",
        [dt.date.fromisoformat(day)],
    )


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_critical_date_exports_three_tiers_and_logs_success(run_dag, tmp_path):
    dag_run, states = run_dag("2011-05-13")
    assert str(dag_run.state).endswith("success")
    assert states["critical"].endswith("success") and states["warning"].endswith("skipped")
    assert states["no_alert"].endswith("skipped") and states["write_run_log"].endswith("success")
    [(run_id, status, p1, p2, p3, total, l1, l2, l3, error)] = log_rows(tmp_path, "2011-05-13")
    assert (status, error) == ("success", None)
    assert run_id == dag_run.run_id
    files = {tier: tmp_path / "runs" / "2011-05-13" / f"audience_{tier}_2011-05-13.csv"
             for tier in ("p1", "p2", "p3")}  # fmt: skip
    assert [str(files[t]) for t in ("p1", "p2", "p3")] == [l1, l2, l3]
    # CSV rows = tier counts in the log (below the 2000 limit), total = their sum
    counts = [len(csv_rows(files[t])) for t in ("p1", "p2", "p3")]
    assert counts == [p1, p2, p3] and total == sum(counts)
    # customer_priority for D holds exactly the customers the tier rules admit
    admitted = query(
        tmp_path,
        """
        select count(*) from retention_snapshot s join churn_detection c using (customer_id)
        where s.snapshot_date = ? and c.snapshot_date = ? and (
            (s.retention_status = 'ACTIVE' and c.churn_risk_level = 'HIGH')
            or (s.retention_status = 'AT_RISK' and c.churn_risk_level in ('HIGH', 'MEDIUM'))
            or (s.retention_status = 'INACTIVE' and c.churn_risk_level = 'HIGH'))
        """,
        [dt.date(2011, 5, 13)] * 2,
    )
    assert admitted == [(p1 + p2 + p3,)]
    # every exported priority_score equals the formula (to the 2 decimals written)
    import math

    base = {"P1": 70, "P2": 50, "P3": 30}
    for row in csv_rows(files["p1"]) + csv_rows(files["p2"]):
        expected = min(
            100,
            base[row["priority_tier"]]
            + min(20, math.log(1 + float(row["total_revenue"])) * 2)
            + min(10, int(row["days_since_last_order"]) / 3),
        )
        assert float(row["priority_score"]) == pytest.approx(expected, abs=0.006)
    brief = (tmp_path / "runs" / "2011-05-13" / "brief.md").read_text()
    assert "CRITICAL" in brief and "P3 is empty" in brief
    assert (tmp_path / "runs" / "2011-05-13" / "at_risk_last_60_days.png").stat().st_size > 0

    # the same date again: one log row per run id, the same rows for D in customer_priority
    before = query(tmp_path, "select count(*) from customer_priority")
    second_run, _ = run_dag("2011-05-13")
    rows = log_rows(tmp_path, "2011-05-13")
    assert sorted(r[0] for r in rows) == sorted({dag_run.run_id, second_run.run_id})
    assert query(tmp_path, "select count(*) from customer_priority") == before


def test_warning_date_exports_p1_and_p2_only(run_dag, tmp_path):
    dag_run, states = run_dag("2011-09-09")
    assert str(dag_run.state).endswith("success") and states["warning"].endswith("success")
    [(_, status, p1, p2, _, total, l1, l2, l3, _)] = log_rows(tmp_path, "2011-09-09")
    assert status == "success" and l3 is None and total == p1 + p2
    folder = tmp_path / "runs" / "2011-09-09"
    assert sorted(p.name for p in folder.glob("audience_*.csv")) == [
        "audience_p1_2011-09-09.csv",
        "audience_p2_2011-09-09.csv",
    ]


def test_no_alert_date_logs_skipped_without_exports(run_dag, tmp_path):
    dag_run, states = run_dag("2011-07-01")
    assert str(dag_run.state).endswith("success")
    assert states["no_alert"].endswith("success") and states["render_brief"].endswith("skipped")
    [(_, status, *_rest, l1, l2, l3, error)] = log_rows(tmp_path, "2011-07-01")
    assert (status, l1, l2, l3, error) == ("skipped", None, None, None, None)
    assert not list((tmp_path / "runs").glob("2011-07-01/audience_*"))


def test_a_failed_step_still_leaves_a_failed_log_row(run_dag, tmp_path):
    from conftest import make_orders

    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    # Orders that start after the run date: nothing to decide, get_alert_decision fails.
    with open_warehouse(load_settings()) as warehouse:
        warehouse.replace_orders(make_orders([("a", "1", "2011-01-03", 10.0)]))
    dag_run, states = run_dag("2010-12-15")
    assert str(dag_run.state).endswith("failed"), states
    assert states["get_alert_decision"].endswith("failed")
    assert states["write_run_log"].endswith("failed")  # it logs, then fails the run
    [(_, status, *_rest, error)] = log_rows(tmp_path, "2010-12-15")
    assert status == "failed"
    assert error.startswith("step get_alert_decision failed") and "no alert decision" in error
