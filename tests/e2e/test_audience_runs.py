"""Audiences across days, as DAG runs against the playbook simulator (docs/audiences.md).

05-13 … 05-16 are one incident's event days (open, update, update, update): every day
delivers. The contact cooldown keeps a customer out of a second day's export (unless it
moved to a more urgent tier, and then the row says so), the holdout never reaches a file,
and each log row, brief and webhook body carry the suppressed counts and what changed.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

from support import INCIDENT_DAYS, INCIDENT_RESOLVED, ROOT, query_warehouse

WEEK = INCIDENT_DAYS[:4]  # the incident's event days: each delivers


def latest_row(tmp_path, day):
    rows = query_warehouse(
        tmp_path,
        "select run_id, export_status, error_message, exported_p1, exported_p2, exported_p3, "
        "export_p1_link, export_p2_link, export_p3_link, cooldown_p1, cooldown_p2, cooldown_p3, "
        "audience_changes, brief_link from ops_runs_log where alert_date = ? "
        "order by run_timestamp desc",
        [dt.date.fromisoformat(day)],
    )
    keys = ("run_id", "export_status", "error", "exported", "links", "cooldown", "changes",
            "brief")  # fmt: skip
    r = rows[0]
    return dict(zip(keys, (r[0], r[1], r[2], r[3:6], r[6:9], r[9:12], r[12], r[13]), strict=True))


def read_csv(link):
    path = Path(link) if Path(link).is_absolute() else ROOT / link
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_four_days_deliver_each_customer_once_and_never_the_holdout(incident_days):
    # the incident's days, run once per session with a 10 % holdout (conftest)
    tmp_path = incident_days.folder
    seen: dict[str, tuple[str, str]] = {}  # customer -> (day, tier) of its last export
    total_rows = 0
    for day in WEEK:
        assert incident_days.states[day].endswith("success"), day
        row = latest_row(tmp_path, day)
        # the incident's holdout, drawn by its first export (05-13), extended by the later
        # days' exports: held until the incident resolves + 30 days, so on every one of
        # these days
        held = {
            c for (c,) in query_warehouse(
                tmp_path, "select customer_id from incident_holdouts where held_out "
                "and incident_id = 'INC-20110513' and assigned_on <= ?",
                [dt.date.fromisoformat(day)],
            )
        }  # fmt: skip
        assert held, "a 10 % holdout of hundreds of customers is not empty"
        for tier, link, count in zip(("P1", "P2", "P3"), row["links"], row["exported"],
                                     strict=True):  # fmt: skip
            if link is None:
                continue
            rows = read_csv(link)
            assert len(rows) == count  # the link's file holds the logged row count
            total_rows += len(rows)
            for r in rows:
                customer = r["customer_id"]
                assert customer not in held  # the holdout never reaches a file
                if customer in seen:  # exported before within the 14-day cooldown
                    assert r["cooldown_bypass"] == "true", (customer, seen[customer], day, tier)
                    assert (tier, seen[customer][1]) in (("P1", "P2"), ("P1", "P3"), ("P2", "P3"))
                seen[customer] = (day, tier)
    # each customer once, but for the marked escalations
    assert total_rows - len(seen) == sum(
        1 for day in WEEK[1:] for link in latest_row(tmp_path, day)["links"] if link
        for r in read_csv(link) if r["cooldown_bypass"] == "true"
    )  # fmt: skip

    # 05-14: most of 05-13's P2 is still in P2, so the cooldown keeps it back
    second = latest_row(tmp_path, "2011-05-14")
    assert second["cooldown"][1] > 200 and second["exported"][1] < 100
    assert second["changes"].startswith("since 2011-05-13: P1 ")
    brief = (
        (ROOT / second["brief"]).read_text()
        if not Path(second["brief"]).is_absolute()
        else (Path(second["brief"]).read_text())
    )
    assert f"{second['cooldown'][1]} kept back (delivered within the 14-day contact cooldown)" in (
        brief
    )
    # the webhook bodies: new + still = today's tier, still + left = the tier then
    bodies = {b["run_date"]: b for b in incident_days.requests}
    assert sorted(bodies) == [*WEEK, INCIDENT_RESOLVED]  # 05-17 had no event to send
    for day, later in zip(WEEK, WEEK[1:], strict=False):
        before, after = bodies[day]["audience"]["tiers"], bodies[later]["audience"]["tiers"]
        assert bodies[later]["audience"]["previous_run_date"] == day
        for tier in ("P1", "P2", "P3"):
            now = after[tier]
            assert now["new"] + now["still"] == now["count"] == bodies[later]["tier_counts"][tier]
            assert now["still"] + now["left"] == before[tier]["count"]
        assert after["P2"]["cooldown_suppressed"] == latest_row(tmp_path, later)["cooldown"][1]
    # the bodies say who is held out and who is contacted: P2's holdout (drawn on 05-13),
    # P1 too small for one (47 customers: 4 under the minimum 10)
    first = bodies[WEEK[0]]["audience"]
    [incident] = first["holdout"]["incidents"]
    assert incident["incident_id"] == "INC-20110513" and incident["tiers"]["P1"]["drawn"] is False
    assert first["tiers"]["P2"]["holdout"] == incident["tiers"]["P2"]["held_out"] > 0
    first_row = latest_row(tmp_path, WEEK[0])
    assert first["tiers"]["P2"]["treated"] == first_row["exported"][1]
    assert first["tiers"]["P2"]["treated"] + first["tiers"]["P2"]["holdout"] == 300
    held_logged = query_warehouse(
        tmp_path, "select holdout_p1, holdout_p2, treated_p2, holdout_note from ops_runs_log "
        "where run_id = ?", [first_row["run_id"]],
    )[0]  # fmt: skip
    assert held_logged[:3] == (0, first["tiers"]["P2"]["holdout"], first["tiers"]["P2"]["treated"])
    assert held_logged[3].startswith("Holdout of INC-20110513 (10 % of each tier")


def test_a_failing_gcs_upload_keeps_every_csv_linked(run_dag, tmp_path, monkeypatch, httpserver):
    """GCS answers 403 to everything (a real HTTP server on 127.0.0.1 as the storage
    endpoint): the run still succeeds, each tier's local CSV is written and linked, the
    log row says fallback_local with the error, and the brief names the failed upload."""
    import gcsfs
    import gcsfs.core

    httpserver.expect_request("").respond_with_json(
        {"error": {"code": 403, "message": "denied by test"}}, status=403
    )
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    monkeypatch.setattr(gcsfs, "GCSFileSystem", gcsfs.core.GCSFileSystem)
    gcsfs.core.GCSFileSystem.clear_instance_cache()
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}),
    )
    monkeypatch.setenv("RETENTIONOPS_EXPORT_DESTINATIONS", "csv,gcs")
    monkeypatch.setenv("RETENTIONOPS_EXPORT_GCS_URI", "gs://retention-exports/daily")
    dag_run, states = run_dag("2011-09-09")  # WARNING: P1 and P2
    assert str(dag_run.state).endswith("success")
    row = latest_row(tmp_path, "2011-09-09")
    assert row["export_status"] == "fallback_local"
    assert "P1 gcs upload failed, the local CSV is linked" in row["error"]
    assert "P2 gcs upload failed" in row["error"] and "Forbidden" in row["error"]
    for link, count in zip(row["links"][:2], row["exported"][:2], strict=True):
        assert link.endswith(".csv") and "://" not in link
        assert len(read_csv(link)) == count > 0
    assert row["links"][2] is None
    brief = Path(row["brief"]) if Path(row["brief"]).is_absolute() else ROOT / row["brief"]
    text = brief.read_text()
    assert "audience_p1_2011-09-09.csv (gcs upload failed:" in text
    assert (brief.parent / "audience_p1_2011-09-09.csv").exists()  # the link resolves


def test_a_cli_export_after_the_dag_run_leaves_its_files_identical(run_dag, tmp_path, capsys):
    from retentionops.cli import main

    dag_run, _ = run_dag("2011-05-13")
    row = latest_row(tmp_path, "2011-05-13")
    folder = Path(row["links"][0]).parent
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert "audience_p1_2011-05-13.csv" in before
    capsys.readouterr()  # the DAG run's output
    assert main(["export", "--date", "2011-05-13", "--tier", "P1", "--limit", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["row_count"] == 5 and Path(out["link"]).parent != folder
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert after == before
    assert len(read_csv(row["links"][0])) == row["exported"][0]  # the log row still holds
