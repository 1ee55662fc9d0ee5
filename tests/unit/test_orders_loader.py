"""Reading and cleaning orders files: UCI lines and generic orders, with hand-worked numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from retentionops.orders import (
    ORDER_COLUMNS,
    LoadResult,
    OrdersFileError,
    clean_uci,
    load_orders_file,
    read_orders,
    read_uci,
    require_one_row_per_order,
)

UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def uci_frame(rows: list[tuple]) -> pd.DataFrame:
    """Raw UCI lines as text, the way a CSV arrives (InvoiceNo, Quantity, InvoiceDate,
    UnitPrice, CustomerID, Country); StockCode/Description are filler."""
    return pd.DataFrame(
        [
            {
                "InvoiceNo": invoice,
                "StockCode": "85123A",
                "Description": "WHITE HANGING HEART T-LIGHT HOLDER",
                "Quantity": quantity,
                "InvoiceDate": when,
                "UnitPrice": price,
                "CustomerID": customer,
                "Country": country,
            }
            for invoice, quantity, when, price, customer, country in rows
        ],
        dtype=object,
    )


def write_uci_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([UCI_HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def uci_line(invoice: str, when: str, customer: str = "17850", qty: str = "1") -> str:
    return f"{invoice},22752,SET 7 BABUSHKA NESTING BOXES,{qty},{when},7.65,{customer},France"


def as_records(result: LoadResult) -> list[tuple]:
    return list(result.orders.itertuples(index=False, name=None))


# -- cleaning rules ---------------------------------------------------------------------------


def test_clean_uci_applies_each_rule_at_its_edge() -> None:
    raw = uci_frame(
        [
            ("536365", "2", "2010-12-01 08:26:00", "1.25", "17850", "United Kingdom"),
            ("536365", "3", "2010-12-01 08:26:00", "0.5", "17850", "United Kingdom"),
            ("536366", "1", "2010-12-01 08:28:00", "2.0", None, "United Kingdom"),
            ("536366", "1", "2010-12-01 08:28:00", "2.0", "  ", "United Kingdom"),
            ("C536367", "-1", "2010-12-01 09:00:00", "2.0", "17850", "United Kingdom"),
            ("536368", "0", "2010-12-02 10:00:00", "2.0", "13047", "France"),
            ("536368", "1", "2010-12-02 10:00:00", "0", "13047", "France"),
            ("536369", "1", "2010-12-03 11:00:00", "0.01", "13047", "France"),
            ("536369", "-2", "2010-12-03 11:00:00", "3.0", "13047", "France"),
        ]
    )
    result = clean_uci(raw)
    # 536365: 2 * 1.25 + 3 * 0.5 = 4.0; 536368 loses both lines; 536369 keeps 1 * 0.01
    assert as_records(result) == [
        ("17850", "536365", dt.date(2010, 12, 1), 4.0, "United Kingdom"),
        ("13047", "536369", dt.date(2010, 12, 3), 0.01, "France"),
    ]
    assert list(result.orders.columns) == ORDER_COLUMNS
    assert result.rows_read == 9
    assert result.rows_kept == 3
    assert result.dropped == {
        "no_customer_id": 2,
        "cancellation": 1,
        "non_positive_quantity": 2,
        "non_positive_price": 1,
    }


def test_a_line_is_counted_under_its_first_reason_only() -> None:
    raw = uci_frame(
        [
            ("C536370", "-5", "2010-12-01 08:00:00", "0", None, "United Kingdom"),
            ("C536371", "-5", "2010-12-01 08:00:00", "0", "12583", "United Kingdom"),
            ("536372", "1", "2010-12-01 08:00:00", "1.5", "12583", "United Kingdom"),
        ]
    )
    result = clean_uci(raw)
    assert result.dropped == {
        "no_customer_id": 1,
        "cancellation": 1,
        "non_positive_quantity": 0,
        "non_positive_price": 0,
    }
    assert as_records(result) == [("12583", "536372", dt.date(2010, 12, 1), 1.5, "United Kingdom")]


def test_order_takes_the_date_of_its_earliest_line_and_rounds_to_4_decimals() -> None:
    raw = uci_frame(
        [
            ("536380", "3", "2010-12-01 23:59:00", "0.33333", "17850", None),
            ("536380", "1", "2010-12-02 00:01:00", "0.00001", "17850", None),
        ]
    )
    # 3 * 0.33333 + 0.00001 = 1.0, the order belongs to 1 December; no country -> None
    assert as_records(clean_uci(raw)) == [("17850", "536380", dt.date(2010, 12, 1), 1.0, None)]


def test_customer_ids_stay_text_with_leading_zeros_and_lose_a_float_suffix() -> None:
    raw = uci_frame(
        [
            ("536365", "1", "2010-12-01 08:26:00", "1", "00017", "United Kingdom"),
            ("536366", "1", "2010-12-01 08:26:00", "1", "17850.0", "United Kingdom"),
            ("536367", "1", "2010-12-01 08:26:00", "1", "12.5", "United Kingdom"),
        ]
    )
    assert clean_uci(raw).orders["customer_id"].tolist() == ["00017", "17850", "12.5"]

    numeric = raw.assign(CustomerID=[17.0, 17850.0, float("nan")])
    result = clean_uci(numeric)
    assert result.orders["customer_id"].tolist() == ["17", "17850"]
    assert result.dropped["no_customer_id"] == 1


def test_an_invoice_with_two_customers_is_refused() -> None:
    raw = uci_frame(
        [
            ("536365", "1", "2010-12-01 08:26:00", "1", "17850", "United Kingdom"),
            ("536365", "1", "2010-12-01 08:26:00", "1", "13047", "United Kingdom"),
        ]
    )
    with pytest.raises(OrdersFileError, match=r"invoice '536365'.*'13047', '17850'"):
        clean_uci(raw)


# -- UCI files: dates ------------------------------------------------------------------------


def test_dayfirst_csv_is_detected(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "1/12/2010 8:26"), uci_line("536366", "13/12/2010 9:00")],
    )
    result = read_uci(path)
    assert result.orders["order_date"].tolist() == [dt.date(2010, 12, 1), dt.date(2010, 12, 13)]


def test_monthfirst_csv_is_detected(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "12/1/2010 8:26"), uci_line("536366", "12/13/10 9:00")],
    )
    result = read_uci(path)
    assert result.orders["order_date"].tolist() == [dt.date(2010, 12, 1), dt.date(2010, 12, 13)]


def test_ambiguous_day_month_order_is_refused_unless_told(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "1/12/2010 8:26"), uci_line("536366", "2/12/2010 9:00")],
    )
    with pytest.raises(OrdersFileError, match="day-first or month-first") as error:
        read_uci(path)
    assert 'date_format="dayfirst"' in str(error.value)
    assert 'date_format="monthfirst"' in str(error.value)
    assert "uci.csv" in str(error.value)

    dayfirst = read_uci(path, date_format="dayfirst").orders["order_date"].tolist()
    assert dayfirst == [dt.date(2010, 12, 1), dt.date(2010, 12, 2)]
    monthfirst = load_orders_file(path, "uci", date_format="monthfirst").orders
    assert monthfirst["order_date"].tolist() == [dt.date(2010, 1, 12), dt.date(2010, 2, 12)]


def test_override_that_contradicts_the_values_reports_the_bad_date(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "1/12/2010 8:26"), uci_line("536366", "13/12/2010 9:00")],
    )
    with pytest.raises(OrdersFileError, match=r"'13/12/2010 9:00' at data row 2 \(line 3"):
        read_uci(path, date_format="monthfirst")


def test_mixed_day_month_orders_are_refused(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "13/12/2010 8:26"), uci_line("536366", "12/13/2010 9:00")],
    )
    with pytest.raises(OrdersFileError, match="mixes day-first dates"):
        read_uci(path)


def test_unknown_date_format_value_is_refused(tmp_path: Path) -> None:
    path = write_uci_csv(tmp_path / "uci.csv", [uci_line("536365", "2010-12-01 08:26:00")])
    with pytest.raises(OrdersFileError, match="date_format must be one of"):
        read_uci(path, date_format="ymd")


def test_iso_csv_needs_no_detection_and_keeps_ids_as_text(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [
            "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,00017,United Kingdom",
            "536365,71053,LANTERN,6,2010-12-01 08:26:00,3.39,00017,United Kingdom",
            "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",
            "536381,22139,RETROSPOT,1,2010-12-01 09:41:00,4.95,17850.0,",
        ],
    )
    result = read_uci(path)
    # 6 * 2.55 + 6 * 3.39 = 15.30 + 20.34 = 35.64
    assert as_records(result) == [
        ("00017", "536365", dt.date(2010, 12, 1), 35.64, "United Kingdom"),
        ("17850", "536381", dt.date(2010, 12, 1), 4.95, None),
    ]
    assert result.dropped["cancellation"] == 1


def test_latin1_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "uci.csv"
    text = UCI_HEADER + "\n536365,21000,CAFÉ SET,2,2010-12-01 08:26:00,1.5,12345,France\n"
    path.write_bytes(text.encode("latin-1"))
    assert as_records(read_uci(path)) == [("12345", "536365", dt.date(2010, 12, 1), 3.0, "France")]


def test_xlsx_with_real_excel_dates_and_float_ids(tmp_path: Path) -> None:
    path = tmp_path / "Online Retail.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(UCI_HEADER.split(","))
    december, january = dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 1, 13, 9, 0)
    for row in [
        ("536365", "85123A", "HEART", 2, december, 1.25, 17850.0, "United Kingdom"),
        (536365, "71053", "LANTERN", 3, december, 0.5, 17850.0, "United Kingdom"),
        (536366, "22633", "HAND WARMER", 1, january, 1.85, "00017", "EIRE"),
        (536367, "22632", "HAND WARMER", 1, january, 1.85, None, "United Kingdom"),
    ]:
        sheet.append(row)
    book.save(path)

    result = load_orders_file(path, "uci")
    assert as_records(result) == [
        ("17850", "536365", dt.date(2010, 12, 1), 4.0, "United Kingdom"),
        ("00017", "536366", dt.date(2011, 1, 13), 1.85, "EIRE"),
    ]
    assert (result.rows_read, result.rows_kept) == (4, 3)
    assert result.dropped["no_customer_id"] == 1


# -- generic orders --------------------------------------------------------------------------


def test_orders_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "client,order_no,date,total,country\n"
        "00042,A-1,2011-03-04,10.5,France\n"
        "00042,A-1,2011-03-04,10.5,France\n"
        ",A-2,2011-03-05,3,France\n"
        "7,A-3,2011-03-05 17:45:00,2.25,\n",
        encoding="utf-8",
    )
    mapping = {
        "customer_id": "client",
        "order_id": "order_no",
        "order_date": "date",
        "order_amount": "total",
    }
    result = load_orders_file(path, "orders", columns=mapping)
    assert as_records(result) == [
        ("00042", "A-1", dt.date(2011, 3, 4), 10.5, "France"),
        ("7", "A-3", dt.date(2011, 3, 5), 2.25, None),
    ]
    assert result.rows_read == 4
    assert result.rows_kept == 2
    assert result.dropped == {"no_customer_id": 1, "duplicate_order_id": 1}


def test_orders_parquet_keeps_ids_as_text(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    pd.DataFrame(
        {
            "customer_id": ["007", "17850"],
            "order_id": [1002, 1001],
            "order_date": pd.to_datetime(["2011-05-02 13:00", "2011-05-01 08:00"]),
            "order_amount": [12.34567, 100.0],
        }
    ).to_parquet(path)
    result = read_orders(path)
    # sorted by date; 12.34567 -> 12.3457; no country column -> None
    assert as_records(result) == [
        ("17850", "1001", dt.date(2011, 5, 1), 100.0, None),
        ("007", "1002", dt.date(2011, 5, 2), 12.3457, None),
    ]
    assert result.orders["customer_id"].map(type).eq(str).all()


def test_conflicting_order_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,order_id,order_date,order_amount\n"
        "1,X,2011-01-01,5\n"
        "1,Y,2011-01-01,5\n"
        "1,X,2011-01-01,6\n",
        encoding="utf-8",
    )
    with pytest.raises(OrdersFileError, match=r"order_id 'X'.*data row 1 .*data row 3"):
        read_orders(path)


def test_every_loader_gives_one_row_per_order_and_the_load_check_agrees(tmp_path: Path) -> None:
    # UCI: three lines of invoice 1 (two on one day) are one order; 2 is another order
    uci = clean_uci(
        uci_frame(
            [
                ("1", "2", "2011-01-01 09:00", "1.5", "17850", "United Kingdom"),
                ("1", "1", "2011-01-01 09:00", "2", "17850", "United Kingdom"),
                ("1", "3", "2011-01-01 10:00", "1", "17850", "United Kingdom"),
                ("2", "1", "2011-01-01 11:00", "4", "17850", "United Kingdom"),
            ]
        )
    ).orders
    assert uci["order_id"].tolist() == ["1", "2"]
    require_one_row_per_order(uci)  # passes: nothing is repeated
    # generic orders: an exact repeat is dropped, the rest kept
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,order_id,order_date,order_amount\n1,X,2011-01-01,5\n1,X,2011-01-01,5\n",
        encoding="utf-8",
    )
    require_one_row_per_order(read_orders(path).orders)
    # a frame built by other code, with X twice, is refused with the id and its rows
    frame = pd.DataFrame({"order_id": ["X", "Y", "X"], "customer_id": ["1", "1", "2"]})
    with pytest.raises(OrdersFileError, match=r"order_id 'X' appears 2 times \(rows 1, 3 "):
        require_one_row_per_order(frame)


# -- errors ----------------------------------------------------------------------------------


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(OrdersFileError, match="missing.csv: file not found"):
        load_orders_file(tmp_path / "missing.csv", "uci")


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("data.json", "orders", r"unsupported file type '\.json'.*\.csv, \.parquet"),
        ("data.xls", "uci", r"'\.xls'.*Save \.xls workbooks as \.xlsx"),
        ("data.parquet", "uci", r"'\.parquet'.*\.csv, \.xlsx"),
    ],
)
def test_unsupported_extension(tmp_path: Path, name: str, fmt: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text("x", encoding="utf-8")
    with pytest.raises(OrdersFileError, match=expected):
        load_orders_file(path, fmt)


def test_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(OrdersFileError, match="empty.csv: the file is empty"):
        read_uci(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("customer_id,order_id,order_date,order_amount\n", encoding="utf-8")
    with pytest.raises(OrdersFileError, match="header.csv: the file has no data rows"):
        read_orders(header_only)
    workbook = tmp_path / "header.xlsx"
    book = openpyxl.Workbook()
    book.active.append(UCI_HEADER.split(","))
    book.save(workbook)
    with pytest.raises(OrdersFileError, match="no data rows"):
        read_uci(workbook)


def test_missing_uci_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "uci.csv"
    path.write_text("InvoiceNo,Quantity,InvoiceDate,UnitPrice\n1,1,2010-12-01,1\n", "utf-8")
    with pytest.raises(
        OrdersFileError,
        match=r"'CustomerID' not found; the columns found are: 'InvoiceNo', 'Quantity'",
    ):
        read_uci(path)


def test_missing_orders_column_mentions_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("client,order_id,order_date,order_amount\n1,A,2011-01-01,2\n", "utf-8")
    with pytest.raises(OrdersFileError) as error:
        read_orders(path)
    message = str(error.value)
    assert "'customer_id' not found" in message
    assert "'client', 'order_id', 'order_date', 'order_amount'" in message
    assert 'columns={"customer_id": "client"' in message
    with pytest.raises(OrdersFileError, match=r"'customer_id' \(mapped to 'buyer'\) not found"):
        read_orders(path, columns={"customer_id": "buyer"})
    with pytest.raises(OrdersFileError, match=r"unknown key\(s\) \['client'\]"):
        read_orders(path, columns={"client": "customer_id"})


def test_unparseable_date_shows_value_and_row(tmp_path: Path) -> None:
    path = write_uci_csv(
        tmp_path / "uci.csv",
        [uci_line("536365", "2010-12-01 08:26:00"), uci_line("536366", "yesterday")],
    )
    with pytest.raises(
        OrdersFileError, match=r"'InvoiceDate'.*not a date: 'yesterday' at data row 2 \(line 3"
    ):
        read_uci(path)
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer_id,order_id,order_date,order_amount\n1,A,2011-01-01,2\n1,B,2011-02-30,2\n",
        "utf-8",
    )
    with pytest.raises(OrdersFileError, match=r"'order_date'.*'2011-02-30' at data row 2"):
        read_orders(orders)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                uci_line("536365", "2010-12-01 08:26:00", qty="2"),
                uci_line("536366", "2010-12-01 08:26:00", qty="two"),
            ],
            r"'Quantity' must be numeric but has 'two' at data row 2 \(line 3",
        ),
        (
            [uci_line("536365", "2010-12-01 08:26:00").replace(",7.65,", ",£7.65,")],
            r"'UnitPrice' must be numeric but has '£7.65' at data row 1 \(line 2",
        ),
        (
            [uci_line("536365", "2010-12-01 08:26:00", qty="")],
            r"'Quantity' must be numeric but has an empty cell at data row 1",
        ),
    ],
)
def test_non_numeric_quantity_or_price(tmp_path: Path, lines: list[str], expected: str) -> None:
    with pytest.raises(OrdersFileError, match=expected):
        read_uci(write_uci_csv(tmp_path / "uci.csv", lines))


def test_non_numeric_amount(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,order_id,order_date,order_amount\n1,A,2011-01-01,2\n1,B,2011-01-02,12,5\n",
        "utf-8",
    )
    with pytest.raises(OrdersFileError):  # 5 fields in a 4-column file
        read_orders(path)
    path.write_text(
        'customer_id,order_id,order_date,order_amount\n1,A,2011-01-01,2\n1,B,2011-01-02,"12,5"\n',
        "utf-8",
    )
    with pytest.raises(
        OrdersFileError, match=r"'order_amount' must be numeric.*'12,5' at data row 2"
    ):
        read_orders(path)


def test_unknown_format_names_the_allowed_values(tmp_path: Path) -> None:
    path = write_uci_csv(tmp_path / "uci.csv", [uci_line("536365", "2010-12-01 08:26:00")])
    with pytest.raises(OrdersFileError, match=r"unknown orders file format 'csv'.*'uci', 'orders'"):
        load_orders_file(path, "csv")
    with pytest.raises(OrdersFileError, match="fmt='orders' only"):
        load_orders_file(path, "uci", columns={"customer_id": "CustomerID"})


def test_errors_are_value_errors() -> None:
    assert issubclass(OrdersFileError, ValueError)
