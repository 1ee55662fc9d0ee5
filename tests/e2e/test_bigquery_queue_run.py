"""The BigQuery DAG's queue tasks run by ``dag.test()``: the queue's job compares D with the
last delivered run, a date read when the run starts and passed as ``@previous_run_date``,
so BigQuery reads that one queue partition, not every partition retention keeps.

No BigQuery runs here: every ``BigQueryInsertJobOperator`` records the configuration it
would send (rendered by Airflow, XCom included) instead of sending it. The date's task
runs for real through the BigQuery warehouse; the warehouse's answer is set by the test.
"""

from __future__ import annotations

import datetime as dt

import pytest

D = "2011-05-13"
TASKS = ["last_delivered_run", "build_priority_queue", "mark_queue_complete"]


@pytest.fixture(scope="module")
def bigquery_queue():
    from support import parse_dag

    dag = parse_dag(
        "bigquery", RETENTIONOPS_BIGQUERY_PROJECT="acme-analytics", RETENTIONOPS_TASK_RETRIES="0"
    )
    return dag.partial_subset(task_ids=TASKS, include_upstream=False)


@pytest.mark.parametrize(
    ("delivered", "value"),
    [(dt.date(2011, 5, 10), {"value": "2011-05-10"}), (None, {})],
    ids=["a run delivered before", "none: a typed NULL"],
)
def test_the_queue_job_takes_the_last_delivered_run_read_when_the_run_starts(
    airflow_db, bigquery_queue, fast_dag_test, bigquery_jobs, monkeypatch, delivered, value
):
    from retentionops import actions

    asked = []

    def last_delivered_run(warehouse, run_date):
        asked.append((type(warehouse).__name__, run_date))
        return delivered

    monkeypatch.setattr(actions, "last_delivered_run", last_delivered_run)
    day = dt.datetime.fromisoformat(D).replace(tzinfo=dt.UTC)
    dag_run = bigquery_queue.test(logical_date=day)
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower()
              for ti in dag_run.get_task_instances()}  # fmt: skip
    assert states == dict.fromkeys(TASKS, "success")
    assert asked == [("BigQueryWarehouse", dt.date(2011, 5, 13))]
    job = bigquery_jobs["build_priority_queue"]["query"]
    assert job["destinationTable"]["tableId"] == "customer_priority$20110513"
    [parameter] = [p for p in job["queryParameters"] if p["name"] == "previous_run_date"]
    assert parameter == {
        "name": "previous_run_date", "parameterType": {"type": "DATE"}, "parameterValue": value,
    }  # fmt: skip
    # the constant bounds the read of the earlier queue to that date's partition
    assert "where queue.run_date = @previous_run_date" in job["query"]
