"""Delivery through the ledger: one incident event sent once (claimed, posted, settled),
what earlier days owe delivered first and in order, incidents the settings no longer see
closed, and the Slack fallback when the webhook fails."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from retentionops import approval, detection, freshness, progress
from retentionops.connections import known_secrets, redact
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.playbook import Delivery
from retentionops.service.request import DateLike, Run
from retentionops.settings import Settings
from retentionops.slack import with_first_line
from retentionops.warehouse import open_warehouse

log = logging.getLogger(__name__)


class EventNotSent(ServiceError):
    """The ledger did not let this run send the event (another run holds it, or it was
    delivered before): the message says why. Nothing was posted."""


class EventsOwed(ServiceError):
    """Earlier events of the incident are still owed (the receiver was down): today's is
    kept in the ledger and goes out after them, never before. Nothing new was posted."""


#: The note a delivery carries when the attempt before it had no answer in time.
UNKNOWN_RETRIED = (
    "outcome unknown on the last attempt (no answer in time): re-sent with the same key"
)


#: ``post(payload, failures)``: POST one body with the retry policy, return the answer;
#: ``failures`` collects the errors of the attempts it retried.
Post = Callable[[dict[str, Any], list[BaseException]], dict[str, Any]]


def send_event(
    settings: Settings,
    payload: dict[str, Any],
    run_id: str,
    post: Post,
    *,
    resend: bool = False,
) -> dict[str, Any]:
    """Deliver one incident event through the ledger, the one way every door sends: claim
    it (``ledger.claim``), POST it, then record the answer: the receipt (``deliveries``)
    and the ledger's ``delivered`` in one transaction. Returns the receiver's answer (with
    a ``note`` when the attempt before had no answer in time).

    Raises :class:`EventNotSent` when the claim is refused, and the webhook's error when
    the POST failed, after the ledger says why: ``pending`` (down, unreachable, 5xx: owed,
    a later run delivers it in order), ``unknown`` (a timeout after sending: the receiver
    may have acted; :class:`~retentionops.playbook.WebhookOutcomeUnknown`, and the next
    attempt re-sends with the same Idempotency-Key) or ``failed`` (refused for good). A
    process killed after the POST leaves its claim to expire (``delivery_lease_seconds``).
    """
    from retentionops import incidents, ledger
    from retentionops.playbook import (
        PermanentWebhookError,
        WebhookError,
        WebhookOutcomeUnknown,
        with_thread,
    )

    with open_warehouse(settings) as warehouse, warehouse.atomic():
        held = ledger.claim(warehouse, settings, payload, run_id, resend=resend)
        incident = payload["incident"]
        thread = incidents.incident_thread(
            warehouse, incident["incident_id"], payload["rollout_mode"]
        )
    if not held.held:
        raise EventNotSent(f"not sent: {held.refusal()}")
    payload = with_thread(payload, thread)  # an open delivered since (late) made the ticket
    if held.after_unknown_outcome:
        log.warning("%s: %s", held.event.summary(), UNKNOWN_RETRIED)
    failures: list[BaseException] = []
    try:
        answer = post(payload, failures)
    except WebhookError as error:
        unanswered = any(getattr(e, "unanswered", False) for e in [*failures, error])
        note = redact(str(error), known_secrets(settings))
        if unanswered:
            state = ledger.UNKNOWN
            note += "; outcome unknown: the receiver may have acted, the next attempt "
            note += "re-sends with the same key"
        elif isinstance(error, PermanentWebhookError):
            state = ledger.FAILED
        else:
            state = ledger.PENDING  # owed: the next run delivers it before anything newer
        with open_warehouse(settings) as warehouse:
            ledger.settle(warehouse, held, state, note=note)
        if unanswered:
            raise WebhookOutcomeUnknown(note) from None
        raise
    # anything else raised above (a bug, a kill) leaves the claim to expire: nothing lies
    with open_warehouse(settings) as warehouse, warehouse.atomic():
        # the receipt names the run that built the body (its audience), which is not the
        # sending run for an event delivered late: the cooldown counts that audience
        incidents.record_delivery(warehouse, payload, answer, payload.get("run_id") or run_id)
        ledger.settle(warehouse, held, ledger.DELIVERED, answer=answer)
    if held.after_unknown_outcome:
        answer = {**answer, "note": UNKNOWN_RETRIED}
    log.info(delivered_line(payload, answer))
    return answer


def deliver_owed(
    settings: Settings, day: dt.date, run_id: str, post: Post, rollout_mode: str | None
) -> list[dict[str, Any]]:
    """Deliver the events owed from dates before ``day`` in the rollout mode (the
    settings' unless given)
    (the receiver was down, a sender died, no answer came), oldest first, each as recorded
    with a first line saying it is late (``playbook.late_payload``), before anything newer.
    An owed event whose incident's resolve reached people since is withheld instead (it
    would contradict the closed ticket). The first delivery that fails stops the catch-up
    (its error is raised; the rest stay owed, in order). Called by :func:`deliver_due`.

    Returns one entry per event delivered: its key, event, date and the receiver's answer.
    """
    from retentionops import incidents, ledger
    from retentionops.playbook import late_payload

    with open_warehouse(settings) as warehouse:
        owed = ledger.owed(warehouse, rollout_mode or settings.rollout_mode, day)
    delivered = []
    for event in owed:
        if event.in_flight:  # another run is sending it now: nothing newer overtakes it
            raise EventsOwed(
                f"not sent yet: the {event.summary()} is being sent by run "
                f"{event.claimed_by} (claimed until {event.lease_until:%Y-%m-%d %H:%M:%S} "
                "UTC); what comes after it waits in the ledger and goes out in order"
            )
        if event.payload is None:  # claimed by a sender that recorded no body: cannot rebuild
            log.warning("%s is owed but has no recorded body: resend its date", event.summary())
            continue
        with open_warehouse(settings) as warehouse:
            resolved = incidents.resolve_delivered(warehouse, event.incident_id, event.rollout_mode)
            if resolved and event.event != "resolve":
                ledger.withhold(
                    warehouse,
                    event.dedupe_key,
                    f"withheld: incident {event.incident_id} is already resolved ({resolved})",
                )
                continue
        payload = late_payload(event.payload, delivered_on=day, why=event.note)
        answer = send_event(settings, payload, run_id, post)
        delivered.append(
            {
                "dedupe_key": event.dedupe_key,
                "incident_id": event.incident_id,
                "event": event.event,
                "run_date": event.run_date.isoformat(),
                "ticket_id": answer.get("ticket_id"),
                "slack_message_ts": answer.get("slack_message_ts"),
            }
        )
    return delivered


def webhook_post(settings: Settings) -> Post:
    """The CLI's and the MCP server's POST: Airflow's HTTP hook (``hooks.PlaybookHook``).

    The first call of a process that has not imported Airflow loads it, some seconds,
    shown as a progress step like the post and its retries."""
    import sys

    from retentionops.connections import keep_logs_off_stdout, webhook_url

    webhook_url(settings)  # a missing connection: a clear error before anything is claimed
    loading = (
        progress.step("loading Airflow's HTTP hook for the webhook (first call only)")
        if "retentionops.hooks" not in sys.modules
        else contextlib.nullcontext()
    )
    with loading:
        from retentionops.hooks import PlaybookHook
    keep_logs_off_stdout()

    def post(payload: dict[str, Any], failures: list[BaseException]) -> dict[str, Any]:
        event = (payload.get("incident") or {}).get("event") or "playbook"
        with progress.step(f"posting the {event} event to the webhook"):
            hook = PlaybookHook(method="POST", http_conn_id=settings.make_conn_id)
            return hook.post_playbook(payload, settings, failures)

    return post


def delivered_line(payload: dict[str, Any], answer: dict[str, Any]) -> str:
    """What a delivery did, for the task log and the CLI's log: event, ticket, Slack post."""
    incident = payload.get("incident") or {}
    return (
        f"playbook: delivered the {incident.get('event') or 'playbook'} event of "
        f"{incident.get('incident_id') or payload.get('run_date')}: ticket "
        f"{answer.get('ticket_id')}, Slack message {answer.get('slack_message_ts')}"
    )


def fallback_notice(reason: str) -> str:
    """The first line of a fallback post: what failed, and what people should do about it.

    After a timeout the receiver may have completed the call: the post says so instead of
    claiming that no ticket exists.
    """
    if "timed out" in reason:
        return (
            f":warning: The retention playbook webhook did not answer in time ({reason}); it "
            "may still have posted and opened a ticket. Here is the brief: check the ticket "
            "queue before opening one by hand."
        )
    return (
        f":warning: The retention playbook webhook failed ({reason}); delivering the brief "
        "directly. No ticket was created: open one by hand."
    )


def post_fallback(settings: Settings, slack_brief: dict[str, Any], reason: str) -> dict[str, Any]:
    """Post the brief straight to Slack when the playbook failed; say why it is a fallback.

    The Slack provider's webhook hook sends it once (never retried: a repeat would post
    twice). A missing Slack connection is a clear error; the brief and exports stay on disk.
    """
    return _post_to_slack(settings, fallback_notice(reason), slack_brief)


def post_approval_request(
    settings: Settings, payload: dict[str, Any], link: str | None = None
) -> dict[str, Any]:
    """Tell Slack, through the fallback connection, that the day's event waits for a
    person's approval (``link``: its Required action in Airflow), with the brief that will
    go out; the playbook itself waits, so this is the one message people get meanwhile."""
    notice = approval.waiting_notice(payload, settings, link)
    return _post_to_slack(settings, notice, payload["brief"])


def _post_to_slack(settings: Settings, notice: str, slack_brief: dict[str, Any]) -> dict[str, Any]:
    """Post ``notice`` and the brief through the Slack fallback connection, once."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from retentionops.connections import get_connection, mask

    secrets = known_secrets(settings)
    get_connection(settings.slack_conn_id)
    mask(secrets)
    message = with_first_line({"brief": slack_brief}, notice)["brief"]
    try:
        SlackWebhookHook(slack_webhook_conn_id=settings.slack_conn_id).send(
            text=message["text"], blocks=message["blocks"]
        )
    except Exception as error:  # the SDK's message may embed the webhook URL
        raise ServiceError("Slack fallback failed: " + redact(str(error), secrets)) from None
    return {"slack_posted": True}


def vanished_incidents(
    settings: Settings, run_date: DateLike, rollout_mode: str | None = None
) -> list[tuple[Any, str]]:
    """The incidents the team was told about (a delivered event, no delivered resolve) that
    today's settings no longer see as open on ``run_date``, each with why, in words: the
    settings changed since it opened, or today's rules resolved it on a day whose run never
    sent that resolve. :func:`close_vanished` closes them."""
    from retentionops import incidents, ledger
    from retentionops.sql import alert_settings_fingerprint

    day = as_date(run_date)
    mode = rollout_mode or settings.rollout_mode
    with open_warehouse(settings) as warehouse:
        told = [
            known
            for known in ledger.delivered_incidents(warehouse)
            if known.rollout_mode == mode and not known.resolved and known.opened_on <= day
        ]
        if not told:
            return []
        detection.extend_history(warehouse, settings, day)
        found = []
        for known in told:  # a handful of open incidents, each one query over the history
            rows = incidents.incident_days(warehouse, settings, known.opened_on, day)
            seen = [r for r in rows if r["incident_id"] == known.incident_id]
            if seen and seen[-1]["day"] == day.isoformat():
                continue  # still open today (or resolving today): the day's own event
            if seen and seen[-1]["resolved_on"]:
                why = (
                    f"today's rules resolved it on {seen[-1]['resolved_on']}, and that "
                    "day's resolve was never sent"
                )
            else:
                why = (
                    "today's settings no longer see this incident (it opened under settings "
                    f"{known.settings_fingerprint}, they are now "
                    f"{alert_settings_fingerprint(settings)})"
                )
            found.append((known, why))
    return found


def close_vanished(
    settings: Settings, day: dt.date, run_id: str, post: Post, rollout_mode: str | None
) -> list[dict[str, Any]]:
    """Close each incident the team was told about that today's settings no longer see
    on ``day`` (:func:`vanished_incidents`) with an explicit ``resolve`` saying why
    (``playbook.closing_payload``), recorded in the ledger before it is sent. A step of
    :func:`deliver_due`, after the owed events."""
    from retentionops import ledger
    from retentionops.playbook import closing_payload

    closed = []
    for known, why in vanished_incidents(settings, day, rollout_mode):
        with open_warehouse(settings) as warehouse:
            last = ledger.read(warehouse, known.last_key)
            if last is None or last.payload is None:
                log.warning("%s has no recorded body to close it from", known.incident_id)
                continue
            payload = closing_payload(last.payload, run_id=run_id, run_date=day, reason=why)
            ledger.record(warehouse, settings, payload)
        answer = send_event(settings, payload, run_id, post)
        closed.append(
            {
                "dedupe_key": payload["dedupe_key"],
                "incident_id": known.incident_id,
                "event": "resolve",
                "run_date": day.isoformat(),
                "ticket_id": answer.get("ticket_id"),
                "slack_message_ts": answer.get("slack_message_ts"),
                "closed_because": why,
            }
        )
    return closed


def deliver_due(
    settings: Settings,
    run_date: DateLike,
    run_id: str,
    post: Post,
    *,
    delivery: Delivery | None = None,
    rollout_mode: str | None = None,
) -> list[dict[str, Any]]:
    """What a run owes the team before its own event, in order: the events owed from
    earlier dates (:func:`deliver_owed`), then the closing of incidents today's settings
    no longer see (:func:`close_vanished`). Nothing while the kill switch, a silence or a
    dry run says so. Every door calls this before sending the day's event."""
    from retentionops.playbook import sending_blocked

    delivery = delivery or Delivery.now()
    if sending_blocked(settings, delivery):
        return []
    day = as_date(run_date)
    done = deliver_owed(settings, day, run_id, post, rollout_mode)
    with open_warehouse(settings, read_only=True) as warehouse:
        data = freshness.orders_freshness(warehouse, settings, day)
    if not data["trusted"] and not delivery.allow_late_data:
        # nothing is closed on late or short orders; the owed events were decided before
        log.warning("playbook: %s: no incident is closed on it", data["note"])
        return done
    return done + close_vanished(settings, day, run_id, post, rollout_mode)


def catch_up(
    settings: Settings, run_date: DateLike, run: Run, delivery: Delivery | None = None
) -> list[dict[str, Any]]:
    """A day without an event of its own (the DAG's ``deliver_owed``): what the run owes
    (:func:`deliver_due`) through the webhook; nothing due, no call (and no connection
    needed)."""
    day = as_date(run_date)
    if not due_before(settings, day):
        return []
    try:
        return deliver_due(settings, day, run.run_id, webhook_post(settings), delivery=delivery)
    except EventsOwed as waiting:  # another run is delivering an earlier event right now
        log.info("playbook: %s", waiting)
        return []


def due_before(settings: Settings, day: dt.date) -> bool:
    """Whether a run of ``day`` owes the team anything before its own event."""
    from retentionops import ledger

    with open_warehouse(settings) as warehouse:
        owed = ledger.owed(warehouse, settings.rollout_mode, day)
    return bool(owed) or bool(vanished_incidents(settings, day))
