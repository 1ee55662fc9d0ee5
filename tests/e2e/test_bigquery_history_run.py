"""The BigQuery DAG's detection group run by ``dag.test()``: SQL5 computes only the dates the
stored alert history lacks, decided when the run starts.

No BigQuery runs here: every ``BigQueryInsertJobOperator`` records the configuration it
would send (rendered by Airflow, XCom included) instead of sending it, and the stored
history marker is what ``detection.history_covered_to`` answers. The from-date task itself
runs for real: ``service.alert_history_from`` through the BigQuery warehouse and
``detection.history_start``.
"""

from __future__ import annotations

import datetime as dt

import pytest

D = "2011-05-13"
GROUP = "detection"


@pytest.fixture(scope="module")
def bigquery_detection():
    """The detection group of the DAG parsed on the BigQuery backend, alone (its tasks run;
    the rest of the DAG does not)."""
    from support import parse_dag

    dag = parse_dag(
        "bigquery", RETENTIONOPS_BIGQUERY_PROJECT="acme-analytics", RETENTIONOPS_TASK_RETRIES="0"
    )
    group = [task_id for task_id in dag.task_ids if task_id.startswith(f"{GROUP}.")]
    return dag.partial_subset(task_ids=group, include_upstream=False)


@pytest.fixture
def run_group(airflow_db, bigquery_detection, fast_dag_test, bigquery_jobs, monkeypatch):
    """Run the detection group for D with the history stored up to ``covered``; return
    the run, the task states and the jobs sent, by task id (without the group's prefix)."""
    from retentionops import detection

    def run(covered: dt.date | None):
        asked = []

        def history_covered_to(warehouse, settings):
            asked.append(type(warehouse).__name__)
            return covered

        monkeypatch.setattr(detection, "history_covered_to", history_covered_to)
        checked = []

        def ensure_summaries(warehouse, run_date):  # the summaries agree: nothing rebuilt
            checked.append((type(warehouse).__name__, run_date))
            return False

        monkeypatch.setattr(detection, "ensure_summaries", ensure_summaries)
        bigquery_jobs.clear()
        day = dt.datetime.fromisoformat(D).replace(tzinfo=dt.UTC)
        dag_run = bigquery_detection.test(logical_date=day)
        states = {
            ti.task_id.removeprefix(f"{GROUP}."): str(ti.state).rsplit(".", 1)[-1].lower()
            for ti in dag_run.get_task_instances()
        }
        assert asked == ["BigQueryWarehouse"], states  # read once, through the BigQuery warehouse
        # the orders' summaries checked once for D, between SQL1 and SQL2-SQL5
        assert checked == [("BigQueryWarehouse", dt.date.fromisoformat(D))], states
        sent = {task.removeprefix(f"{GROUP}."): job for task, job in bigquery_jobs.items()}
        return dag_run, states, sent

    return run


def from_date(job: dict) -> str:
    [value] = [
        p["parameterValue"]["value"]
        for p in job["query"]["queryParameters"]
        if p["name"] == "from_date"
    ]
    return value


def test_a_daily_run_computes_its_own_date_only_from_the_snapshot(run_group):
    dag_run, states, sent = run_group(dt.date(2011, 5, 12))
    assert str(dag_run.state).endswith("success"), states
    # SQL5 replaces D only, from SQL2's snapshot and the stored days: no orders read
    assert states["alert_logic_daily"] == "success" and states["alert_logic"] == "skipped"
    job = sent["alert_logic_daily"]["query"]
    assert job["destinationTable"]["tableId"] == "alert_logic$20110513"
    assert "retention_snapshot`" in job["query"] and "orders`" not in job["query"]
    assert {"mark_history_complete", "mark_detection_complete"} <= set(sent)
    assert {state for task, state in states.items() if task != "alert_logic"} == {"success"}


def test_a_fresh_dataset_computes_the_whole_history(run_group):
    dag_run, states, sent = run_group(None)
    assert str(dag_run.state).endswith("success"), states
    # the branch's from-date XCom, rendered into the job
    assert from_date(sent["alert_logic"]) == "0001-04-08"  # date.min + 97 days
    assert "between @from_date and @run_date" in sent["alert_logic"]["query"]["query"]
    assert states["alert_logic_daily"] == "skipped"
    assert states["mark_history_complete"] == "success"


def test_missed_days_are_computed_from_the_day_after_the_marker(run_group):
    _, states, sent = run_group(dt.date(2011, 5, 9))
    assert from_date(sent["alert_logic"]) == "2011-05-10"
    assert "alert_logic_daily" not in sent and states["mark_history_complete"] == "success"


@pytest.mark.parametrize("covered", [dt.date(2011, 5, 13), dt.date(2011, 9, 9)])
def test_a_covered_date_computes_nothing_and_still_completes_detection(run_group, covered):
    """A rerun of D, or a backfill of D after later runs: both SQL5 jobs and the history
    marker are skipped; SQL1-SQL4 run and detection is marked complete."""
    dag_run, states, sent = run_group(covered)
    assert str(dag_run.state).endswith("success"), states
    assert states["history_from_date"] == "success"
    assert states["alert_logic"] == states["alert_logic_daily"] == "skipped"
    assert states["mark_history_complete"] == "skipped"
    assert states["mark_detection_complete"] == "success"
    assert not {"alert_logic", "alert_logic_daily", "mark_history_complete"} & set(sent)
    assert {"start_detection", "base_customers", "cohort_retention_evolution",
            "mark_detection_complete"} <= set(sent)  # fmt: skip
