"""Package a run's outputs on disk: the brief in every format, the chart, the audiences.

One folder per run date, ``<artifacts_dir>/<YYYY-MM-DD>/``: re-running a date replaces its
own files (each written atomically) and never touches another date's. Every link the
package shows (brief, payload, run log) is built here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, TypedDict

from retentionops.detection import as_date, chart_series
from retentionops.files import write_atomic
from retentionops.settings import PROJECT_ROOT, Settings
from retentionops.warehouse import Warehouse

CHART_DAYS = 60
BRIEF_FILES = {
    "markdown": "brief.md",
    "slack": "brief_slack.json",
    "email_html": "brief_email.html",
    "email_text": "brief_email.txt",
    "chart": "at_risk_last_60_days.png",
}


class BriefFiles(TypedDict):
    chart: str
    markdown: str
    slack: str
    email_html: str
    email_text: str


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


def run_dir(settings: Settings, run_date: Any) -> Path:
    return settings.artifacts_path / as_date(run_date).isoformat()


def export_destination(settings: Settings, run_date: Any) -> str:
    """Where audiences go: the setting, or the run's artifact folder."""
    return settings.export_destination or str(run_dir(settings, run_date))


def export_options(settings: Settings, kind: str) -> dict[str, Any]:
    """The writer's options for an export kind (the Google connection, the spreadsheet)."""
    options: dict[str, Any] = {"gcp_conn_id": settings.gcp_conn_id}
    if kind == "gsheet":
        options["spreadsheet_id"] = settings.gsheet_spreadsheet_id
    return options


def planned_export_link(settings: Settings, run_date: Any, tier: str) -> str:
    """The link an export will have, known before it runs (the brief is written first)."""
    from retentionops.exports import export_filename

    day = as_date(run_date)
    if settings.export_kind == "gsheet":
        # the tab's gid is known only once it exists; the run log holds the exact link
        return f"https://docs.google.com/spreadsheets/d/{settings.gsheet_spreadsheet_id}/edit"
    destination = export_destination(settings, day)
    name = export_filename(day, tier)
    if destination.startswith("gs://"):
        return f"{destination.rstrip('/')}/{name}"
    return display_link(str(Path(destination).resolve() / name))


def planned_export_links(settings: Settings, run_date: Any, tiers: list[str]) -> dict[str, str]:
    return {tier: planned_export_link(settings, run_date, tier) for tier in tiers}


def render_brief_files(
    warehouse: Warehouse, settings: Settings, context: dict[str, Any], *, run_id: str | None = None
) -> BriefFiles:
    """Write the chart and the brief (Markdown, Slack payload, email) for the context's date."""
    from retentionops.brief import render_brief, render_chart

    day = as_date(context["run_date"])
    folder = run_dir(settings, day)
    # the stored decisions of the previous days; only days never run are computed
    series = chart_series(warehouse, settings, day - dt.timedelta(days=CHART_DAYS - 1), day)
    chart = render_chart(
        series, folder / BRIEF_FILES["chart"], run_date=day.isoformat(), days=CHART_DAYS
    )
    links = planned_export_links(settings, day, context["plan"]["tiers"])
    # The Markdown brief sits next to the chart, so it links it by file name.
    chart_link = display_link(str(chart))
    written = {"chart": chart}
    written["markdown"] = write_atomic(
        folder / BRIEF_FILES["markdown"],
        render_brief(context, "markdown", links=links, chart_link=chart.name, run_id=run_id),
    )
    slack = render_brief(context, "slack", links=links, chart_link=chart_link, run_id=run_id)
    written["slack"] = write_atomic(
        folder / BRIEF_FILES["slack"], json.dumps(slack, indent=2) + "\n"
    )
    email = render_brief(context, "email", links=links, chart_link=chart_link, run_id=run_id)
    written["email_html"] = write_atomic(folder / BRIEF_FILES["email_html"], email["html"])
    written["email_text"] = write_atomic(folder / BRIEF_FILES["email_text"], email["text"])
    return {kind: display_link(str(path)) for kind, path in written.items()}  # type: ignore[return-value]
