"""`retentionops replay` of the sample year with its fault schedule (replay_faults.yaml):
the real command, in a process of its own, on a copy of the sample warehouse, against the
playbook simulator on 127.0.0.1. What reached people is hand-derived from the sample's two
incidents (docs/incidents.md) and the faults; no invariant may break.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from support import ROOT

FAULTS = ROOT / "tests" / "system" / "replay_faults.yaml"


def test_the_sample_year_with_faults_breaks_no_invariant(sample_warehouse_file, tmp_path):
    shutil.copyfile(sample_warehouse_file, tmp_path / "warehouse.duckdb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIONOPS_")}
    env.update(
        RETENTIONOPS_DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        RETENTIONOPS_ARTIFACTS_DIR=str(tmp_path / "runs"),
        RETENTIONOPS_EXPORT_ROOT=str(tmp_path),
        RETENTIONOPS_SQL_CACHE_DIR=os.environ["RETENTIONOPS_SQL_CACHE_DIR"],
    )
    work = tmp_path / "replay"
    done = subprocess.run(
        [sys.executable, "-m", "retentionops.cli", "replay", "--from", "2010-12-01",
         "--to", "2011-12-09", "--faults", str(FAULTS), "--keep", str(work)],
        env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["broken"] == []
    assert report["days"] == 374
    # the two incidents, every event told once and in order, whatever the faults did
    told = {i["incident_id"]: [(e["event"], e["day"]) for e in i["events"]]
            for i in report["incidents"]}  # fmt: skip
    assert told == {
        "INC-20110513": [
            ("open", "2011-05-13"), ("update", "2011-05-14"), ("update", "2011-05-15"),
            ("update", "2011-05-16"), ("de-escalate", "2011-06-20"), ("resolve", "2011-07-01"),
        ],
        # the thresholds raised on 10-01 no longer see it: closed that day, saying why
        "INC-20110909": [
            ("open", "2011-09-09"), ("update", "2011-09-10"), ("update", "2011-09-11"),
            ("escalate", "2011-09-18"), ("resolve", "2011-10-01"),
        ],
    }  # fmt: skip
    assert report["events"]["delivered"] == 11 and report["tickets"] == 2
    assert report["posts"] == 11
    # the CRITICAL open, delivered late, kept its @here; the August escalation has its own
    assert report["here_pings"] == 2
    # the faults that fail a run say so; the rest were absorbed (claims, leases, fallbacks)
    assert [(f["day"], f["error"][:30]) for f in report["runs_failed"]] == [
        ("2011-05-13", "webhook answered HTTP 503 Serv"),
        ("2011-05-14", "webhook timed out after 1.0 s;"),
    ]
    posts = [json.loads(p.read_text()) for p in (work / "sim").glob("slack_*.json")]
    late = [p for p in posts if ":hourglass: Delivered late" in p["text"]]
    assert {(p["event"], p["run_date"]) for p in late} >= {("open", "2011-05-13")}
    closing = [p for p in posts if p["run_date"] == "2011-10-01"]
    assert len(closing) == 1 and "no longer see this incident" in closing[0]["text"]
    # contacts: each customer reached at most three times, never twice inside the 14-day
    # cooldown unless more urgent (report["broken"] checks that): the April incident's
    # open and its de-escalation five weeks later, then the August incident
    assert report["contacts"]["most_dates_per_customer"] <= 3
    # each incident held out 10 % of P2 (P1 too small for one) from its first export, and
    # no export of the year, by any door, took one of them before resolve + 30 days
    # (report["broken"]): the deliveries and an analyst's export of every tier every day
    assert report["analyst_export_days"] == 374
    holdouts = {h["incident_id"]: h for h in report["holdouts"]}
    assert sorted(holdouts) == ["INC-20110513", "INC-20110909"]
    april, august = holdouts["INC-20110513"], holdouts["INC-20110909"]
    assert (april["resolved_on"], april["held_until"]) == ("2011-07-01", "2011-07-31")
    # closed on 10-01 by the resolve that said the raised thresholds no longer see it
    assert (august["resolved_on"], august["held_until"]) == ("2011-10-01", "2011-10-31")
    for held in (april, august):
        assert held["holdout_pct"] == 10.0
        assert held["tiers"]["P1"]["drawn"] is False and held["tiers"]["P1"]["held_out"] == 0
        assert "under the minimum 10: no holdout" in held["tiers"]["P1"]["note"]
        p2 = held["tiers"]["P2"]
        assert p2["drawn"] is True and 0.05 < p2["held_out"] / p2["seen"] < 0.15
