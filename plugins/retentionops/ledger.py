"""The ledger of what the team is told: one durable record per incident event.

Detection is recomputed; what reached people is not. Each incident event a run decides to
send (its ``dedupe_key``: incident, event, date, rollout mode) is a row of
``incident_events`` (docs/incidents.md, "The ledger"), the transactional outbox:

- :func:`record` keeps the event and the webhook body the run built, ``pending`` (owed),
  before anything is posted;
- :func:`claim` takes the event for one run in one statement (``ledger/claim_event.sql``)
  and reads it back: the run holds the claim when the row carries its token. Two doors
  triggering the same date at once (CLI + CLI, DAG + MCP) cannot both hold it: DuckDB has
  one writer, BigQuery serialises two DML statements changing the same row. A claim is a
  lease (``delivery_lease_seconds``): a sender killed mid-send leaves it to expire, and the
  next attempt re-sends with the **same** Idempotency-Key, which the receiver recognises;
- :func:`settle` records what the POST came to: ``delivered`` (with the receiver's ticket,
  its URL and the Slack ts); ``pending`` again when the receiver was down or unreachable
  (owed: the next run delivers it before anything newer); ``unknown`` when no answer came in
  time (the receiver may have acted: the next attempt re-sends with the same key, and says
  so); ``failed`` when the receiver refused the body for good (a 4xx, a broken contract: a
  resend after the scenario is fixed);
- :func:`owed` lists the events still owed from before a date, oldest first: a run
  delivers them, in order, before its own event; :func:`withhold` closes one that would
  now contradict what the team was told since (its incident's resolve was delivered).

Every door (the DAG's ``trigger_playbook``, the CLI's and the MCP server's
``trigger_playbook``) goes through ``service.send_event`` / ``service.deliver_owed``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from typing import Any

from retentionops.dates import as_date
from retentionops.settings import Settings
from retentionops.sql import alert_settings_fingerprint
from retentionops.warehouse import Warehouse

#: What an event's row says of it (docs/incidents.md, "The ledger").
PENDING, SENDING, DELIVERED, UNKNOWN, FAILED, WITHHELD = (
    "pending",
    "sending",
    "delivered",
    "unknown",
    "failed",
    "withheld",
)
STATES = (PENDING, SENDING, DELIVERED, UNKNOWN, FAILED, WITHHELD)
#: What a claim's POST may settle as.
SETTLED = (DELIVERED, PENDING, UNKNOWN, FAILED)

#: BigQuery types of the parameters that may be NULL (``bigquery_query_parameters``).
LEDGER_TYPES = {
    "severity": "STRING",
    "ticket_id": "STRING",
    "ticket_url": "STRING",
    "slack_message_ts": "STRING",
    "note": "STRING",
    "built_by": "STRING",
}


@dataclasses.dataclass(frozen=True)
class LedgerEvent:
    """One row of ``incident_events``; ``payload`` is the webhook body as recorded."""

    dedupe_key: str
    incident_id: str
    event: str
    run_date: dt.date
    rollout_mode: str
    severity: str | None
    state: str
    attempts: int
    claim_token: str | None
    claimed_by: str | None
    lease_until: dt.datetime | None
    ticket_id: str | None
    ticket_url: str | None
    slack_message_ts: str | None
    note: str | None
    settings_fingerprint: str | None
    payload: dict[str, Any] | None
    recorded_at: dt.datetime
    updated_at: dt.datetime
    in_flight: bool = False  # claimed, and its lease still runs (read by owed only)
    built_by: str | None = None  # the run whose body (and audience) it carries
    event_number: int | None = None  # its place among its incident's events (read, events)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerEvent:
        values: dict[str, Any] = {f.name: row.get(f.name) for f in dataclasses.fields(cls)}
        values["in_flight"] = bool(values["in_flight"])
        if values["event_number"] is not None:
            values["event_number"] = int(values["event_number"])
        values["run_date"] = as_date(values["run_date"])
        values["attempts"] = int(values["attempts"] or 0)
        values["payload"] = json.loads(values["payload"]) if values["payload"] else None
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON values, without the body (health, the replay)."""
        values = dataclasses.asdict(self)
        values.pop("payload")
        values.pop("claim_token")  # a claim's secret handle, of no use to a reader
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}

    def summary(self) -> str:
        """The event in a few words: ``open of INC-20110513 (2011-05-13)``."""
        return f"{self.event} of {self.incident_id} ({self.run_date})"


@dataclasses.dataclass(frozen=True)
class Claim:
    """What a run's claim on an event came to: ``event`` is the row after the claim,
    ``previous`` the row before it (None: the event was new)."""

    event: LedgerEvent
    token: str
    previous: LedgerEvent | None

    @property
    def held(self) -> bool:
        return self.event.state == SENDING and self.event.claim_token == self.token

    @property
    def after_unknown_outcome(self) -> bool:
        """The last attempt had no answer in time: this one re-sends with the same key."""
        return self.held and self.previous is not None and self.previous.state == UNKNOWN

    def refusal(self) -> str:
        """Why the run does not send the event (only for a claim not held)."""
        event = self.event
        if event.state == SENDING:
            return (
                f"being sent by run {event.claimed_by} (claimed until "
                f"{_moment(event.lease_until)}): the {event.summary()} is not sent twice"
            )
        if event.state == DELIVERED:
            return (
                f"already delivered ({event.summary()}, ticket {event.ticket_id}, "
                f"{_moment(event.updated_at)} by {event.claimed_by}): start the run with "
                "resend to send it again"
            )
        return f"the {event.summary()} is {event.state}"


@dataclasses.dataclass(frozen=True)
class DeliveredIncident:
    """An incident as the team was told it (its delivered events, one rollout mode)."""

    incident_id: str
    rollout_mode: str
    opened_on: dt.date
    events: tuple[tuple[str, dt.date], ...]  # (event, run date), delivered, oldest first
    last_key: str  # the dedupe_key of the last event delivered
    ticket_id: str | None
    settings_fingerprint: str | None  # the settings its first delivered event was decided under

    @property
    def resolved(self) -> bool:
        return any(event == "resolve" for event, _ in self.events)

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "rollout_mode": self.rollout_mode,
            "opened_on": self.opened_on.isoformat(),
            "events": [{"event": e, "day": d.isoformat()} for e, d in self.events],
            "ticket_id": self.ticket_id,
            "resolved": self.resolved,
            "settings_fingerprint": self.settings_fingerprint,
        }


def delivered_incidents(warehouse: Warehouse) -> list[DeliveredIncident]:
    """Every incident with a delivered event, per rollout mode, as the team was told it."""
    warehouse.ensure_tables(("incident_events",))
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in warehouse.query("ledger/read_delivered_events", {}):
        grouped.setdefault((row["rollout_mode"], row["incident_id"]), []).append(row)
    found = []
    for (mode, incident_id), rows in grouped.items():
        try:  # INC-YYYYMMDD: the id says when it opened, even if its open never arrived
            opened = dt.datetime.strptime(incident_id.rpartition("-")[2], "%Y%m%d").date()
        except ValueError:
            opened = as_date(rows[0]["run_date"])
        found.append(
            DeliveredIncident(
                incident_id=incident_id,
                rollout_mode=mode,
                opened_on=opened,
                events=tuple((r["event"], as_date(r["run_date"])) for r in rows),
                last_key=rows[-1]["dedupe_key"],
                ticket_id=next((r["ticket_id"] for r in rows if r["ticket_id"]), None),
                settings_fingerprint=rows[0]["settings_fingerprint"],
            )
        )
    return found


def _moment(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if isinstance(value, dt.datetime) else str(value)


def _event_values(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    incident = payload.get("incident") or {}
    return {
        "dedupe_key": payload["dedupe_key"],
        "incident_id": incident.get("incident_id"),
        "event": incident.get("event"),
        "run_date": as_date(payload["run_date"]),
        "rollout_mode": payload["rollout_mode"],
        "severity": payload.get("severity"),
        "settings_fingerprint": alert_settings_fingerprint(settings),
        "built_by": payload.get("run_id"),
    }


def read(warehouse: Warehouse, dedupe_key: str) -> LedgerEvent | None:
    """The event's row (None: never recorded)."""
    rows = warehouse.query("ledger/read_events", {"dedupe_key": dedupe_key})
    return LedgerEvent.from_row(rows[0]) if rows else None


def events(warehouse: Warehouse) -> list[LedgerEvent]:
    """Every event of the ledger, oldest first."""
    warehouse.ensure_tables(("incident_events",))
    rows = warehouse.query("ledger/read_events", {"dedupe_key": None})
    return [LedgerEvent.from_row(row) for row in rows]


def record(warehouse: Warehouse, settings: Settings, payload: dict[str, Any]) -> None:
    """Keep the event a run decided to send and its webhook body, before any POST: new, it
    is ``pending`` (owed); not yet delivered, its body is this latest build."""
    warehouse.ensure_tables(("incident_events",))
    warehouse.execute_file(
        "ledger/record_event",
        {**_event_values(settings, payload), "payload": json.dumps(payload, sort_keys=True)},
        types=LEDGER_TYPES,
    )


def owed(
    warehouse: Warehouse, rollout_mode: str, run_date: dt.date, *, create: bool = True
) -> list[LedgerEvent]:
    """The events of a rollout mode decided before ``run_date`` and not yet delivered
    (pending, unknown, or claimed: ``in_flight`` while the claim's lease runs, else held by
    a sender that died), oldest first. ``create=False`` for a read-only warehouse."""
    if create:
        warehouse.ensure_tables(("incident_events",))
    rows = warehouse.query(
        "ledger/read_owed_events", {"rollout_mode": rollout_mode, "run_date": run_date}
    )
    return [LedgerEvent.from_row(row) for row in rows]


def withhold(warehouse: Warehouse, dedupe_key: str, note: str) -> None:
    """Close an owed event for good, saying why (it would contradict what was told since)."""
    warehouse.execute_file(
        "ledger/withhold_event", {"dedupe_key": dedupe_key, "note": note}, types=LEDGER_TYPES
    )


def claim(
    warehouse: Warehouse,
    settings: Settings,
    payload: dict[str, Any],
    run_id: str,
    *,
    resend: bool = False,
) -> Claim:
    """Claim the payload's event for ``run_id`` (see the module); read it back.

    On DuckDB the caller holds the warehouse open for writing, which no other process can
    at the same time, so the read before, the claim and the read after are one step."""
    warehouse.ensure_tables(("incident_events",))
    key = payload["dedupe_key"]
    previous = read(warehouse, key)
    token = secrets.token_hex(16)
    warehouse.execute_file(
        "ledger/claim_event",
        {
            **_event_values(settings, payload),
            "resend": bool(resend),
            "claim_token": token,
            "run_id": run_id,
            "lease_seconds": int(settings.delivery_lease_seconds),
        },
        types=LEDGER_TYPES,
    )
    after = read(warehouse, key)
    if after is None:  # the statement always leaves a row: a warehouse that lost it is a bug
        raise RuntimeError(f"the ledger has no row for {key} after claiming it")
    return Claim(after, token, previous)


def settle(
    warehouse: Warehouse,
    held: Claim,
    state: str,
    *,
    answer: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    """Record what the held claim's POST came to (one of :data:`SETTLED`)."""
    if state not in SETTLED:
        raise ValueError(f"a claim settles as {', '.join(SETTLED)}, not {state!r}")
    answer = answer or {}
    warehouse.execute_file(
        "ledger/settle_event",
        {
            "dedupe_key": held.event.dedupe_key,
            "claim_token": held.token,
            "state": state,
            "ticket_id": answer.get("ticket_id"),
            "ticket_url": answer.get("ticket_url"),
            "slack_message_ts": answer.get("slack_message_ts"),
            "note": note,
        },
        types=LEDGER_TYPES,
    )
