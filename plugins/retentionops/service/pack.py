"""The action pack operations: the priority queue, the audiences' exports and the brief
(design 8.2; ``include/sql/action/``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from retentionops import actions, detection, freshness, pack
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.playbook import Delivery
from retentionops.service.context import run_context
from retentionops.service.request import DateLike, Run
from retentionops.service.runlog import recorded
from retentionops.settings import Settings
from retentionops.vocabulary import BRIEF_FORMATS
from retentionops.warehouse import open_warehouse


def build_priority_queue(
    settings: Settings,
    run_date: DateLike,
    *,
    detect: bool = True,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Write the date's queue, after running (or verifying) its detection unless ``detect``
    is False (the DAG, whose detection task ran just before); the queue and its marker are
    written all or nothing."""
    day = as_date(run_date)
    run = run or Run.start(interface, "build_priority_queue", day)
    with (
        recorded(settings, run, "build_priority_queue", day) as outcome,
        open_warehouse(settings) as warehouse,
    ):
        if detect:
            decision = detection.run_detection(warehouse, settings, day)
        else:
            decision = detection.stored_alert_decision(warehouse, settings, day)
        outcome.decision = {
            **decision,
            "data_freshness": freshness.orders_freshness(warehouse, settings, day),
        }
        outcome.counts = actions.build_priority_queue(warehouse, settings, day)
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "tiers": outcome.counts,
        "decision": outcome.decision,
    }


def generate_brief(
    settings: Settings,
    run_date: DateLike,
    fmt: str = "markdown",
    *,
    exports: list[dict[str, Any]] | None = None,
    delivery: Delivery | None = None,
    run: Run | None = None,
    interface: str = "cli",
    context: actions.Context | None = None,
) -> dict[str, Any]:
    """Write the brief files and chart of the run; return the brief in one format.

    ``exports`` are the audiences this run exported (their links go into the brief); a
    brief without them names the tiers the playbook exports, without links. Also returns
    the playbook plan and the Slack payload (what ``trigger_playbook`` posts). ``context``
    is the run's operational context if the caller has it (read here otherwise).
    """
    from retentionops.brief import render_brief

    day = as_date(run_date)
    if fmt not in BRIEF_FORMATS:
        raise ServiceError(f"unknown brief format '{fmt}'; use {', '.join(BRIEF_FORMATS)}")
    run = run or Run.start(interface, "generate_brief", day)
    with recorded(settings, run, "generate_brief", day) as outcome:
        with open_warehouse(settings) as warehouse:
            read = run_context(settings, day, delivery, context, warehouse)
            # what the exports did: the rows contacted, the holdout as they drew it
            exported = actions.with_exports(read, exports)
            files, links = pack.render_brief_files(
                warehouse, settings, exported, run_id=run.run_id, exports=exports
            )
        outcome.take_context(exported)
        outcome.brief_link = files["markdown"]
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "format": fmt,
        "brief": render_brief(
            dict(exported), fmt, links=links, chart_link=files["chart"], run_id=run.run_id
        ),
        "slack": render_brief(
            dict(exported), "slack", links=links, chart_link=files["chart"], run_id=run.run_id
        ),
        "files": files,
        "plan": exported["plan"],
        "tiers": exported["plan"]["tiers"],
    }


def planned_tiers(
    settings: Settings,
    run_date: DateLike,
    delivery: Delivery | None = None,
    context: actions.Context | None = None,
) -> list[str]:
    """The tiers the date's playbook exports (none without an alert event), from the run's
    operational context (read here when none is given)."""
    read = run_context(settings, as_date(run_date), delivery, context)
    return list(read["plan"]["tiers"])


def export_audiences(
    settings: Settings,
    run_date: DateLike,
    tiers: list[str],
    *,
    destination: str | None = None,
    destinations: list[str] | None = None,
    limit: int | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> list[dict[str, Any]]:
    """Export the run's audience of each tier: record who is exported (the incidents'
    holdouts, drawn first when the date belongs to an incident, the contact cooldown and
    export_mode applied), write each tier's local CSV in the run's own folder,
    then upload it (``export_destinations``: gcs, gsheet); a failed upload keeps the local
    CSV as the link (``status: fallback_local``, the error kept). ``destination`` (a folder
    in export_root or a gs:// prefix) overrides where the files go, still scoped to the run.

    The tiers are recorded and read back together (``actions.record_audiences``): the
    warehouse reads the queue once per run, not once per tier.
    """
    day = as_date(run_date)
    try:
        tiers = actions.named_tiers(tiers, "export")
    except ValueError as error:
        raise ServiceError(str(error)) from None
    if limit is not None and limit < 1:
        raise ServiceError("limit must be a positive number of rows")
    from retentionops import exports, holdouts

    run = run or Run.start(interface, "export_audience", day)
    with recorded(settings, run, f"export_audience[{'+'.join(tiers)}]", day) as outcome:
        target = pack.export_target(settings, day, run.run_id, destination, destinations)
        with open_warehouse(settings) as warehouse:
            audiences = actions.record_audiences(warehouse, settings, day, tiers, run.run_id, limit)
            # the holdouts as the record left them (an incident draws at its first export)
            held = holdouts.summary(warehouse, settings, day)
        results = []
        for tier in tiers:
            written = exports.export_tier(audiences[tier], day, tier, **target)
            results.append(
                {
                    **dataclasses.asdict(written),
                    "link": pack.display_link(written.link),
                    "local_link": pack.display_link(written.local_link or written.link),
                    # the tier's customers held out that day: not in the file
                    "held_out": held["tiers"][tier]["held_out"],
                    "holdout": held,
                }
            )
        outcome.exports = results
    return [{"run_id": run.run_id, **result} for result in results]


def export_audience(
    settings: Settings, run_date: DateLike, tier: str, **options: Any
) -> dict[str, Any]:
    """``export_audiences`` of one tier (the CLI's and the MCP tool's unit)."""
    [result] = export_audiences(settings, run_date, [tier], **options)
    return result
