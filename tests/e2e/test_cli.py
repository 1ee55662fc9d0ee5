"""The command line as a user runs it: JSON out, clear errors, and nothing lost on a bad file."""

from __future__ import annotations

import json

import pytest

from retentionops.cli import main


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's usage errors (one line, exit 2)
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def write_orders_csv(path, rows):
    lines = ["customer_id,order_id,order_date,order_amount"]
    lines += [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# Three customers; on 2011-03-01: a (last order 01-11, 49 days) and b (01-05, 55 days) are
# AT_RISK, c (02-20, 9 days) is ACTIVE -> 2/3 = 66.67 %.
ROWS = [
    ("00a", "1", "2011-01-01", "10.00"),
    ("00a", "2", "2011-01-11", "20.50"),
    ("b", "3", "2011-01-05", "3.00"),
    ("c", "4", "2011-02-20", "4.00"),
]


def test_load_then_detect_prints_the_sql5_row(settings, tmp_path, capsys):
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    code, out, err = run(capsys, "load-orders", str(path), "--format", "orders")
    assert code == 0, err
    report = json.loads(out)
    assert (report["rows_read"], report["orders_loaded"], report["customers"]) == (4, 4, 3)

    code, out, err = run(capsys, "detect", "--date", "2011-03-01")
    assert code == 0, err
    row = json.loads(out)
    assert (row["current_value"], row["sample_size"], row["severity"]) == (66.67, 3, "INFO")
    # the first detection of the date: no queue of it to keep or invalidate
    assert row.pop("downstream") == "none: no queue of 2011-03-01 to keep"

    code, out, _ = run(capsys, "decision", "--date", "2011-03-01")
    assert code == 0 and json.loads(out) == {**row, "source": "stored"}
    # before detection, a date's decision is computed read-only by the same SQL5
    code, out, _ = run(capsys, "decision", "--date", "2011-02-28")
    computed = json.loads(out)
    assert code == 0 and computed["source"] == "computed" and computed["sample_size"] == 3


def test_customer_ids_keep_leading_zeros(settings, warehouse_path_reader, tmp_path, capsys):
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    assert run(capsys, "load-orders", str(path), "--format", "orders")[0] == 0
    assert "00a" in warehouse_path_reader("select customer_id from orders")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("customer_id,order_id,order_date\nx,1,2011-01-01\n", "order_amount"),
        ("customer_id,order_id,order_date,order_amount\nx,1,2011-13-45,3\n", "2011-13-45"),
        ("customer_id,order_id,order_date,order_amount\nx,1,2011-01-01,abc\n", "abc"),
        ("customer_id,order_id,order_date,order_amount\n", "no data rows"),
        ("", "empty"),
    ],
    ids=["missing-column", "bad-date", "non-numeric-amount", "header-only", "empty-file"],
)
def test_a_bad_file_leaves_the_warehouse_as_it_was(settings, tmp_path, capsys, content, message):
    good = write_orders_csv(tmp_path / "good.csv", ROWS)
    assert run(capsys, "load-orders", str(good), "--format", "orders")[0] == 0
    _, before, _ = run(capsys, "detect", "--date", "2011-03-01")

    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, out, err = run(capsys, "load-orders", str(bad), "--format", "orders")
    assert code == 2 and out == ""
    assert "error" in err and message in err.lower()

    code, after, _ = run(capsys, "detect", "--date", "2011-03-01")
    assert code == 0 and json.loads(after) == json.loads(before)


def test_alerts_prints_a_series_as_csv_and_json(settings, tmp_path, capsys):
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    run(capsys, "load-orders", str(path), "--format", "orders")
    code, out, _ = run(capsys, "alerts", "--from", "2011-02-27", "--to", "2011-03-01")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("alert_date,alert_type")
    assert [line.split(",")[0] for line in lines[1:]] == ["2011-02-27", "2011-02-28", "2011-03-01"]
    code, out, _ = run(
        capsys, "alerts", "--from", "2011-01-01", "--to", "2011-01-08", "--format", "json"
    )
    rows = json.loads(out)
    # first order 2011-01-01: the 7 previous days exist only from 2011-01-08
    assert [r["baseline_value"] is None for r in rows] == [True] * 7 + [False]


def test_errors_go_to_stderr_with_a_non_zero_exit(settings, capsys):
    code, out, err = run(capsys, "detect", "--date", "2011-02-30")
    assert code == 2 and out == "" and "2011-02-30" in err and "YYYY-MM-DD" in err
    code, out, err = run(capsys, "decision", "--date", "2011-03-01")
    assert code == 2 and "load orders" in err and "Traceback" not in err


def test_bad_setting_is_reported(monkeypatch, capsys):
    monkeypatch.setenv("RETENTIONOPS_DETECTION_MODE", "sometimes")
    code, _, err = run(capsys, "settings")
    assert code == 2 and "detection_mode" in err and "managed, external" in err


def test_external_mode_names_missing_tables(settings, tmp_path, monkeypatch, capsys):
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    run(capsys, "load-orders", str(path), "--format", "orders")
    monkeypatch.setenv("RETENTIONOPS_DETECTION_MODE", "external")
    code, _, err = run(capsys, "detect", "--date", "2011-03-01")
    assert code == 2 and "base_customers" in err and "alert_logic" in err
    monkeypatch.setenv("RETENTIONOPS_DETECTION_MODE", "managed")
    assert run(capsys, "detect", "--date", "2011-03-01")[0] == 0
    monkeypatch.setenv("RETENTIONOPS_DETECTION_MODE", "external")
    code, out, _ = run(capsys, "detect", "--date", "2011-03-01")
    assert code == 0 and json.loads(out)["current_value"] == 66.67


@pytest.fixture
def warehouse_path_reader(settings):
    import duckdb

    def read(sql):
        with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
            return [row[0] for row in con.execute(sql).fetchall()]

    return read


def test_queue_context_brief_and_export(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RETENTIONOPS_ARTIFACTS_DIR", str(tmp_path / "runs"))
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    run(capsys, "load-orders", str(path), "--format", "orders")
    run(capsys, "detect", "--date", "2011-03-01")
    # 00a: AT_RISK (49 days) with a frequency drop (49 > 1.5 x 10) -> 50 MEDIUM -> P2;
    # b: AT_RISK, one order, no signal -> LOW; c: ACTIVE, 1 order <= 3 -> 20 LOW.
    code, out, err = run(capsys, "queue", "--date", "2011-03-01")
    assert code == 0, err
    queued = json.loads(out)
    assert (queued["run_date"], queued["tiers"]) == ("2011-03-01", {"P1": 0, "P2": 1, "P3": 0})
    code, out, _ = run(capsys, "context", "--date", "2011-03-01")
    assert json.loads(out)["status_distribution"] == {"ACTIVE": 1, "AT_RISK": 2, "INACTIVE": 0}
    code, out, err = run(capsys, "brief", "--date", "2011-03-01", "--format", "slack")
    assert code == 0 and json.loads(out)["blocks"] and "brief.md" in err
    [brief] = (tmp_path / "runs" / "2011-03-01").glob("cli__generate_brief__*/brief.md")
    code, out, err = run(
        capsys, "export", "--date", "2011-03-01", "--tier", "P2", "--to", str(tmp_path / "out")
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["row_count"] == 1 and result["tier"] == "P2"
    # --to names the folder; the file is still scoped to the date and the run
    written = tmp_path / "out" / "2011-03-01" / result["run_id"] / "audience_p2_2011-03-01.csv"
    assert result["link"] == str(written)
    lines = written.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("2011-03-01,00a,P2,")
    # every write left its own run-log row, with interface 'cli'
    code, out, _ = run(capsys, "run-log", "--date", "2011-03-01", "--all")
    rows = {row["run_id"].split("__")[1]: row for row in json.loads(out)}
    assert set(rows) == {"detect", "build_priority_queue", "generate_brief", "export_audience"}
    assert {row["interface"] for row in rows.values()} == {"cli"}
    assert {row["status"] for row in rows.values()} == {"success"}
    assert rows["build_priority_queue"]["p2_count"] == 1
    assert rows["export_audience"]["export_p2_link"].endswith("audience_p2_2011-03-01.csv")
    assert rows["export_audience"]["total_exported"] == 1
    assert rows["generate_brief"]["brief_link"].endswith("brief.md")


def test_a_failed_cli_write_is_logged_as_failed(settings, tmp_path, capsys):
    path = write_orders_csv(tmp_path / "orders.csv", ROWS)
    run(capsys, "load-orders", str(path), "--format", "orders")
    run(capsys, "queue", "--date", "2011-03-01")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should be")
    code, _, err = run(
        capsys, "export", "--date", "2011-03-01", "--tier", "P2", "--to", str(blocker / "x")
    )
    assert code == 2 and "cannot create export folder" in err
    code, out, _ = run(capsys, "run-log", "--date", "2011-03-01")
    latest = json.loads(out)
    assert latest["run_id"].startswith("cli__export_audience__2011-03-01__")
    assert latest["status"] == "failed" and latest["interface"] == "cli"
    assert latest["error_message"].startswith("step export_audience[P2] failed: ExportError:")


def test_incidents_on_the_sample_are_the_documented_two(sample_settings, capsys):
    """README and docs/incidents.md: the April promotion is one incident (open 05-13,
    updates, still CRITICAL on 05-16 against the pre-incident level, de-escalated 06-20,
    resolved 07-01), the August one another (escalated 09-18 against its pre-incident level,
    resolved 11-10); the January
    ramp's alerts fall in the warm-up (97 days from 2010-12-01: until 2011-03-06)."""
    code, out, _ = run(capsys, "incidents", "--from", "2010-12-01", "--to", "2011-12-09")
    assert code == 0
    listed = json.loads(out)
    assert (listed["warmup_until"], listed["alert_days_in_warmup"]) == ("2011-03-06", 18)
    assert [
        (i["incident_id"], i["resolved_on"], [(e["day"][5:], e["event"]) for e in i["events"]])
        for i in listed["incidents"]
    ] == [
        ("INC-20110513", "2011-07-01", [("05-13", "open"), ("05-14", "update"),
         ("05-15", "update"), ("05-16", "update"), ("06-20", "de-escalate"),
         ("07-01", "resolve")]),
        ("INC-20110909", "2011-11-10", [("09-09", "open"), ("09-10", "update"),
         ("09-11", "update"), ("09-18", "escalate"), ("11-10", "resolve")]),
    ]  # fmt: skip
    # a warm-up day says when alerts start; 2011-03-07 is the 97th day of history
    code, out, _ = run(capsys, "incident", "--date", "2011-01-10")
    day = json.loads(out)
    assert (day["phase"], day["alert_flag"], day["incident_id"]) == ("warmup", True, None)
    assert day["note"] == "warm-up: 41 days of history; alerts start on 2011-03-07"
