"""What the team is told is a record: each incident event claimed before it is sent, sent once
across every door, never lost to a kill or a timeout (docs/incidents.md, "The ledger").

Real processes and a real receiver: ``retentionops trigger`` runs as separate processes
against the playbook simulator on 127.0.0.1, on a copy of the sample whose queue is built
for the CRITICAL date (the open event of INC-20110513).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from support import run_folder

from retentionops.cli import main

D = "2011-05-13"
KEY = "INC-20110513:open:2011-05-13:production"
TRIGGER = [sys.executable, "-m", "retentionops.cli", "trigger", "--date", D,
           "--rollout-mode", "production"]  # fmt: skip


@pytest.fixture
def queued(sample_settings, playbook_sim, monkeypatch, capsys):
    """The sample with detection and the queue of the CRITICAL date; the simulator as the
    webhook, answering at once (tests slow it down), no retry waits."""
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS", "0")
    assert main(["queue", "--date", D]) == 0
    capsys.readouterr()
    return sample_settings


def ledger_rows(settings):
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        rows = con.execute(
            "select dedupe_key, state, attempts, claimed_by, ticket_id, ticket_url, note "
            "from incident_events order by recorded_at"
        ).fetchall()
    keys = ("dedupe_key", "state", "attempts", "claimed_by", "ticket_id", "ticket_url", "note")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def scalar(settings, sql):
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def log_rows(settings, day=D):
    """The log rows of a date's trigger runs, oldest first."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return con.execute(
            "select run_id, status, playbook_status, ticket_id, note, error_message "
            "from ops_runs_log where alert_date = ? and run_id like '%trigger_playbook%' "
            "order by run_timestamp",
            [dt.date.fromisoformat(day)],
        ).fetchall()


def tickets(sim):
    return sorted(p.name for p in sim.out_dir.glob("ticket_*.json"))


def test_two_doors_at_once_send_the_event_once(queued, playbook_sim):
    # the receiver takes 3 s to answer: both CLI processes reach the webhook step while the
    # other is still sending (before the ledger claimed events, both posted: 3 of 3 tries)
    playbook_sim.configure(delay=3)
    first = subprocess.Popen(TRIGGER, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(TRIGGER, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = []
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        answers.append(json.loads(out))
    assert len(playbook_sim.requests) == 1  # one POST reached the receiver
    sent = [a for a in answers if a["sent"]]
    refused = [a for a in answers if not a["sent"]]
    assert len(sent) == 1 and len(refused) == 1
    assert sent[0]["ticket_id"] == "RET-0001" and refused[0]["ticket_id"] is None
    # the other door says why, whichever moment it reached the ledger
    reason = refused[0]["reason"]
    assert reason.startswith("not sent: being sent by run ") or reason.startswith(
        "already delivered (open of INC-20110513"
    ), reason
    [event] = ledger_rows(queued)
    assert (event["dedupe_key"], event["state"], event["attempts"]) == (KEY, "delivered", 1)
    assert event["ticket_id"] == "RET-0001" and event["ticket_url"].endswith("/tickets/RET-0001")
    assert scalar(queued, "select count(*) from deliveries") == 1
    assert tickets(playbook_sim) == ["ticket_RET-0001.json"]
    statuses = sorted(row[2] for row in log_rows(queued))
    assert statuses == ["sent", "suppressed"]


def test_a_sender_killed_mid_send_holds_the_event_until_its_lease_ends(queued, playbook_sim):
    # the receiver acts (ticket RET-0001) but answers late; the sender is killed meanwhile
    playbook_sim.configure(delay=120)
    killed = subprocess.Popen(TRIGGER, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not playbook_sim.requests:
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline, "the trigger never reached the webhook"
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    playbook_sim.configure(delay=0)
    [event] = ledger_rows(queued)
    assert (event["state"], event["attempts"]) == ("sending", 1)  # claimed, never settled

    # another door while the lease holds: nothing is sent, and it says who holds it
    done = subprocess.run(TRIGGER, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["sent"] is False
    assert answer["reason"].startswith(f"not sent: being sent by run {event['claimed_by']}")
    # nor does the next day's event overtake it: it waits in the ledger, in order
    next_day = [*TRIGGER[:-3], "2011-05-14", "--rollout-mode", "production"]
    assert subprocess.run([*TRIGGER[:3], "queue", "--date", "2011-05-14"],
                          capture_output=True, timeout=300).returncode == 0  # fmt: skip
    done = subprocess.run(next_day, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["event"], answer["sent"]) == ("update", False)
    assert answer["reason"].startswith(
        f"not sent yet: the open of INC-20110513 ({D}) is being sent by run "
    )
    assert len(playbook_sim.requests) == 1

    # the lease runs out (as 15 minutes would): the next attempt re-sends with the same key,
    # and the receiver, which acted the first time, answers with that ticket again
    with duckdb.connect(str(queued.duckdb_file)) as con:
        con.execute("update incident_events set lease_until = now() - interval 1 second")
    done = subprocess.run(TRIGGER, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["sent"], answer["ticket_id"]) == (True, "RET-0001")
    keys = [request["dedupe_key"] for request in playbook_sim.requests]
    assert keys == [KEY, KEY]
    assert tickets(playbook_sim) == ["ticket_RET-0001.json"]  # one ticket, not two
    event, waiting = ledger_rows(queued)
    assert (event["state"], event["attempts"], event["ticket_id"]) == ("delivered", 2, "RET-0001")
    assert (waiting["dedupe_key"], waiting["state"]) == (
        "INC-20110513:update:2011-05-14:production", "pending",
    )  # fmt: skip
    # the next run of the update: the open is delivered now, so the update follows it
    done = subprocess.run(next_day, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ticket_id"] == "RET-0001"
    assert [r["incident"]["event"] for r in playbook_sim.requests] == ["open", "open", "update"]


def test_a_timeout_after_the_receiver_acted_is_an_unknown_outcome_then_one_ticket(
    queued, playbook_sim, monkeypatch, capsys
):
    # the receiver opens the ticket, then answers after the client gave up (every attempt)
    monkeypatch.setenv("RETENTIONOPS_WEBHOOK_TIMEOUT_SECONDS", "1")
    playbook_sim.configure(delay=3)
    code = main(["trigger", "--date", D, "--rollout-mode", "production"])
    err = capsys.readouterr().err
    assert code == 2 and "timed out" in err
    assert "outcome unknown" in err and "same key" in err
    [event] = ledger_rows(queued)
    assert event["state"] == "unknown" and "outcome unknown" in event["note"]
    [(_, status, playbook, ticket, _, error)] = log_rows(queued)
    assert (status, playbook, ticket) == ("failed", "failed", None)
    assert "outcome unknown" in error  # not "failed, no ticket" without a word

    # the next attempt re-sends with the same key and gets the ticket the receiver opened
    playbook_sim.configure(delay=0)
    code = main(["trigger", "--date", D, "--rollout-mode", "production"])
    out = capsys.readouterr().out
    assert code == 0
    answer = json.loads(out)
    assert (answer["sent"], answer["ticket_id"]) == (True, "RET-0001")
    assert len({request["dedupe_key"] for request in playbook_sim.requests}) == 1
    assert tickets(playbook_sim) == ["ticket_RET-0001.json"]
    [event] = ledger_rows(queued)
    assert (event["state"], event["ticket_id"]) == ("delivered", "RET-0001")
    *_, (_, status, playbook, ticket, note, _) = log_rows(queued)
    assert (status, playbook, ticket) == ("success", "sent", "RET-0001")
    assert note == (
        "outcome unknown on the last attempt (no answer in time): re-sent with the same key"
    )


def test_a_late_date_after_the_delivered_resolve_sends_nothing(queued, playbook_sim, capsys):
    def trigger(day):
        assert main(["queue", "--date", day]) == 0
        capsys.readouterr()
        code = main(["trigger", "--date", day, "--rollout-mode", "production"])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    assert trigger(D)["event"] == "open"
    assert trigger("2011-07-01")["event"] == "resolve"  # the ticket is closed
    # 05-15 run late (a backfill): as of 05-15 the incident was open and had an update; the
    # team was already told it is over, so nothing is sent and the answer says why
    late = trigger("2011-05-15")
    assert (late["event"], late["sent"]) == ("update", False)
    assert late["reason"].startswith("withheld: incident INC-20110513 is already resolved")
    events = [(r["run_date"], r["incident"]["event"]) for r in playbook_sim.requests]
    assert events == [(D, "open"), ("2011-07-01", "resolve")]
    # even on purpose: a resend of the late date cannot reopen the closed ticket
    code = main(["trigger", "--date", "2011-05-15", "--rollout-mode", "production", "--resend"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["sent"] is False
    assert len(playbook_sim.requests) == 2
    ticket = json.loads((playbook_sim.out_dir / "ticket_RET-0001.json").read_text())
    assert ticket["status"] == "closed" and [e["event"] for e in ticket["events"]] == [
        "open", "resolve",
    ]  # fmt: skip
    notes = [row[4] for row in log_rows(queued, "2011-05-15")]  # the late run, the resend
    assert len(notes) == 2
    assert all(n.startswith("withheld: incident INC-20110513 is already resolved") for n in notes)



def test_an_opening_the_webhook_missed_goes_out_first_the_next_day(
    queued, playbook_sim, capsys
):
    # 05-13: the receiver is down (503 on every attempt): the CRITICAL open is not lost,
    # it stays owed in the ledger
    playbook_sim.configure(fail_next=3, fail_status=503)
    assert main(["trigger", "--date", D, "--rollout-mode", "production"]) == 2
    assert "HTTP 503" in capsys.readouterr().err
    [event] = ledger_rows(queued)
    assert (event["state"], event["attempts"]) == ("pending", 1)
    assert "HTTP 503" in event["note"]
    # health says what the team has not been told yet
    assert main(["health", "--from", "2011-05-01", "--to", "2011-05-31"]) == 0
    [owed] = json.loads(capsys.readouterr().out)["owed_events"]
    assert (owed["incident_id"], owed["event"], owed["run_date"], owed["state"]) == (
        "INC-20110513", "open", D, "pending",
    )  # fmt: skip
    assert owed["event_number"] == 1 and "HTTP 503" in owed["note"]

    # 05-14: the open goes out first (late, saying so, with its @here), then the update,
    # on the ticket the open created
    assert main(["queue", "--date", "2011-05-14"]) == 0
    capsys.readouterr()
    assert main(["trigger", "--date", "2011-05-14", "--rollout-mode", "production"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["event"], answer["sent"], answer["ticket_id"]) == ("update", True, "RET-0001")
    assert [(d["event"], d["run_date"]) for d in answer["late"]] == [("open", D)]
    delivered = [r for r, status in zip(playbook_sim.requests, playbook_sim.statuses,
                                        strict=True) if status == 200]  # fmt: skip
    assert [(r["incident"]["event"], r["run_date"]) for r in delivered] == [
        ("open", D), ("update", "2011-05-14"),
    ]  # fmt: skip
    late_open = delivered[0]
    assert late_open["mention"] == "<!here>" and late_open["dedupe_key"] == KEY
    assert late_open["brief"]["text"].startswith(
        ":hourglass: Delivered late: this open of INC-20110513 was decided on 2011-05-13"
    )
    assert "HTTP 503" in late_open["brief"]["text"].splitlines()[0]
    assert delivered[1]["incident"]["ticket_id"] == "RET-0001"  # the ticket the open made
    ticket = json.loads((playbook_sim.out_dir / "ticket_RET-0001.json").read_text())
    assert [e["event"] for e in ticket["events"]] == ["open", "update"]
    assert tickets(playbook_sim) == ["ticket_RET-0001.json"]
    assert [row["state"] for row in ledger_rows(queued)] == ["delivered", "delivered"]
    assert main(["health", "--from", "2011-05-01", "--to", "2011-05-31"]) == 0
    assert json.loads(capsys.readouterr().out)["owed_events"] == []
    from retentionops import ledger
    from retentionops.warehouse import open_warehouse

    with open_warehouse(queued, read_only=True) as warehouse:  # the incident's second event
        update = ledger.read(warehouse, "INC-20110513:update:2011-05-14:production")
    assert (update.event_number, update.built_by) == (2, answer["run_id"])
    note = log_rows(queued, "2011-05-14")[-1][4]
    assert note == "delivered late first: open of INC-20110513 (2011-05-13)"
    # the day's brief, written before the late delivery, said the open was owed and first
    brief = (run_folder(queued.artifacts_path.parent, "2011-05-14", answer["run_id"])
             / "brief.md").read_text()  # fmt: skip
    assert "OWED — not delivered yet, and going out first: the open of INC-20110513 " in brief
    assert "(2011-05-13, pending: webhook answered HTTP 503" in brief


def test_deliveries_out_of_date_order_contact_each_customer_once(queued, playbook_sim, capsys):
    # the incident's event days delivered newest first (a late run, backfills): whatever
    # the order, a customer delivered on one of them is inside the others' 14-day cooldown
    rows: list[dict] = []
    for day in ["2011-05-16", "2011-05-14", "2011-05-15", D]:
        assert main(["queue", "--date", day]) == 0
        capsys.readouterr()
        assert main(["trigger", "--date", day, "--rollout-mode", "production"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["sent"] is True, answer
        for export in answer["exports"]:
            with open(export["local_link"], newline="") as handle:
                import csv

                rows += list(csv.DictReader(handle))
    customers = {row["customer_id"] for row in rows}
    bypassed = [row for row in rows if row["cooldown_bypass"] == "true"]
    assert len(rows) == len(customers) + len(bypassed)  # once each, but for escalations
    assert len(rows) > 300  # the incident's audience is hundreds of customers


def test_raised_thresholds_never_make_a_told_incident_vanish(
    queued, playbook_sim, monkeypatch, capsys
):
    assert main(["trigger", "--date", D, "--rollout-mode", "production"]) == 0  # the open
    capsys.readouterr()
    # the thresholds are raised: today's rules see no incident in May at all
    monkeypatch.setenv("RETENTIONOPS_THRESHOLD_WARNING_PCT", "60")
    monkeypatch.setenv("RETENTIONOPS_THRESHOLD_CRITICAL_PCT", "90")
    assert main(["incidents", "--from", "2011-05-01", "--to", "2011-05-20"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["incidents"] == []  # computed under today's settings
    [told] = listed["delivered"]  # but the team was told, and it is still listed
    assert (told["incident_id"], told["resolved"], told["seen_by_settings"]) == (
        "INC-20110513", False, False,
    )  # fmt: skip
    assert told["events"] == [{"event": "open", "day": D}] and told["ticket_id"] == "RET-0001"

    # the next run has no event of its own; it closes the incident with a resolve saying why
    assert main(["queue", "--date", "2011-05-14"]) == 0
    capsys.readouterr()
    assert main(["trigger", "--date", "2011-05-14", "--rollout-mode", "production"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["event"] is None and answer["sent"] is False
    assert [(d["incident_id"], d["event"]) for d in answer["late"]] == [
        ("INC-20110513", "resolve")
    ]
    closing = playbook_sim.requests[-1]
    assert closing["incident"]["event"] == "resolve"
    assert closing["incident"]["ticket_id"] == "RET-0001" and closing["mention"] is None
    assert "today's settings no longer see this incident" in closing["brief"]["text"]
    ticket = json.loads((playbook_sim.out_dir / "ticket_RET-0001.json").read_text())
    assert ticket["status"] == "closed"
    note = log_rows(queued, "2011-05-14")[-1][4]
    assert note.startswith("closed INC-20110513: today's settings no longer see this incident")
    # closed once: a later run sends nothing more
    assert main(["queue", "--date", "2011-05-15"]) == 0
    capsys.readouterr()
    code = main(["trigger", "--date", "2011-05-15", "--rollout-mode", "production"])
    assert code == 2 and "nothing to deliver" in capsys.readouterr().err
    assert len(playbook_sim.requests) == 2
    assert main(["incidents", "--from", "2011-05-01", "--to", "2011-05-20"]) == 0
    [told] = json.loads(capsys.readouterr().out)["delivered"]
    assert told["resolved"] is True and [e["event"] for e in told["events"]] == ["open", "resolve"]
