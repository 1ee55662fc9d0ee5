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
    from retentionops.service import ServiceError
    from retentionops.warehouse import WarehouseError

    return (CliError, SettingsError, DetectionError, OrdersFileError, WarehouseError, ServiceError)


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


def cmd_queue(args: argparse.Namespace, settings: Any) -> None:
    from retentionops import actions
    from retentionops.detection import as_date
    from retentionops.warehouse import open_warehouse

    day = as_date(args.date)
    with open_warehouse(settings) as warehouse:
        counts = actions.build_priority_queue(warehouse, settings, day)
    _print_json({"run_date": day.isoformat(), "tiers": counts})


def cmd_context(args: argparse.Namespace, settings: Any) -> None:
    from retentionops import actions
    from retentionops.detection import as_date
    from retentionops.warehouse import open_warehouse

    with open_warehouse(settings, read_only=True) as warehouse:
        _print_json(actions.get_operational_context(warehouse, settings, as_date(args.date)))


def cmd_brief(args: argparse.Namespace, settings: Any) -> None:
    from retentionops import actions, pack
    from retentionops.brief import render_brief
    from retentionops.detection import as_date
    from retentionops.warehouse import open_warehouse

    day = as_date(args.date)
    with open_warehouse(settings) as warehouse:
        context = actions.get_operational_context(warehouse, settings, day)
        paths = pack.render_brief_files(warehouse, settings, context)
    links = {t: pack.planned_export_link(settings, day, t) for t in context["exported_tiers"]}
    brief = render_brief(context, args.format, links=links, chart_link=paths["chart"])
    if isinstance(brief, dict):
        _print_json(brief)
    else:
        sys.stdout.write(brief if brief.endswith("\n") else brief + "\n")
    print(f"brief files: {paths['markdown']} (chart: {paths['chart']})", file=sys.stderr)


def cmd_export(args: argparse.Namespace, settings: Any) -> None:
    from retentionops import pack
    from retentionops.detection import as_date
    from retentionops.warehouse import open_warehouse

    day = as_date(args.date)
    with open_warehouse(settings, read_only=True) as warehouse:
        result = pack.export_tier(
            warehouse,
            settings,
            day,
            args.tier,
            destination=args.to,
            kind=args.destination,
            limit=args.limit,
        )
    _print_json(result)


def cmd_run_log(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.detection import as_date, jsonable
    from retentionops.warehouse import open_warehouse

    day = as_date(args.date)
    with open_warehouse(settings, read_only=True) as warehouse:
        rows = warehouse.query("action/read_run_logs_for_date", {"run_date": day})
    if not rows:
        raise CliError(f"no run logged for {day}: run the DAG (or `retentionops run`) first")
    _print_json([jsonable(r) for r in rows] if args.all else jsonable(rows[0]))


def cmd_playbook_sim(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.playbook_sim import run_from_args

    _serve(run_from_args, args)


def _serve(run_from_args: Any, args: argparse.Namespace) -> None:
    """Run a foreground server command; its own exit code becomes the CLI's."""
    code = run_from_args(args)
    if code:
        raise SystemExit(code)


def cmd_health(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.health import get_health

    _print_json(get_health(settings, getattr(args, "from"), args.to))


def cmd_mcp(args: argparse.Namespace, settings: Any) -> None:
    from retentionops.mcp_server import run_from_args

    _serve(run_from_args, args)


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

    queue = commands.add_parser(
        "queue", help="build customer_priority for a date (after detect); print tier counts"
    )
    queue.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    queue.set_defaults(handler=cmd_queue)

    context = commands.add_parser("context", help="print the operational context for a date")
    context.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    context.set_defaults(handler=cmd_context)

    brief = commands.add_parser("brief", help="write the brief files and print one format")
    brief.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    brief.add_argument("--format", choices=("markdown", "slack", "email"), default="markdown")
    brief.set_defaults(handler=cmd_brief)

    export = commands.add_parser("export", help="export one tier's ranked audience")
    export.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    export.add_argument("--tier", required=True, choices=("P1", "P2", "P3"))
    export.add_argument("--destination", choices=("csv", "gsheet"), default=None)
    export.add_argument(
        "--to", metavar="FOLDER|gs://BUCKET/PREFIX", help="where CSVs go (default: settings)"
    )
    export.add_argument("--limit", type=int, default=None, help="rows at most (default 2000)")
    export.set_defaults(handler=cmd_export)

    run_log = commands.add_parser("run-log", help="print the latest ops_runs_log row of a date")
    run_log.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    run_log.add_argument("--all", action="store_true", help="every run of the date")
    run_log.set_defaults(handler=cmd_run_log)

    from retentionops.playbook_sim import add_arguments as add_sim_arguments

    sim = commands.add_parser(
        "playbook-sim", help="serve the Make webhook contract on 127.0.0.1 (demos, fault tests)"
    )
    add_sim_arguments(sim)
    sim.set_defaults(handler=cmd_playbook_sim)

    health = commands.add_parser("health", help="run, webhook and export health from the log")
    health.add_argument("--from", required=True, metavar="YYYY-MM-DD")
    health.add_argument("--to", required=True, metavar="YYYY-MM-DD")
    health.set_defaults(handler=cmd_health)

    from retentionops.mcp_server import add_arguments as add_mcp_arguments

    mcp = commands.add_parser("mcp", help="serve the design's tools over MCP (stdio or http)")
    add_mcp_arguments(mcp)
    mcp.set_defaults(handler=cmd_mcp)

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
