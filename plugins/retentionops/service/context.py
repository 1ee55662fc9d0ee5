"""The operational context of a run date, composed here and nowhere else: the decision,
the queue's facts (``actions``), the incident of the day (``incidents``), the playbook's
plan and whether this run sends it (``playbook``, against the delivery ledger), the
orders' freshness, the holdouts and what earlier days still owe. The brief, the exports,
the webhook body, the log and the MCP tools all read this one structure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from retentionops import actions, freshness, holdouts, incidents, ledger
from retentionops.dates import as_date
from retentionops.detection import require_queue, stored_alert_decision
from retentionops.errors import ServiceError
from retentionops.playbook import (
    Delivery,
    PlaybookPlan,
    decide_delivery,
    held_plan,
    history_age,
    playbook_plan,
    response_due,
)
from retentionops.service.request import DateLike
from retentionops.settings import Settings
from retentionops.warehouse import Warehouse, WarehouseError, open_warehouse


def get_operational_context(
    settings: Settings, run_date: DateLike, delivery: Delivery | None = None
) -> actions.Context:
    """Status distribution, risk x status, tier counts, empty-tier reasons, the incident of
    the day and the playbook (whether this run sends it, and why not)."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        return operational_context(warehouse, settings, day, delivery)


def run_context(
    settings: Settings,
    day: dt.date,
    delivery: Delivery | None,
    context: actions.Context | None,
    warehouse: Warehouse | None = None,
) -> actions.Context:
    """The run's operational context, read once per run: ``context`` when the caller has
    it (a DAG run passes what its get_operational_context task computed; the CLI/MCP
    ``trigger_playbook`` what it computed first), else read now (the CLI and MCP ``brief``
    and ``generate_brief``). It is plain JSON either way (dates as ISO text)."""
    if context is not None:
        if context.get("run_date") != day.isoformat():
            raise ServiceError(
                f"the operational context given is of {context.get('run_date')}, not {day}"
            )
        return context
    if warehouse is None:
        return get_operational_context(settings, day, delivery)
    return operational_context(warehouse, settings, day, delivery)


def settle_delivery(
    warehouse: Warehouse,
    settings: Settings,
    day: dt.date,
    plan: PlaybookPlan,
    delivery: Delivery | None = None,
    note: str | None = None,
) -> PlaybookPlan:
    """Whether the run sends the plan's event, and why not, as things stand now: the
    settings (kill switch, silence), the run (dry run, resend, age) and the delivery ledger
    (an event already delivered is not sent again; nothing follows a delivered resolve)."""
    return decide_delivery(
        plan,
        settings,
        day,
        delivery or Delivery.now(),
        incidents.delivered_at(warehouse, plan["dedupe_key"]),
        note,
        incidents.resolve_delivered(warehouse, plan["incident_id"], plan["rollout_mode"]),
    )


def owed_before(warehouse: Warehouse, rollout_mode: str, day: dt.date) -> list[dict[str, Any]]:
    """The ledger's events of earlier dates not delivered yet (plain JSON for the context);
    none when the warehouse has no ledger yet (opened read-only before any delivery)."""
    try:
        owed = ledger.owed(warehouse, rollout_mode, day, create=False)
    except WarehouseError:
        return []
    return [
        {
            "incident_id": e.incident_id,
            "event": e.event,
            "run_date": e.run_date.isoformat(),
            "state": e.state,
            "note": e.note,
        }
        for e in owed
    ]


def operational_context(
    warehouse: Warehouse,
    settings: Settings,
    day: dt.date,
    delivery: Delivery | None = None,
) -> actions.Context:
    """The one structure behind the brief, the log, the CLI and the MCP tools, on an open
    warehouse: the decision, the queue's facts, the incident of the day, what the playbook
    does and whether this run sends it."""
    require_queue(warehouse, day)
    decision = stored_alert_decision(warehouse, settings, day)
    queue = actions.queue_facts(warehouse, settings, day)
    incident = incidents.incident_on(warehouse, settings, day)
    note = incidents.day_note(warehouse, settings, day, incident)
    plan = playbook_plan(decision, settings.rollout_mode, settings, incident)
    delivery = delivery or Delivery.now()  # one start for the age rule, sending and the due time
    data = freshness.orders_freshness(warehouse, settings, day)
    if not delivery.allow_late_data and (held := freshness.held_reason(data)):
        plan, note = held_plan(plan, held), held  # a late feed is not a quiet day
    plan = settle_delivery(warehouse, settings, day, plan, delivery, note)
    exported = plan["tiers"]
    thread = incidents.incident_thread(warehouse, plan["incident_id"], plan["rollout_mode"])
    tiers = actions.tier_infos(settings, queue, exported, day)
    value, basis = actions.value_per_customer(settings, queue, exported)
    return {
        "run_date": day.isoformat(),
        "decision": {**decision, "data_freshness": data},
        "data_freshness": data,
        "incident": incident,
        "note": note,
        "plan": plan,
        "status_distribution": {s: sum(levels.values()) for s, levels in queue.matrix.items()},
        "risk_by_status": queue.matrix,
        "tiers": tiers,
        "exported_tiers": exported,
        "previous_run_date": queue.previous_run_date,
        "cooldown_days": settings.contact_cooldown_days,
        "drift_mode": settings.drift_mode,
        # what the brief asks of whom by when (design 17), and the words behind AT_RISK
        "response": {
            "owner": settings.incident_owner or None,
            "sla_hours": settings.response_sla_hours,
            # a historical run (a backfill, playbook.history_age) sets no deadline
            "due_at": response_due(settings, day, delivery),
            "historical": history_age(settings, day, delivery) is not None,
            "ticket_id": (thread or {}).get("ticket_id"),
        },
        "status_windows": {
            "active_days": settings.active_days,
            "at_risk_days": settings.at_risk_days,
        },  # fmt: skip
        "anomalies": actions.anomalies(
            tiers, queue.previous_run_date, settings.audience_change_factor
        ),
        # earlier events the team has not been told yet: they go out before this one
        "owed": owed_before(warehouse, plan["rollout_mode"], day),
        "holdout": holdouts.summary(warehouse, settings, day),
        "median_total_revenue": round(queue.median_revenue, 2),
        "value_per_customer": round(value, 2),
        "value_basis": basis,
        "impact_rates": [0.1, 0.2, 0.3],
        "baseline_days": settings.baseline_days,
    }
