"""What ``make demo`` prints after its DAG run, read back from what the run stored.

The playbook's outcome comes first and says what really happened: on a first run the
receiver (the local simulator) got the incident's ``open`` event and created a ticket, which
is printed; on a later run the deliveries ledger already holds that event, so the run sends
nothing (``playbook_status`` ``suppressed``) and the note of its log row says since when
(``make demo RESEND=1`` sends it again, with the same dedupe_key). Then the alert decision,
the run's ``ops_runs_log`` row and its files. Exit code 1 when the DAG run failed (its log
row says ``failed``).

A development tool: ``python -m devtools.demo DATE [--sim-out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retentionops import pack, service
from retentionops.dates import as_date
from retentionops.settings import PROJECT_ROOT, load_settings


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _ticket(sim_out: Path, ticket_id: str) -> dict[str, Any] | None:
    folder = sim_out / "shadow" if ticket_id.startswith("SHADOW-") else sim_out
    path = folder / f"ticket_{ticket_id}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def playbook_outcome(row: dict[str, Any], sim_out: Path) -> list[str]:
    """The lines saying what the run did with its playbook event, from its log row."""
    status, note = row.get("playbook_status"), row.get("note")
    event = f"the {row.get('incident_event')} event of {row.get('incident_id')}"
    if status == "sent":
        lines = [
            f"The playbook: sent {event}; the receiver answered ticket {row['ticket_id']} "
            f"and Slack message {row['slack_message_ts']}. The ticket it keeps:"
        ]
        ticket = _ticket(sim_out, row["ticket_id"])
        return lines + [_json(ticket) if ticket else f"  (no file for it in {sim_out})"]
    if status == "suppressed" and note and note.startswith("already delivered"):
        return [
            f"The playbook: NOT sent this time: {note}.",
            "  (An event is delivered once: this demo already sent it. `make demo RESEND=1`",
            "  sends it again with the same dedupe_key; the receiver then acts on it again.)",
        ]
    return [f"The playbook: {status or 'not reached'}" + (f": {note}" if note else "")]


def report(date: str, sim_out: Path) -> int:
    settings, day = load_settings(), as_date(date)  # the door: parsed once
    rows = [r for r in service.run_log_rows(settings, day) if r.get("interface") == "dag"]
    if not rows:
        print(f"no DAG run of {day} is logged in ops_runs_log", file=sys.stderr)
        return 1
    row = rows[0]  # the newest run of the date
    print("\n".join(playbook_outcome(row, sim_out)))
    print(f"\nAlert decision for {day}, as stored by the DAG run:")
    print(_json(service.get_alert_decision(settings, day)))
    print(f"Run log row (ops_runs_log) for {day}:")
    print(_json(row))
    print("Files of the run (brief, chart, audiences, playbook request, run log copy):")
    folder = pack.run_dir(settings, day, row["run_id"])  # each run has a folder of its own
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        print(f"  {shown}")
    if row["status"] == "failed":
        print(f"the DAG run failed: {row.get('error_message')}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__)
    parser.add_argument("date", help="the demo's run date, YYYY-MM-DD")
    parser.add_argument(
        "--sim-out",
        type=Path,
        default=Path("artifacts/playbook_sim"),
        help="the simulator's folder of tickets and Slack messages",
    )
    args = parser.parse_args(argv)
    return report(args.date, args.sim_out)


if __name__ == "__main__":
    sys.exit(main())
