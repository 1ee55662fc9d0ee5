"""A holdout per incident (issue 25, docs/audiences.md), on real DuckDB.

Hand-made queues first (each day's SQL1-SQL3 rows written by hand, the real queue SQL run,
the day a quiet one for SQL5): the draw of an incident's holdout, per tier against the
minimum, by a hash computed here independently of the SQL; the customers first seen later
drawn by the same (recorded) rule; every export leaving the held-out customers out from
the incident's opening to its release, with or without an incident of its own; the release
recorded once. Then the sample: its April incident's holdout held out of an analyst's
export two months later and until 07-31 (resolved 07-01 + 30 days), and ``impact``
flagging the P1 group that is too small to measure.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from support import queue_day_from_rows

from retentionops import actions, holdouts, service
from retentionops.service import context as service_context
from retentionops.settings import load_settings

D1, D2, D3 = dt.date(2011, 3, 1), dt.date(2011, 3, 2), dt.date(2011, 3, 10)
INCIDENT = "INC-20110301"
AT_RISK, ACTIVE = ("AT_RISK", "MEDIUM"), ("ACTIVE", "HIGH")
#: 25 % of each tier, at least 3 held out: P2 of 40 holds out 10 (drawn), P1 of 5 would
#: hold out 1 (5 x 25 % = 1.25, rounded down), under 3: none
RULE = {"holdout_pct": 25.0, "holdout_min_customers": 3, "holdout_salt": "s1"}


def drawn_by_hash(customer: str, incident: str, pct: float, salt: str) -> bool:
    """The rule, computed independently of the SQL: md5(id|salt|incident), first 32 bits."""
    digest = hashlib.md5(f"{customer}|{salt}|{incident}".encode()).hexdigest()
    return int(digest[:8], 16) % 10000 < pct * 100


@pytest.fixture
def queue_on(warehouse):
    """queue_on(day, {customer: (status, risk)}) builds the day's queue from hand rows."""
    warehouse.ensure_tables()

    def write(day: dt.date, members: dict[str, tuple[str, str]]) -> None:
        tuned = load_settings(p1_value_filter=False, p3_recency_cap_days=0)
        queue_day_from_rows(warehouse, day, members, tuned)

    return write


def assignments(warehouse) -> dict[str, tuple]:
    rows = warehouse.con.execute(
        "select customer_id, tier, held_out, tier_drawn, tier_customers, assigned_on, run_id, "
        "holdout_bp, holdout_salt from incident_holdouts where incident_id = ?",
        [INCIDENT],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def exported(warehouse, day, tier, run_id, **overrides):
    tuned = load_settings(**{**RULE, **overrides})
    return {r["customer_id"] for r in actions.record_audience(warehouse, tuned, day, tier, run_id)}


P2_DAY1 = {f"c{i:02d}": AT_RISK for i in range(40)}
P1_DAY1 = {f"v{i}": ACTIVE for i in range(5)}


def test_an_incidents_holdout_is_drawn_per_tier_once_and_kept_out_of_every_export(
    queue_on, warehouse
):
    queue_on(D1, {**P2_DAY1, **P1_DAY1})
    holdouts.draw(warehouse, load_settings(**RULE), D1, INCIDENT, D1, "run-1")
    drawn = assignments(warehouse)
    assert len(drawn) == 45  # every customer of every tier of the date, held out or not
    held = {c for c in P2_DAY1 if drawn_by_hash(c, INCIDENT, 25.0, "s1")}
    assert 5 <= len(held) <= 15  # the hash splits the tier (checked, not assumed)
    assert {c for c, row in drawn.items() if row[1]} == held
    assert {row[2:4] for c, row in drawn.items() if c in P2_DAY1} == {(True, 40)}
    # P1: 5 x 25 % = 1 held out would be under the minimum 3: the tier is not drawn, and
    # none of its customers is held out, whatever its hash says
    assert {row[1:4] for c, row in drawn.items() if c in P1_DAY1} == {(False, False, 5)}
    assert {row[4:] for row in drawn.values()} == {(D1, "run-1", 2500, "s1")}

    # no export of the date takes a held-out customer; the P1 tier is exported whole
    assert exported(warehouse, D1, "P2", "export-1") == set(P2_DAY1) - held
    assert exported(warehouse, D1, "P1", "export-1") == set(P1_DAY1)

    # day 2 of the incident, under other settings: c40..c49 and v5 are new, c00 moved to
    # P1. Only the new ones are drawn, by the incident's recorded rule (25 %, salt s1);
    # v5 joins P1, which was not drawn; c00 keeps its day-1 assignment.
    day2 = {**{f"c{i:02d}": AT_RISK for i in range(1, 50)}, **P1_DAY1, "v5": ACTIVE,
            "c00": ACTIVE}  # fmt: skip
    queue_on(D2, day2)
    holdouts.draw(
        warehouse, load_settings(holdout_pct=50.0, holdout_salt="s2"), D2, INCIDENT, D1, "run-2"
    )
    later = assignments(warehouse)
    new = {f"c{i}" for i in range(40, 50)} | {"v5"}
    assert set(later) - set(drawn) == new
    assert {later[c][4] for c in new} == {D2}
    assert {c for c in new if later[c][1]} == {
        c for c in new if c.startswith("c") and drawn_by_hash(c, INCIDENT, 25.0, "s1")
    }
    assert later["v5"][1:3] == (False, False)
    assert later["c00"] == drawn["c00"]
    held |= {c for c in new if later[c][1]}
    assert exported(warehouse, D2, "P2", "export-2").isdisjoint(held)
    if "c00" in held:  # held out in P2 on day 1: still held out, now in P1
        assert "c00" not in exported(warehouse, D2, "P1", "export-2")

    # a quiet day after the incident (no incident of its own): the release is not known
    # yet, so the holdout holds, for an analyst's export too
    queue_on(D3, day2)
    assert exported(warehouse, D3, "P2", "analyst").isdisjoint(held)
    # a backfill of a date before the incident opened, exported while its holdout still
    # runs, would contact those customers now, inside the measurement: they stay out too
    queue_on(D1 - dt.timedelta(1), P2_DAY1)
    early = exported(warehouse, D1 - dt.timedelta(1), "P2", "backfill-early")
    assert early == set(P2_DAY1) - held

    # the release, recorded once: resolved D3, held until D3 + 5 days; a later release
    # (other settings) does not move it
    release = {"incident_id": INCIDENT, "resolved_on": D3}
    warehouse.execute_file(
        "holdout/release_incident_holdout", {**release, "held_until": D3 + dt.timedelta(5)}
    )
    warehouse.execute_file(
        "holdout/release_incident_holdout", {**release, "held_until": D3 + dt.timedelta(50)}
    )
    assert {r[0] for r in warehouse.con.execute(
        "select distinct held_until from incident_holdouts where incident_id = ?", [INCIDENT]
    ).fetchall()} == {D3 + dt.timedelta(5)}  # fmt: skip
    last, after = D3 + dt.timedelta(5), D3 + dt.timedelta(6)
    queue_on(last, day2)
    queue_on(after, day2)
    assert exported(warehouse, last, "P2", "analyst").isdisjoint(held)
    p2_after = {c for c, member in day2.items() if member == AT_RISK}
    assert exported(warehouse, after, "P2", "analyst") == p2_after  # released
    # and a backfill of a date before the incident opened is not held either
    queue_on(D1 - dt.timedelta(1), P2_DAY1)
    assert exported(warehouse, D1 - dt.timedelta(1), "P2", "backfill") == set(P2_DAY1)


def test_the_context_counts_the_held_out_and_the_summary_says_why_a_tier_has_none(
    queue_on, warehouse
):
    queue_on(D1, {**P2_DAY1, **P1_DAY1})
    tuned = load_settings(p1_value_filter=False, p3_recency_cap_days=0, **RULE)
    holdouts.draw(warehouse, tuned, D1, INCIDENT, D1, "run-1")
    held = {c for c in P2_DAY1 if drawn_by_hash(c, INCIDENT, 25.0, "s1")}
    context = service_context.operational_context(warehouse, tuned, D1)
    assert context["tiers"]["P2"]["holdout"] == len(held)
    assert context["tiers"]["P2"]["exportable"] == 40 - len(held)
    assert context["tiers"]["P1"]["holdout"] == 0
    [incident] = context["holdout"]["incidents"]
    assert incident["incident_id"] == INCIDENT and incident["held_until"] is None
    assert incident["tiers"]["P1"] == {
        "customers": 5, "drawn": False, "seen": 5, "held_out": 0,
        "note": "P1: 5 customers, a 25 % holdout would be 1, under the minimum 3: no "
        "holdout, its impact cannot be measured",
    }  # fmt: skip
    assert incident["tiers"]["P2"]["held_out"] == len(held)
    # one customer's recommendation says who holds it out
    from retentionops.impact import recommended_action

    said = recommended_action(warehouse, tuned, sorted(held)[0], D1)
    assert said["holdout"] is True and INCIDENT in said["note"]


def test_an_incident_no_settings_see_any_more_is_released_by_the_resolve_that_closed_it(
    queue_on, warehouse
):
    queue_on(D1, P2_DAY1)
    holdouts.draw(warehouse, load_settings(**RULE), D1, INCIDENT, D1, "run-1")
    queue_on(D3, P2_DAY1)
    # today's (quiet) SQL5 rows see no incident: without a delivered resolve it holds
    assert holdouts.settle_releases(warehouse, load_settings(**RULE), D3) == []
    warehouse.con.execute(
        "insert into deliveries values (?, 'r9', ?, ?, 'resolve', 'WARNING', 'shadow', false, "
        "'RET-1', '1.1', current_timestamp)",
        [f"{INCIDENT}:resolve:{D2}:shadow", D2, INCIDENT],
    )
    assert holdouts.settle_releases(warehouse, load_settings(**RULE), D3) == [
        {"incident_id": INCIDENT, "resolved_on": "2011-03-02", "held_until": "2011-04-01",
         "seen_by_settings": False},
    ]  # fmt: skip


# -- the sample -------------------------------------------------------------------------------


@pytest.fixture
def sample_run(sample_settings):
    """sample_run(day, tier): the date's queue (detection first), then an analyst's export."""

    def run(day: str, tier: str = "P2") -> dict:
        service.build_priority_queue(sample_settings, day)
        return service.export_audience(sample_settings, day, tier)

    return run


def file_customers(export: dict) -> set[str]:
    from pathlib import Path

    lines = Path(export["link"]).read_text().splitlines()[1:]
    return {line.split(",")[1] for line in lines}


def test_the_april_incidents_holdout_holds_until_resolve_plus_horizon_on_the_sample(
    sample_settings, sample_run
):
    assert sample_settings.holdout_pct == 10.0  # the default
    # the incident's first export draws its holdout: P2 of 300 holds out about 30, P1 of
    # 47 would hold out 4 (under the minimum 10): none
    first = sample_run("2011-05-13", "P2")
    [incident] = first["holdout"]["incidents"]
    assert incident["incident_id"] == "INC-20110513" and incident["held_until"] is None
    assert incident["tiers"]["P1"]["note"] == (
        "P1: 47 customers, a 10 % holdout would be 4, under the minimum 10: no holdout, its "
        "impact cannot be measured"
    )
    held = first["held_out"]
    assert 20 <= held <= 45 and first["row_count"] == 300 - held
    assert first["holdout"]["tiers"]["P2"] == {"customers": 300, "held_out": held}
    from retentionops.warehouse import open_warehouse

    def held_out() -> set[str]:
        with open_warehouse(sample_settings, read_only=True) as warehouse:
            return {r[0] for r in warehouse.con.execute(
                "select customer_id from incident_holdouts where held_out "
                "and incident_id = 'INC-20110513'"
            ).fetchall()}  # fmt: skip

    drawn_first = held_out()
    assert len(drawn_first) == held
    # the run log row: the two groups of the tier
    [row] = [r for r in service.run_log_rows(sample_settings, "2011-05-13")
             if r["run_id"] == first["run_id"]]  # fmt: skip
    assert (row["holdout_p2"], row["treated_p2"]) == (held, 300 - held)
    assert row["holdout_note"].startswith("Holdout of INC-20110513 (10 % of each tier")

    # an analyst's export of P2 inside the incident (open until 07-01): none of them (the
    # old period-based holdout let 10 of 26 through here)
    june = sample_run("2011-06-10", "P2")
    assert file_customers(june).isdisjoint(held_out())
    # after the resolution, inside the horizon: still held; the release is recorded
    july = sample_run("2011-07-15", "P2")
    assert file_customers(july).isdisjoint(held_out())
    assert july["holdout"]["incidents"][0]["held_until"] == "2011-07-31"
    assert july["holdout"]["incidents"][0]["resolved_on"] == "2011-07-01"
    # the horizon is over: the held-out customers are exported again when in a tier
    august = sample_run("2011-08-01", "P2")
    assert august["held_out"] == 0 and august["holdout"]["incidents"] == []

    # impact of the incident flags the P1 group it could not measure, and measures P2
    measured = service.measure_impact(sample_settings, incident_id="INC-20110513")
    assert measured["measurable"] is True
    assert measured["per_tier"]["P1"]["verdict"] == incident["tiers"]["P1"]["note"]
    assert measured["per_tier"]["P1"]["holdout_customers"] == 0
    p2 = measured["per_tier"]["P2"]
    assert p2["holdout_customers"] == len(held_out()) and p2["mde"] > 0
    assert p2["treated_customers"] > p2["holdout_customers"]
    # a P1 holdout allowed to be tiny (no minimum) is drawn, and called underpowered
    tiny = load_settings(holdout_min_customers=0, holdout_salt="other")
    service.build_priority_queue(tiny, "2011-09-09")
    service.export_audiences(tiny, "2011-09-09", ["P1", "P2"])
    september = service.measure_impact(
        load_settings(holdout_min_customers=10), incident_id="INC-20110909"
    )
    small = september["per_tier"]["P1"]
    assert 0 < small["holdout_customers"] < 10 and small["underpowered"] is True
    assert small["verdict"].startswith(
        f"P1: underpowered: with {small['holdout_customers']} held out, only an uplift above "
    )
