"""A late orders feed is not a quiet day (docs/incidents.md, "Trusting the orders feed").

The sample with its orders cut after 2011-05-12 (a Thursday): the run for 2011-05-13, the
opening day of INC-20110513, finds the feed one trading day late. Detection may run (an
analyst may look), but the day carries no event: nothing is opened, exported or sent, and
every answer says why, until someone says to act on the data anyway.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from retentionops.cli import main

D = "2011-05-13"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def late_feed(sample_settings, playbook_sim, monkeypatch, capsys):
    from retentionops.warehouse import open_warehouse

    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    with open_warehouse(sample_settings) as warehouse:
        orders = warehouse.con.execute("select * from orders").df()
        kept = orders[pd.to_datetime(orders["order_date"]) <= pd.Timestamp("2011-05-12")]
        warehouse.replace_orders(kept.reset_index(drop=True))
    assert main(["queue", "--date", D]) == 0
    capsys.readouterr()
    return sample_settings


def test_a_late_feed_holds_the_day_and_says_so_everywhere(late_feed, playbook_sim, capsys):
    code, out, err = run(capsys, "decision", "--date", D)
    assert code == 0, err
    data = json.loads(out)["data_freshness"]
    assert (data["status"], data["orders_last_date"], data["lag_days"]) == (
        "late", "2011-05-12", 1,
    )  # fmt: skip
    assert data["trusted"] is False

    code, out, err = run(capsys, "context", "--date", D)
    assert code == 0, err
    context = json.loads(out)
    plan = context["plan"]
    # the data says the incident opens today; on a late feed nothing opens
    assert (plan["held_event"], plan["event"], plan["branch"], plan["tiers"]) == (
        "open", None, "no_alert", [],
    )  # fmt: skip
    assert context["note"].startswith("data late — orders feed late: last order 2011-05-12")

    code, out, err = run(capsys, "trigger", "--date", D, "--rollout-mode", "production")
    assert code != 0
    assert "nothing to deliver on 2011-05-13: data late — orders feed late" in err
    assert "--allow-late-data" in err
    assert playbook_sim.requests == []

    code, out, err = run(capsys, "brief", "--date", D, "--format", "markdown")
    assert code == 0, err
    assert "data late — orders feed late: last order 2011-05-12" in out


def test_told_to_the_run_acts_on_late_data(late_feed, playbook_sim, capsys):
    code, out, err = run(
        capsys, "trigger", "--date", D, "--rollout-mode", "production", "--allow-late-data"
    )
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["event"], answer["sent"]) == ("open", True)
    assert [r["incident"]["event"] for r in playbook_sim.requests] == ["open"]
