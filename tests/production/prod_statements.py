"""How the package calls each SQL file: the parameter values (and declared types) it passes.

Each entry mirrors the call site named in its comment, built with the package's own
parameter functions, so the types ZetaSQL sees are the ones ``bigquery_query_parameters``
puts in the BigQuery job. ``test_prod_zetasql_analysis`` fails for a file under
``include/sql/`` that has no entry here, so a new file cannot go unchecked.

``built_statements`` lists the statements the package builds in code rather than reads
from a file (retention, invalidation after a load, the BigQuery load script), with the
parameters of their call sites.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from retentionops import holdouts, ledger, runlog
from retentionops.detection import DETECTION_MARKER, QUEUE_MARKER
from retentionops.incidents import LEDGER_TYPES
from retentionops.incidents import parameters as incident_parameters
from retentionops.settings import Settings
from retentionops.sql import (
    SQL_DIR,
    alert_settings_fingerprint,
    detection_parameters,
    priority_parameters,
)
from retentionops.warehouse import SUMMARY_REFRESH

RUN_DATE = dt.date(2011, 5, 13)
RUN_ID = "manual__2011-05-13T00:00:00+00:00"
DEDUPE_KEY = "INC-20110513:open:2011-05-13:production"

Call = tuple[dict[str, Any], dict[str, str] | None]


def _run_log(settings: Settings) -> Call:
    # runlog.write -> warehouse.execute_file(..., types=RUN_LOG_TYPES), a row of summarize
    started = dt.datetime(2011, 5, 14, 0, 5, tzinfo=dt.UTC)
    outcome = runlog.RunOutcome(
        run_id="manual__2011-05-13T00:00:00+00:00", run_date=RUN_DATE, interface="dag",
        started_at=started, daily=True,
        decision={"severity": "CRITICAL", "alert_flag": True, "current_value": 45.2,
                  "baseline_value": 32.55, "delta_relative_pct": 38.86, "sample_size": 2396},
        counts={"P1": 47, "P2": 300, "P3": 0},
        exports=[{"tier": "P1", "link": "gs://b/p/audience_p1_2011-05-13.csv", "row_count": 47}],
        answer={"slack_message_ts": "1.2", "ticket_id": "RET-0001"},
    )  # fmt: skip
    row = runlog.summarize(outcome, now=started + dt.timedelta(minutes=1))
    return dict(row), runlog.RUN_LOG_TYPES


CALLS: dict[str, Callable[[Settings], Call]] = {
    # detection.run_step / alert_series / extend_history: detection_parameters(settings, D[, from])
    **{
        f"detection/{name}": (lambda s: (detection_parameters(s, RUN_DATE), None))
        for name in (
            "01_base_customers",
            "02_retention_snapshot",
            "03_churn_detection",
            "04_cohort_retention_evolution",
            "05_alert_logic",
            "05_alert_logic_daily",
        )
    },
    # detection.stored_alert_decision
    # freshness.orders_freshness
    "detection/orders_freshness": lambda s: ({"run_date": RUN_DATE}, None),
    "detection/read_alert_decision": lambda s: (
        {"from_date": RUN_DATE, "run_date": RUN_DATE},
        None,
    ),
    # detection.clear_markers, mark_complete, completed_steps (and the DAG's marker jobs)
    "markers/clear_run_markers": lambda s: ({"run_date": RUN_DATE}, None),
    "markers/mark_step_complete": lambda s: (
        {"run_date": RUN_DATE, "step": DETECTION_MARKER},
        None,
    ),
    "markers/read_run_markers": lambda s: ({"run_date": RUN_DATE}, None),
    # detection.clear_marker (the detection marker, then the queue's when detection changed)
    "markers/clear_step_marker": lambda s: (
        {"run_date": RUN_DATE, "step": QUEUE_MARKER},
        None,
    ),
    # detection.detection_fingerprint, before and after a detection run of the date
    "markers/read_detection_fingerprint": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.build_priority_queue: priority_parameters(settings, D) with the last
    # delivered run, read first (action/read_last_delivered_run)
    "action/build_priority_queue": lambda s: (
        {**priority_parameters(s, RUN_DATE), "previous_run_date": RUN_DATE - dt.timedelta(1)},
        None,
    ),
    "action/read_last_delivered_run": lambda s: ({"run_date": RUN_DATE}, None),
    "action/count_queue_tiers": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.queue_facts (_context_rows)
    "action/get_operational_context": lambda s: (
        {"run_date": RUN_DATE, "new_only": False, "previous_run_date": RUN_DATE},
        None,
    ),
    "action/read_previous_run_date": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.record_audiences: clear, record, read back (every tier of a run at once)
    "action/clear_audience_export": lambda s: (
        {"run_id": RUN_ID, "tiers": ["P1", "P2"], "run_date": RUN_DATE},
        None,
    ),
    "action/record_audience_export": lambda s: (
        {
            "run_id": RUN_ID,
            "tiers": ["P1", "P2"],
            "run_date": RUN_DATE,
            "new_only": s.export_mode == "new_only",
            "row_limit": int(s.export_limit),
        },
        None,
    ),  # fmt: skip
    # service.get_health: the run dates held or failed for late or short orders
    "action/read_untrusted_days": lambda s: (
        {"from_date": dt.date(2011, 5, 1), "to_date": RUN_DATE},
        None,
    ),
    "action/read_audience": lambda s: (
        {"run_id": RUN_ID, "tiers": ["P1", "P2"], "run_date": RUN_DATE},
        None,
    ),
    # incidents.incident_days: incidents.parameters(settings, from, to)
    "incidents/incident_days": lambda s: (
        incident_parameters(s, dt.date(2011, 5, 1), RUN_DATE),
        None,
    ),
    # incidents.delivered_at, incident_thread, record_delivery
    "incidents/read_delivery": lambda s: ({"dedupe_key": DEDUPE_KEY}, None),
    # incidents.resolve_delivered
    "incidents/read_incident_resolve": lambda s: (
        {"incident_id": "INC-20110513", "rollout_mode": "production"},
        None,
    ),
    "incidents/read_incident_thread": lambda s: (
        {"incident_id": "INC-20110513", "rollout_mode": "production"},
        None,
    ),
    "incidents/record_delivery": lambda s: (
        {
            "dedupe_key": DEDUPE_KEY,
            "run_id": RUN_ID,
            "run_date": RUN_DATE,
            "incident_id": "INC-20110513",
            "event": "open",
            "severity": "CRITICAL",
            "rollout_mode": "production",
            "resend": False,
            "ticket_id": "RET-0001",
            "slack_message_ts": None,
        },
        LEDGER_TYPES,
    ),  # fmt: skip
    # ledger.read, record, owed, claim, settle, withhold
    "ledger/read_events": lambda s: ({"dedupe_key": DEDUPE_KEY}, None),
    "ledger/record_event": lambda s: (
        {
            "dedupe_key": DEDUPE_KEY,
            "incident_id": "INC-20110513",
            "event": "open",
            "run_date": RUN_DATE,
            "rollout_mode": "production",
            "severity": "CRITICAL",
            "settings_fingerprint": alert_settings_fingerprint(s),
            "built_by": RUN_ID,
            "payload": '{"dedupe_key": "INC-20110513:open:2011-05-13:production"}',
        },
        ledger.LEDGER_TYPES,
    ),
    "ledger/read_owed_events": lambda s: (
        {"rollout_mode": "production", "run_date": RUN_DATE + dt.timedelta(1)},
        None,
    ),
    "ledger/read_delivered_events": lambda s: ({}, None),
    # replay._report
    "replay/contacts": lambda s: ({}, None),
    "replay/holdout_exported": lambda s: ({"horizon_days": s.impact_horizon_days}, None),
    "replay/contacts_inside_cooldown": lambda s: (
        {"contact_cooldown_days": s.contact_cooldown_days},
        None,
    ),
    "ledger/withhold_event": lambda s: (
        {"dedupe_key": DEDUPE_KEY, "note": "withheld: incident INC-20110513 is resolved"},
        ledger.LEDGER_TYPES,
    ),
    "ledger/claim_event": lambda s: (
        {
            "dedupe_key": DEDUPE_KEY,
            "incident_id": "INC-20110513",
            "event": "open",
            "run_date": RUN_DATE,
            "rollout_mode": "production",
            "severity": None,
            "settings_fingerprint": alert_settings_fingerprint(s),
            "built_by": RUN_ID,
            "resend": False,
            "claim_token": "0123456789abcdef0123456789abcdef",
            "run_id": RUN_ID,
            "lease_seconds": s.delivery_lease_seconds,
        },
        ledger.LEDGER_TYPES,
    ),
    "ledger/settle_event": lambda s: (
        {
            "dedupe_key": DEDUPE_KEY,
            "claim_token": "0123456789abcdef0123456789abcdef",
            "state": ledger.DELIVERED,
            "ticket_id": "RET-0001",
            "ticket_url": None,
            "slack_message_ts": None,
            "note": None,
        },
        ledger.LEDGER_TYPES,
    ),
    # detection.extend_history
    "markers/clear_other_history_markers": lambda s: ({"step": "alert_history@0123456789"}, None),
    # service.apply_retention: the newest date the retention DELETEs can remove
    "markers/read_retention_due": lambda s: (
        {"cutoff_ts": dt.datetime(2011, 6, 1, 6, 0, tzinfo=dt.UTC)},
        None,
    ),
    # detection.history_covered_to
    "markers/read_history_coverage": lambda s: ({"step": "alert_history@0123456789"}, None),
    # runlog.read
    "action/read_run_log": lambda s: ({"run_id": "manual__2011-05-13T00:00:00+00:00"}, None),
    # runlog.read_for_date
    "action/read_run_logs_for_date": lambda s: ({"run_date": RUN_DATE}, None),
    # runlog.write
    "action/write_run_log": _run_log,
    # health.get_health
    "action/get_health": lambda s: (
        {"from_date": dt.date(2011, 5, 1), "to_date": dt.date(2011, 5, 31)},
        None,
    ),
    # impact.measure_impact
    "impact/last_order_date": lambda s: ({}, None),
    "impact/measure_impact": lambda s: (
        {
            "run_id": RUN_ID,
            "run_date": RUN_DATE,
            "tiers": ["P1", "P2"],
            "horizon_days": s.impact_horizon_days,
        },
        None,
    ),  # fmt: skip
    # impact.measure_incident_impact
    "impact/measure_incident_impact": lambda s: (
        {
            "incident_id": "INC-20110513",
            "from_date": RUN_DATE,
            "to_date": dt.date(2011, 7, 1),
            "horizon_days": s.impact_horizon_days,
        },
        None,
    ),  # fmt: skip
    # holdouts.draw (actions.record_audiences -> holdouts.prepare)
    "holdout/draw_incident_holdout": lambda s: (
        {
            "incident_id": "INC-20110513",
            "opened_on": RUN_DATE,
            "run_date": RUN_DATE,
            "run_id": RUN_ID,
            "holdout_bp": holdouts.basis_points(s.holdout_pct),
            "holdout_salt": s.holdout_salt,
            "holdout_min_customers": s.holdout_min_customers,
        },
        None,
    ),  # fmt: skip
    # holdouts.settle_releases
    "holdout/read_unreleased_holdouts": lambda s: ({"run_date": RUN_DATE}, None),
    "holdout/release_incident_holdout": lambda s: (
        {
            "incident_id": "INC-20110513",
            "resolved_on": dt.date(2011, 7, 1),
            "held_until": dt.date(2011, 7, 31),
        },
        None,
    ),  # fmt: skip
    # holdouts.summary, holdouts.incident_holdout
    "holdout/read_holdouts": lambda s: ({"run_date": RUN_DATE}, None),
    "holdout/read_incident_holdout": lambda s: ({"incident_id": "INC-20110513"}, None),
    # impact.recommended_action
    "impact/read_customer_priority": lambda s: (
        {"run_date": RUN_DATE, "customer_id": "12347"},
        None,
    ),
    # Warehouse.replace_orders (both backends)
    "maintenance/orders_changed_from": lambda s: ({}, None),
    # service.data_warnings
    "maintenance/orders_range": lambda s: ({}, None),
    # detection.ensure_summaries
    "maintenance/check_summaries": lambda s: ({"run_date": RUN_DATE}, None),
    # Warehouse.refresh_summaries (every load; a rebuild: changed_from = WHOLE_HISTORY)
    **{
        name: (lambda s: ({"changed_from": dt.date(2011, 5, 13)}, None)) for name in SUMMARY_REFRESH
    },
}
# warehouse.ensure_tables / bigquery.create_tables_job: DDL takes no parameters
CALLS.update({f"ddl/{p.stem}": (lambda s: ({}, None)) for p in (SQL_DIR / "ddl").glob("*.sql")})


def sql_names() -> list[str]:
    """Every SQL file of the package, as the names ``retentionops.sql.render`` takes."""
    return sorted(str(p.relative_to(SQL_DIR).with_suffix("")) for p in SQL_DIR.rglob("*.sql"))


# -- statements built in code ----------------------------------------------------------

#: ``service.apply_retention``'s clock in the analysis (any instant: only types matter)
RETENTION_NOW = dt.datetime(2011, 9, 1, 6, 0, tzinfo=dt.UTC)


def retention_parameters(settings: Settings, now: dt.datetime = RETENTION_NOW) -> dict:
    """The values ``service.apply_retention`` passes to each retention statement (with a
    marker due on the cutoff's date)."""
    from retentionops.warehouse import retention_cutoff
    from retentionops.warehouse import retention_parameters as parameters

    cutoff = retention_cutoff(settings, now)
    return parameters(cutoff, cutoff.date())


def built_statements(settings: Settings) -> dict[str, tuple[str, dict[str, Any]]]:
    """``label -> (BigQuery text, parameter values)`` of every statement built in code
    that runs as one job (the BigQuery load script is analysed apart, from the jobs
    ``BigQueryWarehouse.replace_orders`` sends)."""
    from retentionops.warehouse import invalidation_statements, retention_statements

    out = {}
    due, old_markers = retention_statements(settings)
    # service.apply_retention: warehouse.fetch(due, params), then execute_sql(old_markers)
    out["retention_statements[due partitions]"] = (due, retention_parameters(settings))
    out["retention_statements[run_markers]"] = (old_markers, retention_parameters(settings))
    for text in invalidation_statements(settings):
        # Warehouse.replace_orders: execute(statement, {"changed_from": changed_from})
        table = text.split("`")[1].rsplit(".", 1)[-1]
        out[f"invalidation_statements[{table}]"] = (text, {"changed_from": RUN_DATE})
    return out


def built_labels() -> list[str]:
    """The labels of ``built_statements`` (computed without the analyzer, for collection)."""
    from retentionops.settings import load_settings

    settings = load_settings(env={}, warehouse_backend="bigquery", bigquery_project="p")
    return sorted(built_statements(settings))
