"""Analyst commands are harmless: a detection run of a date that comes out identical keeps
the date's queue (and so its brief and exports); one whose rows changed withdraws it and
says so; a command refused before it did anything is logged ``refused``, which health
counts apart from the runs that ran.

Run date D = 2011-03-01; the rules are in rules.md:
- a, b: orders 01-01 and 01-02 (10 each); 58 days since -> AT_RISK; gap 1, 58 > 1.5 x 1
  (frequency drop) -> 50 -> MEDIUM -> P2 (AT_RISK + HIGH or MEDIUM).
- c: one order 02-20 (50): 9 days -> ACTIVE, LOW -> no tier.
So the queue of D is P1 0, P2 2 (a, b), P3 0.

Another writer then adds a's order of 02-25 (no load, which would clear D's markers itself):
a is ACTIVE (4 days since), gap (02-25 - 01-01) / 2 = 27 days: no frequency drop (4 <= 40.5),
not inconsistent (4 <= 0.7 x 27): no HIGH risk, no tier. Every detection table of D changes:
a's rows of SQL1-SQL3, the January cohort's February (month 1: 0 -> 1 active customer, SQL4)
and the AT_RISK share of D (2 of 3 -> 1 of 3, SQL5, recomputed once the summaries, which
disagree with the orders, are rebuilt). The rebuilt queue is P2 1 (b).
"""

from __future__ import annotations

import pytest

from retentionops import runlog, service
from retentionops.detection import DetectionError
from retentionops.runlog import RunOutcome
from retentionops.warehouse import open_warehouse

D = "2011-03-01"
ORDERS = [
    ("a", "a1", "2011-01-01", 10), ("a", "a2", "2011-01-02", 10),
    ("b", "b1", "2011-01-01", 10), ("b", "b2", "2011-01-02", 10),
    ("c", "c1", "2011-02-20", 50),
]  # fmt: skip


@pytest.fixture
def queued(load_orders, settings):
    """D detected and queued by the CLI's operations (what a DAG run of D leaves too)."""
    load_orders(ORDERS).close()
    built = service.build_priority_queue(settings, D, interface="cli")
    assert built["tiers"] == {"P1": 0, "P2": 2, "P3": 0}
    return settings


def test_detect_again_with_the_same_rows_keeps_the_queue(queued):
    answer = service.detect(queued, D, interface="cli")
    # the queue still stands: the brief and an export of D read it
    brief = service.generate_brief(queued, D, interface="cli")
    assert brief["run_date"] == D
    exported = service.export_audience(queued, D, "P2", interface="cli")
    assert exported["row_count"] == 2
    assert answer["downstream"] == "kept: detection unchanged"
    assert (answer["alert_date"], answer["sample_size"]) == (D, 3)
    assert answer["current_value"] == 66.67  # a and b of a, b, c are AT_RISK (2 places)
    # and detect once more still finds the same rows
    assert service.detect(queued, D)["downstream"] == "kept: detection unchanged"


def test_detect_after_the_orders_of_the_date_changed_withdraws_the_queue(queued):
    with open_warehouse(queued) as warehouse:
        warehouse.con.execute("insert into orders values ('a', 'a3', date '2011-02-25', 10, 'UK')")
    answer = service.detect(queued, D, interface="cli")
    assert answer["downstream"] == (
        "invalidated: detection changed in alert_logic, base_customers, churn_detection, "
        "cohort_retention_evolution, retention_snapshot (queue of 2011-03-01 removed; "
        "rebuild with retentionops queue --date 2011-03-01)"
    )
    assert answer["current_value"] == 33.33  # b of a, b, c is AT_RISK (2 places)
    with pytest.raises(DetectionError, match="no priority queue for 2011-03-01"):
        service.generate_brief(queued, D, interface="cli")
    assert service.build_priority_queue(queued, D, detect=False)["tiers"] == {
        "P1": 0, "P2": 1, "P3": 0,
    }  # fmt: skip
    assert service.generate_brief(queued, D, interface="cli")["run_date"] == D


def test_the_first_detection_of_a_date_has_no_queue_to_keep(load_orders, settings):
    load_orders(ORDERS).close()
    assert service.detect(settings, D)["downstream"] == "none: no queue of 2011-03-01 to keep"


def test_a_refused_brief_is_no_failed_run(settings):
    """A fresh warehouse, one `brief` of a date nothing ran for: refused, not failed."""
    with pytest.raises(DetectionError, match="detection for 2011-05-10 is missing"):
        service.generate_brief(settings, "2011-05-10", interface="cli")
    [row] = service.run_log_rows(settings, "2011-05-10")
    assert (row["status"], row["interface"]) == ("refused", "cli")
    assert row["error_message"].startswith(
        "step generate_brief refused: DetectionError: detection for 2011-05-10 is missing"
    )
    health = service.get_health(settings, "2011-05-01", "2011-05-31")
    counts = health["counts"]
    assert (counts["refused_runs"], counts["failed_runs"], counts["runs"]) == (1, 0, 0)
    assert (health["refused_runs"], health["runs"]) == (1, 0)
    # no run ran: no rate, rather than 0 %; nor the refusal's time in the average
    assert health["run_success_rate"] is None and health["average_execution_ms"] is None


def test_the_dags_failed_runs_still_count_as_failed(settings):
    """A DAG run whose detection failed (the same DetectionError a CLI refusal carries) is
    failed; next to one refused CLI command, health says 1 failed of 1 run, 1 refused."""
    failed = RunOutcome("scheduled__2011-05-03", "2011-05-03", "dag").fail(
        "detection", "DetectionError: no orders on or before 2011-05-03"
    )
    with open_warehouse(settings) as warehouse:
        stored = runlog.write(warehouse, settings, runlog.summarize(failed))
    assert stored["status"] == "failed"
    with pytest.raises(DetectionError):
        service.export_audience(settings, "2011-05-04", "P1", interface="cli")
    health = service.get_health(settings, "2011-05-01", "2011-05-31")
    counts = health["counts"]
    assert (counts["runs"], counts["failed_runs"], counts["refused_runs"]) == (1, 1, 1)
    assert health["run_success_rate"] == 0.0  # 0 of the 1 run that ran


def test_an_error_after_the_command_did_something_is_a_failure():
    """The rule of ``refused``: an input/precondition error before anything was recorded;
    the same error once the run recorded a result, or another error, is a failure."""
    fresh = RunOutcome("cli__x", D, "cli")
    assert runlog.refusal(DetectionError("no priority queue"), fresh)
    assert not runlog.refusal(OSError("disk full"), fresh)
    done = RunOutcome("cli__y", D, "cli", decision={"severity": "INFO"})
    assert not runlog.refusal(DetectionError("no priority queue"), done)
    refused = runlog.summarize(fresh.refuse("generate_brief", "DetectionError: no queue"))
    assert refused["status"] == "refused"
