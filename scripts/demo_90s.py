"""The design's 90-second demo (section 11), through the MCP server, on the bundled sample.

Starts ``python -m retentionops.mcp_server`` over stdio with the SDK's client and walks the
closed loop for one date (default 2011-05-13, a CRITICAL day of the sample):

    1. read the alert decision (SQL5)
    2. build the priority queue (customer_priority)
    3. generate the brief (Slack format)
    4. export P1 and P2
    5. trigger the playbook (Slack + ticket + log), against a local playbook simulator

The design lists the brief before the queue; the brief summarises the queue's tier counts,
so the queue is built first. Everything happens in a throwaway folder (``--workdir`` to keep
it): its own DuckDB file, artifacts, Airflow home and simulator, so nothing of yours is
touched and nothing reaches Slack or a ticketing system.

    .venv/bin/python scripts/demo_90s.py [--date 2011-05-13] [--rollout-mode production]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]


class DemoError(RuntimeError):
    """A tool answered with an error; the demo stops with its message."""


def _say(step: str, text: str = "") -> None:
    print(f"\n== {step}", flush=True)
    if text:
        print(textwrap.indent(text, "   "), flush=True)


def _prepare(workdir: Path) -> dict[str, str]:
    """Load the bundled sample into a fresh DuckDB file; return the server's settings env."""
    from retentionops.orders import clean_uci
    from retentionops.sample import generate_uci_sample
    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    env = {
        "RETENTIONOPS_DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
        "RETENTIONOPS_ARTIFACTS_DIR": str(workdir / "artifacts"),
        # the sample is from 2011: without this the age rule would withhold the playbook
        "RETENTIONOPS_NOTIFY_MAX_AGE_DAYS": "0",
    }
    loaded = clean_uci(generate_uci_sample())
    with open_warehouse(load_settings(env=env)) as warehouse:  # closed before the server starts
        warehouse.replace_orders(loaded.orders)
    return env


async def _walk(params: Any, day: str, rollout_mode: str, sim: Any, log: Path) -> str:
    from mcp import ClientSession, stdio_client

    with log.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=120) as session,
        ):
            try:
                return await _steps(session, day, rollout_mode, sim)
            except DemoError as error:  # raised outside the transport's task group, unwrapped
                failure = error
    raise failure


async def _steps(session: Any, day: str, rollout_mode: str, sim: Any) -> str:
    await session.initialize()
    tools = [t.name for t in (await session.list_tools()).tools]
    _say("MCP server ready", f"{len(tools)} tools: {', '.join(tools)}")

    took = {"s": 0.0}

    async def call(tool: str, **arguments: Any) -> dict[str, Any]:
        started = time.monotonic()
        result = await session.call_tool(tool, arguments)
        took["s"] = time.monotonic() - started
        if result.is_error:
            message = " ".join(getattr(b, "text", "") for b in result.content)
            raise DemoError(f"{tool} failed: {message}")
        return result.structured_content or {}

    def timed(title: str) -> str:
        return f"{title}  [{took['s']:.1f} s]"

    d = await call("get_alert_decision", date=day)
    _say(
        timed(f"1. get_alert_decision {day}: {d['severity']} (alert_flag {d['alert_flag']})"),
        f"AT_RISK share {d['current_value']:.2f} % vs 7-day baseline "
        f"{d['baseline_value']:.2f} % -> relative change {d['delta_relative_pct']:+.2f} % "
        f"(WARNING >= {d['threshold_warning']} %, CRITICAL >= {d['threshold_critical']} %; "
        f"{d['sample_size']} customers)",
    )

    queue = await call("build_priority_queue", date=day)
    tiers = queue["tiers"]
    _say(
        timed("2. build_priority_queue: customer_priority written"),
        " · ".join(f"{tier}: {count}" for tier, count in tiers.items())
        + f"\nlogged as {queue['run_id']}",
    )

    brief = await call("generate_brief", date=day, format="slack")
    text = brief["brief"]["text"] if isinstance(brief["brief"], dict) else str(brief["brief"])
    lines = text.splitlines()
    shown = "\n".join(lines[:10]) + ("\n..." if len(lines) > 10 else "")
    _say(timed("3. generate_brief (Slack format)"), shown)

    exports, elapsed = [], 0.0
    for tier in ("P1", "P2"):
        exports.append(await call("export_audience", date=day, tier=tier))
        elapsed += took["s"]
    took["s"] = elapsed
    _say(
        timed("4. export_audience P1 and P2"),
        "\n".join(f"{e['tier']}: {e['row_count']} customers -> {e['link']}" for e in exports),
    )

    played = await call("trigger_playbook", date=day, rollout_mode=rollout_mode)
    ticket = sim.find_ticket(played["ticket_id"]) or {}
    _say(
        timed(f"5. trigger_playbook ({played['rollout_mode']}): Slack + ticket + log"),
        f"ticket {played['ticket_id']} (priority {ticket.get('priority', '?')}): "
        f"{ticket.get('title', '')}\n"
        f"Slack {ticket.get('slack_channel', '?')} message {played['slack_message_ts']}\n"
        "exported with it: "
        + ", ".join(f"{e['tier']} {e['row_count']}" for e in played["exports"]),
    )
    return played["run_id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default="2011-05-13", help="run date (default 2011-05-13)")
    parser.add_argument(
        "--rollout-mode",
        choices=("shadow", "pilot", "production"),
        default="production",
        help="the simulator is local, so production is safe here (default production)",
    )
    parser.add_argument("--workdir", help="keep the demo's files here (default: a temp folder)")
    args = parser.parse_args(argv)

    import anyio
    from mcp import StdioServerParameters

    from devtools.playbook_sim import PlaybookSimulator
    from retentionops import runlog
    from retentionops.settings import load_settings
    from retentionops.warehouse import open_warehouse

    started = time.monotonic()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="retentionops-demo-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        env = _prepare(workdir)
        _say("0. Bundled sample loaded", f"workspace {workdir}")
        with (
            open(os.devnull, "w") as quiet,
            PlaybookSimulator(workdir / "playbook_sim", log_stream=quiet) as sim,
        ):
            params = StdioServerParameters(
                command=sys.executable,
                args=["-m", "retentionops.mcp_server"],
                cwd=str(ROOT),
                env={
                    **env,
                    "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
                    "AIRFLOW_HOME": str(workdir / "airflow"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    # the webhook URL is a secret: it travels in the connection, never printed
                    "AIRFLOW_CONN_MAKE_WEBHOOK": json.dumps({"conn_type": "http", "host": sim.url}),
                },
            )
            run_id = anyio.run(
                _walk, params, args.date, args.rollout_mode, sim, workdir / "mcp_server.log"
            )
        with open_warehouse(load_settings(env=env), read_only=True) as warehouse:
            row = runlog.read(warehouse, run_id) or {}
    except DemoError as error:
        print(f"\ndemo stopped: {error}", file=sys.stderr)
        return 1
    else:
        _say(
            "Logged in ops_runs_log",
            f"{run_id}: status {row.get('status')}, interface {row.get('interface')}, "
            f"ticket {row.get('ticket_id')}, {row.get('total_exported')} customers exported, "
            f"{row.get('execution_time_ms')} ms",
        )
        print(f"\nDone in {time.monotonic() - started:.0f} s.")
        if args.workdir:
            print(f"Files (exports, brief, ticket, server log) are in {workdir}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
