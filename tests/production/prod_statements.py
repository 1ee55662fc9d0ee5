"""How the package calls each SQL file: the parameter values (and declared types) it passes.

Each entry mirrors the call site named in its comment, built with the package's own
parameter functions, so the types ZetaSQL sees are the ones ``bigquery_query_parameters``
puts in the BigQuery job. ``test_prod_zetasql_analysis`` fails for a file under
``include/sql/`` that has no entry here, so a new file cannot go unchecked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from retentionops import actions
from retentionops.settings import Settings
from retentionops.sql import SQL_DIR, detection_parameters, priority_parameters

RUN_DATE = dt.date(2011, 5, 13)

Call = tuple[dict[str, Any], dict[str, str] | None]


def _run_log(settings: Settings) -> Call:
    # actions.write_run_log -> warehouse.execute_file(..., types=RUN_LOG_TYPES)
    record = actions.run_log_record(
        run_id="manual__2011-05-13T00:00:00+00:00",
        run_date=RUN_DATE,
        status="success",
        decision={"severity": "CRITICAL", "alert_flag": True, "current_value": 45.2,
                  "baseline_value": 32.55, "delta_relative_pct": 38.86, "sample_size": 2396},
        counts={"P1": 47, "P2": 300, "P3": 0},
        exports=[{"tier": "P1", "link": "gs://b/p/audience_p1_2011-05-13.csv", "row_count": 47}],
        started_at=dt.datetime(2011, 5, 14, 0, 5, tzinfo=dt.UTC),
        now=dt.datetime(2011, 5, 14, 0, 6, tzinfo=dt.UTC),
        playbook_status="sent",
        export_status="ok",
    )  # fmt: skip
    return record, actions.RUN_LOG_TYPES


CALLS: dict[str, Callable[[Settings], Call]] = {
    # detection.run_detection_step / alert_series: detection_parameters(settings, D[, from])
    **{
        f"detection/{name}": (lambda s: (detection_parameters(s, RUN_DATE), None))
        for name in (
            "01_base_customers",
            "02_retention_snapshot",
            "03_churn_detection",
            "04_cohort_retention_evolution",
            "05_alert_logic",
        )
    },
    # detection.get_alert_decision
    "detection/read_alert_decision": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.build_priority_queue: priority_parameters(settings, D)
    "action/build_priority_queue": lambda s: (priority_parameters(s, RUN_DATE), None),
    # actions.get_operational_context
    "action/get_operational_context": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.fetch_audience
    "action/read_audience": lambda s: (
        {"run_date": RUN_DATE, "tier": "P1", "row_limit": int(s.export_limit)},
        None,
    ),
    # actions.read_run_log
    "action/read_run_log": lambda s: ({"run_id": "manual__2011-05-13T00:00:00+00:00"}, None),
    # cli run-log, examples
    "action/read_run_logs_for_date": lambda s: ({"run_date": RUN_DATE}, None),
    # actions.write_run_log
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
            "run_date": RUN_DATE,
            "tiers": ["P1", "P2"],
            "row_limit": s.export_limit,
            "horizon_days": 30,
        },
        None,
    ),  # fmt: skip
    # impact.recommended_action
    "impact/read_customer_priority": lambda s: (
        {"run_date": RUN_DATE, "customer_id": "12347"},
        None,
    ),
}
# warehouse.ensure_tables / bigquery.create_tables_job: DDL takes no parameters
CALLS.update({f"ddl/{p.stem}": (lambda s: ({}, None)) for p in (SQL_DIR / "ddl").glob("*.sql")})


def sql_names() -> list[str]:
    """Every SQL file of the package, as the names ``retentionops.sql.render`` takes."""
    return sorted(str(p.relative_to(SQL_DIR).with_suffix("")) for p in SQL_DIR.rglob("*.sql"))
