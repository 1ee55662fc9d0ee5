"""The operational context is read once per DAG run, by ``get_operational_context``.

The exports, the brief and the playbook take it from that task's XCom (plain JSON) instead
of reading it from the warehouse again (on BigQuery each read bills the context query and
its tables: issue 15). The CLI and MCP doors, which have no such task, still compute it,
through the same service functions.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

CRITICAL = "2011-05-13"
SLACK = {"text": "the brief", "blocks": []}


@pytest.fixture
def context_reads(monkeypatch):
    """Count what reads the context: each computation of it (``service.context``), and each
    warehouse read of its SQL (the queue reads it once too, for its tier counts)."""
    from retentionops.service import context
    from retentionops.warehouse import DuckDBWarehouse

    counts = {"computed": 0, "sql": 0}
    compute, query = context.operational_context, DuckDBWarehouse.query

    def computed(*args, **kwargs):
        counts["computed"] += 1
        return compute(*args, **kwargs)

    def counted(self, sql_name, params):
        counts["sql"] += sql_name == "action/get_operational_context"
        return query(self, sql_name, params)

    monkeypatch.setattr(context, "operational_context", computed)
    monkeypatch.setattr(DuckDBWarehouse, "query", counted)
    return counts


def test_a_dag_run_reads_the_context_once(run_dag, playbook_sim, context_reads, tmp_path):
    # a CRITICAL day: every task that uses the context runs (three exports, the brief, the
    # playbook); each used to compute it again (6 reads in all)
    dag_run, states = run_dag(CRITICAL)
    assert str(dag_run.state).endswith("success"), states
    assert states["trigger_playbook"].endswith("success") and len(playbook_sim.requests) == 1
    # the context, read once (building the queue counts its tiers from its own rows)
    assert context_reads == {"computed": 1, "sql": 1}
    # what the tasks used is what get_operational_context returned
    stored = dag_run.get_task_instance("get_operational_context").xcom_pull(
        task_ids="get_operational_context"
    )
    [body] = playbook_sim.requests
    assert body["tier_counts"] == {t: v["count"] for t, v in stored["tiers"].items()}
    assert body["incident"]["incident_id"] == stored["plan"]["incident_id"] == "INC-20110513"


def test_a_retried_brief_uses_the_same_context(
    run_dag, duckdb_dag, playbook_sim, context_reads, monkeypatch
):
    """A retry of render_brief pulls the same XCom: still one read, and the run succeeds."""
    from retentionops import pack

    task = duckdb_dag.get_task("render_brief")
    monkeypatch.setattr(task, "retries", 1)
    monkeypatch.setattr(task, "retry_delay", dt.timedelta(0))
    render, attempts = pack.render_brief_files, []

    def flaky(*args, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("disk full, once")
        return render(*args, **kwargs)

    monkeypatch.setattr(pack, "render_brief_files", flaky)
    dag_run, states = run_dag(CRITICAL)
    assert str(dag_run.state).endswith("success"), states
    assert len(attempts) == 2 and dag_run.get_task_instance("render_brief").try_number == 2
    assert context_reads["computed"] == 1
    assert len(playbook_sim.requests) == 1


# -- the service functions, given the context as XCom carries it -----------------------------


@pytest.fixture
def critical_day(sample_settings):
    from retentionops import service
    from retentionops.playbook import Delivery

    service.build_priority_queue(sample_settings, CRITICAL)
    delivery = Delivery(dt.datetime(2011, 5, 14, 6, 0, tzinfo=dt.UTC))
    context = service.get_operational_context(sample_settings, CRITICAL, delivery)
    return sample_settings, delivery, context


def test_the_context_is_plain_json_and_carries_no_secret(critical_day, monkeypatch):
    settings, _, context = critical_day
    assert json.loads(json.dumps(context)) == context  # XCom gives back what was pushed
    secret = "https://hook.eu1.make.com/secret-token-123"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAKE_WEBHOOK", json.dumps({"conn_type": "http", "host": secret})
    )
    assert "secret-token-123" not in json.dumps(context)


def test_brief_and_playbook_from_the_xcom_context_equal_a_fresh_read(critical_day, context_reads):
    from retentionops import service
    from retentionops.service import Run

    settings, delivery, context = critical_day
    given = json.loads(json.dumps(context))
    run = Run.of_dag("manual__context_once")

    def both(ctx):
        brief = service.generate_brief(
            settings, CRITICAL, "markdown", delivery=delivery, run=run, context=ctx
        )
        playbook = service.prepare_playbook(
            settings,
            CRITICAL,
            run=run,
            slack_brief=brief["slack"],
            exports=[],
            brief_link=brief["files"]["markdown"],
            delivery=delivery,
            context=ctx,
        )
        return brief, playbook

    before = dict(context_reads)
    from_xcom = both(given)
    assert context_reads["computed"] == before["computed"]  # nothing read again
    read_here = both(None)  # the CLI / MCP door: computed by each function
    assert context_reads["computed"] == before["computed"] + 2
    assert from_xcom == read_here
    assert from_xcom[1]["send"] is True


def test_a_context_of_another_date_is_refused(critical_day):
    from retentionops import service
    from retentionops.errors import ServiceError

    settings, delivery, context = critical_day
    with pytest.raises(ServiceError, match="of 2011-05-13, not 2011-05-14"):
        service.planned_tiers(settings, "2011-05-14", delivery, context=context)


def test_the_playbook_checks_the_ledger_again_before_sending(critical_day):
    """The context says "send" when computed; if the event was delivered since (a task
    cleared and run again after the delivery), the playbook does not send it twice."""
    from retentionops import service
    from retentionops.service import Run

    settings, delivery, context = critical_day
    assert context["plan"]["send"] is True
    prepared = service.prepare_playbook(
        settings, CRITICAL, run=Run.of_dag("first"), slack_brief=SLACK, exports=[],
        brief_link=None, delivery=delivery, context=context,
    )  # fmt: skip
    # delivered through the ledger, as every door sends (the receiver's answer, as given)
    service.send_event(
        settings, prepared["payload"], "first",
        lambda body, failures: {"ticket_id": "RET-0001", "slack_message_ts": "1.2"},
    )  # fmt: skip
    again = service.prepare_playbook(
        settings, CRITICAL, run=Run.of_dag("cleared"), slack_brief=SLACK, exports=[],
        brief_link=None, delivery=delivery, context=context,
    )  # fmt: skip
    assert again["send"] is False and again["reason"].startswith("already delivered (open of")
