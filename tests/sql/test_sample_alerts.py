"""The bundled sample through the real SQL: the documented dates, and order independence."""

from __future__ import annotations

import datetime as dt

import pytest

from retentionops import detection
from retentionops.cli import main
from retentionops.orders import clean_uci
from retentionops.sample import generate_uci_sample


@pytest.fixture(scope="module")
def sample_orders():
    return clean_uci(generate_uci_sample()).orders


@pytest.fixture
def sample_warehouse(warehouse, sample_orders):
    warehouse.replace_orders(sample_orders)
    return warehouse


def test_documented_dates(sample_warehouse, settings):
    rows = detection.alert_series(
        sample_warehouse, settings, dt.date(2010, 12, 1), dt.date(2011, 12, 9)
    )
    by_date = {r["alert_date"]: r for r in rows}
    assert len(rows) == 374  # every calendar day of the sample
    # warm-up: fewer than 7 previous days -> no baseline, no alert
    warm_up = [by_date[f"2010-12-0{d}"]["baseline_value"] for d in range(1, 8)]
    assert warm_up == [None] * 7 and by_date["2010-12-08"]["baseline_value"] is not None
    critical = by_date["2011-05-13"]
    assert (critical["severity"], critical["alert_flag"]) == ("CRITICAL", True)
    warning = by_date["2011-09-09"]
    assert (warning["severity"], warning["alert_flag"]) == ("WARNING", True)
    assert by_date["2011-05-12"]["alert_flag"] is False
    assert by_date["2011-07-01"]["alert_flag"] is False
    alert_days = sorted(d for d, r in by_date.items() if r["alert_flag"] and d > "2011-02-01")
    assert alert_days == [
        "2011-05-13", "2011-05-14", "2011-05-15", "2011-05-16",
        "2011-09-09", "2011-09-10", "2011-09-11",
    ]  # fmt: skip


def test_same_rows_in_order_in_reverse_and_as_a_series(settings, sample_orders, tmp_path, capsys):
    # Load the sample as a generic orders CSV, as a user would with their own data.
    path = tmp_path / "orders.csv"
    sample_orders.drop(columns=["country"]).to_csv(path, index=False)
    assert main(["load-orders", str(path), "--format", "orders"]) == 0
    capsys.readouterr()

    from retentionops.warehouse import open_warehouse

    days = [dt.date(2011, 5, 6) + dt.timedelta(days=i) for i in range(14)]

    def one_at_a_time(order):
        with open_warehouse(settings) as wh:
            return {d.isoformat(): detection.run_detection(wh, settings, d) for d in order}

    forward = one_at_a_time(days)
    backward = one_at_a_time(reversed(days))
    with open_warehouse(settings) as wh:
        rows = detection.alert_series(wh, settings, days[0], days[-1])
    series = {r["alert_date"]: r for r in rows}
    assert forward == backward == series
    assert forward["2011-05-13"]["severity"] == "CRITICAL"
