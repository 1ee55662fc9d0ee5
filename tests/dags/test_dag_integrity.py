"""DAG integrity and policy: imports cleanly, expected tasks, retries, tags, cheap to parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

DAG_ID = "retention_ops"
DETECTION_TASKS = [
    "detection.base_customers",
    "detection.retention_snapshot",
    "detection.churn_detection",
    "detection.cohort_retention_evolution",
    "detection.alert_logic",
]


def load_dagbag(monkeypatch, **env):
    from airflow.dag_processing.dagbag import DagBag

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def duckdb_dag(monkeypatch, tmp_path):
    bag = load_dagbag(monkeypatch, RETENTIONOPS_DUCKDB_PATH=str(tmp_path / "w.duckdb"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


@pytest.fixture
def bigquery_dag(monkeypatch):
    bag = load_dagbag(
        monkeypatch,
        RETENTIONOPS_WAREHOUSE_BACKEND="bigquery",
        RETENTIONOPS_BIGQUERY_PROJECT="acme-analytics",
        RETENTIONOPS_BIGQUERY_DATASET="retention",
    )
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


ACTION_TASKS = [
    "build_priority_queue",
    "get_operational_context",
    "choose_playbook",
    "no_alert",
    "warning",
    "critical",
    "render_brief",
    "select_tiers",
    "export_audience",
    "prepare_playbook",
    "trigger_playbook",
    "post_slack_fallback",
    "write_run_log",
]


def test_dag_imports_with_expected_tasks_in_order(duckdb_dag):
    from airflow.sdk import TriggerRule

    dag = duckdb_dag
    assert set(dag.task_ids) == {
        "create_tables", "apply_retention", *DETECTION_TASKS, "get_alert_decision",
        *ACTION_TASKS,
    }
    # a straight chain: create_tables -> SQL1 -> ... -> SQL5 -> decision -> queue -> context
    order = [
        "create_tables", "apply_retention", *DETECTION_TASKS, "get_alert_decision",
        "build_priority_queue",
        "get_operational_context", "choose_playbook",
    ]  # fmt: skip
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("create_tables").upstream_task_ids == set()
    # the branch, then brief -> tiers -> mapped exports -> log; the log runs whatever happened
    for branch in ("no_alert", "warning", "critical"):
        assert dag.get_task(branch).upstream_task_ids == {"choose_playbook"}
    assert dag.get_task("render_brief").upstream_task_ids == {"warning", "critical"}
    assert dag.get_task("render_brief").trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert dag.get_task("export_audience").upstream_task_ids == {"select_tiers"}
    assert dag.get_task("prepare_playbook").upstream_task_ids == {"export_audience"}
    assert dag.get_task("trigger_playbook").upstream_task_ids == {"prepare_playbook"}
    assert dag.get_task("post_slack_fallback").upstream_task_ids == {"trigger_playbook"}
    assert dag.get_task("post_slack_fallback").trigger_rule == TriggerRule.ONE_FAILED
    assert dag.get_task("write_run_log").upstream_task_ids == {"post_slack_fallback", "no_alert"}
    assert dag.get_task("write_run_log").trigger_rule == TriggerRule.ALL_DONE
    assert [t.task_id for t in dag.leaves] == ["write_run_log"]


def test_dag_policy(duckdb_dag):
    dag = duckdb_dag
    assert dag.tags and "retention" in dag.tags
    assert dag.catchup is True
    assert dag.doc_md and "Triage" in dag.doc_md
    assert dag.max_active_runs == 1 and dag.max_active_tasks == 1  # DuckDB: a single writer
    for task in dag.tasks:
        assert task.owner == "retention-ops"
        assert task.on_failure_callback, task.task_id  # the failure reaches ops_runs_log
        if task.task_id == "trigger_playbook":  # 2 retries, transient faults only
            assert task.retries == 2 and task.retry_policy is not None
        elif task.task_id != "write_run_log":  # it fails on purpose after logging a failure
            assert task.retries >= 3, task.task_id
            assert task.retry_exponential_backoff > 1


def test_webhook_task_is_an_http_operator_posting_json(duckdb_dag):
    from airflow.providers.http.operators.http import HttpOperator

    from retentionops.playbook import PermanentWebhookError, TransientWebhookError

    task = duckdb_dag.get_task("trigger_playbook")
    assert isinstance(task, HttpOperator)
    assert task.http_conn_id == "make_webhook" and task.method == "POST"
    assert task.headers == {"Content-Type": "application/json"}
    assert task.data == "{{ ti.xcom_pull(task_ids='prepare_playbook') | tojson }}"
    assert task.extra_options == {"check_response": False, "timeout": 10.0}
    policy = task.retry_policy
    decide = lambda error: policy.evaluate(error, 1, 3).action.value  # noqa: E731
    assert decide(TransientWebhookError("webhook answered HTTP 503")) == "retry"
    assert decide(PermanentWebhookError("webhook answered HTTP 400")) == "fail"
    assert decide(RuntimeError("a bug")) == "fail"


def test_params_validate_in_the_trigger_form(duckdb_dag):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(duckdb_dag.params)
    assert params["rollout_mode"] == "shadow" and params["dry_run"] is False
    params["rollout_mode"] = "pilot"
    params["export_destination"] = "gs://retention-exports/daily"
    params["export_destination"] = "/data/exports"
    params.validate()
    with pytest.raises(ParamValidationError, match="everywhere"):
        params["rollout_mode"] = "everywhere"
    with pytest.raises(ParamValidationError, match="s3://bucket"):
        params["export_destination"] = "s3://bucket/x"
    with pytest.raises(ParamValidationError, match="yes"):
        params["dry_run"] = "yes"


def test_dag_has_no_cycles(duckdb_dag):
    from airflow.sdk.definitions.dag import DAG

    assert isinstance(duckdb_dag, DAG)
    # topological sort raises on a cycle
    assert len(duckdb_dag.topological_sort()) == len(duckdb_dag.tasks)


def test_dag_file_parses_without_google_modules_on_duckdb(tmp_path):
    code = (
        "import sys, json; sys.path[:0] = ['plugins', 'dags']\n"
        "import retention_ops\n"
        "mods = [m for m in sys.modules if m.startswith(('google.cloud.bigquery', "
        "'airflow.providers.google.cloud', 'duckdb', 'sqlglot'))]\n"
        "print(json.dumps(mods))\n"
    )
    env = {**os.environ, "RETENTIONOPS_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "w.duckdb").exists()  # parsing opens no warehouse


def test_bigquery_backend_uses_insert_job_operators(bigquery_dag):
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    for task_id in ["create_tables", *DETECTION_TASKS]:
        task = bigquery_dag.get_task(task_id)
        assert isinstance(task, BigQueryInsertJobOperator)
        assert task.gcp_conn_id == "google_cloud_default"
        assert task.location == "EU"
        assert task.retries >= 3


def _render(task, day: str):
    from airflow.sdk.definitions.context import Context

    context = Context({"ds": day, "ds_nodash": day.replace("-", "")})
    task.render_template_fields(context)
    return task.configuration


def test_bigquery_job_replaces_the_run_date_partition(bigquery_dag):
    from retentionops.settings import load_settings
    from retentionops.sql import render

    task = bigquery_dag.get_task("detection.churn_detection")
    config = _render(task, "2011-09-22")["query"]
    assert config["useLegacySql"] is False
    assert config["destinationTable"] == {
        "projectId": "acme-analytics",
        "datasetId": "retention",
        "tableId": "churn_detection$20110922",
    }
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    assert config["timePartitioning"] == {"type": "DAY", "field": "snapshot_date"}
    # the query is the SQL file itself, rendered with BigQuery table names
    settings = load_settings(
        env={}, warehouse_backend="bigquery", bigquery_project="acme-analytics",
        bigquery_dataset="retention",
    )
    assert config["query"].strip() == render("detection/03_churn_detection", settings).strip()
    assert "`acme-analytics.retention.base_customers`" in config["query"]
    params = {p["name"]: p for p in config["queryParameters"]}
    assert params["run_date"] == {
        "name": "run_date",
        "parameterType": {"type": "DATE"},
        "parameterValue": {"value": "2011-09-22"},
    }
    assert params["frequency_drop_num"]["parameterValue"]["value"] == "3"
    assert params["frequency_drop_den"]["parameterType"]["type"] == "INT64"
    # only the parameters the statement uses are sent
    assert "threshold_critical_bp" not in params


def test_bigquery_alert_job_carries_thresholds(bigquery_dag):
    config = _render(bigquery_dag.get_task("detection.alert_logic"), "2011-01-03")["query"]
    params = {p["name"]: p["parameterValue"]["value"] for p in config["queryParameters"]}
    assert params["threshold_warning_bp"] == "1500"
    assert params["threshold_critical_bp"] == "2500"
    assert params["from_date"] == params["run_date"] == "2011-01-03"
    assert config["destinationTable"]["tableId"] == "alert_logic$20110103"
    assert config["timePartitioning"]["field"] == "alert_date"


def test_bigquery_create_tables_runs_every_ddl(bigquery_dag):
    config = _render(bigquery_dag.get_task("create_tables"), "2011-01-03")["query"]
    script = config["query"]
    for table in ("orders", "base_customers", "alert_logic"):
        assert f"create table if not exists `acme-analytics.retention.{table}`" in script
    assert "partition by snapshot_date" in script


def test_bigquery_priority_queue_job(bigquery_dag):
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    task = bigquery_dag.get_task("build_priority_queue")
    assert isinstance(task, BigQueryInsertJobOperator)
    config = _render(task, "2011-05-13")["query"]
    assert config["destinationTable"]["tableId"] == "customer_priority$20110513"
    assert config["writeDisposition"] == "WRITE_TRUNCATE" and config["useLegacySql"] is False
    assert config["timePartitioning"] == {"type": "DAY", "field": "run_date"}
    assert "`acme-analytics.retention.churn_detection`" in config["query"]
    params = {p["name"]: p for p in config["queryParameters"]}
    assert params["p2_risk_levels"] == {
        "name": "p2_risk_levels",
        "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
        "parameterValue": {"arrayValues": [{"value": "HIGH"}, {"value": "MEDIUM"}]},
    }
    assert params["p1_value_filter"]["parameterType"]["type"] == "BOOL"
    assert params["p1_value_filter"]["parameterValue"] == {"value": "false"}
    assert params["value_proxy_factor"]["parameterType"]["type"] == "FLOAT64"
    assert params["run_date"]["parameterValue"] == {"value": "2011-05-13"}


def test_failure_notifications_use_the_slack_notifier(monkeypatch):
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    bag = load_dagbag(monkeypatch, RETENTIONOPS_FAILURE_NOTIFICATIONS="true")
    task = bag.dags[DAG_ID].get_task("trigger_playbook")
    callbacks = task.on_failure_callback
    assert any(isinstance(c, SlackWebhookNotifier) for c in callbacks)
    assert any(getattr(c, "__name__", "") == "record_task_failure" for c in callbacks)
