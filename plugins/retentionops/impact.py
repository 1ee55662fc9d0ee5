"""Measurement (design section 8.3): did the actions work, and what to do for one customer.

The proxy is repurchase within ``impact_horizon_days`` after the contact. Customers an
incident contacted (its exports) are compared with the customers its holdout kept out of
every export (``holdouts.py``), per tier: per run (``measure_impact``: what one run exported
against the customers held out on its date) and per incident (``measure_incident_impact``:
every customer it contacted, from the first contact, against its whole holdout, from each
one's assignment). Neither needs the date's queue, so a run or an incident stays measurable
after the queue's retention. All counting happens in SQL (``include/sql/impact/``); this
module turns counts into rates, a 95 % interval and the smallest uplift the groups could
have shown (the minimum detectable effect), and says which tiers cannot be measured.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from retentionops import holdouts, runlog
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.files import jsonable
from retentionops.settings import Settings
from retentionops.vocabulary import TIERS
from retentionops.warehouse import Warehouse

#: z of a two-sided 95 % interval (alpha 0.05), and of 80 % power (beta 0.2).
Z_95 = 1.959964
Z_POWER_80 = 0.841621
CAVEAT = (
    "repurchase is a proxy; the interval is a normal (Wald) approximation; the minimum "
    "detectable uplift is for two proportions at 80 % power and a two-sided 5 % level"
)


def minimum_detectable_uplift(treated: int, holdout: int, rate: float | None) -> float | None:
    """The smallest uplift (a difference of two proportions) the groups would show with 80 %
    power at a two-sided 5 % level: (z_0.975 + z_0.8) x sqrt(p (1 - p) (1/n_t + 1/n_h)),
    ``rate`` p being the pooled repurchase rate; a rate of 0 or 1 (nobody or everybody
    repurchased) says nothing about the variance, so p = 0.5 then, the most cautious.
    None without both groups."""
    if not treated or not holdout or rate is None:
        return None
    p = rate if 0 < rate < 1 else 0.5
    return (Z_95 + Z_POWER_80) * math.sqrt(p * (1 - p) * (1 / treated + 1 / holdout))


def uplift_with_ci(
    treated: int, treated_hits: int, holdout: int, holdout_hits: int
) -> dict[str, float | None]:
    """Difference of two proportions with a 95 % Wald interval and the minimum detectable
    uplift (None without a holdout)."""
    p_t = treated_hits / treated if treated else None
    p_h = holdout_hits / holdout if holdout else None
    if p_t is None or p_h is None:
        return {"treated_rate": p_t, "holdout_rate": p_h, "uplift": None,
                "ci_low": None, "ci_high": None, "mde": None}  # fmt: skip
    se = math.sqrt(p_t * (1 - p_t) / treated + p_h * (1 - p_h) / holdout)
    uplift = p_t - p_h
    pooled = (treated_hits + holdout_hits) / (treated + holdout)
    return {
        "treated_rate": p_t,
        "holdout_rate": p_h,
        "uplift": uplift,
        "ci_low": uplift - Z_95 * se,
        "ci_high": uplift + Z_95 * se,
        "mde": minimum_detectable_uplift(treated, holdout, pooled),
    }


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def verdict(tier: str, stats: dict[str, Any], minimum: int, why_none: str | None = None) -> str:
    """What a tier's comparison says, in one sentence: no holdout (and why), underpowered
    (fewer held out than ``holdout_min_customers``: the uplift it could have seen), an
    effect, or none shown (and the uplift that would have been seen)."""
    treated, held = stats["treated_customers"], stats["holdout_customers"]
    if not held:
        return why_none or f"{tier}: no holdout: its impact cannot be measured"
    if not treated:
        return f"{tier}: nobody contacted, {held} held out: nothing to compare"
    uplift, low, high, mde = stats["uplift"], stats["ci_low"], stats["ci_high"], stats["mde"]
    measured = f"{_points(uplift)} points, 95 % interval {_points(low)} to {_points(high)}"
    if held < minimum:
        return (
            f"{tier}: underpowered: with {held} held out, only an uplift above "
            f"{mde * 100:.1f} points could be seen (80 % power); measured {measured}"
        )
    if low > 0 or high < 0:
        return f"{tier}: uplift {measured}, {treated} contacted against {held} held out"
    return (
        f"{tier}: no effect shown: {measured} includes 0; with {held} held out, an uplift "
        f"above {mde * 100:.1f} points would have been seen (80 % power)"
    )


def compare_groups(
    tier: str, treated: dict[str, Any], held: dict[str, Any], minimum: int, why_none: str | None
) -> dict[str, Any]:
    """One tier's two groups: sizes, repurchase, rates, interval, MDE, revenue, verdict."""
    n_t, n_h = int(treated["customers"]), int(held["customers"])
    stats = {
        "treated_customers": n_t,
        "treated_repurchasers": int(treated["repurchasers"]),
        "holdout_customers": n_h,
        "holdout_repurchasers": int(held["repurchasers"]),
        **uplift_with_ci(n_t, int(treated["repurchasers"]), n_h, int(held["repurchasers"])),
    }
    # revenue within the horizon per contacted customer above the holdout's, times the
    # contacted: measured, as noisy as the rates
    stats["revenue_difference"] = (
        (float(treated["revenue_after"] or 0) / n_t - float(held["revenue_after"] or 0) / n_h) * n_t
        if n_t and n_h
        else None
    )
    stats["underpowered"] = bool(n_h) and n_h < minimum
    stats["verdict"] = verdict(tier, stats, minimum, why_none)
    return stats


_NONE = {"customers": 0, "repurchasers": 0, "revenue_after": 0.0}


def per_tier(
    rows: list[dict[str, Any]], why_none: dict[str, str | None], minimum: int
) -> dict[str, dict[str, Any]]:
    """Each tier's comparison (:func:`compare_groups`) from the SQL's rows, one per tier and
    group; ``why_none`` says, per tier, why nobody may be held out."""
    groups = {(r["tier"], bool(r["held_out"])): r for r in rows}
    return {
        tier: compare_groups(
            tier, groups.get((tier, False), _NONE), groups.get((tier, True), _NONE), minimum, why
        )
        for tier, why in why_none.items()
    }


def _why_none(tier: str, incidents: list[holdouts.IncidentHoldout], day: str) -> str:
    """Why a tier has nobody held out: the incidents' own reason, else none held."""
    for incident in incidents:
        info = incident["tiers"].get(tier)
        if info and info["note"]:
            return info["note"]
    if not incidents:
        return (
            f"{tier}: no incident's holdout held on {day}: nobody to compare with, its "
            "impact cannot be measured"
        )
    return f"{tier}: nobody held out: its impact cannot be measured"


def _horizon(settings: Settings, horizon_days: int | None) -> int:
    horizon = settings.impact_horizon_days if horizon_days is None else int(horizon_days)
    if horizon < 1:
        raise ServiceError("horizon_days must be at least 1")
    return horizon


def _not_yet(result: dict[str, Any], last_order: dt.date | None, end: dt.date) -> dict[str, Any]:
    after = (end + dt.timedelta(days=1)).isoformat()
    return {
        **result,
        "measurable": False,
        "measurable_from": after,
        "message": f"not measurable yet: orders reach "
        f"{last_order.isoformat() if last_order else 'nothing'}, the horizon ends "
        f"{end.isoformat()}; measurable from {after}",
    }


def measure_impact(
    warehouse: Warehouse, settings: Settings, run_id: str, horizon_days: int | None = None
) -> dict[str, Any]:
    """Treated vs held out, per tier a run exported: the run's exported customers against
    the customers an incident's holdout held out on its date, repurchase within the horizon
    after the run date."""
    horizon = _horizon(settings, horizon_days)
    log = runlog.read(warehouse, run_id)
    if log is None:
        raise ServiceError(f"no run '{run_id}' in ops_runs_log: check the run id")
    day = as_date(log["alert_date"])
    tiers = [t for t in TIERS if log.get(f"export_{t.lower()}_link")]
    if not tiers:
        raise ServiceError(
            f"run '{run_id}' exported nothing ({log.get('status')}): only runs that "
            "exported audiences can be measured"
        )
    horizon_end = day + dt.timedelta(days=horizon)
    [last] = warehouse.query("impact/last_order_date", {})
    last_order = last["last_order_date"]
    result: dict[str, Any] = {
        "run_id": run_id,
        "run_date": day.isoformat(),
        "incident_id": log.get("incident_id"),
        "horizon_days": horizon,
        "horizon_end": horizon_end.isoformat(),
        "tiers": tiers,
        "proxy": f"repurchase within {horizon} days after the run date",
    }
    if last_order is None or last_order < horizon_end:
        return _not_yet(result, last_order, horizon_end)
    rows = warehouse.query(
        "impact/measure_impact",
        {"run_id": run_id, "run_date": day, "tiers": tiers, "horizon_days": horizon},
    )
    holding = holdouts.summary(warehouse, settings, day)["incidents"]
    tiers_measured = per_tier(
        rows,
        {tier: _why_none(tier, holding, day.isoformat()) for tier in tiers},
        settings.holdout_min_customers,
    )
    return {
        **result,
        "measurable": True,
        "per_tier": tiers_measured,
        "holdouts": holding,
        "verdicts": [stats["verdict"] for stats in tiers_measured.values()],
        "caveat": CAVEAT,
    }


def measure_incident_impact(
    warehouse: Warehouse, settings: Settings, incident_id: str, horizon_days: int | None = None
) -> dict[str, Any]:
    """Treated vs held out, per tier, over a whole incident: every customer it contacted
    (an export for a date from its opening to its resolution), from the first contact,
    against its holdout, from each customer's assignment."""
    horizon = _horizon(settings, horizon_days)
    incident = holdouts.incident_holdout(warehouse, settings, incident_id)
    if incident is None:
        raise ServiceError(
            f"no holdout for incident '{incident_id}': it is drawn at the incident's first "
            "export, and none of its dates was exported (check the id: "
            "`retentionops incidents --from ... --to ...`)"
        )
    [last] = warehouse.query("impact/last_order_date", {})
    last_order = last["last_order_date"]
    opened = as_date(incident["opened_on"])
    until = as_date(incident["resolved_on"]) if incident["resolved_on"] else last_order or opened
    rows = [
        jsonable(r)
        for r in warehouse.query(
            "impact/measure_incident_impact",
            {
                "incident_id": incident_id,
                "from_date": opened,
                "to_date": until,
                "horizon_days": horizon,
            },
        )
    ]
    starts = [as_date(r["last_start"]) for r in rows if r["last_start"]]
    horizon_end = max(starts, default=opened) + dt.timedelta(days=horizon)
    result: dict[str, Any] = {
        "incident_id": incident_id,
        "opened_on": incident["opened_on"],
        "resolved_on": incident["resolved_on"],
        "held_until": incident["held_until"],
        "holdout_pct": incident["holdout_pct"],
        "horizon_days": horizon,
        "horizon_end": horizon_end.isoformat(),
        "tiers": list(incident["tiers"]),
        "proxy": f"repurchase within {horizon} days after the first contact (the "
        "assignment, for the held out)",
        "holdouts": [incident],
    }
    if not incident["resolved_on"]:
        result["note"] = f"{incident_id} has not resolved: its groups still grow with each export"
    if last_order is None or last_order < horizon_end:
        return _not_yet(result, last_order, horizon_end)
    tiers_measured = per_tier(
        rows,
        {
            tier: info["note"] or f"{tier}: nobody held out: its impact cannot be measured"
            for tier, info in incident["tiers"].items()
        },
        settings.holdout_min_customers,
    )
    return {
        **result,
        "measurable": True,
        "per_tier": tiers_measured,
        "verdicts": [stats["verdict"] for stats in tiers_measured.values()],
        "caveat": CAVEAT,
    }


def recommended_action(
    warehouse: Warehouse, settings: Settings, customer_id: str, day: dt.date
) -> dict[str, Any]:
    """The tier, action and reason of one customer at a date, or why it is not queued."""
    customer_id = str(customer_id)
    rows = warehouse.query(
        "impact/read_customer_priority", {"run_date": day, "customer_id": customer_id}
    )
    if not rows:
        raise ServiceError(
            f"customer '{customer_id}' has no order on or before {day} (unknown customer, "
            "or first order later)"
        )
    row = jsonable(rows[0])
    base = {
        "customer_id": customer_id,
        "run_date": day.isoformat(),
        "retention_status": row["retention_status"],
        "churn_risk_level": row["churn_risk_level"],
        "churn_risk_score": row["churn_risk_score"],
        "days_since_last_order": row["days_since_last_order"],
    }
    if row["priority_tier"]:
        return {
            **base,
            "queued": True,
            "tier": row["priority_tier"],
            "priority_score": row["priority_score"],
            "recommended_action": row["recommended_action"],
            "reason": row["priority_reason"],
            "holdout": row["held_by"] is not None,
            "note": f"in the holdout of {row['held_by']}: deliberately not contacted while it "
            "holds, to measure the incident's impact"
            if row["held_by"]
            else None,
        }
    from retentionops.actions import tier_definition

    rules = "; ".join(f"{tier} takes {tier_definition(settings, tier)}" for tier in TIERS)
    return {
        **base,
        "queued": False,
        "tier": None,
        "recommended_action": None,
        "reason": f"{row['retention_status']} + {row['churn_risk_level']} risk matches no "
        f"tier ({rules})",
    }
