"""The peer: the same rules in plain pandas, as an analyst would write them in a notebook.

Thresholds, factors, weights and tier rules are read from the same ``Settings`` object as
the product (``rules.md``); comparisons with a factor are exact integer cross-products,
as the rules demand, and the rounding is half away from zero on integer basis points, so
the peer agrees with the product to the last digit and the benchmark can check it.

The daily peer does less than the product (no cohort table SQL4, no alert row, no brief
or chart): it only computes the facts, statuses, signals and tiers and writes the three
CSV audiences. Its ratio is therefore, if anything, flattering to the peer.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

AUDIENCE_COLUMNS = [
    "run_date", "customer_id", "priority_tier", "priority_score", "priority_reason",
    "retention_status", "churn_risk_level", "churn_risk_score", "days_since_last_order",
    "total_revenue", "total_orders", "avg_order_value", "recommended_action", "value_proxy",
]  # fmt: skip


def load_orders(duckdb_path: str, columns: str) -> pd.DataFrame:
    """The analyst's first cell: pull the orders table into a DataFrame."""
    import duckdb

    con = duckdb.connect(duckdb_path, read_only=True)
    try:
        con.execute("set enable_progress_bar = false")
        return con.execute(f"select {columns} from orders").df()
    finally:
        con.close()


def _settings(spec: dict[str, Any]):
    from retentionops.settings import load_settings

    return load_settings(duckdb_path=spec["duckdb_path"], artifacts_dir=spec["artifacts_dir"])


def _round_bp(numerator, denominator):
    """ROUND(100 * num / den, 2) in basis points, half away from zero (num, den >= 0)."""
    return (20000 * numerator + denominator) // (2 * denominator)


def tiers_frame(orders: pd.DataFrame, settings, day: dt.date) -> pd.DataFrame:
    """Facts (SQL1), status (SQL2), signals (SQL3) and tiers for one date, one row a customer."""
    from retentionops.settings import ratio, split_list

    d = pd.Timestamp(day)
    o = orders[orders["order_date"] <= d]
    facts = o.groupby("customer_id", sort=False).agg(
        first_order_date=("order_date", "min"),
        last_order_date=("order_date", "max"),
        total_orders=("order_id", "nunique"),
        total_revenue=("order_amount", "sum"),
    )
    facts["avg_order_value"] = facts["total_revenue"] / facts["total_orders"]
    days = (d - facts["last_order_date"]).dt.days.to_numpy()
    span = (facts["last_order_date"] - facts["first_order_date"]).dt.days.to_numpy()
    n = facts["total_orders"].to_numpy()
    facts["days_since_last_order"] = days
    status = np.select(
        [days < 0, days <= settings.active_days, days <= settings.at_risk_days],
        ["DATA_QUALITY_ISSUE", "ACTIVE", "AT_RISK"],
        "INACTIVE",
    )
    facts["retention_status"] = status
    fd, si = ratio(settings.frequency_drop_factor), ratio(settings.status_inconsistent_factor)
    # exact: days > f x span / (n - 1)  <=>  days x (n - 1) x den > num x span
    freq_drop = (n > 1) & (days * (n - 1) * fd.denominator > fd.numerator * span)
    inconsistent = (status == "ACTIVE") & (
        (n <= settings.status_inconsistent_max_orders)
        | ((n > 1) & (days * (n - 1) * si.denominator > si.numerator * span))
    )
    score = (
        settings.weight_frequency_drop * freq_drop
        + settings.weight_status_inconsistent * inconsistent
    )
    facts["is_frequency_drop"] = freq_drop
    facts["is_status_inconsistent"] = inconsistent
    facts["churn_risk_score"] = score
    level = np.select(
        [score >= settings.risk_level_high_min, score >= settings.risk_level_medium_min],
        ["HIGH", "MEDIUM"],
        "LOW",
    )
    facts["churn_risk_level"] = level
    median = facts["total_revenue"].median()
    tier = pd.Series(None, index=facts.index, dtype="object")
    p1 = (status == settings.p1_status) & np.isin(level, split_list(settings.p1_risk_levels))
    if settings.p1_value_filter:
        p1 &= facts["total_revenue"].to_numpy() > median
    p2 = (status == settings.p2_status) & np.isin(level, split_list(settings.p2_risk_levels))
    p3 = (status == settings.p3_status) & np.isin(level, split_list(settings.p3_risk_levels))
    if settings.p3_recency_cap_days:
        p3 &= days <= settings.p3_recency_cap_days
    tier[p3] = "P3"
    tier[p2] = "P2"
    tier[p1] = "P1"
    facts["priority_tier"] = tier
    facts["median_total_revenue"] = median
    return facts


def daily_pack(spec: dict[str, Any]) -> dict[str, Any]:
    """Load orders, compute the tiers, write the top rows of each tier as CSV."""
    settings = _settings(spec)
    day = dt.date.fromisoformat(spec["run_date"])
    started = time.perf_counter()
    orders = load_orders(
        spec["duckdb_path"], "customer_id, order_id, order_date, order_amount, country"
    )
    loaded = time.perf_counter()
    facts = tiers_frame(orders, settings, day)
    queued = facts[facts["priority_tier"].notna()].copy()
    base = queued["priority_tier"].map(
        {"P1": settings.p1_base_score, "P2": settings.p2_base_score, "P3": settings.p3_base_score}
    )
    value_bonus = np.minimum(
        settings.value_bonus_cap,
        np.log1p(queued["total_revenue"].clip(lower=0)) * settings.value_bonus_per_log,
    )
    urgency = np.minimum(
        settings.urgency_bonus_cap,
        queued["days_since_last_order"] / settings.urgency_days_per_point,
    )
    queued["priority_score"] = np.minimum(100, base + value_bonus + urgency)
    signals = (
        np.where(queued["is_frequency_drop"], "frequency drop", "")
        + np.where(queued["is_frequency_drop"] & queued["is_status_inconsistent"], ", ", "")
        + np.where(queued["is_status_inconsistent"], "status inconsistent", "")
    )
    signals = np.where(signals == "", "no signal fired", signals)
    value_text = np.where(
        queued["total_revenue"] > queued["median_total_revenue"],
        "high value (revenue above median)",
        "standard value",
    )
    queued["priority_reason"] = (
        queued["retention_status"] + " + " + queued["churn_risk_level"] + " risk: " + signals
        + "; " + value_text + ", last order "
        + queued["days_since_last_order"].astype(str) + " days ago"
    )  # fmt: skip
    queued["recommended_action"] = queued["priority_tier"].map(
        {"P1": settings.p1_action, "P2": settings.p2_action, "P3": settings.p3_action}
    )
    queued["value_proxy"] = (queued["total_revenue"] * settings.value_proxy_factor).round(2)
    queued["run_date"] = day.isoformat()
    queued = queued.reset_index()
    out = Path(spec["artifacts_dir"]) / "peer" / day.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for tier in ("P1", "P2", "P3"):
        audience = (
            queued[queued["priority_tier"] == tier]
            .sort_values(["priority_score", "customer_id"], ascending=[False, True])
            .head(settings.export_limit)
        )
        audience[AUDIENCE_COLUMNS].to_csv(
            out / f"peer_{tier}.csv", index=False, float_format="%.2f"
        )
        rows[tier] = len(audience)
    counts = queued["priority_tier"].value_counts()
    done = time.perf_counter()
    return {
        "tier_counts": {t: int(counts.get(t, 0)) for t in ("P1", "P2", "P3")},
        "status_counts": {k: int(v) for k, v in facts["retention_status"].value_counts().items()},
        "export_rows": rows,
        "load_seconds": loaded - started,
        "compute_seconds": done - loaded,
    }


def alert_history(spec: dict[str, Any]) -> dict[str, Any]:
    """SQL5 for each of the last ``dates`` days before D, one pandas pass per date.

    The notebook way: for every date, keep the orders up to it, take each customer's last
    order, count the AT_RISK share; then a 7-day baseline over the daily values. With
    ``spec["dates"] < 365`` only the last ``dates`` decisions are computed (the loop's cost
    per date is constant, so the caller extrapolates to 365).
    """
    settings = _settings(spec)
    day = dt.date.fromisoformat(spec["run_date"])
    dates = int(spec.get("dates") or 365)
    k = settings.baseline_days
    started = time.perf_counter()
    orders = load_orders(spec["duckdb_path"], "customer_id, order_date")
    loaded = time.perf_counter()
    orders["customer_id"] = orders["customer_id"].astype("category")
    first_day = orders["order_date"].min()
    values: dict[pd.Timestamp, tuple[int, int]] = {}
    calendar = pd.date_range(end=pd.Timestamp(day), periods=dates + k, freq="D")
    for d in calendar:
        if d < first_day:
            continue  # no snapshot exists before the first order
        last = orders[orders["order_date"] <= d].groupby("customer_id", observed=True)[
            "order_date"
        ].max()
        since = (d - last).dt.days
        at_risk = int(((since > settings.active_days) & (since <= settings.at_risk_days)).sum())
        values[d] = (_round_bp(at_risk, len(last)), len(last))
    rows = []
    warning_bp = round(settings.threshold_warning_pct * 100)
    critical_bp = round(settings.threshold_critical_pct * 100)
    for d in calendar[k:]:
        if d not in values:
            continue
        current_bp, sample = values[d]
        previous = [values.get(d - pd.Timedelta(days=i)) for i in range(1, k + 1)]
        baseline_sum = None if any(p is None for p in previous) else sum(p[0] for p in previous)
        rel_bp = None
        if baseline_sum:
            scaled = k * current_bp - baseline_sum
            sign = 1 if scaled > 0 else -1 if scaled < 0 else 0
            rel_bp = sign * ((20000 * abs(scaled) + baseline_sum) // (2 * baseline_sum))
        severity = (
            "CRITICAL" if rel_bp is not None and rel_bp >= critical_bp
            else "WARNING" if rel_bp is not None and rel_bp >= warning_bp
            else "INFO"
        )  # fmt: skip
        rows.append(
            {
                "alert_date": d.date().isoformat(),
                "current_value": current_bp / 100,
                "baseline_value": None if baseline_sum is None else baseline_sum / (100 * k),
                "delta_relative_pct": None if rel_bp is None else rel_bp / 100,
                "severity": severity,
                "alert_flag": bool(
                    sample >= settings.min_sample_size
                    and baseline_sum is not None
                    and severity in ("WARNING", "CRITICAL")
                ),
                "sample_size": sample,
            }
        )
    done = time.perf_counter()
    return {
        "series": rows,
        "dates": dates,
        "load_seconds": loaded - started,
        "compute_seconds": done - loaded,
    }
