"""The ``retentionops`` command line: thin doors to ``retentionops.service``.

Machine-readable output (JSON, or CSV for ``alerts``) on stdout; a user error is one line on
stderr and exit code 2. Every command that writes leaves an ``ops_runs_log`` row with
``interface = 'cli'`` (written by the operation itself).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import io
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from retentionops import progress
from retentionops.connections import stdout_is_data
from retentionops.errors import UserError
from retentionops.settings import check_warehouse_path, load_settings
from retentionops.vocabulary import BRIEF_FORMATS, EXPORT_DESTINATIONS, ROLLOUT_MODES, TIERS

EXIT_USER_ERROR = 2
INTERFACE = "cli"
#: Commands that never open the warehouse (``mcp`` checks it itself when it starts).
NO_WAREHOUSE = ("settings", "mcp")


class CliError(UserError):
    """A problem with the command line itself."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit 2, like every user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def _date(text: str) -> dt.date:
    """An argparse type: a calendar date as YYYY-MM-DD, said plainly when it is not one (the
    CLI's door: the operations get a ``dt.date``)."""
    from retentionops.dates import DateError, as_date

    try:
        return as_date(text)
    except DateError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _destination(text: str) -> str:
    """An argparse type: a folder or a gs:// prefix, refused at once when its ``~user`` has
    no known home folder (the export would fail after the run had started)."""
    from retentionops.files import PathError, expand_home

    if not text.strip().startswith("gs://"):
        try:
            expand_home(text.strip())
        except PathError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return text


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from retentionops import package_version

        print(f"{parser.prog} {package_version()}")
        parser.exit(0)


def _positive(text: str) -> int:
    """An argparse type: a positive whole number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _report_load(load: dict[str, Any], source: str) -> dict[str, Any]:
    result = load["result"]
    orders = result.orders
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return {
        "source": source,
        "rows_read": result.rows_read,
        "rows_kept": result.rows_kept,
        "rows_dropped": dict(result.dropped),
        "orders_loaded": load["orders_loaded"],
        "customers": int(orders["customer_id"].nunique()),
        "first_order_date": str(orders["order_date"].min()) if len(orders) else None,
        "last_order_date": str(orders["order_date"].max()) if len(orders) else None,
        # the derived rows of this date and later were deleted; earlier dates are kept
        "changed_from": load["changed_from"],
        "unchanged": load["unchanged"],
    }


def _column_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours or not theirs:
            raise CliError(f"--column takes OURS=THEIRS (e.g. customer_id=client), got '{pair}'")
        mapping[ours] = theirs
    return mapping


# -- commands: each turns its arguments into values and calls one operation ---------------


def cmd_load_sample(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample

    with progress.step(f"generating the bundled sample (seed {args.seed})"):
        raw = generate_uci_sample(seed=args.seed)
    with progress.step(f"cleaning {len(raw):,} lines"):
        result = clean_uci(raw)
    load = _load(settings, result)
    return _report_load(load, f"bundled sample (seed {args.seed})")


def cmd_load_orders(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops.orders import load_orders_file

    # Read and validate the whole file before the warehouse is touched.
    result = load_orders_file(
        args.path, args.format, date_format=args.date_format, columns=_column_map(args.column)
    )
    load = _load(settings, result, allow_empty=args.allow_empty, allow_drops=args.allow_drops)
    return _report_load(load, str(args.path))


def _load(settings: Any, result: Any, **options: bool) -> dict[str, Any]:
    from retentionops import service

    with progress.step(f"loading {len(result.orders):,} orders into the warehouse"):
        return service.load_orders(settings, result, interface=INTERFACE, **options)


def _warn(result: dict[str, Any]) -> dict[str, Any]:
    for warning in result.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    return result


def cmd_detect(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return _warn(service.detect(settings, args.date, interface=INTERFACE))


def cmd_decision(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return _warn(service.get_alert_decision(settings, args.date))


def cmd_alerts(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    start, end = getattr(args, "from"), args.to
    with progress.step(f"computing the alert series {start}..{end} ({_days(start, end)})"):
        rows = service.alert_series(settings, start, end)
    if args.format == "json":
        return rows
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())
    return None


def cmd_queue(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.build_priority_queue(settings, args.date, interface=INTERFACE)


def cmd_context(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.get_operational_context(settings, args.date)


def cmd_brief(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    result = service.generate_brief(settings, args.date, args.format, interface=INTERFACE)
    files = result["files"]
    print(f"brief files: {files['markdown']} (chart: {files['chart']})", file=sys.stderr)
    brief = result["brief"]
    if isinstance(brief, dict):
        return brief
    sys.stdout.write(brief if brief.endswith("\n") else brief + "\n")
    return None


def cmd_export(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.export_audience(
        settings,
        args.date,
        args.tier,
        destination=args.to,
        destinations=["csv", args.destination] if args.destination else None,
        limit=args.limit,
        interface=INTERFACE,
    )


def cmd_trigger(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.trigger_playbook(
        settings,
        args.date,
        rollout_mode=args.rollout_mode,
        resend=args.resend,
        allow_late_data=args.allow_late_data,
        approved_by=args.approved_by,
        interface=INTERFACE,
    )


@dataclasses.dataclass(frozen=True)
class Answer:
    """A command's JSON answer with an exit code of its own (a check that found problems)."""

    result: Any
    code: int


def cmd_replay(args: argparse.Namespace, settings: Any) -> Any:
    import tempfile

    from retentionops import replay

    start, end = getattr(args, "from"), args.to
    schedule = replay.load_schedule(args.faults)
    work = args.keep or tempfile.mkdtemp(prefix="retentionops-replay-")
    with progress.step(f"replaying {start}..{end} ({_days(start, end)}) in {work}"):
        report = replay.replay(settings, start, end, schedule, workdir=work)
    report = {**report, "workdir": str(work)}
    for problem in report["broken"]:
        print(f"broken: {problem}", file=sys.stderr)
    return Answer(report, 1 if report["broken"] else 0)


def cmd_incidents(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    start, end = getattr(args, "from"), args.to
    with progress.step(f"computing the incidents of {start}..{end} ({_days(start, end)})"):
        result = service.list_incidents(settings, start, end)
    return _warn(result)


def _days(start: dt.date, end: dt.date) -> str:
    days = (end - start).days + 1
    return f"{days} day{'s' if days != 1 else ''}"


def cmd_incident(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.get_incident(settings, args.date)


def cmd_recommend(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.get_recommended_action(settings, args.customer, args.date)


def cmd_impact(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.measure_impact(
        settings, args.run_id, args.horizon_days, incident_id=args.incident
    )


def cmd_run_log(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    rows = service.run_log_rows(settings, args.date)
    return rows if args.all else rows[0]


def cmd_health(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops import service

    return service.get_health(settings, getattr(args, "from"), args.to)


def cmd_mcp(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops.mcp_server import run_from_args

    code = run_from_args(args)
    if code:
        raise SystemExit(code)


def cmd_settings(args: argparse.Namespace, settings: Any) -> Any:
    from retentionops.settings import markdown_table, yaml_template

    if args.template:
        sys.stdout.write(yaml_template())
        return None
    if args.markdown:
        sys.stdout.write(markdown_table())
        return None
    return settings.as_dict()


# -- the parser -------------------------------------------------------------------------------


def _dated(commands: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text)
    command.add_argument("--date", required=True, type=_date, metavar="YYYY-MM-DD")
    command.set_defaults(handler=handler)
    return command


def _ranged(commands: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text)
    command.add_argument("--from", required=True, type=_date, metavar="YYYY-MM-DD")
    command.add_argument("--to", required=True, type=_date, metavar="YYYY-MM-DD")
    command.set_defaults(handler=handler)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="retentionops",
        description="RetentionOps: detect -> prioritize -> package -> execute -> log.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="settings YAML (default include/retentionops.yaml)"
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    progress.add_flags(parser, default="auto")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    sample = commands.add_parser("load-sample", help="generate and load the bundled sample")
    sample.add_argument("--seed", type=_positive, default=20101201)
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
    load.add_argument(
        "--allow-empty",
        action="store_true",
        help="load even if no order is left (empties the warehouse on purpose)",
    )
    load.add_argument(
        "--allow-drops",
        action="store_true",
        help="load even if more than load_max_dropped_pct of the rows were dropped",
    )
    load.set_defaults(handler=cmd_load_orders)

    _dated(commands, "detect", cmd_detect, "run SQL1-SQL5 for a date; print the SQL5 row")
    _dated(commands, "decision", cmd_decision, "print the SQL5 decision for a date")
    alerts = _ranged(commands, "alerts", cmd_alerts, "print the SQL5 series for a date range")
    alerts.add_argument("--format", choices=("csv", "json"), default="csv")
    _dated(commands, "queue", cmd_queue, "detect, then build customer_priority for a date")
    _dated(commands, "context", cmd_context, "print the operational context for a date")
    brief = _dated(commands, "brief", cmd_brief, "write the brief files and print one format")
    brief.add_argument("--format", choices=BRIEF_FORMATS, default="markdown")
    export = _dated(commands, "export", cmd_export, "export one tier's ranked audience")
    export.add_argument("--tier", required=True, choices=TIERS)
    export.add_argument(
        "--destination",
        choices=EXPORT_DESTINATIONS,
        default=None,
        help="csv: the local CSV only; gcs / gsheet: also upload there (default: "
        "export_destinations)",
    )
    export.add_argument(
        "--to",
        type=_destination,
        metavar="FOLDER|gs://BUCKET/PREFIX",
        help="a folder inside export_root for the CSV, or a gs:// prefix to upload to "
        "(default: the run's folder and the settings)",
    )
    export.add_argument(
        "--limit", type=_positive, default=None, help="rows at most (default export_limit)"
    )
    trigger = _dated(
        commands, "trigger", cmd_trigger, "export, brief and send the playbook of an alert date"
    )
    trigger.add_argument("--rollout-mode", choices=ROLLOUT_MODES, default=None)
    trigger.add_argument(
        "--resend",
        action="store_true",
        help="send the day's event again although it was delivered (same dedupe_key)",
    )
    trigger.add_argument(
        "--allow-late-data",
        action="store_true",
        help="act on the date although its orders are late or short (data_freshness); by "
        "default such a date delivers nothing",
    )
    trigger.add_argument(
        "--approved-by",
        metavar="NAME",
        help="who approved the event, when approval_required holds it (the run log names "
        "them); without it such an event is refused",
    )
    _ranged(commands, "incidents", cmd_incidents, "the incidents of a date range and their events")
    replay = _ranged(
        commands,
        "replay",
        cmd_replay,
        "run the daily loop over a range on a copy of the warehouse against the playbook "
        "simulator, with faults; report what reached people and every broken invariant "
        "(exit 1 if any)",
    )
    replay.add_argument("--faults", metavar="FILE", help="the fault schedule (YAML)")
    replay.add_argument(
        "--keep", metavar="FOLDER", help="work folder to keep (default: a new temporary one)"
    )
    _dated(commands, "incident", cmd_incident, "the incident state of one date")
    recommend = _dated(
        commands, "recommend", cmd_recommend, "one customer's tier and recommended action"
    )
    recommend.add_argument("--customer", required=True, metavar="CUSTOMER_ID")
    impact = commands.add_parser(
        "impact", help="treated vs held-out repurchase of a run or of an incident"
    )
    measured = impact.add_mutually_exclusive_group(required=True)
    measured.add_argument("--run-id", help="a run's exports against its date's holdout")
    measured.add_argument(
        "--incident", help="an incident (INC-YYYYMMDD): everyone it contacted, its holdout"
    )
    impact.add_argument(
        "--horizon-days", type=_positive, default=None, help="default: impact_horizon_days"
    )
    impact.set_defaults(handler=cmd_impact)
    run_log = _dated(commands, "run-log", cmd_run_log, "print the latest run-log row of a date")
    run_log.add_argument("--all", action="store_true", help="every run of the date")
    _ranged(commands, "health", cmd_health, "run, webhook and export health from the log")

    from retentionops.mcp_server import add_arguments as add_mcp_arguments

    mcp = commands.add_parser("mcp", help="serve the design's tools over MCP (stdio or http)")
    add_mcp_arguments(mcp)
    mcp.set_defaults(handler=cmd_mcp)

    show = commands.add_parser("settings", help="print the effective settings as JSON")
    show.add_argument("--template", action="store_true", help="print the commented YAML file")
    show.add_argument("--markdown", action="store_true", help="print the README's table")
    show.set_defaults(handler=cmd_settings)
    for name, command in commands.choices.items():
        if name != "mcp":  # the MCP server reports progress to its client, not to stderr
            progress.add_flags(command, default=argparse.SUPPRESS)  # also after the command
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stdout_is_data()  # JSON and CSV go to stdout: logs go to stderr
    mode = "off" if args.command == "mcp" else args.progress
    try:
        settings = load_settings(args.config)
        if args.command not in NO_WAREHOUSE:
            check_warehouse_path(settings)
        with progress.reporting(progress.cli_reporter(mode)):
            result = args.handler(args, settings)
    except UserError as error:
        print(f"retentionops {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"retentionops {args.command}: interrupted", file=sys.stderr)
        return 130
    if isinstance(result, Answer):
        _print_json(result.result)
        return result.code
    if result is not None:
        _print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
