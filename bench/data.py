"""Synthetic orders, generated with numpy (seeded, vectorised) and cached as a DuckDB file.

Model (per customer, all draws from one ``numpy.random.Generator`` seeded by ``seed`` and
the size, so a size always yields the same orders):

* first order day ``start`` in the 2-year window, skewed early (``730 * u**1.6``), so most
  customers have long histories and a few are brand new;
* 40 % drop out at a uniform time between ``start`` and the end of the window (some of them
  inside the last 30 / 90 days: these become ACTIVE or AT_RISK with a frequency drop, i.e.
  P1 / P2); the rest keep ordering until the end;
* number of orders ``1 + NegBin`` with a heterogeneous (gamma) rate, mean about 20;
* order days uniform over the customer's active span (a Poisson process given its count),
  so gaps vary and several orders on one day happen; amounts log-normal per order around a
  customer-level mean;
* one promotion day 150 days before D, on which 35 % of the customers active then order:
  31 days later those who have not ordered since turn AT_RISK together, so the year of
  alert history holds WARNING and CRITICAL days, not only INFO.

The orders table is created with the product's own DDL (``include/sql/ddl``), so the
benchmark warehouse is exactly what ``replace_orders`` would produce; strings (ids,
country) are formatted inside DuckDB from integer columns, which keeps 20 M rows fast.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import numpy as np

#: Bump when the model or the orders DDL changes: cached files carry it in their name.
#: 3: the orders table carries its primary key (order_id), as the product's DDL says.
#: 4: the orders' summaries (first_orders, cohort_activity) built, as every load keeps them.
#: 5: cohort_activity carries last_active_date and orders (the orders' range).
GENERATOR_VERSION = 5
WINDOW_DAYS = 730
START_DATE = dt.date(2024, 1, 1)
#: The benchmark's run date D: the last day of the window (every order is on or before it).
RUN_DATE = START_DATE + dt.timedelta(days=WINDOW_DAYS - 1)
COUNTRIES = ("United Kingdom", "Germany", "France", "Spain", "Netherlands", "Ireland")
DEFAULT_SEED = 20240101
MEAN_ORDERS = 20
PROMO_DAY = WINDOW_DAYS - 1 - 150


def cache_file(cache_dir: Path, customers: int, seed: int = DEFAULT_SEED) -> Path:
    return cache_dir / f"orders_{customers}_s{seed}_v{GENERATOR_VERSION}.duckdb"


def generate_arrays(customers: int, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Integer/float columns of the orders (customer index, day offset, amount)."""
    rng = np.random.default_rng([seed, customers])
    n = customers
    start = np.floor(WINDOW_DAYS * rng.random(n) ** 1.6).astype(np.int32)
    drops = rng.random(n) < 0.40
    end = np.full(n, WINDOW_DAYS - 1, dtype=np.int32)
    lifetime = (WINDOW_DAYS - 1 - start).astype(np.float64)
    end[drops] = start[drops] + np.floor(rng.random(drops.sum()) * (lifetime[drops] + 1)).astype(
        np.int32
    )
    # heterogeneous rates: orders = 1 + Poisson(gamma-distributed mean), overall mean ~20
    rate = rng.gamma(shape=1.5, scale=(MEAN_ORDERS - 1) / 1.5, size=n)
    counts = 1 + rng.poisson(rate)
    customer = np.repeat(np.arange(n, dtype=np.int64), counts)
    span = (end - start + 1)[customer]
    day = start[customer] + np.floor(rng.random(customer.size) * span).astype(np.int32)
    # a one-day promotion 150 days before D: 35 % of the customers active then order that day;
    # those who do not come back turn AT_RISK together 31 days later (WARNING/CRITICAL days)
    live = np.flatnonzero((start <= PROMO_DAY) & (end >= PROMO_DAY))
    promo = np.sort(live[rng.random(live.size) < 0.35])
    order = np.argsort(np.concatenate([customer, promo]), kind="stable")
    customer = np.concatenate([customer, promo])[order]
    day = np.concatenate([day, np.full(promo.size, PROMO_DAY, dtype=day.dtype)])[order]
    mean_amount = rng.lognormal(mean=3.6, sigma=0.6, size=n)
    amount = np.round(mean_amount[customer] * rng.lognormal(0.0, 0.35, customer.size), 2)
    return {"customer": customer, "day": day.astype(np.int32), "amount": amount}


def build(path: Path, customers: int, seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Write a DuckDB file holding the product's ``orders`` table for ``customers``."""
    import duckdb
    import pandas as pd

    from retentionops.settings import load_settings
    from retentionops.sql import render, to_duckdb

    started = time.perf_counter()
    cols = generate_arrays(customers, seed)
    frame = pd.DataFrame(cols)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    settings = load_settings(duckdb_path=str(partial))
    con = duckdb.connect(str(partial))
    try:
        con.execute("set enable_progress_bar = false")
        con.execute(to_duckdb(render("ddl/create_orders", settings)))
        con.register("generated", frame)
        countries = ", ".join(f"'{c}'" for c in COUNTRIES)
        con.execute(
            f"""
            insert into orders by name
            select
                'C' || lpad(cast(customer as varchar), 7, '0') as customer_id,
                'O' || lpad(cast(row_number() over (order by customer, day, amount) as varchar),
                            9, '0') as order_id,
                date '{START_DATE.isoformat()}' + cast(day as integer) as order_date,
                cast(amount as decimal(38, 9)) as order_amount,
                -- one country per customer; 2 % of customers have none (the UCI data has gaps)
                case when customer % 50 = 7 then null
                     else ([{countries}])[1 + customer % {len(COUNTRIES)}] end as country
            from generated
            order by customer, day
            """
        )
        con.unregister("generated")
        (rows,) = con.execute("select count(*) from orders").fetchone()
        con.execute("checkpoint")
    finally:
        con.close()
    # the orders' summaries, by the product's own statements: opening a warehouse whose
    # orders have none builds them (what a load does)
    from retentionops.warehouse import open_warehouse

    summarised = time.perf_counter()
    with open_warehouse(settings) as warehouse:
        warehouse.con.execute("checkpoint")
    partial.replace(path)
    return {
        "orders": int(rows),
        "seconds": time.perf_counter() - started,
        "summaries_seconds": time.perf_counter() - summarised,
    }


def ensure_cached(cache_dir: Path, customers: int, seed: int = DEFAULT_SEED) -> tuple[Path, dict]:
    """Return the cached orders file for the size, generating it on first use."""
    path = cache_file(cache_dir, customers, seed)
    if path.exists():
        return path, {"generated": False}
    info = build(path, customers, seed)
    return path, {"generated": True, **info}


def working_copy(cached: Path, work_dir: Path) -> Path:
    """Copy the pristine cached file to a scratch warehouse the steps may write to."""
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "bench.duckdb"
    for stale in work_dir.glob("bench.duckdb*"):
        stale.unlink()
    shutil.copyfile(cached, target)
    return target
