"""The audit trail (``ops_runs_log``, design section 6.2): what a run's row says, and writing it.

:func:`summarize` is the one rule turning what happened in a run (:class:`RunOutcome`:
failed steps, decision, exports, webhook answer, fallback, dry run) into its row. It is plain
Python, tested without Airflow; the DAG's ``write_run_log`` task, its failure callback and
every CLI/MCP write feed it. :func:`write` MERGEs the row (one per ``run_id``) and keeps a
JSON copy next to the run's files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from retentionops.dates import DateError, as_date
from retentionops.errors import DetectionError, ServiceError
from retentionops.files import jsonable, write_json_atomic
from retentionops.settings import Settings
from retentionops.vocabulary import EXPORT_STEP, INTERFACES, PLAYBOOK_STEP, TIERS
from retentionops.warehouse import Warehouse

#: BigQuery types of the MERGE parameters (a NULL value still needs a type).
RUN_LOG_TYPES = {
    "run_id": "STRING",
    "run_timestamp": "TIMESTAMP",
    "alert_date": "DATE",
    "severity": "STRING",
    "alert_flag": "BOOL",
    "current_value": "FLOAT64",
    "baseline_value": "FLOAT64",
    "delta_relative_pct": "FLOAT64",
    "sample_size": "INT64",
    "p1_count": "INT64",
    "p2_count": "INT64",
    "p3_count": "INT64",
    "total_exported": "INT64",
    "slack_posted": "BOOL",
    "slack_message_ts": "STRING",
    "ticket_id": "STRING",
    "export_p1_link": "STRING",
    "export_p2_link": "STRING",
    "export_p3_link": "STRING",
    "brief_link": "STRING",
    "status": "STRING",
    "error_message": "STRING",
    "execution_time_ms": "INT64",
    "interface": "STRING",
    "playbook_status": "STRING",
    "export_status": "STRING",
    "incident_id": "STRING",
    "incident_event": "STRING",
    "note": "STRING",
    "exported_p1": "INT64",
    "exported_p2": "INT64",
    "exported_p3": "INT64",
    "cooldown_p1": "INT64",
    "cooldown_p2": "INT64",
    "cooldown_p3": "INT64",
    "audience_changes": "STRING",
    "anomalies": "STRING",
    "holdout_p1": "INT64",
    "holdout_p2": "INT64",
    "holdout_p3": "INT64",
    "treated_p1": "INT64",
    "treated_p2": "INT64",
    "treated_p3": "INT64",
    "holdout_note": "STRING",
}
#: Longest error text kept in a row (the whole story stays in the task log).
MAX_ERROR_LENGTH = 2000
#: The errors that refuse a command for its input or a missing precondition (a bad
#: argument, a date without detection or queue, nothing to decide): raised before the
#: command did anything, they make a ``refused`` row, not a ``failed`` one (:func:`refusal`).
REFUSALS = (ServiceError, DetectionError, DateError)


class RunLogRow(TypedDict):
    run_id: str
    run_timestamp: Any
    alert_date: Any
    severity: str | None
    alert_flag: bool | None
    current_value: float | None
    baseline_value: float | None
    delta_relative_pct: float | None
    sample_size: int | None
    p1_count: int | None
    p2_count: int | None
    p3_count: int | None
    total_exported: int | None
    slack_posted: bool | None
    slack_message_ts: str | None
    ticket_id: str | None
    export_p1_link: str | None
    export_p2_link: str | None
    export_p3_link: str | None
    brief_link: str | None
    status: str
    error_message: str | None
    execution_time_ms: int | None
    interface: str
    playbook_status: str | None
    export_status: str | None
    incident_id: str | None
    incident_event: str | None
    note: str | None
    exported_p1: int | None
    exported_p2: int | None
    exported_p3: int | None
    cooldown_p1: int | None
    cooldown_p2: int | None
    cooldown_p3: int | None
    audience_changes: str | None
    anomalies: str | None
    holdout_p1: int | None
    holdout_p2: int | None
    holdout_p3: int | None
    treated_p1: int | None
    treated_p2: int | None
    treated_p3: int | None
    holdout_note: str | None


@dataclasses.dataclass
class RunOutcome:
    """What is known of one run; ``None`` means "not known / not part of this run".

    ``daily`` marks the DAG's daily run, whose purpose is the playbook: a day without an
    event to deliver is ``skipped``; any other run without an error is ``success``. A
    standalone command refused before it did anything (:func:`refusal`) is ``refused``:
    health counts it apart from the runs that ran.
    ``plan`` is the day's playbook plan (its event, whether it is sent, and why not).
    ``audience`` is the context's tiers (cooldown, new / still / left) and ``anomalies``
    its volume warnings; ``previous_run_date`` the last delivered run they compare with.
    ``approval`` is what came of the approval the event waited for (``approval.Verdict``:
    withheld, the event is ``suppressed`` and the note says who rejected it, or that nobody
    answered; approved, the note names the approver).
    """

    run_id: str
    run_date: Any
    interface: str
    started_at: dt.datetime | None = None
    daily: bool = False
    decision: dict[str, Any] | None = None
    plan: Mapping[str, Any] | None = None
    counts: dict[str, int] | None = None
    audience: dict[str, dict[str, Any]] | None = None
    anomalies: list[str] | None = None
    previous_run_date: str | None = None
    #: the incidents' holdouts that hold on the run date (holdouts.summary; an export's own
    #: summary, which has its draw, wins)
    holdout: dict[str, Any] | None = None
    exports: list[dict[str, Any]] | None = None
    export_failed: bool = False
    brief_link: str | None = None
    dry_run: bool = False
    answer: dict[str, Any] | None = None
    playbook_failed: bool = False
    fallback_posted: bool = False
    failed_steps: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    #: the command was refused before it did anything (:meth:`refuse`)
    refused: bool = False
    #: the owed events of earlier dates this run delivered first (service.deliver_owed)
    late: list[dict[str, Any]] | None = None
    #: what came of the person's approval the event waited for (approval.Verdict)
    approval: dict[str, Any] | None = None

    @classmethod
    def of_dag_run(
        cls,
        run_id: str,
        run_date: dt.date,
        *,
        started_at: dt.datetime | None,
        failed_steps: list[str],
        decision: dict[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        files: Mapping[str, str] | None = None,
        exports: list[dict[str, Any] | None] | None = None,
        answer: dict[str, Any] | None = None,
        fallback: dict[str, Any] | None = None,
        late: list[dict[str, Any]] | None = None,
        approval: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> RunOutcome:
        """What one daily DAG run did, from its tasks' outputs (None: the task did not run
        or returned nothing) and the steps that failed (task ids; an export task's id starts
        with ``export_audience``, the webhook's is ``trigger_playbook``)."""
        context = context or {}
        return cls(
            run_id,
            run_date,
            "dag",
            started_at=started_at,
            daily=True,
            decision=decision or context.get("decision"),
            plan=context.get("plan"),
            counts={t: v["count"] for t, v in context["tiers"].items()} if context else None,
            audience=context.get("tiers"),
            anomalies=context.get("anomalies"),
            previous_run_date=context.get("previous_run_date"),
            exports=[e for e in exports or [] if e],
            export_failed=any(step.startswith(EXPORT_STEP) for step in failed_steps),
            brief_link=(files or {}).get("markdown"),
            dry_run=dry_run,
            answer=answer,
            playbook_failed=PLAYBOOK_STEP in failed_steps,
            fallback_posted=bool(fallback),
            failed_steps=failed_steps,
            late=late,
            approval=approval,
        )

    def take_context(self, context: Mapping[str, Any]) -> RunOutcome:
        """What the run's operational context says: decision, plan, tiers, anomalies."""
        self.decision, self.plan = context["decision"], context["plan"]
        self.counts = {tier: info["count"] for tier, info in context["tiers"].items()}
        self.audience = context["tiers"]
        self.anomalies = context.get("anomalies")
        self.previous_run_date = context.get("previous_run_date")
        self.holdout = context.get("holdout")
        return self

    def fail(self, step: str, error: BaseException | str) -> RunOutcome:
        """Record that ``step`` failed with ``error`` (its message, never a traceback)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.failed_steps.append(step)
        self.errors.append(f"step {step} failed: {text}")
        return self

    def refuse(self, step: str, error: str) -> RunOutcome:
        """Record that ``step`` was refused with ``error`` before it did anything."""
        self.refused = True
        self.errors.append(f"step {step} refused: {error}")
        return self

    def did_something(self) -> bool:
        """Whether the run recorded any result or failure yet."""
        results = (self.decision, self.plan, self.counts, self.exports, self.brief_link)
        return (
            bool(self.failed_steps)
            or any(r is not None for r in results)
            or bool(self.answer or self.late or self.playbook_failed or self.fallback_posted)
        )


def refusal(error: BaseException, outcome: RunOutcome) -> bool:
    """Whether ``error`` refused the run rather than failed it: an error of input or of a
    missing precondition (:data:`REFUSALS`) raised before the run recorded anything. The
    same error after a step did its work, and any other error, is a failure."""
    return isinstance(error, REFUSALS) and not outcome.did_something()


def summarize(outcome: RunOutcome, now: dt.datetime | None = None) -> RunLogRow:
    """The ``ops_runs_log`` row of a run, given what happened (the one rule)."""
    if outcome.interface not in INTERFACES:
        raise ValueError(
            f"interface must be one of {', '.join(INTERFACES)}, not {outcome.interface!r}"
        )
    now = now or dt.datetime.now(dt.UTC)
    decision = outcome.decision or {}
    plan = outcome.plan or {}
    sent_answer = outcome.answer
    # owed events delivered first: by the run itself, or by the DAG's webhook task
    late = [*(outcome.late or []), *((outcome.answer or {}).get("late") or [])]
    refused = (outcome.answer or {}).get("not_sent")
    if refused:  # the ledger refused the claim at the last moment: nothing was posted
        plan, sent_answer = {**plan, "send": False, "reason": refused}, None
    approval = outcome.approval or {}
    if approval and not approval.get("approved"):  # rejected, or withheld by default
        plan, sent_answer = {**plan, "send": False, "reason": approval["note"]}, None
    known = outcome.plan is not None
    has_event = bool(plan.get("event"))
    failed = bool(outcome.failed_steps or outcome.errors)

    if outcome.refused and not outcome.failed_steps:
        status = "refused"
    elif failed:
        status = "failed"
    elif outcome.daily and known and not has_event:
        status = "skipped"
    else:
        status = "success"

    if known and not has_event:
        playbook_status = "not_needed"
    elif sent_answer:
        playbook_status = "sent"
    elif outcome.playbook_failed:
        playbook_status = "failed"
    elif outcome.dry_run and has_event:
        playbook_status = "dry_run"
    elif known and not plan.get("send"):
        playbook_status = "suppressed"  # an event to send, withheld: the note says why
    else:
        playbook_status = None  # the run never reached the playbook, or had none

    exports = outcome.exports
    if outcome.daily and known and not plan.get("alerting"):
        exports = []
    upload_errors = [
        f"{export['tier']} {upload['kind']} upload failed, the local CSV is linked: "
        f"{upload['error']}"
        for export in exports or []
        for upload in export.get("uploads") or []
        if upload.get("error")
    ]
    if outcome.export_failed:
        export_status = "failed"
    elif upload_errors:
        export_status = "fallback_local"
    elif exports:
        export_status = "ok"
    elif exports is not None or outcome.daily:
        export_status = "none"
    else:
        export_status = None

    answer = sent_answer or {}
    attempted = bool(sent_answer) or outcome.playbook_failed or outcome.fallback_posted
    posted = bool(answer.get("slack_message_ts")) or outcome.fallback_posted
    links = {e["tier"]: e["link"] for e in exports or []}
    counts = outcome.counts or {}
    error = "; ".join([*outcome.errors, *upload_errors]) or None
    rows = {e["tier"]: int(e["row_count"]) for e in exports or []}
    audience = outcome.audience or {}
    return {
        "run_id": outcome.run_id,
        "run_timestamp": now,
        "alert_date": as_date(outcome.run_date) if outcome.run_date is not None else None,
        "severity": decision.get("severity"),
        "alert_flag": decision.get("alert_flag"),
        "current_value": decision.get("current_value"),
        "baseline_value": decision.get("baseline_value"),
        "delta_relative_pct": decision.get("delta_relative_pct"),
        "sample_size": decision.get("sample_size"),
        "p1_count": counts.get("P1"),
        "p2_count": counts.get("P2"),
        "p3_count": counts.get("P3"),
        "total_exported": sum(int(e["row_count"]) for e in exports)
        if exports is not None
        else None,
        "slack_posted": posted if attempted else None,
        "slack_message_ts": answer.get("slack_message_ts"),
        "ticket_id": answer.get("ticket_id"),
        "export_p1_link": links.get("P1"),
        "export_p2_link": links.get("P2"),
        "export_p3_link": links.get("P3"),
        "brief_link": outcome.brief_link,
        "status": status,
        "error_message": error[:MAX_ERROR_LENGTH] if error else None,
        "execution_time_ms": int((now - outcome.started_at).total_seconds() * 1000)
        if outcome.started_at
        else None,
        "interface": outcome.interface,
        "playbook_status": playbook_status,
        "export_status": export_status,
        "incident_id": plan.get("incident_id"),
        "incident_event": plan.get("event"),
        # what was delivered late first; why the event was not sent; for a sent one, what
        # the delivery said (a re-send after an attempt whose outcome was unknown)
        "note": "; ".join(
            n
            for n in (
                late_note(late),
                approval.get("note") if approval.get("approved") else None,
                plan.get("reason") if playbook_status != "sent" else answer.get("note"),
            )
            if n
        )
        or None,
        **{f"exported_{t.lower()}": rows.get(t) for t in TIERS},
        **{
            f"cooldown_{t.lower()}": audience[t].get("cooldown_suppressed")
            if t in audience
            else None
            for t in TIERS
        },
        "audience_changes": audience_changes(audience, outcome.previous_run_date),
        "anomalies": "; ".join(outcome.anomalies) if outcome.anomalies else None,
        **holdout_columns(audience, exports, outcome.holdout),
    }


def holdout_columns(
    audience: dict[str, dict[str, Any]],
    exports: list[dict[str, Any]] | None,
    holdout: dict[str, Any] | None,
) -> dict[str, Any]:
    """The measurement's two groups per tier: ``holdout_pN``, the tier's customers held out
    on the date (as the run's export drew them, else as the context counted them);
    ``treated_pN``, the customers this run contacted (its file's rows; None: it exported
    nothing); and ``holdout_note``, each incident's holdout in words (holdouts.describe)."""
    from retentionops import holdouts

    summary = next((e["holdout"] for e in exports or [] if e.get("holdout")), None) or holdout
    held = (summary or {}).get("tiers") or {}
    rows = {e["tier"]: int(e["row_count"]) for e in exports or []}
    columns: dict[str, Any] = {}
    for tier in TIERS:
        if tier in held:
            columns[f"holdout_{tier.lower()}"] = int(held[tier]["held_out"])
        elif tier in audience and audience[tier].get("holdout") is not None:
            columns[f"holdout_{tier.lower()}"] = int(audience[tier]["holdout"])
        else:
            columns[f"holdout_{tier.lower()}"] = None
    for tier in TIERS:
        columns[f"treated_{tier.lower()}"] = rows.get(tier, 0) if exports else None
    columns["holdout_note"] = " ".join(holdouts.lines(summary)) or None  # type: ignore[arg-type]
    return columns


def late_note(late: list[dict[str, Any]] | None) -> str | None:
    """What a run delivered before its own event, in one line (None: nothing): the owed
    events of earlier dates, and the incidents it closed because today's settings no
    longer see them."""
    if not late:
        return None
    owed = [d for d in late if not d.get("closed_because")]
    parts = []
    if owed:
        events = ", ".join(f"{d['event']} of {d['incident_id']} ({d['run_date']})" for d in owed)
        parts.append(f"delivered late first: {events}")
    parts += [f"closed {d['incident_id']}: {d['closed_because']}" for d in late if d not in owed]
    return "; ".join(parts)


def audience_changes(
    audience: dict[str, dict[str, Any]], previous_run_date: str | None
) -> str | None:
    """The tiers' new / still / left since the last delivered run, in one line."""
    if not audience:
        return None
    since = f"since {previous_run_date}" if previous_run_date else "no earlier delivery"
    parts = [
        f"{tier} {info['new']} new, {info['still']} still, {info['left']} left"
        for tier, info in audience.items()
        if "new" in info
    ]
    return f"{since}: " + "; ".join(parts) if parts else None


def read(warehouse: Warehouse, run_id: str) -> dict[str, Any] | None:
    """The stored row of one run, JSON-friendly, or None."""
    rows = warehouse.query("action/read_run_log", {"run_id": run_id})
    return jsonable(rows[0]) if rows else None


def read_for_date(warehouse: Warehouse, run_date: dt.date) -> list[dict[str, Any]]:
    """Every stored row of one run date, newest first."""
    rows = warehouse.query("action/read_run_logs_for_date", {"run_date": run_date})
    return [jsonable(row) for row in rows]


def json_path(settings: Settings, run_date: dt.date, run_id: str) -> Path:
    """The JSON copy of a run's row, next to the run's other files."""
    from retentionops.pack import run_dir

    return run_dir(settings, run_date, run_id) / "run_log.json"


def write(warehouse: Warehouse, settings: Settings, row: RunLogRow) -> dict[str, Any]:
    """MERGE the row (one per run_id) and write its JSON copy; return the stored row.

    A NULL keeps what is stored, so a failure callback's row is completed, not erased, by
    the final write; error messages accumulate in order.
    """
    warehouse.ensure_tables(("ops_runs_log",))
    warehouse.execute_file("action/write_run_log", dict(row), types=RUN_LOG_TYPES)
    stored = read(warehouse, row["run_id"])
    if stored is not None and row["alert_date"] is not None:
        write_json_atomic(json_path(settings, row["alert_date"], row["run_id"]), stored)
    return stored or jsonable(dict(row))
