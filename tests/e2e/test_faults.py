"""Nothing lost, nothing silent, nothing sent twice, nothing written where it should not be.

One test (or a few) per defect class of the fault audit, each written from the defect as a
user meets it, plus a fuzz-style pass over the CLI: every bad input is exit code 2 and one
line on stderr, never a traceback, and leaves the warehouse as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from retentionops import detection, service
from retentionops.cli import main
from retentionops.errors import UserError
from retentionops.settings import load_settings

D = "2011-05-13"


def cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, stderr), argparse's exits included."""
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2, err
    assert len(lines) == 1 and "error" in lines[0], err
    assert "Traceback" not in err


def count(settings, sql, *params):
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def write_csv(path, header, rows):
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


@pytest.fixture
def queued(sample_settings, capsys):
    """The sample loaded, with detection and the queue built for the CRITICAL date."""
    assert cli(capsys, "queue", "--date", D)[0] == 0
    return sample_settings


# -- 1. a file whose every row is dropped never wipes the warehouse -------------------------


def test_a_file_that_drops_every_row_is_refused_and_the_warehouse_kept(queued, tmp_path, capsys):
    before = count(queued, "select count(*) from orders")
    no_ids = write_csv(
        tmp_path / "no_ids.csv",
        "customer_id,order_id,order_date,order_amount",
        [("", i, "2011-01-0" + str(i), 10) for i in range(1, 6)],
    )
    code, _, err = cli(capsys, "load-orders", str(no_ids), "--format", "orders")
    one_line_error(code, err)
    assert "no order is left to load (5 row(s) read; dropped: no_customer_id 5)" in err
    assert "--allow-empty" in err
    # a UCI file of cancellations only
    cancellations = write_csv(
        tmp_path / "cancel.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        [(f"C{i}", "X", "x", -1, "2011-01-05 10:00", 1.5, 17850, "UK") for i in range(3)],
    )
    code, _, err = cli(capsys, "load-orders", str(cancellations), "--format", "uci")
    one_line_error(code, err)
    assert "cancellation 3" in err
    # nothing lost: the orders and the built date are as they were
    assert count(queued, "select count(*) from orders") == before
    assert cli(capsys, "context", "--date", D)[0] == 0
    # on purpose, it empties the warehouse; the report says null, never "nan"
    code, out, _ = cli(capsys, "load-orders", str(no_ids), "--format", "orders", "--allow-empty")
    report = json.loads(out)
    assert code == 0 and report["orders_loaded"] == 0
    assert report["first_order_date"] is None and report["changed_from"] == "2010-12-01"


def test_a_load_dropping_most_rows_is_refused(settings, tmp_path, capsys):
    rows = [("", i, "2011-01-05", 10) for i in range(1, 7)] + [("a", 99, "2011-01-05", 10)]
    path = write_csv(tmp_path / "o.csv", "customer_id,order_id,order_date,order_amount", rows)
    code, _, err = cli(capsys, "load-orders", str(path), "--format", "orders")
    one_line_error(code, err)
    assert "85.7 % of the 7 rows were dropped" in err and "load_max_dropped_pct (50 %)" in err
    assert cli(capsys, "load-orders", str(path), "--format", "orders", "--allow-drops")[0] == 0


# -- 2. detection is all or nothing ------------------------------------------------------------


def test_a_failing_detection_step_leaves_no_half_written_date(sample_settings, monkeypatch):
    steps = list(detection.DETECTION_STEPS)
    broken = dataclasses.replace(steps[2], sql_name="detection/no_such_step")
    monkeypatch.setattr(detection, "DETECTION_STEPS", (*steps[:2], broken, *steps[3:]))
    with pytest.raises(FileNotFoundError):
        service.detect(sample_settings, D)
    # SQL1 and SQL2 ran before SQL3 failed: the transaction rolled them back
    for table, field in (
        ("base_customers", "snapshot_date"),
        ("retention_snapshot", "snapshot_date"),
    ):
        assert count(sample_settings, f"select count(*) from {table} where {field} = ?", D) == 0
    with pytest.raises(UserError, match="detection for 2011-05-13 is missing or incomplete"):
        service.get_operational_context(sample_settings, D)


def test_a_run_killed_between_steps_is_never_read(sample_settings):
    """BigQuery's order of writes (markers cleared, steps, marker last), stopped half-way."""
    from retentionops.warehouse import open_warehouse

    service.build_priority_queue(sample_settings, D)  # a complete date first
    with open_warehouse(sample_settings) as warehouse:
        day = dt.date.fromisoformat(D)
        detection.clear_markers(warehouse, day)
        for step in detection.DETECTION_STEPS[:2]:  # ... and the process dies here
            detection.run_step(warehouse, sample_settings, step, day)
    for read in (service.get_operational_context, service.generate_brief):
        with pytest.raises(UserError, match="detection for 2011-05-13 is missing or incomplete"):
            read(sample_settings, D)
    with pytest.raises(UserError, match="missing or incomplete"):
        service.export_audience(sample_settings, D, "P1")
    with pytest.raises(UserError, match="missing or incomplete"):
        service.build_priority_queue(sample_settings, D, detect=False)
    # the decision falls back to SQL5 computed from the orders, and says so
    assert service.get_alert_decision(sample_settings, D)["source"] == "computed"


# -- 3. commands before their prerequisites say what to run -----------------------------------


def test_commands_before_their_prerequisites_name_the_command_to_run(sample_settings, capsys):
    for command in ("context", "brief", "export"):
        argv = [command, "--date", D] + (["--tier", "P1"] if command == "export" else [])
        code, out, err = cli(capsys, *argv)
        one_line_error(code, err)
        assert "retentionops queue --date 2011-05-13" in err or "retentionops detect" in err
        assert out == ""
    # a refusal writes no brief and no export: only the failed writes' log copies (brief
    # and export; context is a read and logs nothing)
    written = sorted(p.name for p in (sample_settings.artifacts_path / D).rglob("*") if p.is_file())
    assert written == ["run_log.json"] * 2
    # detection without the queue: the brief refuses instead of reporting empty tiers
    assert cli(capsys, "detect", "--date", D)[0] == 0
    code, _, err = cli(capsys, "brief", "--date", D)
    one_line_error(code, err)
    assert "no priority queue for 2011-05-13" in err
    # the queue runs detection itself: real counts, never 0/0/0
    code, out, _ = cli(capsys, "queue", "--date", D)
    assert code == 0 and json.loads(out)["tiers"] == {"P1": 47, "P2": 300, "P3": 0}


# -- 4. loads that do not destroy ---------------------------------------------------------------


def test_reloading_the_same_orders_keeps_every_derived_table(
    queued, sample_orders, tmp_path, capsys
):
    path = tmp_path / "orders.csv"
    sample_orders.to_csv(path, index=False)
    rows = count(queued, "select count(*) from customer_priority")
    code, out, _ = cli(capsys, "load-orders", str(path), "--format", "orders")
    assert code == 0
    assert json.loads(out)["unchanged"] is True
    assert count(queued, "select count(*) from customer_priority") == rows
    assert cli(capsys, "context", "--date", D)[0] == 0


def test_a_changed_order_invalidates_its_date_and_later_only(
    queued, sample_orders, tmp_path, capsys
):
    assert cli(capsys, "queue", "--date", "2011-09-09")[0] == 0
    exported = cli(capsys, "export", "--date", D, "--tier", "P1")
    link = json.loads(exported[1])["link"]
    before = Path(link).read_bytes()
    changed = sample_orders.copy()
    late = changed["order_date"] >= dt.date(2011, 6, 1)
    changed.loc[late.idxmax(), "order_amount"] += 1  # one order of June changes
    path = tmp_path / "orders.csv"
    changed.to_csv(path, index=False)
    code, out, _ = cli(capsys, "load-orders", str(path), "--format", "orders")
    report = json.loads(out)
    assert code == 0 and report["unchanged"] is False
    assert report["changed_from"] >= "2011-06-01"
    # 2011-05-13 depends on orders up to then only: still built and readable
    assert cli(capsys, "context", "--date", D)[0] == 0
    # 2011-09-09 is after the change: refused until rebuilt
    code, _, err = cli(capsys, "context", "--date", "2011-09-09")
    one_line_error(code, err)
    # the earlier export was never replaced by an empty one
    assert Path(link).read_bytes() == before


# -- 5 & 6. delivery you can trust: the contract, retries, the fallback --------------------------


@pytest.fixture
def webhook(httpserver, monkeypatch, queued):
    """A real HTTP receiver on 127.0.0.1 as the make_webhook connection, production mode."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAKE_WEBHOOK",
        json.dumps({"conn_type": "http", "host": httpserver.url_for("/hook/tok3n-s3cret")}),
    )
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_TIMEOUT_SECONDS", "1")
    return httpserver


@pytest.fixture
def slack(httpserver, monkeypatch):
    """A Slack incoming webhook on the same loopback server (the fallback)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_FALLBACK",
        json.dumps({"conn_type": "slackwebhook", "password": httpserver.url_for("/slack/fb0000")}),
    )
    return httpserver


def requests_to(server, path):
    return [request for request, _ in server.log if request.path == path]


def latest_row(settings):
    return service.run_log_rows(settings, D)[0]


def test_a_200_without_a_ticket_id_is_a_failed_delivery_with_the_fallback(webhook, slack, capsys):
    webhook.expect_request("/hook/tok3n-s3cret").respond_with_json({"slack_message_ts": "1.2"})
    slack.expect_request("/slack/fb0000").respond_with_data("ok")
    code, _, err = cli(capsys, "trigger", "--date", D, "--rollout-mode", "production")
    one_line_error(code, err)
    assert "broke the contract" in err and "ticket_id" in err
    row = latest_row(load_settings())
    assert (row["status"], row["playbook_status"], row["slack_posted"]) == (
        "failed",
        "failed",
        True,
    )
    assert len(requests_to(slack, "/slack/fb0000")) == 1


def test_a_timeout_is_retried_with_one_idempotency_key(webhook, monkeypatch):
    def slow(request):
        time.sleep(1.3)  # longer than the 1 s timeout: the receiver did its work anyway
        from werkzeug import Response

        return Response(json.dumps({"slack_message_ts": "1.2", "ticket_id": "RET-9"}),
                        content_type="application/json")  # fmt: skip

    webhook.expect_request("/hook/tok3n-s3cret").respond_with_handler(slow)
    settings = load_settings()
    with pytest.raises(UserError, match="timed out"):
        service.trigger_playbook(settings, D, rollout_mode="production")
    # the server logs a request once its (slow) handler returns: wait for the third (the
    # bound only matters when the test fails; a busy machine may take a while)
    deadline = time.monotonic() + 60
    while len(requests_to(webhook, "/hook/tok3n-s3cret")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = {r.headers["Idempotency-Key"] for r in requests_to(webhook, "/hook/tok3n-s3cret")}
    bodies = {r.get_json()["dedupe_key"] for r in requests_to(webhook, "/hook/tok3n-s3cret")}
    assert len(requests_to(webhook, "/hook/tok3n-s3cret")) == 3 and len(keys) == 1
    assert bodies == keys  # the same key in the header and in the body


def test_retry_after_is_honoured_and_a_too_long_one_ends_the_retries(webhook, monkeypatch):
    calls = []

    def busy_then_ok(request):
        from werkzeug import Response

        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("busy", status=429, headers={"Retry-After": "1"})
        return Response(json.dumps({"slack_message_ts": "1.2", "ticket_id": "RET-9"}),
                        content_type="application/json")  # fmt: skip

    webhook.expect_request("/hook/tok3n-s3cret").respond_with_handler(busy_then_ok)
    settings = load_settings()
    answer = service.trigger_playbook(settings, D, rollout_mode="production")
    assert answer["ticket_id"] == "RET-9"
    assert calls[1] - calls[0] >= 1.0  # waited as asked, though the backoff setting is 0
    webhook.clear()
    webhook.expect_request("/hook/tok3n-s3cret").respond_with_data(
        "later", status=503, headers={"Retry-After": "3600"}
    )
    started = time.monotonic()
    with pytest.raises(UserError, match="HTTP 503"):  # delivered above: sent again on resend
        service.trigger_playbook(settings, D, rollout_mode="production", resend=True)
    # no hour-long wait: one attempt, and the call returns in far less than the hour asked
    # (the bound leaves room for a busy machine)
    assert time.monotonic() - started < 120 and len(webhook.log) == 1


def test_a_failing_fallback_is_sent_once_and_both_causes_are_logged(webhook, slack):
    webhook.expect_request("/hook/tok3n-s3cret").respond_with_data("no", status=400)
    slack.expect_request("/slack/fb0000").respond_with_data("down", status=500)
    settings = load_settings()
    with pytest.raises(UserError, match="HTTP 400"):
        service.trigger_playbook(settings, D, rollout_mode="production")
    assert len(requests_to(slack, "/slack/fb0000")) == 1
    error = latest_row(settings)["error_message"]
    assert error.index("step trigger_playbook failed") < error.index("step slack_fallback failed")
    assert "HTTP 400" in error and "tok3n" not in error and "fb0000" not in error


def test_a_redirect_is_not_a_delivery_and_is_not_followed(webhook, capsys):
    # the webhook moved: a 301 to an address whose GET would answer a ticket. Following it
    # (requests does, with a GET and no body) recorded "sent" with a ticket nobody opened.
    from werkzeug import Response

    webhook.expect_request("/hook/tok3n-s3cret", method="POST").respond_with_response(
        Response("", status=301, headers={"Location": webhook.url_for("/moved/tok3n-s3cret")})
    )
    webhook.expect_request("/moved/tok3n-s3cret").respond_with_json(
        {"slack_message_ts": "1.2", "ticket_id": "RET-9"}
    )
    code, out, err = cli(capsys, "trigger", "--date", D, "--rollout-mode", "production")
    one_line_error(code, err)
    assert "HTTP 301" in err and "a redirect is not a delivery" in err
    assert "tok3n" not in err and "moved" not in err  # the new address is never named
    assert [r.path for r, _ in webhook.log] == ["/hook/tok3n-s3cret"]  # one POST, no GET
    settings = load_settings()
    row = latest_row(settings)
    assert (row["status"], row["ticket_id"], row["playbook_status"]) == ("failed", None, "failed")
    assert count(settings, "select count(*) from deliveries") == 0  # nothing was delivered


def test_trigger_without_the_webhook_connection_is_a_clear_error(queued, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_MAKE_WEBHOOK", raising=False)
    code, _, err = cli(capsys, "trigger", "--date", D, "--rollout-mode", "production")
    one_line_error(code, err)
    assert "no Airflow connection 'make_webhook'" in err
    assert "AIRFLOW_CONN_MAKE_WEBHOOK" in err  # how to define it
    row = latest_row(queued)
    assert row["status"] == "failed" and "make_webhook" in row["error_message"]


# -- 7. no secret in any log ------------------------------------------------------------------


def test_a_refused_connection_logs_no_part_of_the_webhook_url(queued, monkeypatch, caplog):
    import logging
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_MAKE_WEBHOOK",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{port}/hook/sEcReT-t0ken-77"}),
    )
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    caplog.set_level(logging.DEBUG)
    settings = load_settings()
    with pytest.raises(UserError, match="webhook unreachable") as raised:
        service.trigger_playbook(settings, D, rollout_mode="production")
    text = "\n".join(r.getMessage() for r in caplog.records) + str(raised.value)
    text += json.dumps(service.run_log_rows(settings, D), default=str)
    assert "sEcReT-t0ken-77" not in text and "/hook/" not in text


# -- 8. confined writes -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["../outside", "/tmp/retentionops-outside", "~/exports"])
def test_export_destinations_outside_the_export_root_are_refused(queued, tmp_path, where, capsys):
    code, _, err = cli(capsys, "export", "--date", D, "--tier", "P1", "--to", where)
    one_line_error(code, err)
    assert "outside the export root" in err
    assert not (tmp_path.parent / "outside").exists()


def test_a_symlink_out_of_the_export_root_is_refused(queued, tmp_path, capsys):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    code, _, err = cli(capsys, "export", "--date", D, "--tier", "P1", "--to", "link")
    one_line_error(code, err)
    assert list(outside.iterdir()) == []
    # a relative folder inside the root is fine, and taken from the root
    code, out, _ = cli(capsys, "export", "--date", D, "--tier", "P1", "--to", "exports/p1")
    assert code == 0 and json.loads(out)["link"].startswith(str(tmp_path / "exports" / "p1"))


def test_buckets_other_than_the_allowed_ones_are_refused(queued, monkeypatch, capsys):
    code, _, err = cli(capsys, "export", "--date", D, "--tier", "P1", "--to", "gs://evil/x")
    one_line_error(code, err)
    assert "gs://evil is not an allowed export bucket" in err


def test_the_mcp_http_transport_needs_a_token_off_loopback_and_checks_it():
    from starlette.testclient import TestClient

    from retentionops import mcp_server
    from retentionops.settings import load_settings

    server = mcp_server.build_server(load_settings(env={}))
    with pytest.raises(UserError, match="without a bearer token"):
        mcp_server.http_app(server, "0.0.0.0", "")
    app = mcp_server.http_app(server, "127.0.0.1", "t0ken-abc")
    with TestClient(app) as client:
        assert client.post("/mcp", json={}).status_code == 401
        wrong = client.post("/mcp", json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "Authorization": "Bearer t0ken-abc",
                "Accept": "application/json, text/event-stream",
            },
        )
        assert right.status_code != 401


# -- 9. health never crashes on months without a decision ---------------------------------------


def test_health_of_a_month_whose_runs_all_failed_before_the_decision(settings):
    from retentionops import runlog
    from retentionops.runlog import RunOutcome
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings) as warehouse:
        for day in ("2011-05-03", "2011-05-04"):
            failed = RunOutcome(f"r-{day}", day, "dag").fail("get_alert_decision", "boom")
            runlog.write(warehouse, settings, runlog.summarize(failed))
    health = service.get_health(settings, "2011-05-01", "2011-05-31")
    assert (health["runs"], health["run_success_rate"]) == (2, 0.0)
    assert health["alerts_per_month"] == {"2011-05": 0}


# -- 10. invalid values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("threshold_warning_pct", "nan", "finite"),
        ("value_bonus_cap", "inf", "finite"),
        ("risk_level_high_min", "101", "highest possible churn_risk_score (100"),
        ("export_limit", "0", ">= 1"),
        ("webhook_retries", "1000", "<= 10"),
        ("slack_channel", "retention alerts", "Slack channel"),
        ("implausible_orders", "ignore", "refuse, drop, keep"),
    ],
)
def test_settings_refuse_impossible_values_naming_the_key(
    name, value, message, capsys, monkeypatch
):
    monkeypatch.setenv(f"RETENTIONOPS_{name.upper()}", value)
    code, _, err = cli(capsys, "settings")
    one_line_error(code, err)
    assert f"'{name}'" in err and message in err


def test_all_zero_weights_are_refused(capsys, monkeypatch):
    for name in ("WEIGHT_FREQUENCY_DROP", "WEIGHT_VALUE_DROP", "WEIGHT_STATUS_INCONSISTENT"):
        monkeypatch.setenv(f"RETENTIONOPS_{name}", "0")
    code, _, err = cli(capsys, "settings")
    one_line_error(code, err)
    assert "no customer can be at risk" in err


def test_implausible_orders_are_counted_and_refused_or_dropped(
    settings, tmp_path, capsys, monkeypatch
):
    rows = [("a", 1, "2011-01-05", 10), ("b", 2, "2011-01-06", -5), ("c", 3, "2011-01-07", 0),
            ("d", 4, "0001-01-01", 9), ("e", 5, "9999-12-31", 9)]  # fmt: skip
    path = write_csv(tmp_path / "o.csv", "customer_id,order_id,order_date,order_amount", rows)
    code, _, err = cli(capsys, "load-orders", str(path), "--format", "orders")
    one_line_error(code, err)
    assert "2 order(s) with an amount <= 0" in err and "2 order(s) dated outside" in err
    monkeypatch.setenv("RETENTIONOPS_IMPLAUSIBLE_ORDERS", "drop")
    monkeypatch.setenv("RETENTIONOPS_LOAD_MAX_DROPPED_PCT", "100")
    code, out, err = cli(capsys, "load-orders", str(path), "--format", "orders")
    report = json.loads(out)
    assert code == 0 and report["orders_loaded"] == 1
    assert report["rows_dropped"]["non_positive_amount"] == 2
    assert report["rows_dropped"]["date_outside_window"] == 2
    assert "warning: dropped" in err


def test_dates_after_the_data_warn_with_the_data_range(sample_settings, capsys):
    code, out, err = cli(capsys, "decision", "--date", "2015-01-01")
    assert code == 0 and json.loads(out)["severity"] == "INFO"
    assert "warning: the orders end on 2011-12-09, 1119 day(s) before 2015-01-01" in err
    assert "every customer is INACTIVE" in err


def test_an_absurd_range_is_refused_at_once(sample_settings, capsys):
    started = time.monotonic()
    code, _, err = cli(capsys, "alerts", "--from", "0001-01-01", "--to", "9999-12-31")
    one_line_error(code, err)
    # refused before any work: far from the hours 3.6 M dates would take (room for a busy box)
    assert "is before 1970-01-01" in err and time.monotonic() - started < 60
    # every date in bounds (1970-01-01 .. tomorrow), the range still too long
    today = dt.datetime.now(dt.UTC).date().isoformat()
    code, _, err = cli(capsys, "alerts", "--from", "1970-01-01", "--to", today)
    one_line_error(code, err)
    assert "max_range_days" in err and time.monotonic() - started < 60


# -- one writer at a time, waiting politely ------------------------------------------------------


def _lock_holder(path):
    """Another process holding the DuckDB file's write lock until it reads a line."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " sys.stdin.readline(); con.close(); print('released', flush=True)", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def _release(holder):
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"


def test_a_cli_write_waits_for_the_duckdb_lock_then_proceeds(queued, capsys, monkeypatch):
    import threading

    # the other writer lets go only once the CLI has been waiting for a second: however
    # slow the machine, the CLI found the file locked and waited (the default wait is 60 s)
    holder = _lock_holder(queued.duckdb_file)
    started = time.monotonic()
    releaser = threading.Timer(1.0, _release, [holder])
    releaser.start()
    code, out, err = cli(capsys, "queue", "--date", D)
    releaser.join()
    holder.wait(timeout=60)
    assert code == 0, err
    assert time.monotonic() - started >= 1.0  # it waited for the other writer
    # with no wait allowed, a held lock is a clear one-line error; the holder lets go after
    monkeypatch.setenv("RETENTIONOPS_DUCKDB_LOCK_WAIT_SECONDS", "0")
    holder = _lock_holder(queued.duckdb_file)
    try:
        code, _, err = cli(capsys, "queue", "--date", D)
    finally:
        _release(holder)
        holder.wait(timeout=60)
    one_line_error(code, err)
    assert "DuckDB allows one writer" in err


# -- the CLI, fuzzed: every bad input is exit 2 and one line ------------------------------------

BAD_INVOCATIONS = [
    ["detect", "--date", "2011-02-30"],
    ["detect", "--date", "13/05/2011"],
    ["detect", "--date", ""],
    ["detect", "--date", "'; drop table orders; --"],
    ["decision", "--date", "2011-13-01"],
    ["alerts", "--from", "2011-05-10", "--to", "2011-05-01"],
    ["alerts", "--from", "2011-05-01", "--to", "tomorrow"],
    ["export", "--date", D, "--tier", "P4"],
    ["export", "--date", D, "--tier", "P1", "--limit", "0"],
    ["export", "--date", D, "--tier", "P1", "--limit", "-3"],
    ["export", "--date", D, "--tier", "P1", "--limit", "ten"],
    ["export", "--date", D, "--tier", "P1", "--to", "s3://bucket/x"],
    ["export", "--date", D, "--tier", "P1", "--to", "../../../etc"],
    ["export", "--date", D, "--tier", "P1", "--destination", "xlsx"],
    ["brief", "--date", D, "--format", "pdf"],
    ["trigger", "--date", D, "--rollout-mode", "everywhere"],
    ["impact", "--run-id", "nope"],
    ["impact", "--run-id", "x", "--horizon-days", "0"],
    ["health", "--from", "2011-06-01", "--to", "2011-05-01"],
    ["load-orders", "missing.csv", "--format", "orders"],
    ["load-orders", "orders.txt", "--format", "orders"],
    ["load-orders", "not_a_zip.xlsx", "--format", "uci"],
    ["load-orders", "folder", "--format", "orders"],
    ["load-orders", "empty.csv", "--format", "orders"],
    ["load-orders", "binary.csv", "--format", "orders"],
    ["load-orders", "orders.csv", "--format", "orders", "--column", "nonsense"],
    ["load-orders", "orders.csv", "--format", "json"],
    ["--config", "bad.yaml", "settings"],
    ["--config", "binary.yaml", "settings"],
    ["--config", "list.yaml", "settings"],
    ["--config", "missing.yaml", "settings"],
    ["--config", "folder", "settings"],
    ["recommend", "--date", D],
    ["nosuchcommand"],
]


def test_every_bad_cli_input_is_one_line_and_exit_2(sample_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orders.txt").write_text("x")
    (tmp_path / "not_a_zip.xlsx").write_text("this is not a workbook")
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "orders.csv").write_text("customer_id,order_id,order_date,order_amount\n")
    (tmp_path / "bad.yaml").write_text("active_days: [1,\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    orders_before = count(sample_settings, "select count(*) from orders")
    for argv in BAD_INVOCATIONS:
        code, _, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        lines = [line for line in err.splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1, (argv, err)
        assert "Traceback" not in err, (argv, err)
    assert count(sample_settings, "select count(*) from orders") == orders_before
