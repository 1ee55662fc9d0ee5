"""The playbook operation: the day's incident event built, approved, and delivered
through the ledger (``trigger_playbook``: the CLI's and the MCP's send; the DAG runs the
same steps as tasks: ``prepare_playbook``, ``record_approval``, ``delivery.send_event``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from retentionops import actions, approval, pack
from retentionops.connections import ConnectionMissingError, known_secrets, redact
from retentionops.dates import as_date
from retentionops.errors import ServiceError, UserError
from retentionops.files import write_json_atomic
from retentionops.playbook import Delivery, PlaybookPlan
from retentionops.runlog import RunOutcome
from retentionops.service.context import get_operational_context, run_context, settle_delivery
from retentionops.service.delivery import (
    EventNotSent,
    EventsOwed,
    deliver_due,
    due_before,
    post_fallback,
    send_event,
    webhook_post,
)
from retentionops.service.pack import export_audiences, generate_brief
from retentionops.service.request import DateLike, Run, with_rollout
from retentionops.service.runlog import recorded
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse

log = logging.getLogger(__name__)

#: The file a run keeps of the body it posted (or would have posted) to the webhook.
PLAYBOOK_REQUEST_FILE = "playbook_request.json"


def prepare_playbook(
    settings: Settings,
    run_date: DateLike,
    *,
    run: Run,
    slack_brief: dict[str, Any],
    exports: list[dict[str, Any]],
    brief_link: str | None,
    delivery: Delivery | None = None,
    context: actions.Context | None = None,
) -> dict[str, Any]:
    """The webhook body of the date's incident event, kept as ``playbook_request.json``
    whether or not this run sends it: ``{"payload", "send", "reason"}``.

    ``context`` is the run's operational context if the caller has it (read here
    otherwise). Whether the event is sent is settled again here, the last step before the
    webhook, against the delivery ledger and the settings as they are now: an event
    delivered since the context was computed (a task cleared and run again after the
    delivery) is not sent twice.

    An event waiting for a person's approval (``approval.pending``) is not kept in the
    ledger yet: :func:`record_approval` keeps it once approved, so nothing delivers it as
    owed before then. One whose approver a door named goes out with a first line saying
    who approved it (``approval.approved_payload``).
    """
    from retentionops import incidents
    from retentionops.playbook import build_payload

    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        read = run_context(settings, day, delivery, context, warehouse)
        plan = settle_delivery(warehouse, settings, day, read["plan"], delivery, read["note"])
        settled: actions.Context = {**read, "plan": plan}
        thread = incidents.incident_thread(warehouse, plan["incident_id"], plan["rollout_mode"])
    payload = build_payload(
        run_id=run.run_id,
        context=actions.with_exports(settled, exports),  # contacted, held out: as exported
        slack_brief=slack_brief,
        exports=exports,
        brief_link=brief_link,
        settings=settings,
        thread=thread,
        delivery=delivery,
    )
    approver = plan_approver(plan)
    if plan["send"] and approver:
        payload = approval.approved_payload(payload, named_approval(settings, approver))
    write_json_atomic(pack.run_dir(settings, day, run.run_id) / PLAYBOOK_REQUEST_FILE, payload)
    if approval.pending(plan):  # kept in the ledger once a person approves it
        log.info("playbook: the %s of %s waits for approval", plan["event"], day)
    elif plan["send"]:  # kept in the ledger before anything is posted: owed until delivered
        from retentionops import ledger

        with open_warehouse(settings) as warehouse:
            ledger.record(warehouse, settings, payload)
    else:  # the task log says why nothing goes out (the run log row too)
        log.info("playbook: nothing sent for %s: %s", day, plan["reason"])
    return {"payload": payload, "send": plan["send"], "reason": plan["reason"]}


def plan_approver(plan: PlaybookPlan) -> str | None:
    """The approver a door named for the plan's event (None: none named, or none needed)."""
    state = plan.get("approval")
    return state["approved_by"] if state else None


def named_approval(settings: Settings, approver: str) -> approval.Verdict:
    """The verdict of an approval a door was given (``--approved-by``, ``approved_by``)."""
    return approval.verdict(settings, approved=True, by=approver)


def record_approval(
    settings: Settings, payload: dict[str, Any], verdict: approval.Verdict
) -> approval.Verdict:
    """What came of an event's approval in the DAG (``approve_playbook``: a person's answer,
    or the default after ``approval_timeout_minutes``). Approved, the event is kept in the
    ledger with its body, whose first line says who approved it (owed until delivered, as
    :func:`prepare_playbook` keeps an event that needs no approval); withheld, nothing is
    kept: nothing owes it, and a re-run of the date asks again."""
    from retentionops import ledger

    if verdict["approved"]:
        with open_warehouse(settings) as warehouse:
            ledger.record(warehouse, settings, approval.approved_payload(payload, verdict))
    log.info("playbook: %s", verdict["note"])
    return verdict


class NothingToDeliver(ServiceError):
    """A date without an event of its own, and nothing owed from earlier ones."""


class ApprovalRequired(ServiceError):
    """The day's event waits for a person's approval and no approver was named: nothing
    was done (the message says how to give it)."""


def trigger_playbook(
    settings: Settings,
    run_date: DateLike,
    *,
    rollout_mode: str | None = None,
    resend: bool = False,
    allow_late_data: bool = False,
    approved_by: str | None = None,
    run: Run | None = None,
    interface: str = "cli",
) -> dict[str, Any]:
    """Deliver the date's incident event: export the audiences of an alert, write the brief,
    send the playbook, record the delivery, log the ticket.

    An event that waits for a person's approval (``approval_required``, approval.py) is
    sent only when ``approved_by`` names the approver, whom the run log's note names;
    without it the run is refused (:class:`ApprovalRequired`) before anything is done.

    On orders that are late or short (retentionops/freshness.py) the day has no event and
    nothing is delivered, unless ``allow_late_data`` says to act on them anyway.

    A date without an event (no alert, a quiet day of an open incident, warm-up) is refused:
    there is nothing to deliver. An event that is not sent (already delivered, too old,
    silenced, the kill switch) is built and logged, and the answer says why it was not
    sent; ``resend`` sends an already delivered or old event again (same dedupe_key). When
    the webhook fails for good, the brief goes to Slack directly (if a Slack connection
    exists) and the run is logged as failed with every cause.
    """
    settings = with_rollout(settings, rollout_mode)
    day = as_date(run_date)
    delivery = Delivery.now(resend=resend, allow_late_data=allow_late_data, approved_by=approved_by)
    context = get_operational_context(settings, day, delivery)
    plan = context["plan"]
    if not plan["event"] and not due_before(settings, day):
        raise NothingToDeliver(f"nothing to deliver on {day}: {plan['reason']}")
    run = run or Run.start(interface, "trigger_playbook", day)
    with recorded(settings, run, "trigger_playbook", day) as outcome:
        if approval.pending(plan):  # a refused row: someone tried to send it unapproved
            raise ApprovalRequired(approval.refusal(plan))
        outcome.take_context(context)
        if approver := plan_approver(plan):
            outcome.approval = dict(named_approval(settings, approver))
        if not plan["event"]:  # a day without an event still delivers what is due
            try:
                outcome.late = deliver_due(
                    settings, day, run.run_id, webhook_post(settings), delivery=delivery
                )
            except EventsOwed as waiting:
                plan = {**plan, "reason": str(waiting)}
                outcome.plan = plan
            return _trigger_answer(run, day, plan, outcome)
        part = run.part()  # one row for the whole run
        # every tier of the plan in one export: one queue read, one holdout draw
        tiers = list(plan["tiers"])
        outcome.exports = export_audiences(settings, day, tiers, run=part) if tiers else []
        brief = generate_brief(
            settings,
            day,
            "slack",
            exports=outcome.exports,
            delivery=delivery,
            run=part,
            context=context,
        )
        outcome.brief_link = brief["files"]["markdown"]
        prepared = prepare_playbook(
            settings,
            day,
            run=run,
            slack_brief=brief["slack"],
            exports=outcome.exports,
            brief_link=outcome.brief_link,
            delivery=delivery,
            context=context,
        )
        if prepared["send"]:
            try:
                post = webhook_post(settings)
                outcome.late = deliver_due(settings, day, run.run_id, post, delivery=delivery)
                outcome.answer = send_event(
                    settings, prepared["payload"], run.run_id, post, resend=resend
                )
            except (EventNotSent, EventsOwed) as refused:  # another door holds it, or
                # it was delivered, or an earlier event is in flight
                plan = {**plan, "send": False, "reason": str(refused)}
                outcome.plan = plan
            except UserError as error:
                outcome.playbook_failed = True
                outcome.fail("trigger_playbook", redact(str(error), known_secrets(settings)))
                try:
                    outcome.fallback_posted = bool(
                        post_fallback(settings, brief["slack"], str(error))["slack_posted"]
                    )
                except ConnectionMissingError:
                    pass  # no Slack fallback configured: the brief and exports stay on disk
                except UserError as fallback_error:
                    outcome.fail("slack_fallback", str(fallback_error))
                raise
    return _trigger_answer(run, day, plan, outcome)


def _trigger_answer(
    run: Run, day: dt.date, plan: PlaybookPlan, outcome: RunOutcome
) -> dict[str, Any]:
    """What ``trigger_playbook`` answers: the day's event, whether it was sent and why not,
    the receiver's answer, the exports; ``late`` lists the owed events delivered first."""
    answer = outcome.answer or {}
    return {
        "run_id": run.run_id,
        "run_date": day.isoformat(),
        "incident_id": plan["incident_id"],
        "event": plan["event"],
        "severity": plan["severity"],
        "rollout_mode": plan["rollout_mode"],
        "dedupe_key": plan["dedupe_key"],
        "sent": bool(outcome.answer),
        "reason": None if outcome.answer else plan["reason"],
        "ticket_id": answer.get("ticket_id"),
        "slack_message_ts": answer.get("slack_message_ts"),
        "exports": outcome.exports or [],
        "late": outcome.late or [],
    }
