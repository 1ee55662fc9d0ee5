"""The ``retentionops`` command line: machine-readable output on stdout, errors on stderr."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from retentionops.settings import SettingsError, load_settings

EXIT_USER_ERROR = 2


class CliError(RuntimeError):
    """A problem the user can fix; printed without a traceback."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from retentionops.detection import DetectionError
    from retentionops.orders import OrdersFileError
    from retentionops.warehouse import WarehouseError

    return (CliError, SettingsError, DetectionError, OrdersFileError, WarehouseError)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _report_load(result: Any, written: int, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "rows_read": result.rows_read,
        "rows_kept": result.rows_kept,
        "rows_dropped": dict(result.dropped),
        "orders_loaded": written,
        "customers": int(result.orders["customer_id"].nunique()),
        "first_order_date": str(result.orders["order_date"].min()),
        "last_order_date": str(result.orders["order_date"].max()),
    }


def cmd_load_sample(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample
    from retentionops.warehouse import open_warehouse

    result = clean_uci(generate_uci_sample(seed=args.seed))
    with open_warehouse(settings) as warehouse:
        written = warehouse.replace_orders(result.orders)
    _print_json(_report_load(result, written, f"bundled sample (seed {args.seed})"))


def _column_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours or not theirs:
            raise CliError(f"--column takes OURS=THEIRS (e.g. customer_id=client), got '{pair}'")
        mapping[ours] = theirs
    return mapping


def cmd_load_orders(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.orders import load_orders_file
    from retentionops.warehouse import open_warehouse

    # Read and validate the whole file before the warehouse is touched.
    result = load_orders_file(
        args.path, args.format, date_format=args.date_format, columns=_column_map(args.column)
    )
    with open_warehouse(settings) as warehouse:
        written = warehouse.replace_orders(result.orders)
    _print_json(_report_load(result, written, str(args.path)))


def cmd_detect(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.detection import as_date, run_detection
    from retentionops.warehouse import open_warehouse

    day = as_date(args.date)  # a bad date fails before the warehouse is opened
    with open_warehouse(settings) as warehouse:
        _print_json(run_detection(warehouse, settings, day))


def cmd_decision(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.detection import get_alert_decision
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings, read_only=True) as warehouse:
        _print_json(get_alert_decision(warehouse, settings, args.date))


def cmd_alerts(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.detection import alert_series
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings, read_only=True) as warehouse:
        rows = alert_series(warehouse, settings, getattr(args, "from"), args.to)
    if args.format == "json":
        _print_json(rows)
        return
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def cmd_settings(args: argparse.Namespace, settings: Any) -> None:
    _print_json(settings.as_dict())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retentionops",
        description="RetentionOps: detect -> prioritize -> package -> execute -> log.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="settings YAML (default include/retentionops.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = commands.add_parser("load-sample", help="generate and load the bundled sample")
    sample.add_argument("--seed", type=int, default=20101201)
    sample.set_defaults(handler=cmd_load_sample)

    load = commands.add_parser("load-orders", help="replace the orders with a file's")
    load.add_argument("path")
    load.add_argument("--format", choices=("uci", "orders"), required=True)
    load.add_argument(
        "--date-format",
        choices=("dayfirst", "monthfirst"),
        help="day/month order of a UCI CSV when the file cannot tell",
    )
    load.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="map a column of ours to the file's name (repeatable), e.g. customer_id=client",
    )
    load.set_defaults(handler=cmd_load_orders)

    detect = commands.add_parser("detect", help="run SQL1-SQL5 for a date; print the SQL5 row")
    detect.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    detect.set_defaults(handler=cmd_detect)

    decision = commands.add_parser("decision", help="print the stored SQL5 row for a date")
    decision.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    decision.set_defaults(handler=cmd_decision)

    alerts = commands.add_parser("alerts", help="print the SQL5 series for a date range")
    alerts.add_argument("--from", required=True, metavar="YYYY-MM-DD")
    alerts.add_argument("--to", required=True, metavar="YYYY-MM-DD")
    alerts.add_argument("--format", choices=("csv", "json"), default="csv")
    alerts.set_defaults(handler=cmd_alerts)

    show = commands.add_parser("settings", help="print the effective settings as JSON")
    show.set_defaults(handler=cmd_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        args.handler(args, settings)
    except _user_errors() as error:
        print(f"retentionops {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
