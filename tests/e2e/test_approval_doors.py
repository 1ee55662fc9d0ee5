"""The CLI's and the MCP server's trigger obey the approval rule the DAG waits on
(approval.py): an event that approval_required holds is sent only when the approver is
named, and the run log names them. On a copy of the sample whose queue is built for the
CRITICAL date (the open of INC-20110513), the playbook simulator as the webhook.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from retentionops import service
from retentionops.cli import main
from retentionops.settings import load_settings

D = "2011-05-13"


@pytest.fixture
def queued(sample_settings, playbook_sim, monkeypatch, capsys):
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("RETENTIONOPS_APPROVAL_REQUIRED", "critical")
    assert main(["queue", "--date", D]) == 0
    capsys.readouterr()
    return load_settings()


def rows(settings, sql):
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return con.execute(sql).fetchall()


def trigger_rows(settings):
    return rows(
        settings,
        "select interface, status, playbook_status, note, error_message from ops_runs_log "
        "where run_id like '%trigger_playbook%' order by run_timestamp",
    )


def test_the_cli_refuses_an_unapproved_critical_event_then_sends_it_approved(
    queued, playbook_sim, capsys
):
    code = main(["trigger", "--date", D, "--rollout-mode", "production"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(
        "retentionops trigger: error: approval required: the CRITICAL open of INC-20110513 "
    )
    assert "--approved-by NAME" in err
    # nothing was exported, posted or kept as owed; the attempt is a refused row
    assert playbook_sim.requests == [] and rows(queued, "select * from incident_events") == []
    [(interface, status, playbook, note, error)] = trigger_rows(queued)
    assert (interface, status, playbook, note) == ("cli", "refused", None, None)
    assert "approval required" in error

    code = main(["trigger", "--date", D, "--rollout-mode", "production", "--approved-by", "alice"])
    out, err = capsys.readouterr()
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["event"], answer["sent"], answer["ticket_id"]) == ("open", True, "RET-0001")
    [request] = playbook_sim.requests
    assert request["brief"]["text"].splitlines()[0] == ":white_check_mark: Approved by alice."
    *_, (interface, status, playbook, note, error) = trigger_rows(queued)
    assert (interface, status, playbook, note, error) == (
        "cli", "success", "sent", "approved by alice", None,
    )  # fmt: skip
    assert rows(queued, "select state from incident_events") == [("delivered",)]


def test_the_mcp_door_refuses_without_approved_by_and_a_warning_needs_none(
    queued, playbook_sim
):
    """The MCP tool passes ``approved_by`` to this same operation (mcp_server.py; its
    schema is checked in test_mcp_server.py)."""
    with pytest.raises(service.ApprovalRequired, match="MCP: approved_by"):
        service.trigger_playbook(queued, D, rollout_mode="production", interface="mcp")
    assert playbook_sim.requests == []
    # a WARNING day under 'critical' is sent as before, with nobody named
    warning = "2011-09-09"
    assert main(["queue", "--date", warning]) == 0
    answer = service.trigger_playbook(queued, warning, rollout_mode="production", interface="mcp")
    assert answer["sent"] is True and playbook_sim.requests[0]["severity"] == "WARNING"
    note = rows(
        queued,
        "select note from ops_runs_log where interface = 'mcp' and alert_date = "
        f"date '{warning}'",
    )
    assert note == [(None,)]
