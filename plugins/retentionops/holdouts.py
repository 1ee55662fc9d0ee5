"""Each incident's holdout: drawn at its first export, held until it resolves + the horizon.

A holdout measures an incident's impact: a share of each tier (``holdout_pct``) is kept out
of every export, by every door, while the incident runs and for ``impact_horizon_days``
after it resolves, so that the customers it contacted can be compared with customers it
did not (``impact.py``). The draw and its release are records in ``incident_holdouts``
(``include/sql/ddl/create_incident_holdouts.sql``), outside the queue's retention; the
rules are SQL under ``include/sql/holdout/``; this module decides when they run and says
what they did in words (docs/audiences.md, "A holdout per incident").

- **Draw**: an export of a date that belongs to an incident first draws the incident's
  holdout over the date's queue (``draw_incident_holdout.sql``): its first export draws
  every tier, a later one the customers first seen that day, by the same rule (a stable
  hash of customer, salt and incident against the incident's ``holdout_pct``). A tier whose
  holdout would hold fewer than ``holdout_min_customers`` gets none (:func:`tier_note`).
- **Release**: the incident layer decides when an incident resolves; the first export of
  a date on or after that day records it (:func:`settle_releases`), with the last day the
  holdout holds: resolution + ``impact_horizon_days``. Until then the holdout holds (an
  incident today's settings no longer see ends with the resolve that closed it). The
  release is recorded rather than recomputed by each export: the export stays one plain
  anti-join (no recursive incident query per export, on BigQuery too), and a holdout
  already running does not move when detection settings or the orders change later.
- **Exclusion**: every export leaves out the customers any holdout holds on its date
  (``action/record_audience_export.sql``), with or without an incident of its own.

The draw is an INSERT of the customers not seen yet: on DuckDB one writer at a time; on
BigQuery two doors drawing the same incident at the same moment may both record a customer
(with the same assignment: the rule is a pure function), so every reader counts customers
once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops.dates import as_date
from retentionops.files import jsonable
from retentionops.settings import Settings
from retentionops.vocabulary import TIERS
from retentionops.warehouse import Warehouse


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class TierHoldout(TypedDict):
    """One tier of an incident's holdout."""

    #: the tier's size when the incident decided its draw (its first export of the tier)
    customers: int
    drawn: bool
    #: customers the incident saw in the tier, and those it held out
    seen: int
    held_out: int
    #: why the tier has no holdout, in words (None: drawn)
    note: str | None


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class IncidentHoldout(TypedDict):
    incident_id: str
    opened_on: str
    resolved_on: str | None
    #: the last day it holds: resolved_on + impact_horizon_days (None: until it resolves)
    held_until: str | None
    holdout_pct: float
    tiers: dict[str, TierHoldout]


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class Holdout(TypedDict):
    """The holdouts that hold on a date: per tier of its queue, the customers held out
    that day (no export takes them), and each incident's draw."""

    run_date: str
    holdout_pct: float
    min_customers: int
    horizon_days: int
    tiers: dict[str, dict[str, int]]
    incidents: list[IncidentHoldout]


def basis_points(pct: float) -> int:
    """A percentage as the SQL compares it: 10 % = 1000 basis points."""
    return round(pct * 100)


def expected_size(customers: int, bp: int) -> int:
    """The holdout a tier of ``customers`` would get at ``bp`` basis points, rounded down:
    what the draw compares with the minimum."""
    return customers * bp // 10000


def pct_text(pct: float) -> str:
    return f"{pct:g} %"


def tier_note(tier: str, customers: int, bp: int, minimum: int) -> str | None:
    """Why a tier has no holdout, the sentence the brief, the log and ``impact`` say (None:
    it has one): ``P1: 47 customers, a 10 % holdout would be 4, under the minimum 10: no
    holdout, its impact cannot be measured``."""
    if bp <= 0:
        return f"{tier}: no holdout (holdout_pct is 0): its impact cannot be measured"
    size = expected_size(customers, bp)
    if size >= minimum:
        return None
    return (
        f"{tier}: {customers} customers, a {pct_text(bp / 100)} holdout would be {size}, "
        f"under the minimum {minimum}: no holdout, its impact cannot be measured"
    )


# -- the draw and the release -----------------------------------------------------------------


def draw(
    warehouse: Warehouse,
    settings: Settings,
    day: dt.date,
    incident_id: str,
    opened_on: dt.date,
    run_id: str,
) -> None:
    """Draw (or extend) the incident's holdout over ``day``'s queue: every customer the
    incident has not seen yet, held out or not by the incident's rule."""
    warehouse.execute_file(
        "holdout/draw_incident_holdout",
        {
            "incident_id": incident_id,
            "opened_on": opened_on,
            "run_date": day,
            "run_id": run_id,
            "holdout_bp": basis_points(settings.holdout_pct),
            "holdout_salt": settings.holdout_salt,
            "holdout_min_customers": settings.holdout_min_customers,
        },
    )


def settle_releases(
    warehouse: Warehouse, settings: Settings, day: dt.date, today: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Record the release of every holdout whose incident has resolved by ``day``, as the
    incident layer sees it on ``day`` (one query over the incidents still held); return
    what was recorded. ``today`` is ``day``'s incident row when the caller has it.

    An incident today's settings no longer see at all (thresholds changed since it opened)
    ends when the team was told so: the delivered resolve that closed it
    (``service.close_vanished``); until then its holdout holds."""
    from retentionops import incidents

    pending = warehouse.query("holdout/read_unreleased_holdouts", {"run_date": day})
    if today and today.get("incident_id") and not today.get("resolved_on"):
        # the date's own incident is open on the date: nothing to ask about it
        pending = [row for row in pending if row["incident_id"] != today["incident_id"]]
    if not pending:
        return []
    start = min(as_date(row["opened_on"]) for row in pending)
    days = incidents.incident_days(warehouse, settings, start, day)
    released = []
    for row in pending:
        mine = [d for d in days if d["incident_id"] == row["incident_id"]]
        resolved = next((d["resolved_on"] for d in mine if d["resolved_on"]), None)
        if not mine:  # today's settings do not see it: closed when its resolve went out
            closed = warehouse.query(
                "incidents/read_incident_resolve",
                {"incident_id": row["incident_id"], "rollout_mode": settings.rollout_mode},
            )
            resolved = closed[0]["run_date"] if closed and closed[0]["run_date"] <= day else None
        if resolved is None:
            continue  # still open on the date (or never closed)
        resolved_on = as_date(resolved)
        held_until = resolved_on + dt.timedelta(days=settings.impact_horizon_days)
        warehouse.execute_file(
            "holdout/release_incident_holdout",
            {
                "incident_id": row["incident_id"],
                "resolved_on": resolved_on,
                "held_until": held_until,
            },
        )
        released.append(
            {
                "incident_id": row["incident_id"],
                "resolved_on": resolved_on.isoformat(),
                "held_until": held_until.isoformat(),
                "seen_by_settings": bool(mine),
            }
        )
    return released


def prepare(warehouse: Warehouse, settings: Settings, day: dt.date, run_id: str) -> None:
    """Before an export of ``day`` (every door, ``actions.record_audiences``): draw
    the date's incident's holdout, then record the releases due by the date, so the
    export leaves out exactly the customers held out that day."""
    from retentionops import incidents

    warehouse.ensure_tables(("incident_holdouts",))
    today = incidents.incident_on(warehouse, settings, day)
    if today and today["incident_id"] and today["phase"] == "incident":
        draw(warehouse, settings, day, today["incident_id"], as_date(today["opened_on"]), run_id)
    settle_releases(warehouse, settings, day, dict(today) if today else None)


# -- what holds, in numbers and in words ------------------------------------------------------


def _tier_holdout(tier: str, row: dict[str, Any], minimum: int) -> TierHoldout:
    customers, drawn = int(row["customers"] or 0), bool(row["tier_drawn"])
    return {
        "customers": customers,
        "drawn": drawn,
        "seen": int(row.get("seen") or 0),
        "held_out": int(row["held_out"] or 0),
        "note": None if drawn else tier_note(tier, customers, int(row["holdout_bp"]), minimum),
    }


def summary(warehouse: Warehouse, settings: Settings, day: dt.date) -> Holdout:
    """The holdouts that hold on the date (``holdout/read_holdouts.sql``)."""
    rows = warehouse.query("holdout/read_holdouts", {"run_date": day})
    tiers = {tier: {"customers": 0, "held_out": 0} for tier in TIERS}
    found: dict[str, IncidentHoldout] = {}
    for row in map(jsonable, rows):
        if row["facet"] == "tier":
            tiers[row["tier"]] = {
                "customers": int(row["customers"]),
                "held_out": int(row["held_out"]),
            }
            continue
        incident = found.setdefault(
            row["incident_id"],
            {
                "incident_id": row["incident_id"],
                "opened_on": row["opened_on"],
                "resolved_on": row["resolved_on"],
                "held_until": row["held_until"],
                "holdout_pct": int(row["holdout_bp"]) / 100,
                "tiers": {},
            },
        )
        incident["tiers"][row["tier"]] = _tier_holdout(
            row["tier"], row, settings.holdout_min_customers
        )
    for incident in found.values():
        incident["tiers"] = dict(sorted(incident["tiers"].items()))
    return {
        "run_date": day.isoformat(),
        "holdout_pct": settings.holdout_pct,
        "min_customers": settings.holdout_min_customers,
        "horizon_days": settings.impact_horizon_days,
        "tiers": tiers,
        "incidents": [found[key] for key in sorted(found)],
    }


def incident_holdout(
    warehouse: Warehouse, settings: Settings, incident_id: str
) -> IncidentHoldout | None:
    """One incident's holdout (None: it never exported, so nothing was drawn)."""
    rows = [jsonable(r) for r in warehouse.query(
        "holdout/read_incident_holdout", {"incident_id": incident_id}
    )]  # fmt: skip
    if not rows:
        return None
    return {
        "incident_id": incident_id,
        "opened_on": rows[0]["opened_on"],
        "resolved_on": max((r["resolved_on"] for r in rows if r["resolved_on"]), default=None),
        "held_until": max((r["held_until"] for r in rows if r["held_until"]), default=None),
        "holdout_pct": int(rows[0]["holdout_bp"]) / 100,
        "tiers": {
            r["tier"]: _tier_holdout(
                r["tier"], {**r, "customers": r["tier_customers"]}, settings.holdout_min_customers
            )
            for r in rows
        },
    }


def until_text(incident: IncidentHoldout, horizon_days: int) -> str:
    """How long the holdout holds, in words."""
    if incident["held_until"]:
        return (
            f"held until {incident['held_until']}: resolved {incident['resolved_on']} + the "
            f"{horizon_days}-day measurement horizon"
        )
    return (
        f"held until {incident['incident_id']} resolves + the {horizon_days}-day "
        "measurement horizon"
    )


def describe(incident: IncidentHoldout, horizon_days: int) -> str:
    """One incident's holdout in one line (the brief, the log row's ``holdout_note``)."""
    parts = []
    for tier, info in incident["tiers"].items():
        if info["drawn"]:
            parts.append(
                f"{tier}: {info['held_out']} held out of the {info['seen']} customers it saw, "
                "never exported while it holds"
            )
        else:
            parts.append(info["note"] or f"{tier}: no holdout")
    body = "; ".join(parts) or "no customer seen yet"
    return (
        f"Holdout of {incident['incident_id']} ({pct_text(incident['holdout_pct'])} of each "
        f"tier, {until_text(incident, horizon_days)}): {body}."
    )


def lines(holdout: Holdout | None) -> list[str]:
    """The holdouts of a date in words, one line per incident (empty: none holds)."""
    if not holdout:
        return []
    return [describe(incident, holdout["horizon_days"]) for incident in holdout["incidents"]]
