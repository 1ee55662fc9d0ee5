"""Can a run for D trust the orders it reads? The feed's freshness and volume, in one place.

A late orders feed is not a quiet day: every customer ages without new orders, the AT_RISK
share climbs, and SQL5 (whose 7-day baseline climbs with it) may say INFO for weeks. So every
decision carries ``data_freshness`` (``include/sql/detection/orders_freshness.sql``, read
here against the settings), and while the feed is late or short no incident event is sent
(:func:`hold`): nothing opens, escalates, de-escalates or resolves on such a day, and the
brief, the log row and health say so. The DAG waits for D's orders before detection
(``wait_for_orders``) and fails red when they do not come.

- ``status``: ``missing`` (no orders at all), ``late`` (more than ``orders_max_lag_days``
  trading days between the feed's newest order and D; a weekday counts as trading when it
  had orders in the feed's last four weeks, so a Saturday without trading is not late),
  else ``fresh``.
- ``volume``: D's orders against the same weekday 1-4 weeks before (their mean without the
  highest and lowest week, so one promotion day does not make a month look short): ``low``
  below ``orders_volume_low_pct`` % of it, ``high`` above ``orders_volume_high_pct`` %,
  else ``normal`` (also when there is no earlier week to compare with).
- ``trusted``: fresh and not low. ``high`` is said, not held: more orders make nobody
  look at risk.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from retentionops.dates import as_date
from retentionops.settings import Settings
from retentionops.warehouse import Warehouse

WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


@with_config(ConfigDict(extra="allow"))  # an MCP output shape (results.py)
class Freshness(TypedDict):
    run_date: str
    orders_last_date: str | None
    lag_days: int | None
    trading_days_missing: int
    status: str  # fresh | late | missing
    orders_on_day: int
    usual_orders: float | None
    volume: str  # normal | low | high
    trusted: bool
    note: str | None  # what a person reads when it is not trusted (or the volume is high)


def orders_freshness(warehouse: Warehouse, settings: Settings, day: dt.date) -> Freshness:
    """The feed as a run for ``day`` finds it (one query over the orders' summary)."""
    [row] = warehouse.query("detection/orders_freshness", {"run_date": day})
    return judge(settings, day, row)


def judge(settings: Settings, day: dt.date, row: dict[str, Any]) -> Freshness:
    """The words for one row of orders_freshness.sql under the settings."""
    last = row.get("orders_last_date")
    orders = int(row.get("orders_on_day") or 0)
    usual = row.get("usual_orders")
    usual = None if usual is None else round(float(usual), 1)
    missing_days = int(row.get("trading_days_missing") or 0)
    if last is None:
        status = "missing"
    elif missing_days > settings.orders_max_lag_days:
        status = "late"
    else:
        status = "fresh"
    if usual is None or (usual == 0 and orders == 0):
        volume = "normal"
    elif orders < usual * settings.orders_volume_low_pct / 100:
        volume = "low"
    elif orders > usual * settings.orders_volume_high_pct / 100:
        volume = "high"
    else:
        volume = "normal"
    freshness: Freshness = {
        "run_date": day.isoformat(),
        "orders_last_date": as_date(last).isoformat() if last is not None else None,
        "lag_days": int(row["lag_days"]) if row.get("lag_days") is not None else None,
        "trading_days_missing": missing_days,
        "status": status,
        "orders_on_day": orders,
        "usual_orders": usual,
        "volume": volume,
        "trusted": status == "fresh" and volume != "low",
        "note": None,
    }
    freshness["note"] = note(freshness, day)
    return freshness


def note(freshness: Freshness, day: dt.date) -> str | None:
    """One line a person reads: 'data late: …' / 'data short: …' (None: nothing to say)."""
    weekday = WEEKDAYS[day.weekday()]
    if freshness["status"] == "missing":
        return "data late: the warehouse holds no orders; load them (retentionops load-orders)"
    if freshness["status"] == "late":
        return (
            f"data late — orders feed late: last order {freshness['orders_last_date']}, "
            f"{freshness['lag_days']} day(s) before {day} "
            f"({freshness['trading_days_missing']} trading day(s) missing)"
        )
    usual = freshness["usual_orders"]
    if freshness["volume"] == "low":
        return (
            f"data short: {freshness['orders_on_day']:,} orders on {day} against a usual "
            f"{usual:,.0f} on {weekday}"
        )
    if freshness["volume"] == "high":
        return (
            f"orders high: {freshness['orders_on_day']:,} orders on {day} against a usual "
            f"{usual:,.0f} on {weekday}"
        )
    return None


def held_reason(freshness: Freshness | None) -> str | None:
    """Why a run sends no event on this data (None: the data can be trusted)."""
    if freshness is None or freshness["trusted"]:
        return None
    return (
        f"{freshness['note']}: no incident is opened, changed or closed on it; run the date "
        "again once the orders are in (or send anyway: trigger --allow-late-data)"
    )
