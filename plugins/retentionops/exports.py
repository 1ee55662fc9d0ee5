"""Audience export writers: a ranked tier as a CSV file (local folder or gs://) or a Sheets tab.

The caller queries the warehouse and passes the rows in (already ranked by
``priority_score`` desc, ``customer_id`` asc, and limited); nothing here queries or re-sorts.
Plain Python: the Google provider is imported lazily, only when a gs:// or Sheets export runs.

``export_tier`` is what a run does with a tier: the local CSV first (it must succeed), then
each upload (GCS, Sheets); an upload that fails leaves the local CSV as the tier's link and
the result says ``fallback_local`` with the error (design 14: keep the CSV and link to it).

Cell formatting (CSV):

* dates and datetimes -> ISO 8601 (``2011-09-22``);
* ``Decimal`` and ``float`` values (money: ``total_revenue``, ``avg_order_value``,
  ``value_proxy``; scores: ``priority_score``, ``churn_risk_score``) -> rounded half-up to
  2 decimals and written with 2 decimals (``1234.50``), so never more than 2 decimals;
* ``int`` -> as is; ``None`` (and NaN) -> empty cell;
* strings as is, so ``customer_id`` keeps its leading zeros (``'00123'``).

Files are UTF-8, comma-separated, ``\\n`` line endings, with the header row always written
(a zero-row audience is a header-only file). In Sheets, numbers are sent as numbers (rounded
to 2 decimals), dates as ISO text, and values are written RAW, so ids stay text and no cell is
ever parsed as a formula.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import io
import logging
import math
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from retentionops.errors import UserError
from retentionops.files import expand_home
from retentionops.vocabulary import TIERS

log = logging.getLogger(__name__)

#: Columns of an audience file, in order (the design's example CSV).
AUDIENCE_COLUMNS: tuple[str, ...] = (
    "run_date",
    "customer_id",
    "priority_tier",
    "priority_score",
    "priority_reason",
    "retention_status",
    "churn_risk_level",
    "churn_risk_score",
    "days_since_last_order",
    "total_revenue",
    "total_orders",
    "avg_order_value",
    "recommended_action",
    "value_proxy",
    # across days (docs/audiences.md): not in this tier at the last delivered run; exported
    # although contacted within the cooldown, because the tier is more urgent now
    "new_in_tier",
    "cooldown_bypass",
)
DEFAULT_GCP_CONN_ID = "google_cloud_default"
SHEETS_URL = "https://docs.google.com/spreadsheets/d/{spreadsheet_id}/edit#gid={sheet_id}"

_CENTS = decimal.Decimal("0.01")


class ExportError(UserError, ValueError):
    """An export could not be written; the message names the destination and the reason."""


@dataclasses.dataclass(frozen=True)
class Upload:
    """One extra destination of a tier: where it went, or why it did not."""

    kind: str  # gcs | gsheet
    link: str | None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What one export wrote: the tier, where to find it, how many rows (header excluded).

    ``destination_kind`` is ``local``, ``gcs`` or ``gsheet`` (the kind of ``link``). From
    ``export_tier`` also: the local CSV (always written), each upload's outcome, and
    ``status`` ``ok`` or ``fallback_local`` (an upload failed: ``link`` is the local CSV).
    """

    tier: str
    link: str
    row_count: int
    destination_kind: str
    local_link: str | None = None
    uploads: tuple[Upload, ...] = ()
    status: str = "ok"


# -- validation and naming ----------------------------------------------------------------


def _tier(tier: Any) -> str:
    value = str(tier or "").strip().upper()
    if value not in TIERS:
        raise ExportError(f"invalid tier {tier!r}; use one of {', '.join(TIERS)}")
    return value


def export_filename(day: dt.date, tier: str) -> str:
    """The audience file name for a date and tier, e.g. ``audience_p1_2011-09-22.csv``."""
    return f"audience_{_tier(tier).lower()}_{day.isoformat()}.csv"


def sheet_title(day: dt.date, tier: str, run_tag: str | None = None) -> str:
    """The Sheets tab for a date and tier, e.g. ``P1 2011-09-22``; a run's own tab adds its
    tag (``P1 2011-09-22 r3f9a01c2``), so no run overwrites another's."""
    title = f"{_tier(tier)} {day.isoformat()}"
    return f"{title} {run_tag}" if run_tag else title


# -- cell formatting ----------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, decimal.Decimal) and value.is_nan()


def _round2(value: float | decimal.Decimal) -> decimal.Decimal:
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(repr(value))
    if not number.is_finite():
        raise ExportError(f"cannot export the non-finite number {value!r}")
    return number.quantize(_CENTS, rounding=decimal.ROUND_HALF_UP)


def format_cell(value: Any) -> str:
    """One CSV cell: ISO dates, 2-decimal numbers, empty for None (see the module doc)."""
    if _is_missing(value):
        return ""
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | decimal.Decimal):
        return f"{_round2(value):.2f}"
    return str(value)


def _sheet_cell(value: Any) -> Any:
    """One Sheets cell: JSON-safe; numbers stay numbers (2 decimals), dates ISO text."""
    if _is_missing(value):
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | decimal.Decimal):
        return float(_round2(value))
    return str(value)


def _ordered(rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """Rows as lists in AUDIENCE_COLUMNS order, input order kept; missing columns fail."""
    out = []
    for number, row in enumerate(rows, start=1):
        missing = [c for c in AUDIENCE_COLUMNS if c not in row]
        if missing:
            raise ExportError(f"audience row {number} is missing column(s): {', '.join(missing)}")
        out.append([row[c] for c in AUDIENCE_COLUMNS])
    return out


def render_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The CSV text of an audience: header plus one line per row, in the given order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AUDIENCE_COLUMNS)
    for values in _ordered(rows):
        writer.writerow([format_cell(v) for v in values])
    return buffer.getvalue()


# -- CSV ----------------------------------------------------------------------------------


def _split_gs(destination: str) -> tuple[str, str]:
    """``gs://bucket/prefix`` -> ``('bucket', 'prefix')``; a URI without a bucket fails."""
    rest = destination[len("gs://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket or any(ch.isspace() for ch in bucket):
        raise ExportError(
            f"gs:// destination {destination!r} has no valid bucket; use gs://bucket[/prefix]"
        )
    return bucket, prefix.strip("/")


def _write_local(folder: Path, name: str, data: bytes) -> Path:
    """Write ``folder/name`` atomically: a temp file in the same folder, then os.replace."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create export folder '{folder}': {exc.strerror or exc}") from exc
    target = folder / name
    tmp = folder / f"{name}.tmp-{secrets.token_hex(6)}"
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"cannot write audience file '{target}' in folder '{folder}': {exc.strerror or exc}"
        ) from exc
    return target


def _write_gcs(destination: str, name: str, data: bytes, filesystem: Any, gcp_conn_id: str) -> str:
    """Upload the whole object in one write (GCS object writes are atomic); return its URI."""
    bucket, prefix = _split_gs(destination)
    key = f"{prefix}/{name}" if prefix else name
    uri = f"gs://{bucket}/{key}"
    try:
        if filesystem is None:  # a missing connection or unusable credentials fail here
            from airflow.providers.google.cloud.fs.gcs import get_fs

            filesystem = get_fs(gcp_conn_id)
        # No protocol in the path: gcsfs reads "bucket/key"; stand-ins (memory) agree.
        filesystem.pipe_file(f"{bucket}/{key}", data)
    except Exception as exc:
        raise ExportError(
            f"cannot upload audience file to '{uri}': {type(exc).__name__}: {exc}"
        ) from exc
    return uri


def write_csv(
    rows: Iterable[Mapping[str, Any]],
    destination: str,
    day: dt.date,
    tier: str,
    *,
    filesystem: Any = None,
    gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
) -> ExportResult:
    """Write a tier's audience CSV to a local folder or ``gs://bucket/prefix``.

    Re-exporting a date and tier replaces that one file; other files are left alone.
    ``filesystem`` is an fsspec filesystem for gs:// destinations; when None it comes from
    the Google provider (``get_fs(gcp_conn_id)``). The link is the absolute local path or
    the ``gs://`` URI of the object.
    """
    name = export_filename(day, tier)
    rows = list(rows)
    data = render_csv(rows).encode("utf-8")
    destination = str(destination or "").strip()
    if not destination:
        raise ExportError("empty export destination; use a folder or gs://bucket/prefix")
    if destination.startswith("gs://"):
        link = _write_gcs(destination, name, data, filesystem, gcp_conn_id)
        return ExportResult(_tier(tier), link, len(rows), "gcs")
    if "://" in destination:
        raise ExportError(
            f"unsupported export destination {destination!r}; use a folder or gs://bucket/prefix"
        )
    path = _write_local(expand_home(destination).resolve(), name, data)
    return ExportResult(_tier(tier), str(path), len(rows), "local")


# -- Google Sheets ------------------------------------------------------------------------


def _a1_sheet(title: str) -> str:
    """A sheet name quoted for A1 notation (whole sheet)."""
    return "'" + title.replace("'", "''") + "'"


def _ensure_sheet(hook: Any, spreadsheet_id: str, title: str) -> int:
    """The tab's sheetId, adding the tab (batchUpdate addSheet) when it is missing."""
    spreadsheet = hook.get_spreadsheet(spreadsheet_id=spreadsheet_id)
    for sheet in spreadsheet.get("sheets", []):
        properties = sheet.get("properties", {})
        if properties.get("title") == title:
            return int(properties["sheetId"])
    body = {"requests": [{"addSheet": {"properties": {"title": title}}}]}
    response = (
        hook.get_conn()
        .spreadsheets()
        .batchUpdate(spreadsheetId=spreadsheet_id, body=body)
        .execute(num_retries=hook.num_retries)
    )
    return int(response["replies"][0]["addSheet"]["properties"]["sheetId"])


def write_gsheet(
    rows: Iterable[Mapping[str, Any]],
    day: dt.date,
    tier: str,
    *,
    spreadsheet_id: str,
    gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
    hook: Any = None,
    run_tag: str | None = None,
) -> ExportResult:
    """Write a tier's audience to the tab ``<tier> <date>`` of the configured spreadsheet.

    The tab is created when missing, its whole range cleared, then the header and rows are
    written with ``valueInputOption=RAW`` (so a shorter re-export leaves no stale rows).
    ``hook`` defaults to the provider's ``GSheetsHook(gcp_conn_id=...)``. The link opens the
    tab: ``https://docs.google.com/spreadsheets/d/<id>/edit#gid=<sheetId>``.
    """
    title = sheet_title(day, tier, run_tag)
    spreadsheet_id = str(spreadsheet_id or "").strip()
    if not spreadsheet_id:
        raise ExportError("gsheet export needs a spreadsheet_id")
    values = [list(AUDIENCE_COLUMNS)]
    values += [[_sheet_cell(v) for v in row] for row in _ordered(rows)]
    try:
        if hook is None:  # a missing connection or unusable credentials fail here
            from airflow.providers.google.suite.hooks.sheets import GSheetsHook

            hook = GSheetsHook(gcp_conn_id=gcp_conn_id)
        sheet_id = _ensure_sheet(hook, spreadsheet_id, title)
        hook.clear(spreadsheet_id=spreadsheet_id, range_=_a1_sheet(title))
        hook.update_values(
            spreadsheet_id=spreadsheet_id,
            range_=f"{_a1_sheet(title)}!A1",
            values=values,
            major_dimension="ROWS",
            value_input_option="RAW",
        )
    except Exception as exc:
        raise ExportError(
            f"cannot write tab '{title}' of spreadsheet '{spreadsheet_id}': "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    link = SHEETS_URL.format(spreadsheet_id=spreadsheet_id, sheet_id=sheet_id)
    return ExportResult(_tier(tier), link, len(values) - 1, "gsheet")


# -- a run's tier: the local CSV, then the uploads ----------------------------------------


def _upload(kind: str, failure: str, tier: str, write: Callable[[], ExportResult]) -> Upload:
    """One optional upload of a tier: its link, or its error (logged as ``failure``); the
    local CSV stands either way."""
    try:
        return Upload(kind, write().link)
    except ExportError as error:
        log.warning("%s: %s, the local CSV is linked: %s", tier, failure, error)
        return Upload(kind, None, str(error))


def export_tier(
    rows: Iterable[Mapping[str, Any]],
    day: dt.date,
    tier: str,
    *,
    folder: str,
    gcs_prefix: str | None = None,
    spreadsheet_id: str | None = None,
    run_tag: str | None = None,
    gcp_conn_id: str = DEFAULT_GCP_CONN_ID,
    filesystem: Any = None,
    hook: Any = None,
) -> ExportResult:
    """Write the tier's local CSV under ``folder`` (an error here fails the export), then
    upload it to ``gcs_prefix`` (``gs://bucket/prefix``) and to a tab of ``spreadsheet_id``
    when given. The link is the first upload that succeeded, else the local CSV; a failed
    upload is kept in ``uploads`` with its error and makes the status ``fallback_local``."""
    rows = list(rows)
    local = write_csv(rows, folder, day, tier)
    uploads: list[Upload] = []
    if gcs_prefix:
        uploads.append(_upload("gcs", "gcs upload failed", tier, lambda: write_csv(
            rows, gcs_prefix, day, tier, filesystem=filesystem, gcp_conn_id=gcp_conn_id,
        )))  # fmt: skip
    if spreadsheet_id:
        uploads.append(_upload("gsheet", "gsheet export failed", tier, lambda: write_gsheet(
            rows, day, tier, spreadsheet_id=spreadsheet_id, gcp_conn_id=gcp_conn_id,
            hook=hook, run_tag=run_tag,
        )))  # fmt: skip
    done = [upload for upload in uploads if upload.link]
    failed = any(upload.error for upload in uploads)
    return ExportResult(
        tier=local.tier,
        link=done[0].link if done else local.link,  # type: ignore[arg-type]
        row_count=local.row_count,
        destination_kind=done[0].kind if done else "local",
        local_link=local.link,
        uploads=tuple(uploads),
        status="fallback_local" if failed else "ok",
    )
