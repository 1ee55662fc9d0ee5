"""The measurement's arithmetic and words, worked by hand (issue 25): the holdout a tier
would get and why it gets none, the 95 % interval, the minimum detectable uplift at 80 %
power, and the verdict a tier gets instead of a bare interval."""

from __future__ import annotations

import pytest

from retentionops import holdouts, impact, runlog


def test_a_tier_under_the_minimum_gets_no_holdout_and_the_words_say_why():
    # 47 x 10 % = 4.7, rounded down 4 < 10: none; 300 x 10 % = 30 >= 10: drawn
    assert holdouts.expected_size(47, 1000) == 4
    assert holdouts.tier_note("P1", 47, 1000, 10) == (
        "P1: 47 customers, a 10 % holdout would be 4, under the minimum 10: no holdout, its "
        "impact cannot be measured"
    )
    assert holdouts.tier_note("P2", 300, 1000, 10) is None
    # exactly the minimum is enough: 100 x 10 % = 10
    assert holdouts.tier_note("P2", 100, 1000, 10) is None
    assert holdouts.tier_note("P2", 99, 1000, 10).startswith("P2: 99 customers, a 10 % holdout")
    assert "holdout_pct is 0" in holdouts.tier_note("P2", 300, 0, 10)
    assert holdouts.basis_points(12.5) == 1250


def test_an_incidents_holdout_in_one_line():
    incident = {
        "incident_id": "INC-20110513", "opened_on": "2011-05-13", "resolved_on": "2011-07-01",
        "held_until": "2011-07-31", "holdout_pct": 10.0,
        "tiers": {
            "P1": {"customers": 47, "drawn": False, "seen": 78, "held_out": 0,
                   "note": holdouts.tier_note("P1", 47, 1000, 10)},
            "P2": {"customers": 300, "drawn": True, "seen": 410, "held_out": 46, "note": None},
        },
    }  # fmt: skip
    assert holdouts.describe(incident, 30) == (
        "Holdout of INC-20110513 (10 % of each tier, held until 2011-07-31: resolved "
        "2011-07-01 + the 30-day measurement horizon): P1: 47 customers, a 10 % holdout would "
        "be 4, under the minimum 10: no holdout, its impact cannot be measured; P2: 46 held "
        "out of the 410 customers it saw, never exported while it holds."
    )


def test_interval_and_minimum_detectable_uplift_by_hand():
    # 30 of 100 contacted and 5 of 25 held out bought again: 0.30 vs 0.20, uplift 0.10
    # Wald: se = sqrt(.3 x .7 / 100 + .2 x .8 / 25) = sqrt(.0021 + .0064) = .0921954
    #       interval .10 -/+ 1.959964 x .0921954 = -.080700 .. +.280700
    # MDE:  pooled p = 35 / 125 = .28; sqrt(.28 x .72 x (1/100 + 1/25)) = sqrt(.01008)
    #       = .1003992; x (1.959964 + .841621) = 2.801585 -> .281276
    stats = impact.uplift_with_ci(100, 30, 25, 5)
    assert stats["uplift"] == pytest.approx(0.10)
    assert stats["ci_low"] == pytest.approx(-0.080700, abs=1e-6)
    assert stats["ci_high"] == pytest.approx(0.280700, abs=1e-6)
    assert stats["mde"] == pytest.approx(0.281276, abs=1e-6)
    # nobody (or everybody) bought again says nothing of the variance: p = 0.5
    # sqrt(.25 x .05) = .1118034; x 2.801585 = .313227
    assert impact.minimum_detectable_uplift(100, 25, 0.0) == pytest.approx(0.313227, abs=1e-6)
    assert impact.uplift_with_ci(100, 30, 0, 0)["mde"] is None


def groups(treated, treated_hits, held, held_hits):
    return (
        {"customers": treated, "repurchasers": treated_hits, "revenue_after": 0.0},
        {"customers": held, "repurchasers": held_hits, "revenue_after": 0.0},
    )


def test_a_small_holdout_is_called_underpowered_not_a_bare_interval():
    # 4 held out (1 bought again) against 43 contacted (10): pooled p = 11 / 47 = .2340426;
    # p(1 - p) = .1792666; 1/43 + 1/4 = .2732558; sqrt(.0489856) = .2213269;
    # x 2.801585 = .6200660 -> "above 62.0 points"
    stats = impact.compare_groups("P1", *groups(43, 10, 4, 1), 10, None)
    assert stats["underpowered"] is True
    assert stats["mde"] == pytest.approx(0.620066, abs=1e-5)
    assert stats["verdict"].startswith(
        "P1: underpowered: with 4 held out, only an uplift above 62.0 points could be seen "
        "(80 % power); measured -1.7 points, 95 % interval"
    )


def test_verdicts_for_an_effect_for_none_shown_and_for_no_holdout():
    none_shown = impact.compare_groups("P2", *groups(100, 30, 25, 5), 10, None)
    assert none_shown["underpowered"] is False
    assert none_shown["verdict"] == (
        "P2: no effect shown: +10.0 points, 95 % interval -8.1 to +28.1 includes 0; with 25 "
        "held out, an uplift above 28.1 points would have been seen (80 % power)"
    )
    # 60 of 200 against 10 of 100: .30 vs .10; se = sqrt(.3 x .7 / 200 + .1 x .9 / 100)
    # = sqrt(.00105 + .0009) = .0441588; .20 -/+ .0865496 -> +11.3 .. +28.7
    effect = impact.compare_groups("P2", *groups(200, 60, 100, 10), 10, None)
    assert effect["verdict"] == (
        "P2: uplift +20.0 points, 95 % interval +11.3 to +28.7, 200 contacted against 100 held out"
    )
    why = holdouts.tier_note("P1", 47, 1000, 10)
    no_holdout = impact.compare_groups("P1", *groups(47, 12, 0, 0), 10, why)
    assert no_holdout["verdict"] == why and no_holdout["uplift"] is None


def test_the_run_log_row_carries_both_groups_per_tier():
    summary = {
        "run_date": "2011-05-13", "holdout_pct": 10.0, "min_customers": 10, "horizon_days": 30,
        "tiers": {"P1": {"customers": 47, "held_out": 0}, "P2": {"customers": 300, "held_out": 35},
                  "P3": {"customers": 0, "held_out": 0}},
        "incidents": [],
    }  # fmt: skip
    exports = [
        {"tier": "P1", "link": "p1.csv", "row_count": 47, "holdout": summary},
        {"tier": "P2", "link": "p2.csv", "row_count": 265, "holdout": summary},
    ]
    outcome = runlog.RunOutcome("r1", "2011-05-13", "cli", exports=exports)
    row = runlog.summarize(outcome)
    assert [row[f"holdout_p{n}"] for n in (1, 2, 3)] == [0, 35, 0]
    assert [row[f"treated_p{n}"] for n in (1, 2, 3)] == [47, 265, 0]
    # a run that exported nothing treated nobody: no treated sizes; the context's holdout
    quiet = runlog.RunOutcome(
        "r2", "2011-05-20", "dag", audience={"P2": {"count": 280, "holdout": 30}}
    )
    row = runlog.summarize(quiet)
    assert row["holdout_p2"] == 30 and row["treated_p2"] is None and row["holdout_p1"] is None
