"""DAG integrity and policy: imports cleanly, expected tasks, retries, tags, cheap to parse."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from support import ROOT

DAG_ID = "retention_ops"
DETECTION_TASKS = [
    "detection.base_customers",
    "detection.retention_snapshot",
    "detection.churn_detection",
    "detection.cohort_retention_evolution",
    "detection.alert_logic",
    "detection.alert_logic_daily",
]


ACTION_TASKS = [
    "build_priority_queue",
    "get_operational_context",
    "choose_playbook",
    "no_alert",
    "warning",
    "critical",
    "resolved",
    "render_brief",
    "export_audience",
    "prepare_playbook",
    "approve_playbook",
    "trigger_playbook",
    "post_slack_fallback",
    "deliver_owed",
    "write_run_log",
]


def test_dag_imports_with_expected_tasks_in_order(duckdb_dag):
    from airflow.sdk import TriggerRule

    dag = duckdb_dag
    # DuckDB: SQL1-SQL5 in one task and one transaction (all or nothing)
    assert set(dag.task_ids) == {
        "create_tables", "apply_retention", "wait_for_orders", "detection", "get_alert_decision",
        *ACTION_TASKS,
    }  # fmt: skip
    # a straight chain: create_tables -> orders -> detection -> decision -> queue -> context
    order = [
        "create_tables", "apply_retention", "wait_for_orders", "detection", "get_alert_decision",
        "build_priority_queue",
        "get_operational_context", "choose_playbook",
    ]  # fmt: skip
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("create_tables").upstream_task_ids == set()
    # the orders sensor gives its worker slot (and the DuckDB pool's) back between looks
    assert dag.get_task("wait_for_orders").mode == "reschedule"
    # the one gate: the branch picks the day's event marker and, on an event, the exports;
    # the action pack then flows forward on the context (its argument), ALL_SUCCESS: on
    # no_alert the exports are skipped by the branch, and with them the brief and playbook
    for branch in ("no_alert", "warning", "critical", "resolved"):
        assert dag.get_task(branch).upstream_task_ids == {"choose_playbook"}
    context = "get_operational_context"
    assert dag.get_task("export_audience").upstream_task_ids == {"choose_playbook", context}
    assert dag.get_task("render_brief").upstream_task_ids == {context, "export_audience"}
    assert dag.get_task("prepare_playbook").upstream_task_ids == {
        context, "render_brief", "export_audience",
    }  # fmt: skip
    for name in ("export_audience", "render_brief", "prepare_playbook"):
        assert dag.get_task(name).trigger_rule == TriggerRule.ALL_SUCCESS, name
    # a person's approval (when approval_required holds the event) sits before the webhook:
    # skipped with prepare_playbook when nothing is sent, skipped by itself when no approval
    # is needed (the webhook still runs), and a rejection skips the webhook
    assert dag.get_task("approve_playbook").upstream_task_ids == {"prepare_playbook"}
    assert dag.get_task("approve_playbook").downstream_task_ids == {"trigger_playbook"}
    assert dag.get_task("approve_playbook").trigger_rule == TriggerRule.ALL_SUCCESS
    assert dag.get_task("trigger_playbook").upstream_task_ids == {
        "prepare_playbook",
        "approve_playbook",
    }
    assert (
        dag.get_task("trigger_playbook").trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    assert dag.get_task("post_slack_fallback").upstream_task_ids == {
        "render_brief",
        "trigger_playbook",
    }
    assert dag.get_task("post_slack_fallback").trigger_rule == TriggerRule.ONE_FAILED
    # a day without an event of its own still delivers what earlier days owe
    assert dag.get_task("deliver_owed").upstream_task_ids == {"no_alert"}
    assert dag.get_task("write_run_log").upstream_task_ids == {
        "get_alert_decision", "get_operational_context", "render_brief", "export_audience",
        "trigger_playbook", "post_slack_fallback", "deliver_owed",
        "no_alert", "warning", "critical", "resolved",
    }  # fmt: skip
    assert dag.get_task("write_run_log").trigger_rule == TriggerRule.ALL_DONE
    assert [t.task_id for t in dag.leaves] == ["write_run_log"]


def test_exports_brief_and_playbook_take_the_runs_context_as_their_argument(
    duckdb_dag, monkeypatch
):
    """The operational context is read once per run, by get_operational_context, and handed
    on as a TaskFlow argument (tests/e2e/test_context_once.py counts the reads in a whole
    run): the exports, the brief and the playbook call the service with exactly that value,
    and with the run's one request (its date and run id), never a read of their own."""
    import retentionops.operators as operators
    from retentionops import service
    from retentionops.playbook import Delivery
    from retentionops.service import Run, RunRequest
    from retentionops.settings import load_settings

    for name in ("export_audience", "render_brief", "prepare_playbook"):
        [first, *_] = duckdb_dag.get_task(name).op_args
        assert first.operator.task_id == "get_operational_context", name

    context = {"run_date": "2011-05-13", "plan": {"tiers": ["P1", "P2"]}, "note": None}
    request = RunRequest(
        load_settings(),
        dt.date(2011, 5, 13),
        Run.of_dag("manual__x"),
        Delivery(dt.datetime(2011, 5, 14, tzinfo=dt.UTC)),
    )
    monkeypatch.setattr(operators, "current_request", lambda: request)
    given: dict[str, object] = {}

    def record(name, answer):
        def call(settings, day, *args, **kwargs):
            assert day == request.day and kwargs.get("run", request.run) == request.run, name
            given[name] = kwargs.get("context")
            return answer

        return call

    monkeypatch.setattr(service, "planned_tiers", record("export", ["P1", "P2"]))
    monkeypatch.setattr(service, "export_audiences", record("export_audiences", []))
    monkeypatch.setattr(service, "generate_brief", record("brief", {}))
    answer = {"payload": {}, "send": False, "reason": "dry run"}
    monkeypatch.setattr(service, "prepare_playbook", record("playbook", answer))
    task = duckdb_dag.get_task
    assert task("export_audience").python_callable(context) == []
    assert task("render_brief").python_callable(context, []) == {}
    assert task("prepare_playbook").python_callable(context, {}, {"markdown": "b.md"}, []) is None
    assert given["export"] is given["brief"] is given["playbook"] is context


def test_dag_policy(duckdb_dag):
    dag = duckdb_dag
    assert dag.tags and "retention" in dag.tags
    assert dag.catchup is True
    assert dag.doc_md and "Triage" in dag.doc_md
    assert dag.max_active_runs == 1 and dag.max_active_tasks == 1  # DuckDB: a single writer
    for task in dag.tasks:
        assert task.owner == "retention-ops"
        assert task.on_failure_callback, task.task_id  # the failure reaches ops_runs_log
        if task.task_id in (
            "approve_playbook", "trigger_playbook", "post_slack_fallback", "write_run_log",
        ):  # fmt: skip
            # a person is never asked twice, the webhook retries inside the task (never a
            # second delivery by Airflow), the fallback never posts twice, the log fails on
            # purpose after logging a failure
            assert task.retries == 0, task.task_id
        else:
            assert task.retry_exponential_backoff > 1


#: Tasks that never open the warehouse: the branch and its markers.
NO_WAREHOUSE = {"choose_playbook", "no_alert", "warning", "critical", "resolved"}


def test_every_duckdb_task_opening_the_warehouse_is_in_the_one_slot_pool(duckdb_dag):
    from retentionops.operators import DUCKDB_POOL

    pools = {task.task_id: task.pool for task in duckdb_dag.tasks}
    assert {t for t, pool in pools.items() if pool == DUCKDB_POOL} == set(pools) - NO_WAREHOUSE
    assert {pools[t] for t in NO_WAREHOUSE} == {"default_pool"}
    # the mapped exports too (each tier instance takes the slot)
    assert duckdb_dag.get_task("export_audience").pool == DUCKDB_POOL


def test_bigquery_tasks_keep_airflows_default_pool(bigquery_dag):
    assert {task.pool for task in bigquery_dag.tasks} == {"default_pool"}
    assert bigquery_dag.max_active_runs == 4 and bigquery_dag.max_active_tasks == 8


def test_make_and_compose_create_the_pool_with_one_slot():
    """The pool must exist before a DuckDB task can be scheduled: every place that starts
    Airflow creates it, with the name the tasks use and one slot."""
    import re

    import yaml

    from retentionops.operators import DUCKDB_POOL, DUCKDB_POOL_SLOTS

    assert DUCKDB_POOL_SLOTS == 1
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^DUCKDB_POOL := {DUCKDB_POOL}$", makefile, re.M)
    assert "airflow pools set $(DUCKDB_POOL) 1 " in makefile
    # the targets that start Airflow depend on the database that has the pool
    for target in ("demo", "artifacts", "airflow"):
        [line] = re.findall(rf"^{target}: \$\(BYTECODE\).*$", makefile, re.M)
        assert re.search(r"\$\(AIRFLOW_HOME\)/[\w-]+\.ready", line), line
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert f"airflow pools set {DUCKDB_POOL} 1 " in init
    assert init.index("db migrate") < init.index("pools set") < init.index("load-sample")


def test_webhook_task_is_an_http_operator_on_the_playbook_hook(duckdb_dag):
    import tenacity
    from airflow.providers.http.operators.http import HttpOperator

    from retentionops.hooks import PlaybookHook
    from retentionops.playbook import PermanentWebhookError, TransientWebhookError, retry_args
    from retentionops.settings import load_settings

    task = duckdb_dag.get_task("trigger_playbook")
    assert isinstance(task, HttpOperator)
    assert task.http_conn_id == "make_webhook" and task.method == "POST"
    assert task.headers == {"Content-Type": "application/json"}
    assert isinstance(task.hook, PlaybookHook)
    # the one retry policy: transient faults only, webhook_retries (2) retries
    args = retry_args(load_settings(env={}))

    def attempts(error: Exception) -> int:
        calls = []

        def call():
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            tenacity.Retrying(**{**args, "wait": tenacity.wait_none()})(call)
        return len(calls)

    assert attempts(TransientWebhookError("webhook answered HTTP 503")) == 3
    assert attempts(PermanentWebhookError("webhook answered HTTP 400")) == 1
    assert attempts(RuntimeError("a bug")) == 1


def _form_errors(specs: dict) -> list[str]:
    """The Params the UI's trigger form flags, keeping its Trigger button disabled.

    A port of Airflow 3.3's React form (``FlexibleForm.tsx`` ``recheckSection`` and
    ``isParamRequired.tsx``): a Param is required when its schema has a ``type`` that is
    not a list containing ``"null"``, and a required Param whose value is null, missing or
    ``""`` is an error. ``specs`` is what the API serves the form (``param.dump()`` of the
    serialized DAG: value, schema, description)."""

    def required(spec: dict) -> bool:
        kind = spec["schema"].get("type")
        return bool(kind) and not (isinstance(kind, list) and "null" in kind)

    return sorted(
        name for name, spec in specs.items() if required(spec) and spec.get("value") in (None, "")
    )


def test_the_form_rule_flags_an_empty_required_param():
    # the rule is not vacuous: the Param that disabled the button before (issue 14)
    specs = {"export_destination": {"value": "", "schema": {"type": "string"}}}
    assert _form_errors(specs) == ["export_destination"]
    nullable = {"export_destination": {"value": None, "schema": {"type": ["null", "string"]}}}
    assert _form_errors(nullable) == []


def test_params_validate_in_the_trigger_form(duckdb_dag):
    """The trigger form's case: the DAG as the API server holds it (serialized), every
    Param at its default, the form's own check, then the server's validation of the
    submitted values (the run's conf)."""
    from airflow.exceptions import ParamValidationError as ServerParamValidationError
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    served = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(duckdb_dag))
    specs = {name: served.params.get_param(name).dump() for name in served.params}
    assert set(specs) == {
        "rollout_mode", "dry_run", "export_destination", "resend", "allow_late_data",
        "silence_until", "silence_reason",
    }  # fmt: skip
    # the form opens with the defaults and flags nothing: the Trigger button is enabled
    assert _form_errors(specs) == []
    # submitting the form as it opened sends every value as the run's conf: the server
    # merges it into the DAG's Params and validates them (SerializedDAG.create_dagrun)
    conf = {name: spec["value"] for name, spec in specs.items()}
    assert conf == {
        "rollout_mode": "", "dry_run": False, "export_destination": None, "resend": False,
        "allow_late_data": False, "silence_until": None, "silence_reason": None,
    }  # fmt: skip
    assert served.params.deep_merge(conf).validate() == conf
    # a value a person types is checked by the same server-side validation
    typed = {**conf, "rollout_mode": "pilot", "export_destination": "gs://retention-exports/d"}
    served.params.deep_merge(typed).validate()
    served.params.deep_merge({**conf, "export_destination": "/data/exports"}).validate()
    for bad in ({"rollout_mode": "everywhere"}, {"export_destination": "s3://bucket/x"},
                {"dry_run": "yes"}, {"silence_until": "next week"}):  # fmt: skip
        with pytest.raises(ServerParamValidationError, match=next(iter(bad))):
            served.params.deep_merge({**conf, **bad}).validate()

    # the same on the DAG file's own Params (what a task sees)
    params = ParamsDict(duckdb_dag.params)
    params.validate()
    assert params["rollout_mode"] == "" and params["dry_run"] is False
    with pytest.raises(ParamValidationError, match="everywhere"):
        params["rollout_mode"] = "everywhere"


def test_the_trigger_form_reads_well(duckdb_dag):
    """Each field has a title, no dropdown offers "null", and nothing is required, a
    checkbox least of all (Airflow 3's form requires every Param whose type does not admit
    null: a red star, and an empty value keeps the Trigger button disabled)."""
    from airflow.serialization.serialized_objects import DagSerialization

    from retentionops.operators import run_overrides

    served = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(duckdb_dag))
    schemas = {name: served.params.get_param(name).dump()["schema"] for name in served.params}
    assert [name for name, schema in schemas.items() if not schema.get("title")] == []
    assert [name for name, schema in schemas.items() if None in schema.get("enum", [])] == []
    booleans = [name for name, schema in schemas.items() if "boolean" in schema["type"]]
    assert {"dry_run", "resend"} <= set(booleans)  # the checkbox check is not vacuous
    # every field may be left empty, the checkboxes included
    assert _form_errors({n: {"value": None, "schema": s} for n, s in schemas.items()}) == []
    # the rollout mode's empty choice is named, and means the setting (run_overrides)
    assert schemas["rollout_mode"]["values_display"][""] == "(the rollout_mode setting)"
    assert "rollout_mode" not in run_overrides({"rollout_mode": ""})
    assert run_overrides({"rollout_mode": "pilot"})["rollout_mode"] == "pilot"


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


HISTORY_FROM = "detection.history_from_date"
CHECK_SUMMARIES = "detection.check_summaries"


def test_bigquery_backend_uses_insert_job_operators(bigquery_dag):
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    markers = ["detection.start_detection", "detection.mark_history_complete",
               "detection.mark_detection_complete", "mark_queue_complete"]  # fmt: skip
    for task_id in ["create_tables", *DETECTION_TASKS, "build_priority_queue", *markers]:
        task = bigquery_dag.get_task(task_id)
        assert isinstance(task, BigQueryInsertJobOperator)
        assert task.gcp_conn_id == "google_cloud_default"
        assert task.location == "EU"
        assert task.retries >= 3
    # one job per SQL file, between clearing the date's markers and marking it complete;
    # the orders' summaries (SQL4's and SQL5's input) are checked against SQL1 before
    # SQL4 and SQL5 read them; SQL5's job is chosen from the stored history (after any
    # rebuild of the summaries, which forgets it) just before it runs, one of two
    sql5 = {"detection.alert_logic", "detection.alert_logic_daily"}
    order = ["detection.start_detection", DETECTION_TASKS[0], CHECK_SUMMARIES,
             *DETECTION_TASKS[1:-2], HISTORY_FROM, sql5, "detection.mark_history_complete",
             "detection.mark_detection_complete", "get_alert_decision",
             # the last delivered run, read first: the queue's job reads its one partition
             "last_delivered_run", "build_priority_queue", "mark_queue_complete",
             "get_operational_context"]  # fmt: skip
    for upstream, downstream in zip(order, order[1:], strict=False):
        for task_id in downstream if isinstance(downstream, set) else {downstream}:
            expected = upstream if isinstance(upstream, set) else {upstream}
            assert bigquery_dag.get_task(task_id).upstream_task_ids == expected
    # everything else is the same DAG on both backends
    assert set(bigquery_dag.task_ids) == {
        "create_tables", "apply_retention", "wait_for_orders", *DETECTION_TASKS,
        "get_alert_decision", *ACTION_TASKS, *markers, HISTORY_FROM, CHECK_SUMMARIES,
        "last_delivered_run",
    }  # fmt: skip
    assert bigquery_dag.get_task("detection.start_detection").upstream_task_ids == {
        "wait_for_orders"
    }


def test_bigquery_sql5_computes_only_what_the_stored_history_lacks(bigquery_dag):
    """The from-date branch runs one SQL5 job, or none when there is nothing to compute:
    the history marker follows the job that ran (skipped with both), and detection is
    still marked complete."""
    from airflow.providers.standard.operators.python import BranchPythonOperator
    from airflow.sdk import TriggerRule

    from_date = bigquery_dag.get_task(HISTORY_FROM)
    assert isinstance(from_date, BranchPythonOperator)
    assert from_date.downstream_task_ids == {"detection.alert_logic", "detection.alert_logic_daily"}
    assert from_date.pool == "default_pool" and from_date.retries >= 3
    marked = bigquery_dag.get_task("detection.mark_history_complete")
    # after the one job that ran; skipped when the branch skipped both
    assert marked.trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    done = bigquery_dag.get_task("detection.mark_detection_complete")
    assert done.trigger_rule == TriggerRule.NONE_FAILED  # runs after a skip, not a failure


def test_the_bigquery_dag_serializes_with_the_from_date_xcom(bigquery_dag):
    """The dag-processor stores the DAG serialized: an XComArg inside the job's
    configuration must not break it (it is shown as the xcom_pull it stands for)."""
    from airflow.serialization.serialized_objects import DagSerialization

    served = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(bigquery_dag))
    assert served.get_task("detection.alert_logic").upstream_task_ids == {HISTORY_FROM}
    shown = json.dumps(DagSerialization.serialize_dag(bigquery_dag), default=str)
    assert f"xcom_pull(task_ids='{HISTORY_FROM}'" in shown and "key='from_date'" in shown


class XComs:
    """A task instance's xcom_pull over given values, recording what is pulled."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values, self.pulled = values, []

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        self.pulled.append((task_ids, key))
        return self.values[task_ids, key]


def _render(task, day: str, ti: XComs | None = None):
    import copy

    from airflow.sdk.definitions.context import Context

    task = copy.deepcopy(task)  # rendering replaces the fields: keep the parsed DAG's own
    context = Context({"ds": day, "ds_nodash": day.replace("-", ""), "ti": ti or XComs({})})
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
        env={},
        warehouse_backend="bigquery",
        bigquery_project="acme-analytics",
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


@pytest.mark.parametrize(
    "from_date",
    [
        "2011-01-03",  # a daily run: the history is stored up to D-1, SQL5 computes D
        "2010-12-20",  # the history stored up to 2010-12-19: the missing dates up to D
        "0001-04-08",  # nothing stored: the whole history (see test_history_start)
    ],
)
def test_bigquery_alert_job_takes_its_from_date_from_the_stored_history(bigquery_dag, from_date):
    task = bigquery_dag.get_task("detection.alert_logic")
    ti = XComs({(HISTORY_FROM, "from_date"): from_date})
    config = _render(task, "2011-01-03", ti)["query"]
    # the value comes from the from-date task's XCom when the job renders, not from parsing
    assert ti.pulled == [(HISTORY_FROM, "from_date")]
    params = {p["name"]: p for p in config["queryParameters"]}
    assert params["from_date"] == {
        "name": "from_date",
        "parameterType": {"type": "DATE"},
        "parameterValue": {"value": from_date},
    }
    assert params["run_date"]["parameterValue"] == {"value": "2011-01-03"}
    # each run renders its own: the parsed task still holds the reference
    assert "XComArg" in type(_from_date_value(task)).__name__


def _from_date_value(task):
    [value] = [
        p["parameterValue"]["value"]
        for p in task.configuration["query"]["queryParameters"]
        if p["name"] == "from_date"
    ]
    return value


def test_bigquery_daily_alert_job_replaces_the_run_date_from_the_snapshot(bigquery_dag):
    """The daily run's SQL5 job: the run date's partition only, from SQL2's snapshot and the
    stored baseline days; no orders read, so no order window to pass."""
    config = _render(bigquery_dag.get_task("detection.alert_logic_daily"), "2011-01-03")["query"]
    assert config["destinationTable"]["tableId"] == "alert_logic$20110103"
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    params = {p["name"]: p["parameterValue"]["value"] for p in config["queryParameters"]}
    assert (params["from_date"], params["run_date"]) == ("2011-01-03", "2011-01-03")
    assert "at_risk_days" not in params and "active_days" not in params
    assert "`acme-analytics.retention.retention_snapshot`" in config["query"]
    assert "`acme-analytics.retention.orders`" not in config["query"]


@pytest.mark.parametrize(
    ("covered", "chosen", "from_date"),
    [
        ("2011-01-02", "detection.alert_logic_daily", "2011-01-03"),  # a daily run
        ("2010-12-19", "detection.alert_logic", "2010-12-20"),  # a gap: the orders pass
        (None, "detection.alert_logic", "0001-04-08"),  # nothing stored: the whole history
        ("2011-01-03", None, None),  # a rerun: stored, both jobs skipped
        ("2011-02-01", None, None),  # a backfill of a date the history covers
    ],
)
def test_bigquery_sql5_branch_picks_the_job_and_hands_its_from_date(
    bigquery_dag, monkeypatch, covered, chosen, from_date
):
    """The branch's own callable, on the history coverage it reads (stubbed here; the e2e
    test reads it through the BigQuery warehouse): the job to run and, in XCom, its
    from-date, by ``detection.history_start`` and ``alert_step``."""
    import datetime as dt

    from retentionops import service

    def alert_history_from(settings, run_date):
        from retentionops import detection

        start = detection.history_start(
            dt.date.fromisoformat(covered) if covered else None, dt.date.fromisoformat(run_date)
        )
        if start is None:
            return None
        return str(max(start, dt.date(1, 4, 8)))

    monkeypatch.setattr(service, "alert_history_from", alert_history_from)

    class TI:
        task_id = HISTORY_FROM
        pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = TI()
    ti.pushed = {}
    branch = bigquery_dag.get_task(HISTORY_FROM)
    assert branch.python_callable(ds="2011-01-03", ti=ti) == chosen
    assert ti.pushed == ({"from_date": from_date} if from_date else {})


def test_bigquery_alert_job_carries_thresholds(bigquery_dag):
    ti = XComs({(HISTORY_FROM, "from_date"): "0001-04-08"})
    config = _render(bigquery_dag.get_task("detection.alert_logic"), "2011-01-03", ti)["query"]
    params = {p["name"]: p["parameterValue"]["value"] for p in config["queryParameters"]}
    assert params["threshold_warning_bp"] == "1500"
    assert params["threshold_critical_bp"] == "2500"
    # SQL5 replaces its dates (@from_date..@run_date; the incidents are read from them) in
    # one transaction: the date range's rows deleted, the recomputed ones inserted. "The
    # whole history" starts at year 1 + 97 days (baseline 7 + at-risk 90), so that SQL5's
    # order window (from_date - 97 days) is a valid date on BigQuery
    assert (params["from_date"], params["run_date"]) == ("0001-04-08", "2011-01-03")
    script = [s.strip() for s in config["query"].split(";\n")]
    assert script[0] == "begin transaction" and script[-1] == "commit transaction"
    assert script[1] == (
        "delete from `acme-analytics.retention.alert_logic` "
        "where alert_date between @from_date and @run_date"
    )
    assert script[2].startswith("insert into `acme-analytics.retention.alert_logic`")
    assert "destinationTable" not in config


def test_bigquery_run_markers_are_dml_jobs_on_the_run_date(bigquery_dag):
    config = _render(bigquery_dag.get_task("detection.start_detection"), "2011-05-13")["query"]
    assert config["query"].strip().startswith("-- Forget that a date's detection")
    assert "delete from `acme-analytics.retention.run_markers`" in config["query"]
    assert "destinationTable" not in config
    params = {p["name"]: p["parameterValue"]["value"] for p in config["queryParameters"]}
    assert params == {"run_date": "2011-05-13"}
    done = _render(bigquery_dag.get_task("mark_queue_complete"), "2011-05-13")["query"]
    params = {p["name"]: p["parameterValue"]["value"] for p in done["queryParameters"]}
    assert params == {"run_date": "2011-05-13", "step": "customer_priority"}


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
    # the last delivered run, pulled from its task: the job's parameterValue as it is
    previous = XComs({("last_delivered_run", "return_value"): {"value": "2011-05-10"}})
    config = _render(task, "2011-05-13", previous)["query"]
    assert previous.pulled == [("last_delivered_run", "return_value")]
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
    assert params["previous_run_date"] == {
        "name": "previous_run_date", "parameterType": {"type": "DATE"},
        "parameterValue": {"value": "2011-05-10"},
    }  # fmt: skip


def test_failure_notifications_use_the_slack_notifier():
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from support import parse_dag

    dag = parse_dag("duckdb", RETENTIONOPS_FAILURE_NOTIFICATIONS="true")
    callbacks = dag.get_task("trigger_playbook").on_failure_callback
    assert any(isinstance(c, SlackWebhookNotifier) for c in callbacks)
    assert any(getattr(c, "__name__", "") == "record_task_failure" for c in callbacks)


def test_the_dag_decides_nothing_about_the_backend():
    """One seam: the backend is chosen by the task factory, never in the DAG file."""
    code = (ROOT / "dags" / "retention_ops.py").read_text().split('"""', 2)[2]  # past the doc
    assert code.count("warehouse_backend") == 1  # the tag naming the backend, nothing else
    assert "bigquery" not in code.lower()


def test_no_library_module_reads_the_dag_by_task_id():
    """Task ids live beside the DAG; the library passes values, it never pulls XComs."""
    import re

    dag_only = ("choose_playbook", "render_brief", "post_slack_fallback", "no_alert_task")
    for path in (ROOT / "plugins" / "retentionops").rglob("*.py"):
        text = path.read_text()
        for coupling in ("xcom_pull", "task_ids=", "get_task_states("):
            assert coupling not in text, (path.name, coupling)
        for task_id in dag_only:
            assert not re.search(rf"[\"']{task_id}[\"']", text), (path.name, task_id)
