"""Measurement (design section 8.3): did the actions work, and what to do for one customer.

``measure_impact`` uses the design's proxy, repurchase within a horizon after the run date,
and compares the exported (treated) customers of each tier with the holdout of the same
score window (``holdout_pct``). All counting happens in SQL
(``include/sql/impact/measure_impact.sql``); this module only turns counts into rates.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from retentionops import actions, runlog
from retentionops.detection import as_date, jsonable
from retentionops.errors import ServiceError
from retentionops.settings import Settings
from retentionops.vocabulary import TIERS
from retentionops.warehouse import Warehouse

Z_95 = 1.959964


def uplift_with_ci(
    treated: int, treated_hits: int, holdout: int, holdout_hits: int
) -> dict[str, float | None]:
    """Difference of two proportions with a 95 % Wald interval (None without a holdout)."""
    p_t = treated_hits / treated if treated else None
    p_h = holdout_hits / holdout if holdout else None
    if p_t is None or p_h is None:
        return {"treated_rate": p_t, "holdout_rate": p_h, "uplift": None,
                "ci_low": None, "ci_high": None}  # fmt: skip
    se = math.sqrt(p_t * (1 - p_t) / treated + p_h * (1 - p_h) / holdout)
    uplift = p_t - p_h
    return {
        "treated_rate": p_t,
        "holdout_rate": p_h,
        "uplift": uplift,
        "ci_low": uplift - Z_95 * se,
        "ci_high": uplift + Z_95 * se,
    }


def measure_impact(
    warehouse: Warehouse, settings: Settings, run_id: str, horizon_days: int = 30
) -> dict[str, Any]:
    """Treated vs holdout repurchase within ``horizon_days`` for the tiers a run exported."""
    if horizon_days < 1:
        raise ServiceError("horizon_days must be at least 1")
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
    horizon_end = day + dt.timedelta(days=horizon_days)
    [last] = warehouse.query("impact/last_order_date", {})
    last_order = last["last_order_date"]
    result: dict[str, Any] = {
        "run_id": run_id,
        "run_date": day.isoformat(),
        "horizon_days": horizon_days,
        "horizon_end": horizon_end.isoformat(),
        "tiers": tiers,
        "proxy": f"repurchase within {horizon_days} days after the run date",
    }
    if last_order is None or last_order < horizon_end:
        return {
            **result,
            "measurable": False,
            "measurable_from": (horizon_end + dt.timedelta(days=1)).isoformat(),
            "message": f"not measurable yet: orders reach "
            f"{last_order.isoformat() if last_order else 'nothing'}, the horizon ends "
            f"{horizon_end.isoformat()}; measurable from "
            f"{(horizon_end + dt.timedelta(days=1)).isoformat()}",
        }
    rows = warehouse.query(
        "impact/measure_impact",
        {
            "run_id": run_id,
            "run_date": day,
            "tiers": tiers,
            "row_limit": settings.export_limit,
            "horizon_days": horizon_days,
        },
    )
    context = actions.get_operational_context(warehouse, settings, day)
    counts = {(r["priority_tier"], bool(r["is_holdout"])): r for r in rows}
    per_tier = {}
    value = context["value_per_customer"]
    for tier in tiers:
        treated = counts.get((tier, False), {"customers": 0, "repurchasers": 0})
        holdout = counts.get((tier, True), {"customers": 0, "repurchasers": 0})
        stats = uplift_with_ci(
            int(treated["customers"]), int(treated["repurchasers"]),
            int(holdout["customers"]), int(holdout["repurchasers"]),
        )  # fmt: skip
        protected = (
            stats["uplift"] * int(treated["customers"]) * value
            if stats["uplift"] is not None
            else None
        )
        per_tier[tier] = {
            "treated_customers": int(treated["customers"]),
            "treated_repurchasers": int(treated["repurchasers"]),
            "holdout_customers": int(holdout["customers"]),
            "holdout_repurchasers": int(holdout["repurchasers"]),
            **stats,
            "illustrative_revenue_protected": protected,
        }
    note = None
    if not any(t["holdout_customers"] for t in per_tier.values()):
        note = (
            "no holdout customers in these tiers: set holdout_pct (e.g. 10) before the run so "
            "that a share of each tier is kept out of the exports and the uplift can be measured"
        )
    return {
        **result,
        "measurable": True,
        "per_tier": per_tier,
        "value_per_customer": value,
        "value_basis": context["value_basis"],
        "note": note,
        "caveat": "illustrative: repurchase is a proxy, the interval is a normal approximation",
    }


def recommended_action(
    warehouse: Warehouse, settings: Settings, customer_id: str, run_date: Any
) -> dict[str, Any]:
    """The tier, action and reason of one customer at a date, or why it is not queued."""
    day = as_date(run_date)
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
            "holdout": bool(row["is_holdout"]),
            "note": "in the holdout: deliberately not contacted, to measure the effect"
            if row["is_holdout"]
            else None,
        }
    rules = "; ".join(f"{tier} takes {actions.tier_definition(settings, tier)}" for tier in TIERS)
    return {
        **base,
        "queued": False,
        "tier": None,
        "recommended_action": None,
        "reason": f"{row['retention_status']} + {row['churn_risk_level']} risk matches no "
        f"tier ({rules})",
    }
