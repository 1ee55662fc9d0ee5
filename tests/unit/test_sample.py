"""The bundled UCI-like sample: deterministic, fast, and shaped like the real data set."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pandas as pd
import pytest

from retentionops.orders import clean_uci, read_uci
from retentionops.sample import COLUMNS, PROMOTIONS, generate_uci_sample, write_sample_csv


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return generate_uci_sample()


@pytest.fixture(scope="module")
def invoices(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.drop_duplicates("InvoiceNo")


@pytest.fixture(scope="module")
def orders(raw: pd.DataFrame) -> pd.DataFrame:
    return clean_uci(raw).orders


def test_same_seed_same_frame_other_seed_differs(raw: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_uci_sample(), raw)
    pd.testing.assert_frame_equal(generate_uci_sample(seed=20101201), raw)
    other = generate_uci_sample(seed=1)
    assert not other.equals(raw)
    assert other["CustomerID"].dropna().unique().tolist() != (
        raw["CustomerID"].dropna().unique().tolist()
    )


def test_fast() -> None:
    start = time.perf_counter()
    generate_uci_sample(seed=7)
    assert time.perf_counter() - start < 3.0


def test_schema(raw: pd.DataFrame) -> None:
    assert list(raw.columns) == COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(raw["InvoiceDate"])
    assert pd.api.types.is_integer_dtype(raw["Quantity"])
    assert pd.api.types.is_float_dtype(raw["UnitPrice"])
    for column in ["InvoiceNo", "StockCode", "Description", "Country"]:
        assert raw[column].map(type).eq(str).all(), column
    ids = raw["CustomerID"].dropna()
    assert ids.map(type).eq(str).all()
    assert ids.str.fullmatch(r"\d{5}").all()
    assert raw["InvoiceNo"].str.fullmatch(r"C?\d{6}").all()


def test_volumes(raw: pd.DataFrame, invoices: pd.DataFrame) -> None:
    assert 4_000 <= raw["CustomerID"].nunique() <= 4_800
    assert 22_000 <= len(invoices) <= 28_000
    lines_per_invoice = len(raw) / len(invoices)
    assert 3 <= lines_per_invoice <= 6


def test_date_range_and_trading_days(raw: pd.DataFrame) -> None:
    days = raw["InvoiceDate"].dt.normalize()
    assert days.min() == pd.Timestamp("2010-12-01")
    assert days.max() == pd.Timestamp("2011-12-09")
    assert not (raw["InvoiceDate"].dt.day_of_week == 5).any()  # no Saturday
    christmas = (days > pd.Timestamp("2010-12-23")) & (days < pd.Timestamp("2011-01-04"))
    assert not christmas.any()
    hours = raw["InvoiceDate"].dt.hour
    assert hours.between(7, 20).all()


def test_shares(raw: pd.DataFrame) -> None:
    cancellation = raw["InvoiceNo"].str.startswith("C")
    assert 0.01 <= cancellation.mean() <= 0.03
    assert (raw.loc[cancellation, "Quantity"] < 0).all()
    assert (raw.loc[~cancellation, "Quantity"] > 0).all()
    assert 0.20 <= raw["CustomerID"].isna().mean() <= 0.30
    uk = raw["Country"].eq("United Kingdom").mean()
    assert 0.80 < uk < 0.95
    assert 4 <= raw["Country"].nunique() <= 15


def test_q4_peak(invoices: pd.DataFrame) -> None:
    day = invoices["InvoiceDate"].dt.normalize()
    per_day = invoices.groupby(day).size()
    months = per_day.index.month
    autumn = per_day[(months == 10) | (months == 11)].mean()
    late_winter = per_day[(months == 2) | (months == 3)].mean()
    assert autumn > 1.3 * late_winter


def test_each_customer_keeps_one_country(raw: pd.DataFrame) -> None:
    assert raw.dropna(subset=["CustomerID"]).groupby("CustomerID")["Country"].nunique().max() == 1


def test_clean_orders_are_plausible(raw: pd.DataFrame, orders: pd.DataFrame) -> None:
    result = clean_uci(raw)
    assert result.rows_read == len(raw)
    assert result.dropped["no_customer_id"] == raw["CustomerID"].isna().sum()
    assert (
        result.dropped["cancellation"]
        == raw["CustomerID"].notna().mul(raw["InvoiceNo"].str.startswith("C")).sum()
    )
    assert 15_000 <= len(orders) <= 21_000
    assert orders["order_id"].is_unique
    assert not orders["order_id"].str.startswith("C").any()
    assert (orders["order_amount"] > 0).all()
    assert orders["order_date"].min() == dt.date(2010, 12, 1)
    assert orders["order_date"].max() == dt.date(2011, 12, 9)
    assert 4_000 <= orders["customer_id"].nunique() <= 4_800


def test_customers_are_heterogeneous_and_arrive_all_year(orders: pd.DataFrame) -> None:
    per_customer = orders.groupby("customer_id").size()
    assert 0.25 <= (per_customer == 1).mean() <= 0.6  # many one-off buyers ...
    assert per_customer.max() >= 30  # ... and a few very frequent ones
    first = pd.to_datetime(orders.groupby("customer_id")["order_date"].min())
    by_month = first.dt.to_period("M").value_counts()
    assert len(by_month) == 13  # new customers every month
    assert by_month.idxmax() == pd.Period("2010-12", "M")  # the existing base shows up first
    last = pd.to_datetime(orders.groupby("customer_id")["order_date"].max())
    repeat = per_customer[per_customer > 1].index
    # drop-out: plenty of repeat customers stop buying long before the end
    assert (last[repeat] < pd.Timestamp("2011-09-01")).mean() > 0.15


@pytest.mark.parametrize(("day", "size"), PROMOTIONS)
def test_promotions_bring_one_off_customers(orders: pd.DataFrame, day: object, size: int) -> None:
    promo = pd.Timestamp(day).date()
    assert promo.weekday() < 5
    per_customer = orders.groupby("customer_id")["order_date"].agg(["min", "max", "size"])
    one_off = (per_customer["min"] == promo) & (per_customer["size"] == 1)
    assert one_off.sum() >= size


def test_sample_csv_round_trips_through_read_uci(tmp_path: Path, orders: pd.DataFrame) -> None:
    path = write_sample_csv(tmp_path / "sample" / "online_retail.csv")
    assert path.exists()
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)
    pd.testing.assert_frame_equal(read_uci(path).orders, orders)
