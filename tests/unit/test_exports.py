"""Audience exports: CSV to a folder or gs:// (fsspec stand-in), Sheets via the real hook."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import fsspec
import pytest

from retentionops import exports
from retentionops.exports import (
    AUDIENCE_COLUMNS,
    ExportError,
    ExportResult,
    Upload,
    export_filename,
    export_tier,
    write_csv,
    write_gsheet,
)

DAY = dt.date(2011, 9, 22)
HEADER = (
    "run_date,customer_id,priority_tier,priority_score,priority_reason,retention_status,"
    "churn_risk_level,churn_risk_score,days_since_last_order,total_revenue,total_orders,"
    "avg_order_value,recommended_action,value_proxy,new_in_tier,cooldown_bypass"
)


def row(customer_id, score, **overrides):
    base = {
        "run_date": DAY,
        "customer_id": customer_id,
        "priority_tier": "P1",
        "priority_score": score,
        "priority_reason": "high value, lapsing",
        "retention_status": "at_risk",
        "churn_risk_level": "high",
        "churn_risk_score": 87,
        "days_since_last_order": 45,
        "total_revenue": Decimal("1234.5"),
        "total_orders": 12,
        "avg_order_value": Decimal("102.875"),
        "recommended_action": "call",
        "value_proxy": Decimal("1234.50"),
        "new_in_tier": True,
        "cooldown_bypass": False,
    }
    base.update(overrides)
    return base


# Ranked by the caller (score desc, id asc); "00007" after "17850" shows no re-sorting by id.
ROWS = [
    row("00123", 91.456),
    row(
        "17850",
        Decimal("80"),
        priority_reason="frequency drop",
        churn_risk_score=None,
        total_revenue=0.125,
        avg_order_value=None,
        recommended_action=None,
    ),
    row("00007", 80.0, days_since_last_order=0, value_proxy=Decimal("-3.006"),
        new_in_tier=False, cooldown_bypass=True),
]  # fmt: skip
EXPECTED_LINES = [
    HEADER,
    '2011-09-22,00123,P1,91.46,"high value, lapsing",at_risk,high,87,45,1234.50,12,102.88,'
    "call,1234.50,true,false",
    "2011-09-22,17850,P1,80.00,frequency drop,at_risk,high,,45,0.13,12,,,1234.50,true,false",
    '2011-09-22,00007,P1,80.00,"high value, lapsing",at_risk,high,87,0,1234.50,12,102.88,'
    "call,-3.01,false,true",
]


def csv_text(lines):
    return "".join(line + "\n" for line in lines)


# -- naming, columns, validation ------------------------------------------------------------


def test_columns_and_filename():
    assert AUDIENCE_COLUMNS[:2] == ("run_date", "customer_id")
    assert ",".join(AUDIENCE_COLUMNS) == HEADER
    assert export_filename(DAY, "P1") == "audience_p1_2011-09-22.csv"
    assert export_filename(DAY, "p3") == "audience_p3_2011-09-22.csv"


@pytest.mark.parametrize("tier", ["", None, "P4", "gold"])
def test_bad_tier_names_allowed_tiers(tier, tmp_path):
    with pytest.raises(ValueError, match="P1, P2, P3"):
        export_tier(ROWS, DAY, tier, folder=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_column_writes_nothing(tmp_path):
    # (a bad date never gets here: the doors parse it, tests/e2e/test_cli.py and
    # tests/unit/test_input_checks.py)
    broken = {k: v for k, v in ROWS[0].items() if k != "value_proxy"}
    with pytest.raises(ValueError, match="row 2 is missing column.*value_proxy"):
        write_csv([ROWS[0], broken], str(tmp_path), DAY, "P1")
    assert list(tmp_path.iterdir()) == []


def test_importable_without_airflow():
    plugins = Path(__file__).resolve().parents[1] / "plugins"
    code = (
        "import sys, retentionops.exports\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('airflow', 'googleapiclient')]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(plugins)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# -- local CSV ------------------------------------------------------------------------------


def test_local_csv_content_exact(tmp_path):
    folder = tmp_path / "new" / "exports"  # created when missing
    result = export_tier(ROWS, DAY, "P1", folder=str(folder))
    path = folder / "audience_p1_2011-09-22.csv"
    assert result == ExportResult("P1", str(path.resolve()), 3, "local", str(path.resolve()))
    assert Path(result.link).is_absolute()
    assert path.read_bytes().decode("utf-8") == csv_text(EXPECTED_LINES)


def test_local_relative_folder_link_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = write_csv(ROWS[:1], "out", DAY, "P2")
    assert result.link == str(tmp_path.resolve() / "out" / "audience_p2_2011-09-22.csv")


def test_zero_rows_writes_header_only(tmp_path):
    result = write_csv([], str(tmp_path), DAY, "P3")
    assert result.row_count == 0
    assert (tmp_path / "audience_p3_2011-09-22.csv").read_text() == HEADER + "\n"


def test_reexport_replaces_only_that_file_and_leaves_no_temp(tmp_path):
    other_day = write_csv(ROWS, str(tmp_path), dt.date(2011, 9, 21), "P1")
    other_tier = write_csv(ROWS, str(tmp_path), DAY, "P2")
    write_csv(ROWS, str(tmp_path), DAY, "P1")
    again = write_csv(ROWS[:1], str(tmp_path), DAY, "P1")

    assert again.row_count == 1
    assert Path(again.link).read_text() == csv_text(EXPECTED_LINES[:2])
    assert Path(other_day.link).read_text() == csv_text(EXPECTED_LINES)
    assert Path(other_tier.link).read_text() == csv_text(EXPECTED_LINES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audience_p1_2011-09-21.csv",
        "audience_p1_2011-09-22.csv",
        "audience_p2_2011-09-22.csv",
    ]


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    first = write_csv(ROWS, str(tmp_path), DAY, "P1")
    seen = []

    def failing_replace(src, dst):
        seen.append(Path(src).name)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(exports.os, "replace", failing_replace)
    with pytest.raises(ExportError, match="audience_p1_2011-09-22.csv") as info:
        write_csv(ROWS[:1], str(tmp_path), DAY, "P1")
    assert str(tmp_path) in str(info.value)
    assert seen and seen[0].startswith("audience_p1_2011-09-22.csv.tmp-")
    assert Path(first.link).read_text() == csv_text(EXPECTED_LINES)  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["audience_p1_2011-09-22.csv"]


def test_unwritable_folder_names_path(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="not_a_folder"):
        write_csv(ROWS, str(blocker / "exports"), DAY, "P1")


def test_other_schemes_rejected(tmp_path):
    with pytest.raises(ValueError, match="gs://bucket"):
        write_csv(ROWS, "s3://bucket/x", DAY, "P1")
    with pytest.raises(ValueError, match="empty export destination"):
        write_csv(ROWS, "  ", DAY, "P1")


# -- gs:// through an fsspec stand-in -------------------------------------------------------


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"  # the memory store is process-wide
    yield fs, bucket
    if fs.exists(bucket):
        fs.rm(bucket, recursive=True)


def test_gcs_export_writes_object(memfs):
    fs, bucket = memfs
    result = write_csv(
        ROWS,
        f"gs://{bucket}/retention/exports/",
        DAY,
        "P1",
        filesystem=fs,
        gcp_conn_id="google_cloud_default",  # what the pack passes for every kind
    )
    uri = f"gs://{bucket}/retention/exports/audience_p1_2011-09-22.csv"
    assert result == ExportResult("P1", uri, 3, "gcs")
    assert fs.cat(f"{bucket}/retention/exports/audience_p1_2011-09-22.csv").decode() == (
        csv_text(EXPECTED_LINES)
    )

    write_csv(ROWS[:1], f"gs://{bucket}/retention/exports", DAY, "P1", filesystem=fs)
    write_csv([], f"gs://{bucket}/retention/exports", dt.date(2011, 9, 23), "P1", filesystem=fs)
    assert fs.cat(f"{bucket}/retention/exports/audience_p1_2011-09-22.csv").decode() == (
        csv_text(EXPECTED_LINES[:2])
    )
    assert fs.cat(f"{bucket}/retention/exports/audience_p1_2011-09-23.csv").decode() == (
        HEADER + "\n"
    )
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/retention/exports", False)) == [
        "audience_p1_2011-09-22.csv",
        "audience_p1_2011-09-23.csv",
    ]


def test_gcs_bucket_root(memfs):
    fs, bucket = memfs
    result = write_csv(ROWS, f"gs://{bucket}", DAY, "P2", filesystem=fs)
    assert result.link == f"gs://{bucket}/audience_p2_2011-09-22.csv"
    assert fs.exists(f"{bucket}/audience_p2_2011-09-22.csv")


def test_gcs_filesystem_from_provider(memfs, monkeypatch):
    import airflow.providers.google.cloud.fs.gcs as gcs_fs

    fs, bucket = memfs
    asked = []

    def fake_get_fs(conn_id, storage_options=None):
        asked.append(conn_id)
        return fs

    monkeypatch.setattr(gcs_fs, "get_fs", fake_get_fs)
    write_csv(ROWS, f"gs://{bucket}/p", DAY, "P1", gcp_conn_id="my_gcp")
    assert asked == ["my_gcp"]
    assert fs.exists(f"{bucket}/p/audience_p1_2011-09-22.csv")


@pytest.mark.parametrize("uri", ["gs://", "gs:///prefix", "gs://  /x"])
def test_gcs_uri_without_bucket(uri):
    with pytest.raises(ValueError, match="no valid bucket"):
        write_csv(ROWS, uri, DAY, "P1", filesystem=fsspec.filesystem("memory"))


def test_gcs_upload_failure_is_clear(monkeypatch):
    class Broken:
        def pipe_file(self, path, data):
            raise OSError("403 Forbidden")

    with pytest.raises(ExportError, match=r"gs://b/x/audience_p1_2011-09-22.csv.*403"):
        write_csv(ROWS, "gs://b/x", DAY, "P1", filesystem=Broken())


# -- Google Sheets: the real GSheetsHook, an offline googleapiclient service -----------------

SPREADSHEET = "sheet-abc123"
GCP_CONN = '{"conn_type": "google_cloud_platform"}'


class RecordingHttp:
    """HttpMockSequence records nothing: keep (method, uri, body) of every request."""

    def __init__(self, responses):
        from googleapiclient.http import HttpMockSequence

        class Recorder(HttpMockSequence):
            def request(inner, uri, method="GET", body=None, headers=None, *args, **kwargs):
                self.calls.append((method, uri, body))
                return super().request(uri, method, body, headers, *args, **kwargs)

        self.calls = []
        self.http = Recorder(responses)

    def requests(self):
        """(method, decoded path, query dict, json body or None) per request."""
        out = []
        for method, uri, body in self.calls:
            parts = urlsplit(uri)
            parsed = json.loads(body) if body else None
            out.append((method, unquote(parts.path), parse_qs(parts.query), parsed))
        return out


def ok(payload):
    return ({"status": "200"}, json.dumps(payload))


def spreadsheet(*tabs):
    return {
        "spreadsheetId": SPREADSHEET,
        "sheets": [{"properties": {"title": title, "sheetId": sid}} for title, sid in tabs],
    }


@pytest.fixture
def sheets(monkeypatch):
    """Build a real GSheetsHook whose get_conn() is a sheets v4 service over recorded HTTP."""
    from airflow.providers.google.suite.hooks.sheets import GSheetsHook
    from googleapiclient.discovery import build

    # The hook reads num_retries from the connection's extras: an env connection, no DB.
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", GCP_CONN)

    def make(responses):
        recorder = RecordingHttp(responses)
        service = build("sheets", "v4", http=recorder.http, static_discovery=True)
        hook = GSheetsHook(gcp_conn_id="google_cloud_default")
        monkeypatch.setattr(hook, "get_conn", lambda: service)
        return hook, recorder

    return make


TAB_PATH = f"/v4/spreadsheets/{SPREADSHEET}/values/'P1 2011-09-22'"


def sheet_values(lines_of_rows):
    return [list(AUDIENCE_COLUMNS), *lines_of_rows]


SHEET_ROW_1 = [
    "2011-09-22",
    "00123",
    "P1",
    91.46,
    "high value, lapsing",
    "at_risk",
    "high",
    87,
    45,
    1234.5,
    12,
    102.88,
    "call",
    1234.5,
    True,
    False,
]
SHEET_ROW_2 = [
    "2011-09-22",
    "17850",
    "P1",
    80.0,
    "frequency drop",
    "at_risk",
    "high",
    "",
    45,
    0.13,
    12,
    "",
    "",
    1234.5,
    True,
    False,
]


def test_gsheet_creates_tab_clears_then_writes(sheets):
    hook, http = sheets(
        [
            ok(spreadsheet(("Sheet1", 0))),
            ok(
                {
                    "replies": [
                        {"addSheet": {"properties": {"title": "P1 2011-09-22", "sheetId": 4242}}}
                    ]
                }
            ),
            ok({"clearedRange": "'P1 2011-09-22'!A1:Z1000"}),
            ok({"updatedRows": 3}),
        ]
    )
    result = write_gsheet(ROWS[:2], DAY, "P1", spreadsheet_id=SPREADSHEET, hook=hook)
    assert result == ExportResult(
        "P1", f"https://docs.google.com/spreadsheets/d/{SPREADSHEET}/edit#gid=4242", 2, "gsheet"
    )

    get, add, clear, put = http.requests()
    assert get[:2] == ("GET", f"/v4/spreadsheets/{SPREADSHEET}")
    assert add[:2] == ("POST", f"/v4/spreadsheets/{SPREADSHEET}:batchUpdate")
    assert add[3] == {"requests": [{"addSheet": {"properties": {"title": "P1 2011-09-22"}}}]}
    assert clear[:2] == ("POST", f"{TAB_PATH}:clear")  # the whole tab, before the write
    assert put[0] == "PUT"
    assert put[1] == f"{TAB_PATH}!A1"
    assert put[2]["valueInputOption"] == ["RAW"]
    assert put[3] == {
        "range": "'P1 2011-09-22'!A1",
        "majorDimension": "ROWS",
        "values": sheet_values([SHEET_ROW_1, SHEET_ROW_2]),
    }


def test_gsheet_reexport_shorter_clears_stale_rows(sheets):
    hook, http = sheets(
        [
            ok(spreadsheet(("Sheet1", 0), ("P1 2011-09-22", 4242))),  # tab already there
            ok({}),
            ok({}),
            ok(spreadsheet(("Sheet1", 0), ("P1 2011-09-22", 4242))),
            ok({}),
            ok({}),
        ]
    )
    write_gsheet(ROWS[:2], DAY, "P1", spreadsheet_id=SPREADSHEET, hook=hook)
    result = write_gsheet(ROWS[:1], DAY, "p1", spreadsheet_id=SPREADSHEET, hook=hook)
    assert result.row_count == 1
    assert result.link.endswith("#gid=4242")

    calls = [(method, path) for method, path, _, _ in http.requests()]
    assert calls == [
        ("GET", f"/v4/spreadsheets/{SPREADSHEET}"),
        ("POST", f"{TAB_PATH}:clear"),
        ("PUT", f"{TAB_PATH}!A1"),
        ("GET", f"/v4/spreadsheets/{SPREADSHEET}"),
        ("POST", f"{TAB_PATH}:clear"),
        ("PUT", f"{TAB_PATH}!A1"),
    ]  # no addSheet: the tab existed; the clear precedes each write
    first_put, second_put = http.requests()[2][3], http.requests()[5][3]
    assert first_put["values"] == sheet_values([SHEET_ROW_1, SHEET_ROW_2])
    assert second_put["values"] == sheet_values([SHEET_ROW_1])


def test_gsheet_zero_rows_header_only(sheets):
    hook, http = sheets([ok(spreadsheet(("P3 2011-09-22", 7))), ok({}), ok({})])
    result = write_gsheet([], DAY, "P3", spreadsheet_id=SPREADSHEET, hook=hook)
    assert result.row_count == 0
    assert http.requests()[-1][3]["values"] == [list(AUDIENCE_COLUMNS)]


def test_gsheet_api_error_is_clear_and_nothing_written(sheets):
    hook, http = sheets(
        [
            ok(spreadsheet(("P2 2011-09-22", 9))),
            ({"status": "403"}, json.dumps({"error": {"code": 403, "message": "denied"}})),
        ]
    )
    with pytest.raises(ExportError, match=f"'P2 2011-09-22' of spreadsheet '{SPREADSHEET}'"):
        write_gsheet(ROWS, DAY, "P2", spreadsheet_id=SPREADSHEET, hook=hook)
    assert [method for method, *_ in http.requests()] == ["GET", "POST"]  # no PUT


def test_gsheet_default_hook_uses_conn_id(monkeypatch):
    from airflow.providers.google.suite.hooks.sheets import GSheetsHook

    monkeypatch.setenv("AIRFLOW_CONN_MY_GCP", GCP_CONN)
    seen = []

    def fake_get_spreadsheet(self, spreadsheet_id):
        seen.append(("get", self.gcp_conn_id, spreadsheet_id))
        return spreadsheet(("P1 2011-09-22", 5))

    monkeypatch.setattr(GSheetsHook, "get_spreadsheet", fake_get_spreadsheet)
    monkeypatch.setattr(GSheetsHook, "clear", lambda self, **kw: seen.append(("clear", kw)))
    monkeypatch.setattr(
        GSheetsHook, "update_values", lambda self, **kw: seen.append(("update", kw["range_"]))
    )
    result = write_gsheet(ROWS, DAY, "P1", spreadsheet_id=SPREADSHEET, gcp_conn_id="my_gcp")
    assert result.link.endswith("#gid=5")
    assert seen == [
        ("get", "my_gcp", SPREADSHEET),
        ("clear", {"spreadsheet_id": SPREADSHEET, "range_": "'P1 2011-09-22'"}),
        ("update", "'P1 2011-09-22'!A1"),
    ]


def test_gsheet_needs_spreadsheet_id():
    with pytest.raises(ValueError, match="spreadsheet_id"):
        write_gsheet(ROWS, DAY, "P1", spreadsheet_id="")


# -- a run's tier: the local CSV first, then the uploads ---------------------------------------


def test_a_failed_upload_keeps_the_local_csv_as_the_link(tmp_path):
    class Broken:
        def pipe_file(self, path, data):
            raise OSError("503 Service Unavailable")

    result = export_tier(
        ROWS, DAY, "P2", folder=str(tmp_path / "run"), gcs_prefix="gs://b/x", filesystem=Broken()
    )
    local = tmp_path / "run" / "audience_p2_2011-09-22.csv"
    assert local.read_text() == csv_text(EXPECTED_LINES)  # the rows, as given
    assert (result.status, result.link, result.destination_kind) == (
        "fallback_local", str(local.resolve()), "local",
    )  # fmt: skip
    [upload] = result.uploads
    assert (upload.kind, upload.link) == ("gcs", None)
    assert "gs://b/x/audience_p2_2011-09-22.csv" in upload.error and "503" in upload.error


def test_a_working_upload_is_the_link_and_the_local_csv_stays(tmp_path, memfs):
    fs, bucket = memfs
    result = export_tier(
        ROWS, DAY, "P1", folder=str(tmp_path), gcs_prefix=f"gs://{bucket}/d/r", filesystem=fs
    )
    uri = f"gs://{bucket}/d/r/audience_p1_2011-09-22.csv"
    assert (result.status, result.link, result.row_count) == ("ok", uri, 3)
    assert result.uploads == (Upload("gcs", uri),)
    assert (
        fs.cat(f"{bucket}/d/r/audience_p1_2011-09-22.csv")
        == (tmp_path / "audience_p1_2011-09-22.csv").read_bytes()
    )


def test_a_local_write_error_fails_the_export_before_any_upload(tmp_path, memfs):
    fs, bucket = memfs
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="cannot create export folder"):
        export_tier(ROWS, DAY, "P1", folder=str(blocker / "x"), gcs_prefix=f"gs://{bucket}",
                    filesystem=fs)  # fmt: skip
    assert not fs.exists(f"{bucket}/audience_p1_2011-09-22.csv")


def test_a_missing_google_connection_is_a_fallback_never_a_failed_export(tmp_path, monkeypatch):
    import logging

    # no google_cloud_default connection at all: the provider's own GCS filesystem and
    # Sheets hook fail to build; both uploads are optional, the local CSV is the link
    monkeypatch.delenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", raising=False)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("retentionops.exports")
    logger.addHandler(handler)
    try:
        result = export_tier(
            ROWS, DAY, "P1", folder=str(tmp_path), gcs_prefix="gs://bucket/daily",
            spreadsheet_id="sheet-123", gcp_conn_id="google_cloud_default",
        )  # fmt: skip
    finally:
        logger.removeHandler(handler)
    local = tmp_path / "audience_p1_2011-09-22.csv"
    assert (result.status, result.link, result.destination_kind) == (
        "fallback_local", str(local.resolve()), "local",
    )  # fmt: skip
    assert [(u.kind, u.link) for u in result.uploads] == [("gcs", None), ("gsheet", None)]
    for upload in result.uploads:
        assert "google_cloud_default" in upload.error, upload.error
    # the cause is logged for the task log, not only kept in the result
    assert [r.getMessage().split(":")[0] for r in records] == ["P1", "P1"]
    assert "gcs upload failed" in records[0].getMessage()
