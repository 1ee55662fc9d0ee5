"""A deterministic, UCI "Online Retail"-like sample of raw invoice lines.

``generate_uci_sample(seed)`` returns raw lines in the UCI schema (``InvoiceNo, StockCode,
Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country``) for 2010-12-01 to
2011-12-09, so the whole pipeline can run without downloading the real file. Everything is
vectorised with numpy (about 0.3 s) and the same seed always gives the same frame.

What it imitates from the real data set:

* about 4,400 customers with an id and about 25,000 invoices; about 90 % of the lines are from
  the United Kingdom, the rest from a few European countries;
* no trading on Saturdays and none between Christmas and the first working days of January
  (last day 2010-12-23, first day 2011-01-04); busier on Thursdays, quieter on Sundays;
  a Q4 peak (more invoices per day in October-November than in February-March) on top of a
  slowly growing business;
* several product lines per invoice; about 2 % of the lines are cancellations (``InvoiceNo``
  ``'C' + number``, negative ``Quantity``); about 25 % of the lines have no ``CustomerID``
  (guest orders); a handful of free (``UnitPrice`` 0) lines;
* customers as in a Pareto/NBD model: gamma-distributed purchase rates, an exponential
  lifetime after which a customer stops buying, an existing base active from the first day
  and new customers arriving all year (their first purchase is their arrival).

Two incidents make the retention alert (AT_RISK share against its 7-day baseline) fire:
one-day promotions that bring a cohort of new customers who buy that day only and never come
back. Thirty-one days later the whole cohort becomes AT_RISK at once:

* ``PROMOTIONS[0]`` - 2011-04-12 (Tuesday), 330 one-off customers: the jump on 2011-05-13 is
  CRITICAL and its tail is WARNING;
* ``PROMOTIONS[1]`` - 2011-08-09 (Tuesday), 130 one-off customers: a WARNING on 2011-09-09.

``CustomerID`` is a string of digits (like ``'17850'``) or missing; ``InvoiceNo`` and
``StockCode`` are strings; ``InvoiceDate`` is ``datetime64`` to the minute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SEED = 20101201
FIRST_DAY = np.datetime64("2010-12-01", "D")
LAST_DAY = np.datetime64("2011-12-09", "D")
FIRST_INVOICE_NO = 536365
COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]

# Shop closed (besides Saturdays): the Christmas break, as in the real data set.
CLOSED = (np.datetime64("2010-12-24", "D"), np.datetime64("2011-01-03", "D"))
# Relative traffic Monday .. Sunday (no trading on Saturday).
WEEKDAY_WEIGHTS = np.array([1.0, 1.05, 1.05, 1.2, 0.85, 0.0, 0.75])
# One-day promotions: (date, number of one-off new customers).
PROMOTIONS = (
    (np.datetime64("2011-04-12", "D"), 330),
    (np.datetime64("2011-08-09", "D"), 130),
)

# Customer model (rates are orders per day at average traffic).
EXISTING_CUSTOMERS = 1_850
NEW_CUSTOMERS = 2_800
RATE_SHAPE = 0.55
RATE_MEAN = 1 / 45
MEAN_LIFETIME_DAYS = 330
# Other invoices.
GUEST_INVOICES = 5_000
CANCELLATION_SHARE = 0.08  # of the customer invoices
FREE_LINE_SHARE = 0.0005

UK = "United Kingdom"
OTHER_COUNTRIES = np.array(
    [
        "Germany",
        "France",
        "EIRE",
        "Spain",
        "Netherlands",
        "Belgium",
        "Switzerland",
        "Portugal",
        "Norway",
        "Italy",
    ]
)
OTHER_COUNTRY_WEIGHTS = np.array([24, 22, 18, 7, 6, 6, 5, 4, 4, 4], dtype=float)

_COLOURS = [
    "WHITE",
    "RED",
    "PINK",
    "BLUE",
    "GREEN",
    "IVORY",
    "CREAM",
    "BLACK",
    "SILVER",
    "VINTAGE",
    "RETROSPOT",
    "PAISLEY",
]
_THEMES = [
    "HANGING HEART",
    "REGENCY",
    "JUMBO",
    "PARTY",
    "CHRISTMAS",
    "GARDEN",
    "BAROQUE",
    "SPOTTY",
    "STAR",
    "BIRD",
    "DOLLY GIRL",
    "SPACEBOY",
    "WOODLAND",
    "FLORAL",
]
_ITEMS = [
    "T-LIGHT HOLDER",
    "LUNCH BAG",
    "CAKE CASES",
    "TEACUP AND SAUCER",
    "BUNTING",
    "SHOPPER BAG",
    "ALARM CLOCK",
    "NAPKINS",
    "PHOTO FRAME",
    "CANDLE",
    "MUG",
    "NOTEBOOK",
    "DOORMAT",
    "CUSHION COVER",
    "STORAGE TIN",
    "WATER BOTTLE",
]


def _catalogue(size: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stock codes, descriptions, prices and popularity; identical for every seed."""
    rng = np.random.default_rng(7)
    numbers = rng.choice(np.arange(10_002, 90_000), size=size, replace=False)
    suffix = np.where(rng.random(size) < 0.2, rng.choice(list("ABCDEFGLNPSW"), size), "")
    codes = np.char.add(numbers.astype(str), suffix).astype(object)
    words = (
        rng.choice(_COLOURS, size).astype(object)
        + " "
        + rng.choice(_THEMES, size).astype(object)
        + " "
        + rng.choice(_ITEMS, size).astype(object)
    )
    prices = np.round(np.clip(rng.lognormal(np.log(2.1), 0.75, size), 0.19, 40.0), 2)
    popularity = 1 / np.arange(1, size + 1) ** 0.8
    return codes, words, prices, popularity / popularity.sum()


def _day_weights() -> np.ndarray:
    """Relative number of invoices per calendar day, 0 on closed days."""
    days = np.arange(FIRST_DAY, LAST_DAY + 1)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1 + 0.35 * np.cos(2 * np.pi * (day_of_year - 320) / 365.25)  # peak mid-November
    trend = 0.85 + 0.3 * np.arange(days.size) / (days.size - 1)
    weights = WEEKDAY_WEIGHTS[weekday] * season * trend
    weights[(days >= CLOSED[0]) & (days <= CLOSED[1])] = 0.0
    return weights / weights[weights > 0].mean()


def _sample_times(
    rng: np.random.Generator, cum: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Times in [start, end) (days, float) with density proportional to the day weights."""
    edges = np.arange(cum.size, dtype=float)
    low = np.interp(start, edges, cum)
    high = np.interp(end, edges, cum)
    target = low + rng.random(start.size) * (high - low)
    day = np.minimum(np.searchsorted(cum[1:], target, side="left"), cum.size - 2)
    width = cum[day + 1] - cum[day]
    frac = np.divide(target - cum[day], width, out=np.zeros_like(target), where=width > 0)
    return day + np.clip(frac, 0.0, 0.999)


def generate_uci_sample(seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Raw invoice lines in the UCI "Online Retail" schema; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    weights = _day_weights()
    n_days = weights.size
    cum = np.concatenate([[0.0], np.cumsum(weights)])

    # -- customers -----------------------------------------------------------------------
    n_existing, n_new = EXISTING_CUSTOMERS, NEW_CUSTOMERS
    n_regular = n_existing + n_new
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN / RATE_SHAPE, n_regular)
    arrival = np.zeros(n_regular)
    arrival[n_existing:] = _sample_times(rng, cum, np.zeros(n_new), np.full(n_new, float(n_days)))
    lifetime = rng.exponential(MEAN_LIFETIME_DAYS, n_regular)
    leave = np.minimum(arrival + lifetime, n_days)
    expected = rate * (
        np.interp(leave, np.arange(n_days + 1), cum)
        - np.interp(arrival, np.arange(n_days + 1), cum)
    )
    repeat_orders = rng.poisson(expected)
    # existing customers: Poisson orders in their window; new ones: first order on arrival
    is_new = np.arange(n_regular) >= n_existing
    repeat_owner = np.repeat(np.arange(n_regular), repeat_orders)
    repeat_time = _sample_times(rng, cum, arrival[repeat_owner], leave[repeat_owner])
    new_owner = np.flatnonzero(is_new)
    promo_days = np.array([int((day - FIRST_DAY).astype(np.int64)) for day, _ in PROMOTIONS])
    promo_sizes = np.array([size for _, size in PROMOTIONS])
    n_promo = int(promo_sizes.sum())
    promo_owner = n_regular + np.arange(n_promo)
    promo_time = np.repeat(promo_days, promo_sizes) + rng.uniform(0.0, 0.999, n_promo)
    n_customers = n_regular + n_promo

    order_owner = np.concatenate([new_owner, repeat_owner, promo_owner])
    order_time = np.concatenate([arrival[new_owner], repeat_time, promo_time])

    pool = np.arange(12_346, 12_346 + max(6_000, int(n_customers * 1.3)))
    customer_ids = rng.choice(pool, n_customers, replace=False).astype(str).astype(object)
    foreign = rng.random(n_customers) >= 0.88
    customer_country = np.full(n_customers, UK, dtype=object)
    customer_country[foreign] = rng.choice(
        OTHER_COUNTRIES, int(foreign.sum()), p=OTHER_COUNTRY_WEIGHTS / OTHER_COUNTRY_WEIGHTS.sum()
    )

    # -- invoices: customer orders, guest orders, cancellations --------------------------
    n_orders = order_owner.size
    n_guest = GUEST_INVOICES
    guest_time = _sample_times(rng, cum, np.zeros(n_guest), np.full(n_guest, float(n_days)))
    cancelled = np.flatnonzero(rng.random(n_orders) < CANCELLATION_SHARE)
    n_cancel = cancelled.size

    day = np.floor(np.concatenate([order_time, guest_time, order_time[cancelled]])).astype(np.int64)
    minute = np.clip(np.round(rng.normal(12.5 * 60, 130, day.size)), 7 * 60 + 30, 20 * 60)
    minute = minute.astype(np.int64)
    minute[n_orders + n_guest :] = np.minimum(
        minute[cancelled] + rng.integers(5, 180, n_cancel), 20 * 60 + 59
    )
    kind = np.concatenate(
        [np.zeros(n_orders, np.int8), np.ones(n_guest, np.int8), np.full(n_cancel, 2, np.int8)]
    )
    owner = np.concatenate([order_owner, np.full(n_guest, -1), order_owner[cancelled]])
    guest_foreign = rng.random(n_guest) >= 0.97
    guest_country = np.full(n_guest, UK, dtype=object)
    guest_country[guest_foreign] = rng.choice(OTHER_COUNTRIES, int(guest_foreign.sum()))

    country = np.empty(day.size, dtype=object)
    has_owner = owner >= 0
    country[has_owner] = customer_country[owner[has_owner]]
    country[~has_owner] = guest_country
    cust = np.full(day.size, None, dtype=object)
    cust[has_owner] = customer_ids[owner[has_owner]]

    # invoice numbers follow time, as in the real file
    timestamp = day * 24 * 60 + minute
    order = np.lexsort((rng.random(day.size), timestamp))
    number = np.empty(day.size, np.int64)
    number[order] = FIRST_INVOICE_NO + np.arange(day.size)
    invoice_no = number.astype(str).astype(object)
    invoice_no[kind == 2] = "C" + invoice_no[kind == 2]
    invoice_date = FIRST_DAY.astype("datetime64[s]") + (timestamp * 60).astype("timedelta64[s]")

    # -- lines ---------------------------------------------------------------------------
    n_lines = np.where(
        kind == 0,
        1 + rng.poisson(3.2, day.size),
        np.where(kind == 1, 1 + rng.poisson(4.2, day.size), 1 + rng.poisson(0.6, day.size)),
    )
    invoice_of_line = np.repeat(np.arange(day.size), n_lines)
    total = invoice_of_line.size
    codes, descriptions, prices, popularity = _catalogue()
    product = rng.choice(codes.size, total, p=popularity)
    quantity = rng.choice(
        np.array([1, 2, 3, 4, 6, 8, 10, 12, 24, 48]),
        total,
        p=np.array([18, 14, 8, 8, 12, 5, 5, 18, 9, 3]) / 100,
    ).astype(np.int64)
    is_cancel = kind[invoice_of_line] == 2
    quantity[is_cancel] = -quantity[is_cancel]
    price = prices[product].copy()
    price[rng.random(total) < FREE_LINE_SHARE] = 0.0

    frame = pd.DataFrame(
        {
            "InvoiceNo": invoice_no[invoice_of_line],
            "StockCode": codes[product],
            "Description": descriptions[product],
            "Quantity": quantity,
            "InvoiceDate": invoice_date[invoice_of_line],
            "UnitPrice": price,
            "CustomerID": cust[invoice_of_line],
            "Country": country[invoice_of_line],
        }
    )
    frame = frame.iloc[np.argsort(number[invoice_of_line], kind="stable")]
    return frame.reset_index(drop=True)[COLUMNS]


def write_sample_csv(path: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the sample as a UCI-style CSV (ISO datetimes, empty CustomerID when missing)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    generate_uci_sample(seed).to_csv(target, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return target
