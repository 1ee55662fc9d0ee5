"""Read and clean orders files into one row per order (no warehouse code here).

Two input formats:

* ``uci`` - raw lines of the UCI "Online Retail" data set (``InvoiceNo, StockCode, Description,
  Quantity, InvoiceDate, UnitPrice, CustomerID, Country``) as ``.xlsx`` or ``.csv``;
  ``clean_uci`` turns them into orders.
* ``orders`` - a generic orders file (``.csv`` or ``.parquet``) with one row per order and
  columns ``customer_id, order_id, order_date, order_amount`` (+ optional ``country``);
  ``columns`` maps these names to the file's own names.

Every result is a ``LoadResult`` whose ``orders`` frame has exactly the columns of
``ORDER_COLUMNS``, one row per ``order_id``, sorted by ``order_date`` then ``order_id``:

* ``customer_id`` - ``str`` (pandas string dtype), never a number: leading zeros are kept and a
  float-like id such as ``'17850.0'`` (Excel, float exports) becomes ``'17850'``;
* ``order_id`` - ``str`` (pandas string dtype);
* ``order_date`` - Python ``datetime.date`` objects (object dtype; DuckDB reads them as DATE);
* ``order_amount`` - ``float64`` rounded to 4 decimals;
* ``country`` - ``str`` or ``None`` (object dtype).

Every problem the user can fix raises ``OrdersFileError`` (a ``ValueError``) whose message
names the file, the column, the first bad value and its row, and says what to do. Row numbers
are 1-based data rows; in a CSV or Excel file with a header, data row N is on line N + 1.

Dates given as text: ISO dates (``2010-12-01 08:26:00``) need no detection. Day/month dates
(``1/12/2010 8:26``) are read day-first or month-first as the values prove it (a first part
> 12 proves day-first, a second part > 12 proves month-first); when no value decides, the file
is refused unless ``date_format="dayfirst"`` or ``"monthfirst"`` is passed. Real Excel dates
need nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retentionops import progress
from retentionops.errors import UserError

ORDER_COLUMNS = ["customer_id", "order_id", "order_date", "order_amount", "country"]
REQUIRED_ORDER_COLUMNS = ["customer_id", "order_id", "order_date", "order_amount"]
UCI_REQUIRED_COLUMNS = ["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
UCI_TEXT_COLUMNS = ["InvoiceNo", "StockCode", "CustomerID"]
DATE_FORMATS = ("dayfirst", "monthfirst")
FORMATS = ("uci", "orders")
UCI_EXTENSIONS = (".csv", ".xlsx")
ORDERS_EXTENSIONS = (".csv", ".parquet")

_DMY = (
    r"^\s*(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<year>\d{2}|\d{4})"
    r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?)?\s*$"
)
_ISO = r"^\s*\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*$"
_FLOAT_ID = r"^(\d+)\.0+$"
#: The largest order amount (in absolute value) a file may hold. The warehouse stores amounts
#: as NUMERIC (BigQuery: 29 digits before the point; DuckDB: DECIMAL(38, 9)), and sums them
#: per customer and day: 10^15 leaves room for 10^13 such orders in one sum, and is far above
#: any real order. A larger value (1e30) is a unit or export mistake, refused by row.
MAX_ORDER_AMOUNT = 1e15


class OrdersFileError(UserError, ValueError):
    """A problem with an orders file the user can fix; the message says what and how."""


@dataclass
class LoadResult:
    """Orders read from a file, with the bookkeeping of what was dropped and why.

    ``dropped`` counts the input rows left out, by reason. UCI lines (a line is counted once,
    under the first reason that applies, in this order): ``no_customer_id``, ``cancellation``
    (``InvoiceNo`` starting with ``C``), ``non_positive_quantity``, ``non_positive_price``.
    Generic orders: ``no_customer_id`` (empty customer id) and ``duplicate_order_id`` (a row
    repeating an earlier row exactly; an ``order_id`` repeated with different values is an
    error instead). ``rows_read`` = input rows, ``rows_kept`` = rows that made it into orders
    (for UCI: lines, several lines make one order).
    """

    orders: pd.DataFrame
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------------


def _row(position: int) -> str:
    return f"data row {position + 1} (line {position + 2} of a file with a header)"


def _first_bad(values: pd.Series, bad: np.ndarray) -> tuple[Any, int]:
    position = int(np.flatnonzero(bad)[0])
    return values.iloc[position], position


def _refuse_bad(values: pd.Series, bad: np.ndarray, problem: str, fix: str) -> None:
    """Refuse a column with bad cells, showing the first one, where it is, how many in all."""
    if not bad.any():
        return
    value, position = _first_bad(values, bad)
    shown = "an empty cell" if _is_blank(values.iloc[[position]])[0] else repr(value)
    raise OrdersFileError(
        f"{problem} {shown} at {_row(position)} ({int(bad.sum())} bad value(s) in all). {fix}"
    )


def _is_blank(values: pd.Series) -> np.ndarray:
    """Missing or whitespace-only cells."""
    text = values.astype("string")
    return (text.isna() | (text.str.strip() == "")).to_numpy(dtype=bool)


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped strings (``<NA>`` when blank); ints and integral floats lose '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.notna()
        integral = finite & (values == np.floor(values.where(finite, 0)))
        out = values.astype(object).astype("string")
        out[integral] = values[integral].astype("int64").astype("string")
    else:
        if values.dtype == object:
            values = values.map(_scalar_text)
        out = values.astype("string").str.strip()
    out = out.str.replace(_FLOAT_ID, r"\1", regex=True)
    return out.mask(out == "")


def _scalar_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _numbers(values: pd.Series, column: str, source: str) -> np.ndarray:
    """Numeric column; blank or non-numeric cells raise with the first bad value."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.astype("float64").to_numpy()
    else:
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
    problem = f"{source}: column {column!r} must be numeric but has"
    _refuse_bad(values, ~np.isfinite(numbers), problem, "Fix or remove those rows and load again.")
    return numbers


def _refuse_huge(numbers: np.ndarray, column: str, source: str, cells: pd.Series | None) -> None:
    """Refuse amounts beyond ``MAX_ORDER_AMOUNT``, naming the column, the value (the file's
    ``cells`` when given, else the number) and its row."""
    bad = np.abs(numbers) > MAX_ORDER_AMOUNT
    if bad.any():
        shown = cells if cells is not None else pd.Series(numbers).map("{:g}".format)
        problem = f"{source}: column {column!r} has a value beyond {MAX_ORDER_AMOUNT:g}:"
        fix = "Check the column's unit and format, fix or remove those rows and load again."
        _refuse_bad(shown, bad, problem, fix)


def _datetimes(values: pd.Series, column: str, source: str, date_format: str | None) -> pd.Series:
    """Parse a date/datetime column (see the module docstring); returns datetime64."""
    if date_format is not None and date_format not in DATE_FORMATS:
        raise OrdersFileError(
            f"date_format must be one of {', '.join(map(repr, DATE_FORMATS))} or None "
            f"(detect), not {date_format!r}."
        )
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        parsed = parsed.astype("datetime64[s]").reset_index(drop=True)
    else:
        parsed = _parse_mixed(values.reset_index(drop=True), column, source, date_format)
    problem = f"{source}: column {column!r} has a value that is not a date:"
    fix = "Use dates like 2011-12-09, 2011-12-09 12:50:00 or 9/12/2011 12:50."
    _refuse_bad(values, parsed.isna().to_numpy(), problem, fix)
    return parsed


def _parse_mixed(values: pd.Series, column: str, source: str, date_format: str | None) -> pd.Series:
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    native = ~is_text & values.notna().to_numpy()
    if native.any():  # datetime / date objects, e.g. from Excel
        converted = pd.to_datetime(values[native], errors="coerce")
        result[native] = converted.astype("datetime64[s]")
    if not is_text.any():
        return result
    text = values[is_text].astype("string")
    iso = text.str.match(_ISO).fillna(False).to_numpy(dtype=bool)
    if iso.any():
        iso_text = text[iso]
        parsed = pd.to_datetime(iso_text.str.strip(), format="ISO8601", errors="coerce")
        result[iso_text.index] = parsed.astype("datetime64[s]")
    parts = text[~iso].str.extract(_DMY)
    parts = parts[parts["a"].notna()]
    if parts.empty:
        return result
    first = parts["a"].astype(int)
    second = parts["b"].astype(int)
    proves_dayfirst = first > 12
    proves_monthfirst = second > 12
    if date_format is None:
        if proves_dayfirst.any() and proves_monthfirst.any():
            day_row = _row(int(proves_dayfirst.index[proves_dayfirst.to_numpy()][0]))
            month_row = _row(int(proves_monthfirst.index[proves_monthfirst.to_numpy()][0]))
            raise OrdersFileError(
                f"{source}: column {column!r} mixes day-first dates (e.g. "
                f"{values[proves_dayfirst.idxmax()]!r} at {day_row}) and month-first dates "
                f"(e.g. {values[proves_monthfirst.idxmax()]!r} at {month_row}). "
                "Use one order for the whole file."
            )
        if proves_dayfirst.any():
            date_format = "dayfirst"
        elif proves_monthfirst.any():
            date_format = "monthfirst"
        else:
            example = values[parts.index[0]]
            raise OrdersFileError(
                f"{source}: cannot tell whether the dates in column {column!r} are day-first "
                f"or month-first: no value has a part above 12 (e.g. {example!r} could be "
                'either). Pass date_format="dayfirst" (1/12/2010 = 1 December 2010) or '
                'date_format="monthfirst" (1/12/2010 = 12 January 2010) explicitly.'
            )
    day, month = (first, second) if date_format == "dayfirst" else (second, first)
    year = parts["year"].astype(int)
    year = year.where(year >= 100, year + 2000)
    fields = pd.DataFrame(
        {
            "year": year,
            "month": month,
            "day": day,
            "hour": parts["hour"].fillna("0").astype(int),
            "minute": parts["minute"].fillna("0").astype(int),
            "second": parts["second"].fillna("0").astype(int),
        }
    )
    parsed = pd.to_datetime(fields, errors="coerce")
    result[parts.index] = parsed.astype("datetime64[s]")
    return result


def _dates(datetimes: pd.Series) -> pd.Series:
    days = datetimes.to_numpy().astype("datetime64[D]")
    return pd.Series(days.astype(object), dtype=object)


def _country(values: pd.Series | None, size: int) -> pd.Series:
    if values is None:
        return pd.Series([None] * size, dtype=object)
    text = values.reset_index(drop=True).astype("string").str.strip()
    text = text.mask(text == "")
    return pd.Series(text.astype(object).where(text.notna(), None), dtype=object)


def _finish(orders: pd.DataFrame) -> pd.DataFrame:
    orders = orders.sort_values(["order_date", "order_id"], kind="stable").reset_index(drop=True)
    orders["customer_id"] = orders["customer_id"].astype("str")
    orders["order_id"] = orders["order_id"].astype("str")
    orders["order_amount"] = orders["order_amount"].astype("float64").round(4)
    orders["country"] = pd.Series(orders["country"].to_numpy(dtype=object), dtype=object)
    return orders[ORDER_COLUMNS]


def _require(frame: pd.DataFrame, required: list[str], source: str, hint: str) -> None:
    missing = [name for name in required if name not in frame.columns]
    if missing:
        found = ", ".join(map(repr, map(str, frame.columns))) or "none"
        raise OrdersFileError(
            f"{source}: required column(s) {', '.join(map(repr, missing))} not found; the "
            f"columns found are: {found}. {hint}"
        )


def _check_path(path: str | Path, allowed: tuple[str, ...], kind: str) -> Path:
    file = Path(path)
    if not file.exists():
        raise OrdersFileError(f"{file}: file not found. Check the path (cwd is {Path.cwd()}).")
    if file.is_dir():
        raise OrdersFileError(f"{file}: is a directory, not an orders file.")
    suffix = file.suffix.lower()
    if suffix not in allowed:
        raise OrdersFileError(
            f"{file.name}: unsupported file type {suffix or '(no extension)'!r} for {kind}; "
            f"use one of {', '.join(allowed)}."
            + (" Save .xls workbooks as .xlsx first." if suffix == ".xls" else "")
        )
    return file


def _read_csv(file: Path) -> pd.DataFrame:
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    try:
        try:
            frame = pd.read_csv(file, encoding="utf-8-sig", **options)
        except UnicodeDecodeError:  # UCI CSV copies are often Latin-1
            frame = pd.read_csv(file, encoding="latin-1", **options)
    except pd.errors.EmptyDataError:
        raise OrdersFileError(f"{file.name}: the file is empty (no header, no rows).") from None
    except pd.errors.ParserError as exc:
        raise OrdersFileError(
            f"{file.name}: not a readable CSV file: {str(exc).splitlines()[0]}"
        ) from None
    except OSError as exc:
        raise OrdersFileError(f"{file.name}: cannot read the file: {exc.strerror}") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def _no_rows(frame: pd.DataFrame, name: str) -> None:
    if frame.empty:
        raise OrdersFileError(
            f"{name}: the file has no data rows (only a header, or nothing). "
            "Check that you exported the right sheet/file."
        )


# -- UCI -------------------------------------------------------------------------------------


def clean_uci(
    raw: pd.DataFrame, date_format: str | None = None, *, source: str = "input"
) -> LoadResult:
    """UCI raw lines -> one order per ``InvoiceNo`` (see ``LoadResult`` for drop reasons).

    Keeps lines with a ``CustomerID``, an ``InvoiceNo`` not starting with ``C``,
    ``Quantity > 0`` and ``UnitPrice > 0``; ``order_amount = SUM(Quantity * UnitPrice)``,
    ``order_date = DATE(min InvoiceDate of the invoice)``, ``country`` = the invoice's first
    non-empty ``Country``. An invoice with two different customer ids is an error.
    """
    _require(raw, UCI_REQUIRED_COLUMNS, source, "Is this the UCI Online Retail layout?")
    frame = raw.reset_index(drop=True)
    rows_read = len(frame)
    if rows_read == 0:
        _no_rows(frame, source)
    invoice = _text(frame["InvoiceNo"])
    if invoice.isna().any():
        position = int(np.flatnonzero(invoice.isna().to_numpy())[0])
        raise OrdersFileError(
            f"{source}: column 'InvoiceNo' is empty at {_row(position)}; every line needs its "
            "invoice number."
        )
    quantity = _numbers(frame["Quantity"], "Quantity", source)
    price = _numbers(frame["UnitPrice"], "UnitPrice", source)
    _refuse_huge(quantity * price, "Quantity x UnitPrice", source, None)
    when = _datetimes(frame["InvoiceDate"], "InvoiceDate", source, date_format)
    customer = _text(frame["CustomerID"])

    no_customer = customer.isna().to_numpy()
    cancellation = invoice.str.upper().str.startswith("C").to_numpy(dtype=bool)
    reasons = {
        "no_customer_id": no_customer,
        "cancellation": cancellation,
        "non_positive_quantity": quantity <= 0,
        "non_positive_price": price <= 0,
    }
    keep = np.ones(rows_read, dtype=bool)
    dropped: dict[str, int] = {}
    for reason, hit in reasons.items():
        dropped[reason] = int((keep & hit).sum())
        keep &= ~hit

    lines = pd.DataFrame(
        {
            "order_id": invoice[keep].to_numpy(dtype=object),
            "customer_id": customer[keep].to_numpy(dtype=object),
            "when": when[keep].to_numpy(),
            "amount": (quantity * price)[keep],
            "country": _country(
                frame["Country"] if "Country" in frame.columns else None, rows_read
            )[keep].to_numpy(dtype=object),
        }
    )
    grouped = lines.groupby("order_id", sort=False)
    conflicts = grouped["customer_id"].nunique()
    if (conflicts > 1).any():
        order_id = conflicts.index[conflicts.to_numpy() > 1][0]
        ids = sorted(lines.loc[lines["order_id"] == order_id, "customer_id"].unique())
        raise OrdersFileError(
            f"{source}: invoice {order_id!r} has lines for different customers {ids}; an "
            "invoice belongs to one customer. Fix the CustomerID of those lines."
        )
    orders = pd.DataFrame(
        {
            "customer_id": grouped["customer_id"].first(),
            "order_date": grouped["when"].min(),
            "order_amount": grouped["amount"].sum(),
            "country": grouped["country"].first(),
        }
    ).reset_index()
    orders["order_date"] = _dates(orders["order_date"])
    orders["country"] = orders["country"].astype(object).where(orders["country"].notna(), None)
    return LoadResult(
        orders=_finish(orders),
        rows_read=rows_read,
        rows_kept=int(keep.sum()),
        dropped=dropped,
    )


def read_uci(path: str | Path, date_format: str | None = None) -> LoadResult:
    """Read a UCI Online Retail file (``.xlsx`` via openpyxl, or ``.csv``) and clean it.

    ``InvoiceNo``, ``StockCode`` and ``CustomerID`` are read as text so leading zeros stay.
    ``date_format`` (``"dayfirst"`` / ``"monthfirst"``) is only needed for a CSV whose
    day/month dates are ambiguous; see the module docstring.
    """
    file = _check_path(path, UCI_EXTENSIONS, "UCI Online Retail data")
    with progress.step(f"reading {file.name}"):
        if file.suffix.lower() == ".csv":
            raw = _read_csv(file)
        else:
            try:
                header = pd.read_excel(file, engine="openpyxl", nrows=0)
                text_columns = {
                    name: str for name in header.columns if str(name).strip() in UCI_TEXT_COLUMNS
                }
                raw = pd.read_excel(file, engine="openpyxl", dtype=text_columns)
            except Exception as exc:  # openpyxl raises several unrelated types (BadZipFile, ...)
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise OrdersFileError(
                    f"{file.name}: not a readable .xlsx workbook ({reason}); save it again as "
                    "an Excel workbook, or export it as CSV"
                ) from None
            raw.columns = [str(name).strip() for name in raw.columns]
            raw = raw.dropna(how="all")
    _no_rows(raw, file.name)
    with progress.step(f"cleaning {len(raw):,} lines of {file.name}"):
        return clean_uci(raw, date_format, source=file.name)


# -- generic orders --------------------------------------------------------------------------


def read_orders(
    path: str | Path,
    columns: dict[str, str] | None = None,
    *,
    date_format: str | None = None,
) -> LoadResult:
    """Read a generic orders file (``.csv`` or ``.parquet``), one row per order.

    ``columns`` maps our names to the file's, e.g. ``{"customer_id": "client"}``; unmapped
    names are looked up as they are. Ids are kept as text (``'00017'`` stays). ``order_date``
    may be a date or a datetime (the time is dropped). Rows with an empty customer id are
    dropped (``no_customer_id``); an exact repeat of an earlier row is dropped
    (``duplicate_order_id``); an ``order_id`` repeated with different values is an error.
    """
    file = _check_path(path, ORDERS_EXTENSIONS, "orders")
    mapping = dict(columns or {})
    unknown = sorted(set(mapping) - set(ORDER_COLUMNS))
    if unknown:
        raise OrdersFileError(
            f"columns mapping has unknown key(s) {unknown}; the keys are our column names "
            f"({', '.join(ORDER_COLUMNS)}) and the values the names in your file."
        )
    with progress.step(f"reading {file.name}"):
        if file.suffix.lower() == ".csv":
            frame = _read_csv(file)
        else:
            try:
                frame = pd.read_parquet(file)
            except Exception as exc:  # pyarrow raises several unrelated types
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise OrdersFileError(
                    f"{file.name}: not a readable Parquet file: {reason}"
                ) from None
            frame.columns = [str(name).strip() for name in frame.columns]
    _no_rows(frame, file.name)
    renamed = frame.rename(columns={theirs: ours for ours, theirs in mapping.items()})
    required = [mapping.get(name, name) for name in REQUIRED_ORDER_COLUMNS]
    missing = [
        f"{ours!r}" + (f" (mapped to {theirs!r})" if theirs != ours else "")
        for ours, theirs in zip(REQUIRED_ORDER_COLUMNS, required, strict=True)
        if ours not in renamed.columns
    ]
    if missing:
        found = ", ".join(repr(str(name)) for name in frame.columns)
        raise OrdersFileError(
            f"{file.name}: required column(s) {', '.join(missing)} not found; the columns found "
            f"are: {found}. If your file names them differently, pass a mapping, e.g. "
            'columns={"customer_id": "client", "order_date": "date"}.'
        )
    renamed = renamed.reset_index(drop=True)
    rows_read = len(renamed)
    order_id = _text(renamed["order_id"])
    if order_id.isna().any():
        position = int(np.flatnonzero(order_id.isna().to_numpy())[0])
        raise OrdersFileError(
            f"{file.name}: column 'order_id' is empty at {_row(position)}; every order needs an id."
        )
    customer = _text(renamed["customer_id"])
    amount = _numbers(renamed["order_amount"], "order_amount", file.name)
    _refuse_huge(amount, "order_amount", file.name, renamed["order_amount"])
    when = _datetimes(renamed["order_date"], "order_date", file.name, date_format)
    orders = pd.DataFrame(
        {
            "customer_id": customer.to_numpy(dtype=object),
            "order_id": order_id.to_numpy(dtype=object),
            "order_date": _dates(when),
            "order_amount": np.round(amount, 4),
            "country": _country(
                renamed["country"] if "country" in renamed.columns else None, rows_read
            ),
        }
    )
    no_customer = customer.isna().to_numpy()
    orders = orders[~no_customer]
    positions = np.flatnonzero(~no_customer)
    duplicate = orders.astype(str).duplicated().to_numpy()
    unique = orders[~duplicate]
    repeated = unique["order_id"].duplicated(keep=False).to_numpy()
    if repeated.any():
        order_id_value = unique["order_id"].to_numpy()[repeated][0]
        rows = positions[~duplicate][unique["order_id"].to_numpy() == order_id_value][:2]
        raise OrdersFileError(
            f"{file.name}: order_id {order_id_value!r} appears with different values at "
            f"{_row(int(rows[0]))} and {_row(int(rows[1]))}; each order must be one row. "
            "Fix or remove one of them."
        )
    return LoadResult(
        orders=_finish(unique),
        rows_read=rows_read,
        rows_kept=len(unique),
        dropped={
            "no_customer_id": int(no_customer.sum()),
            "duplicate_order_id": int(duplicate.sum()),
        },
    )


def screen_orders(
    result: LoadResult, *, policy: str, min_date: dt.date, max_date: dt.date
) -> LoadResult:
    """Count implausible orders (amount <= 0, date outside ``min_date``..``max_date``) and
    refuse the file, drop them or keep them (``policy``); never silently."""
    orders = result.orders
    amount_bad = (orders["order_amount"] <= 0).to_numpy()
    dates = pd.to_datetime(orders["order_date"]).dt.date
    date_bad = ((dates < min_date) | (dates > max_date)).to_numpy()
    counts = {
        "non_positive_amount": int(amount_bad.sum()),
        "date_outside_window": int((date_bad & ~amount_bad).sum()),
    }
    if not any(counts.values()):
        return result
    examples = []
    if amount_bad.any():
        first = orders[amount_bad].iloc[0]
        examples.append(
            f"{counts['non_positive_amount']} order(s) with an amount <= 0 (first: order "
            f"{first['order_id']!r}, amount {first['order_amount']})"
        )
    if (date_bad & ~amount_bad).any():
        first = orders[date_bad & ~amount_bad].iloc[0]
        examples.append(
            f"{counts['date_outside_window']} order(s) dated outside {min_date}..{max_date} "
            f"(first: order {first['order_id']!r} on {first['order_date']})"
        )
    found = " and ".join(examples)
    if policy == "refuse":
        raise OrdersFileError(
            f"{found}; nothing was loaded. Fix the file, or set implausible_orders to drop "
            "(leave them out) or keep (load them as they are)."
        )
    if policy == "drop":
        keep = ~(amount_bad | date_bad)
        return dataclasses.replace(
            result,
            orders=orders[keep].reset_index(drop=True),
            dropped={**result.dropped, **counts},
            warnings=[*result.warnings, f"dropped {found} (implausible_orders: drop)"],
        )
    return dataclasses.replace(
        result, warnings=[*result.warnings, f"kept {found} (implausible_orders: keep)"]
    )


def check_load(
    result: LoadResult, *, max_dropped_pct: float, allow_empty: bool, allow_drops: bool
) -> None:
    """Refuse a load that would empty the warehouse or that dropped most of the file."""
    dropped = {reason: n for reason, n in result.dropped.items() if n}
    detail = ", ".join(f"{reason} {n:,}" for reason, n in dropped.items()) or "none"
    if result.orders.empty and not allow_empty:
        raise OrdersFileError(
            f"no order is left to load ({result.rows_read:,} row(s) read; dropped: {detail}); "
            "nothing was loaded and the warehouse is unchanged. Check the file (the right "
            "columns? the right sheet?), or pass --allow-empty to empty the warehouse on purpose."
        )
    share = 100 * sum(dropped.values()) / result.rows_read if result.rows_read else 0.0
    if share > max_dropped_pct and not allow_drops and not result.orders.empty:
        raise OrdersFileError(
            f"{share:.1f} % of the {result.rows_read:,} rows were dropped (dropped: {detail}), "
            f"more than load_max_dropped_pct ({max_dropped_pct:g} %); nothing was loaded. "
            "Check the file, or pass --allow-drops (or raise load_max_dropped_pct) to load "
            "what is left."
        )


def load_orders_file(
    path: str | Path,
    fmt: str,
    *,
    date_format: str | None = None,
    columns: dict[str, str] | None = None,
) -> LoadResult:
    """``read_uci`` for ``fmt="uci"``, ``read_orders`` for ``fmt="orders"``."""
    if fmt == "uci":
        if columns:
            raise OrdersFileError(
                "a columns mapping applies to fmt='orders' only; UCI files have fixed columns."
            )
        return read_uci(path, date_format=date_format)
    if fmt == "orders":
        return read_orders(path, columns=columns, date_format=date_format)
    raise OrdersFileError(
        f"unknown orders file format {fmt!r}; use one of {', '.join(map(repr, FORMATS))}."
    )


# -- the key every load keeps ----------------------------------------------------------------


def require_one_row_per_order(orders: pd.DataFrame, source: str = "orders") -> None:
    """Refuse orders that repeat an ``order_id``: the orders table holds one row per order.

    ``clean_uci`` and ``read_orders`` already give one row per id (exact repeats dropped,
    conflicting ones refused); this is the check every load runs before writing, because it
    is the only guarantee on BigQuery, where the table's primary key is ``NOT ENFORCED``.
    """
    ids = orders["order_id"].to_numpy()
    repeated = orders["order_id"].duplicated(keep=False).to_numpy()
    if repeated.any():
        order_id = ids[repeated][0]
        rows = np.flatnonzero(ids == order_id) + 1
        raise OrdersFileError(
            f"{source}: order_id {order_id!r} appears {rows.size} times (rows "
            f"{', '.join(map(str, rows[:3]))} of the cleaned orders); each order must be one "
            "row. Fix the file and load again: nothing was written."
        )
