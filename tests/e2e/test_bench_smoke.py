"""Smoke run of the benchmark (``bench/``) at 10 k customers: results are checked, never timings.

One repeat, the pandas history peer on 30 dates, everything in a temp folder (its own orders
cache too), so it runs in well under a minute and never touches ``bench/results.*``.
"""

from __future__ import annotations

import json
import sys

import pytest
from support import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, runner, steps  # noqa: E402
from retentionops import progress  # noqa: E402

SIZE = 10_000


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    lines: list[str] = []
    shown = Shown()
    with progress.reporting(shown):  # what `make bench` shows on stderr
        results = runner.run(
            [SIZE],
            repeats=1,
            out_dir=out,
            cache_dir=out / "cache",
            peer_history_dates=30,
            log=lines.append,
        )
    return out, results, lines, shown


class Shown(progress.Reporter):
    """Records the progress the benchmark reports: (description, completed, total) per update."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.updates: list[tuple[str, float, float | None]] = []

    def step(self, description, total=None):
        import contextlib

        updates = self.updates
        self.steps.append(description)

        class Recorded(progress.Step):
            def update(self, completed=None, *, total=None, description=None):
                super().update(completed, total=total, description=description)
                updates.append((self.description, self.completed, self.total))

        return contextlib.nullcontext(Recorded(description, total))


def test_progress_counts_every_step_run(smoke):
    *_, shown = smoke
    assert shown.steps == ["benchmark"]  # one bar for the whole benchmark
    runs = len(runner.STEP_ORDER) + 2  # one repeat of each step, a DagBag parse per backend
    counts = [completed for _, completed, _ in shown.updates]
    assert counts[-1] == runs and {total for *_, total in shown.updates} == {runs}
    assert counts == sorted(counts)  # it only moves forward
    described = {description for description, *_ in shown.updates}
    assert f"[{SIZE:,}] repeat 1/1 peer_history" in described
    assert "[dag-parse] bigquery repeat 1/1" in described


def test_every_step_and_size_is_in_the_json(smoke):
    out, results, lines, _ = smoke
    stored = json.loads((out / "results.json").read_text())
    assert list(stored["sizes"]) == [str(SIZE)]
    size = stored["sizes"][str(SIZE)]
    assert size["customers"] == SIZE
    assert 15 * SIZE < size["orders"] < 25 * SIZE  # about 20 orders per customer
    expected = {*steps.PRODUCT_STEPS, *steps.REFERENCE_STEPS}
    assert set(size["steps"]) == expected
    for name in expected:
        summary = size["steps"][name]
        assert summary["runs"] == 1
        assert summary["median_seconds"] > 0
        assert summary["peak_rss_mib"] > 0
    assert set(stored["dag_parse"]) == {"duckdb", "bigquery"}
    # BigQuery runs SQL1-SQL5 as one job each (SQL5 as one of two: a daily run's or the
    # range's), between three run-marker jobs (clear, the history stored, detection
    # complete), with two small tasks (the summaries checked after SQL1, the branch picking
    # SQL5's job), reads the last delivered run before the queue's job and marks the queue
    # complete with a job of its own: 6 + 3 + 2 + 1 + 1 for DuckDB's one detection task, so
    # 12 more tasks
    assert stored["dag_parse"]["duckdb"]["tasks"] + 12 == stored["dag_parse"]["bigquery"]["tasks"]
    assert {t["target"] for t in stored["targets"]} >= {
        "whole daily pack <= 30 s",
        "365-day alert history <= 60 s",
        "DAG parse <= 1 s (DuckDB backend)",
    }
    assert any("checks passed" in line for line in lines)  # progress is reported


def test_peer_tier_counts_equal_the_products(smoke):
    _, results, _, _ = smoke
    size = results["sizes"][str(SIZE)]
    counts = size["checks"]["tiers"]["tier_counts"]
    assert size["checks"]["tiers"]["equal"]
    for name in ("priority", "daily_pack", "peer_pack"):
        assert size["runs"][name][0]["result"]["tier_counts"] == counts
    # the synthetic data puts customers in P1 and P2; P3 (INACTIVE + HIGH) cannot happen
    assert counts["P1"] > 0 and counts["P2"] > 0 and counts["P3"] == 0
    pack = size["runs"]["daily_pack"][0]["result"]
    assert pack["export_rows"] == {t: min(c, 2000) for t, c in counts.items()}
    assert size["runs"]["peer_pack"][0]["result"]["export_rows"] == pack["export_rows"]


def test_alert_history_matches_the_peer(smoke):
    _, results, _, _ = smoke
    history = results["sizes"][str(SIZE)]["checks"]["history"]
    assert history["equal"] and history["dates_compared"] >= 10
    assert sum(history["severities"].values()) == 365
    # the synthetic promotion makes the year hold alerts, not only INFO days
    assert history["alert_dates"]


def test_results_markdown_is_written(smoke):
    out, _, _, _ = smoke
    text = (out / "results.md").read_text()
    for heading in (
        "## Machine",
        "## Targets",
        "## Results per size",
        "## BigQuery bytes per daily run",
        "## DAG parse",
    ):
        assert heading in text
    assert f"{SIZE:,} customers" in text
    assert "Load average" in text


def test_the_chart_days_are_stored_and_bigquery_bytes_estimated(smoke):
    _, results, *_ = smoke
    size = results["sizes"][str(SIZE)]
    # the setup stored the history up to D-1, as the daily runs before D would have: every
    # day of the 730-day window but D (the seeded data has orders on its first day)
    assert size["previous_decisions"]["to_date"] == "2025-12-29"
    assert size["previous_decisions"]["days"] == 729
    bigquery = size["bigquery"]
    labels = [q["label"] for q in bigquery["queries"]]
    # every statement of the run, in the DAG's order: retention first, then detection
    detection = ["base_customers", "check_summaries", "retention_snapshot", "churn_detection",
                 "cohort_retention_evolution", "history_from_date",
                 "alert_logic_daily"]  # fmt: skip
    start = labels.index("start_detection")
    assert all(label.startswith("apply_retention: ") for label in labels[:start])
    assert labels[start + 1 : start + 1 + len(detection)] == detection
    assert labels[-1] == "write_run_log"
    # the orders are read once, by SQL1 (every column the run needs): SQL5 of a daily run
    # takes D from SQL2's snapshot and the stored days; SQL4, the sample's first days, the
    # range and the incidents read the summaries
    readers = [q["label"] for q in bigquery["queries"] if "orders" in q["tables"]]
    assert readers == ["base_customers"]
    sql5 = bigquery["queries"][labels.index("alert_logic_daily")]["tables"]
    assert sql5["retention_snapshot"]["partitions"] == 1
    assert sql5["retention_snapshot"]["columns"] == ["retention_status", "snapshot_date"]
    assert sql5["alert_logic"]["partitions"] == 7  # D-7 .. D-1
    assert bigquery["orders_columns"] == ["country", "customer_id", "order_amount", "order_date"]
    # the chart reads 60 stored days of alert_logic, no orders
    chart = bigquery["queries"][labels.index("render_brief: chart, stored days")]
    assert chart["tables"]["alert_logic"]["partitions"] == 60
    # every query costs at least 10 MB: at 10 k customers the minimums dominate
    assert all(q["billed_bytes"] >= 10 * 2**20 for q in bigquery["queries"])
    assert bigquery["ratio_to_orders_scan"] > 2
    target = [t for t in results["targets"] if t["target"].startswith("estimated BigQuery")]
    assert len(target) == 1 and target[0]["measured"] == round(bigquery["ratio_to_orders_scan"], 3)


def test_scaling_targets_use_the_smallest_and_largest_size(smoke):
    _, results, _, _ = smoke
    small = results["sizes"][str(SIZE)]
    big = json.loads(json.dumps(small))
    big["orders"] = small["orders"] * 10
    for summary in big["steps"].values():
        summary["median_seconds"] *= 20  # twice linear: every linearity target is missed
    fake = {**results, "sizes": {str(SIZE): small, str(SIZE * 10): big}}
    linear = [t for t in report.evaluate_targets(fake) if t["target"].startswith("linear")]
    assert len(linear) == len(steps.PRODUCT_STEPS)
    assert all(not t["met"] and abs(t["measured"] - 2.0) < 1e-6 for t in linear)
    assert "## Scaling" in report.markdown({**fake, "targets": linear})
