"""`make bigquery-smoke`: the DAG's SQL for one date on a real BigQuery dataset.

Needs ``RETENTIONOPS_BIGQUERY_PROJECT`` and Google application default credentials
(``gcloud auth application-default login``, or ``GOOGLE_APPLICATION_CREDENTIALS`` naming a
service-account key). Without them it says so in one line and exits 2; nothing is sent.

With them, in the dataset ``RETENTIONOPS_BIGQUERY_DATASET`` (default ``retentionops_smoke``,
created in ``RETENTIONOPS_BIGQUERY_LOCATION``, default EU, if missing) it runs what the DAG
runs, through the package's own ``BigQueryWarehouse``:

    1. create every table and the view of include/sql/ddl (partitioning, clustering)
    2. load the bundled sample's orders: staged in ``orders_incoming``, compared, and the
       orders replaced in one transaction script (unchanged on a re-run)
    3. SQL1-SQL5 for the date (each a query job writing table$YYYYMMDD, WRITE_TRUNCATE),
       between clearing the date's run markers and marking detection complete
    4. the priority queue (and its marker), the operational context and the P1 audience
    5. the run log MERGE, its read-back, and the health query over the view

and runs the same on the embedded DuckDB warehouse, then compares the decision, the tier
counts, the date's completed steps, the P1 audience, the run-log row and the health row.
One line per step; exit 0 when BigQuery and DuckDB agree, 1 when they differ or a step
fails. The dataset is left in place (re-running replaces the date's partitions). Not part
of `make test`: it needs the network.

    .venv/bin/python scripts/bigquery_smoke.py [--date 2011-05-13]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

NEEDS = (
    "bigquery-smoke needs RETENTIONOPS_BIGQUERY_PROJECT=<project> and Google application "
    "default credentials (gcloud auth application-default login, or "
    "GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>)"
)
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def missing_requirement(env: dict[str, str]) -> str | None:
    """What is missing to reach BigQuery, or None. Reads no network for a missing project."""
    if not env.get("RETENTIONOPS_BIGQUERY_PROJECT", "").strip():
        return "RETENTIONOPS_BIGQUERY_PROJECT is not set"
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as error:
        return f"no application default credentials ({str(error).splitlines()[0]})"
    return None


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9) or left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    return left == right


def run(warehouse, settings, day: dt.date, orders, log) -> dict[str, Any]:
    """The DAG's SQL steps for one date on one warehouse; returns what is compared."""
    from retentionops import actions, detection, runlog
    from retentionops.detection import jsonable
    from retentionops.playbook import Delivery
    from retentionops.service import context as service_context

    def step(name: str, call, *args, **kwargs):
        started = time.monotonic()
        result = call(*args, **kwargs)
        log(f"{name} ({time.monotonic() - started:.1f} s)")
        return result

    step("create tables and view", warehouse.ensure_tables)
    changed_from = step(f"load {len(orders)} orders", warehouse.replace_orders, orders)
    log(f"orders {'changed from ' + changed_from.isoformat() if changed_from else 'unchanged'}")
    decision = step("SQL1-SQL5", detection.run_detection, warehouse, settings, day)
    counts = step("priority queue", actions.build_priority_queue, warehouse, settings, day)
    started = dt.datetime(2011, 5, 14, 0, 5, tzinfo=dt.UTC)
    # a dry run: the incident layer and the delivery ledger are read, nothing is sent
    context = step(
        "operational context", service_context.operational_context, warehouse, settings, day,
        Delivery(started, dry_run=True),
    )  # fmt: skip
    audience = step("P1 audience", actions.record_audience, warehouse, settings, day, "P1",
                    "bigquery-smoke")  # fmt: skip
    outcome = runlog.RunOutcome(
        run_id=f"bigquery_smoke__{day.isoformat()}", run_date=day, interface="cli",
        started_at=started, exports=[], dry_run=True,
    ).take_context(context)  # fmt: skip
    outcome.counts = counts
    row = runlog.summarize(outcome, now=started + dt.timedelta(seconds=42))
    stored = step("run log MERGE", runlog.write, warehouse, settings, row)
    health = step(
        "health", warehouse.query, "action/get_health", {"from_date": day, "to_date": day}
    )
    return {
        "decision": decision,
        "tier counts": counts,
        "completed steps": sorted(detection.completed_steps(warehouse, day)),
        "P1 audience": [(r["customer_id"], float(r["priority_score"])) for r in audience],
        "run log": {
            k: stored[k]
            for k in ("status", "severity", "p1_count", "sample_size", "playbook_status")
        },
        "health": [jsonable(r) for r in health],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default="2011-05-13", help="run date (default 2011-05-13)")
    args = parser.parse_args(argv)
    missing = missing_requirement(dict(os.environ))
    if missing:
        print(f"{NEEDS}; {missing}", file=sys.stderr)
        return 2

    project = os.environ["RETENTIONOPS_BIGQUERY_PROJECT"].strip()
    dataset = os.environ.get("RETENTIONOPS_BIGQUERY_DATASET", "retentionops_smoke")
    location = os.environ.get("RETENTIONOPS_BIGQUERY_LOCATION", "EU")
    workdir = Path(tempfile.mkdtemp(prefix="bigquery-smoke-"))
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))
    # the provider's hooks read this connection; without a key it means "use the ADC"
    os.environ.setdefault(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"project": project}}),
    )
    from retentionops.dates import as_date
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample
    from retentionops.settings import load_settings
    from retentionops.warehouse import BigQueryWarehouse, DuckDBWarehouse

    day = as_date(args.date)
    orders = clean_uci(generate_uci_sample()).orders
    # the run log's JSON copies go to the work folder, never to the repository's artifacts/
    remote = load_settings(
        warehouse_backend="bigquery", bigquery_project=project, bigquery_dataset=dataset,
        bigquery_location=location, gcp_conn_id="google_cloud_default",
        artifacts_dir=str(workdir / "bigquery-runs"),
    )  # fmt: skip
    local = load_settings(
        warehouse_backend="duckdb", duckdb_path=str(workdir / "smoke.duckdb"),
        artifacts_dir=str(workdir / "duckdb-runs"),
    )  # fmt: skip
    results = {}
    for name, settings, opener in (
        (f"BigQuery {project}.{dataset} ({location})", remote, BigQueryWarehouse),
        ("DuckDB", local, DuckDBWarehouse),
    ):
        print(f"== {name}, {day}")
        try:
            with opener(settings) as warehouse:
                if opener is BigQueryWarehouse:
                    client = warehouse.hook.get_client(project_id=project, location=location)
                    from google.cloud import bigquery as bq

                    ref = bq.Dataset(f"{project}.{dataset}")
                    ref.location = location
                    client.create_dataset(ref, exists_ok=True)
                results[name] = run(warehouse, settings, day, orders, lambda s: print(f"   {s}"))
        except Exception as error:  # a smoke check reports, it does not hide
            print(f"FAILED on {name}: {type(error).__name__}: {error}")
            return 1
    bigquery_result, duckdb_result = results.values()
    differing = [k for k in bigquery_result if not same(bigquery_result[k], duckdb_result[k])]
    for key in bigquery_result:
        print(f"{key}: {'same' if key not in differing else 'DIFFERENT'}")
        if key in differing:
            print(f"   BigQuery: {bigquery_result[key]}\n   DuckDB:   {duckdb_result[key]}")
    print(json.dumps(bigquery_result["decision"], default=str))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
