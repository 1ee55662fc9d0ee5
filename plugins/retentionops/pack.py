"""Package a run's outputs on disk: the brief in every format, the chart, the audiences.

One folder per run, ``<artifacts_dir>/<YYYY-MM-DD>/<run id>/``: a run writes only its own
files (each atomically), so no other run, re-run or CLI/MCP command ever overwrites a file
that a log row links to. Every link the package shows (brief, payload, run log) is built
here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops.detection import as_date, chart_series
from retentionops.files import expand_home, write_atomic
from retentionops.settings import PROJECT_ROOT, Settings, gcs_bucket, split_list
from retentionops.warehouse import Warehouse

CHART_DAYS = 60
BRIEF_FILES = {
    "markdown": "brief.md",
    "slack": "brief_slack.json",
    "email_html": "brief_email.html",
    "email_text": "brief_email.txt",
    # the email as sent: text and HTML alternatives, the chart inline (cid)
    "email_message": "brief_email.eml",
    "chart": "at_risk_last_60_days.png",
}
#: The Content-ID of the chart inside the email message.
CHART_CID = "at-risk-chart@retentionops"


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class BriefFiles(TypedDict):
    chart: str
    markdown: str
    slack: str
    email_html: str
    email_text: str
    email_message: str


def safe_name(text: str) -> str:
    """A file-name-safe version of a run id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def display_link(link: str) -> str:
    """Show files inside the repository relative to it (portable links in committed examples)."""
    if "://" in link:
        return link
    try:
        return str(Path(link).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return link


def run_dir(settings: Settings, run_date: dt.date, run_id: str) -> Path:
    """The run's own folder: ``<artifacts_dir>/<date>/<run id>/``."""
    return settings.artifacts_path / run_date.isoformat() / safe_name(run_id)


def run_tag(run_id: str) -> str:
    """A short, stable tag of a run (a Sheets tab title has little room)."""
    return "r" + hashlib.sha1(run_id.encode()).hexdigest()[:8]


def allowed_buckets(settings: Settings) -> set[str]:
    """The gs:// buckets exports may go to: ``export_buckets`` and export_gcs_uri's."""
    allowed = set(split_list(settings.export_buckets))
    bucket = gcs_bucket(settings.export_gcs_uri)
    if bucket:
        allowed.add(bucket)
    return allowed


def resolve_destination(settings: Settings, destination: str | None) -> str | None:
    """A caller's destination (a DAG Param, an MCP argument, ``--to``): a folder confined to
    ``export_root`` or a gs:// prefix in an allowed bucket; None: the settings decide.

    A relative folder is taken from ``export_root``; ``..``, absolute paths and symlinks
    that lead outside it are refused, as are other buckets and other schemes.
    """
    from retentionops.exports import ExportError

    if not destination:
        return None
    text = str(destination).strip()
    if text.startswith("gs://"):
        bucket = gcs_bucket(text)
        allowed = allowed_buckets(settings)
        if bucket is None:
            raise ExportError(
                f"gs:// destination {destination!r} has no valid bucket; use gs://bucket[/prefix]"
            )
        if bucket not in allowed:
            raise ExportError(
                f"gs://{bucket} is not an allowed export bucket (allowed: "
                f"{', '.join(sorted(allowed)) or 'none'}): add it to export_buckets"
            )
        return text.rstrip("/")
    if "://" in text or "\0" in text or not text:
        raise ExportError(
            f"unsupported export destination {destination!r}: use a folder inside "
            f"{settings.export_root_path} or gs://bucket/prefix"
        )
    root = settings.export_root_path
    path = expand_home(text)  # ~nosuchuser: a one-line error, not a RuntimeError
    target = (path if path.is_absolute() else root / path).resolve()
    if not target.is_relative_to(root):
        raise ExportError(
            f"export folder {destination!r} is outside the export root {root}: use a folder "
            "inside it (a relative path is taken from it), or change export_root"
        )
    return str(target)


def export_target(
    settings: Settings,
    run_date: dt.date,
    run_id: str,
    destination: str | None = None,
    destinations: list[str] | None = None,
) -> dict[str, Any]:
    """Where a run's tier goes: its local folder (always), the gcs prefix and spreadsheet of
    the uploads, each scoped to the date and the run (``<date>/<run id>/``)."""
    day = run_date.isoformat()
    chosen = [d.lower() for d in destinations or split_list(settings.export_destinations)]
    given = resolve_destination(settings, destination)
    folder = run_dir(settings, run_date, run_id)
    gcs = settings.export_gcs_uri.rstrip("/") if "gcs" in chosen else None
    if given and given.startswith("gs://"):
        gcs = given
    elif given:
        folder = Path(given) / day / safe_name(run_id)
    if "gcs" in chosen and not gcs:
        from retentionops.exports import ExportError

        raise ExportError("the gcs destination needs export_gcs_uri (gs://bucket/prefix)")
    spreadsheet = settings.gsheet_spreadsheet_id.strip() if "gsheet" in chosen else None
    if "gsheet" in chosen and not spreadsheet:
        from retentionops.exports import ExportError

        raise ExportError("the gsheet destination needs gsheet_spreadsheet_id")
    return {
        "folder": str(folder),
        "gcs_prefix": f"{gcs}/{day}/{safe_name(run_id)}" if gcs else None,
        "spreadsheet_id": spreadsheet,
        "run_tag": run_tag(run_id),
        "gcp_conn_id": settings.gcp_conn_id,
    }


def gcs_console_url(uri: str) -> str:
    """The Cloud console page of a gs:// object."""
    return "https://console.cloud.google.com/storage/browser/_details/" + uri[len("gs://") :]


def brief_link(export: dict[str, Any], brief_folder: Path | None = None) -> str:
    """How a brief shows a tier's export: a gs:// object as its console URL (the URI after
    it), a Sheets tab as its URL, the local CSV relative to the brief's folder (or to the
    repository when read elsewhere: Slack, email); a failed upload is named after it."""
    link = str(export["link"])
    if link.startswith("gs://"):
        return f"{gcs_console_url(link)} ({link})"
    if "://" in link:
        return link
    if brief_folder is None:
        text = display_link(link)
    else:
        path = Path(link) if Path(link).is_absolute() else PROJECT_ROOT / link
        text = os.path.relpath(path.resolve(), brief_folder.resolve())
    failed = [u for u in export.get("uploads") or [] if u.get("error")]
    if failed:
        text += " (" + "; ".join(f"{u['kind']} upload failed: {u['error']}" for u in failed) + ")"
    return text


def render_brief_files(
    warehouse: Warehouse,
    settings: Settings,
    context: Mapping[str, Any],
    *,
    run_id: str,
    exports: list[dict[str, Any]] | None = None,
) -> tuple[BriefFiles, dict[str, str]]:
    """Write the chart and the brief (Markdown, Slack payload, email) of the run, linking
    the exports it made; return the files and the links (by tier) the Slack brief shows."""
    from retentionops.brief import render_brief, render_chart

    day = as_date(context["run_date"])
    folder = run_dir(settings, day, run_id)
    # the stored decisions of the previous days; only days never run are computed
    series = chart_series(warehouse, settings, day - dt.timedelta(days=CHART_DAYS - 1), day)
    chart = render_chart(
        series, folder / BRIEF_FILES["chart"], run_date=day.isoformat(), days=CHART_DAYS
    )
    from retentionops.actions import with_exports

    exports = [e for e in exports or [] if e]
    # the brief shows the rows each file holds (the customers contacted), next to the
    # tier's counts, and the holdout as the exports drew it
    context = with_exports(context, exports)
    # the Markdown brief sits in the run's folder: its links resolve from there
    local = {e["tier"]: brief_link(e, folder) for e in exports}
    shared = {e["tier"]: brief_link(e) for e in exports}
    chart_link = display_link(str(chart))
    written = {"chart": chart}
    written["markdown"] = write_atomic(
        folder / BRIEF_FILES["markdown"],
        render_brief(context, "markdown", links=local, chart_link=chart.name, run_id=run_id),
    )
    slack = render_brief(context, "slack", links=shared, chart_link=chart_link, run_id=run_id)
    written["slack"] = write_atomic(
        folder / BRIEF_FILES["slack"], json.dumps(slack, indent=2) + "\n"
    )
    # the HTML file previews with the chart next to it; the message carries it inline
    email = render_brief(context, "email", links=shared, chart_link=chart_link, run_id=run_id,
                         chart_src=chart.name)  # fmt: skip
    written["email_html"] = write_atomic(folder / BRIEF_FILES["email_html"], email["html"])
    written["email_text"] = write_atomic(folder / BRIEF_FILES["email_text"], email["text"])
    inline = render_brief(context, "email", links=shared, chart_link=chart_link, run_id=run_id,
                          chart_src=f"cid:{CHART_CID}")  # fmt: skip
    written["email_message"] = write_atomic(
        folder / BRIEF_FILES["email_message"], email_message(inline, chart.read_bytes())
    )
    files = {kind: display_link(str(path)) for kind, path in written.items()}
    return files, shared  # type: ignore[return-value]


def email_message(email: dict[str, str], chart_png: bytes) -> bytes:
    """The brief as a MIME message: plain text and HTML alternatives, the chart as an
    inline image of the HTML part (``cid:``), ready for any mail relay."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["Subject"] = email["subject"]
    message.set_content(email["text"])
    message.add_alternative(email["html"], subtype="html")
    html = message.get_payload()[1]
    html.add_related(chart_png, "image", "png", cid=f"<{CHART_CID}>",
                     filename=BRIEF_FILES["chart"])  # fmt: skip
    return message.as_bytes()
