"""Progress on stderr for long CLI work; stdout (JSON, CSV) is the same with or without it.

The CLI runs as a subprocess on a copy of the sample warehouse. By default progress shows
only when stderr is a terminal (here a real pseudo-terminal), ``--progress`` shows plain
lines on a non-terminal, ``--quiet`` shows nothing, before or after the command's name.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest

ALERTS = ["alerts", "--from", "2010-12-01", "--to", "2011-12-09"]
STEP = "computing the alert series 2010-12-01..2011-12-09 (374 days)"


@pytest.fixture
def cli(sample_settings):
    command = [sys.executable, "-m", "retentionops.cli"]

    def run(*args: str, terminal: bool = False) -> tuple[str, str]:
        """(stdout, stderr) of one command; stderr on a pseudo-terminal when asked."""
        if not terminal:
            done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return done.stdout, done.stderr
        leader, follower = pty.openpty()
        process = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        shown = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None:
                break
        stdout = process.stdout.read().decode()
        assert process.wait(timeout=120) == 0, shown.decode(errors="replace")
        os.close(leader)
        return stdout, shown.decode(errors="replace")

    return run


def test_alerts_progress_shows_only_where_a_person_watches(cli):
    plain, quiet_pipe = cli(*ALERTS)
    assert quiet_pipe == ""  # not a terminal: logs stay clean
    assert plain.splitlines()[0].startswith("alert_date,") and len(plain.splitlines()) == 375

    lines, stderr = cli(*ALERTS, "--progress")
    assert lines == plain
    first, second = stderr.splitlines()
    assert first == f"retentionops: {STEP} ..."
    assert second.startswith(f"retentionops: {STEP}: done in ")

    on_terminal, shown = cli(*ALERTS, terminal=True)
    assert on_terminal == plain  # rich draws on stderr and never captures stdout
    assert "computing the alert series" in shown and "100%" in shown

    silent, nothing = cli("--quiet", *ALERTS, terminal=True)
    assert silent == plain and nothing == ""
    silent, nothing = cli(*ALERTS, "-q", terminal=True)
    assert silent == plain and nothing == ""


def test_loading_orders_reports_its_steps_and_the_same_json(cli, tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer_id,order_id,order_date,order_amount\n"
        "c1,o1,2011-01-03,10.0\nc1,o2,2011-02-03,12.5\nc2,o3,2011-02-04,7.0\n"
    )
    load = ["load-orders", str(orders), "--format", "orders"]
    shown, stderr = cli(*load, "--progress")
    steps = [line.split(": ", 1)[1] for line in stderr.splitlines() if line.endswith(" ...")]
    assert steps == ["reading orders.csv ...", "loading 3 orders into the warehouse ..."]
    again, quiet = cli(*load)  # the same file again: the same report, but nothing changed
    assert quiet == ""
    first, second = json.loads(shown), json.loads(again)
    assert (first["unchanged"], second["unchanged"]) == (False, True)
    for report in (first, second):
        del report["unchanged"], report["changed_from"]
    assert first == second and first["orders_loaded"] == 3


def test_incidents_range_reports_its_step_and_the_same_json(cli):
    incidents = ["incidents", "--from", "2011-09-01", "--to", "2011-12-09"]
    plain, nothing = cli(*incidents)
    assert nothing == ""
    shown, stderr = cli(*incidents, "--progress")
    assert json.loads(shown) == json.loads(plain)
    started = [line for line in stderr.splitlines() if line.endswith(" ...")]
    assert started == [
        "retentionops: computing the incidents of 2011-09-01..2011-12-09 (100 days) ..."
    ]
