"""Render the manager brief (Markdown, Slack Block Kit, email) and the AT_RISK chart.

Pure Python + Jinja2: importable without Airflow, never touches the warehouse. The caller
passes the operational context (``service.context.operational_context``), the export links and
the chart path; every number is formatted once here (``_facts``) and the templates under
``include/templates/brief/`` only lay the facts out, so the formats cannot disagree.

The brief carries counts and links only, never a customer id or any other personal data.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import os
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import jinja2

from retentionops import approval
from retentionops.dates import as_date
from retentionops.files import write_atomic
from retentionops.slack import (
    SLACK_CONTEXT_ELEMENTS_MAX,
    SLACK_CONTEXT_TEXT_MAX,
    SLACK_FALLBACK_MAX,
    SLACK_FIELD_MAX,
    SLACK_FIELDS_MAX,
    SLACK_HEADER_MAX,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_TEXT_MAX,
    slack_escape,
)
from retentionops.vocabulary import BRIEF_FORMATS, PLAYBOOK_TIERS, TIER_NAMES

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "include" / "templates" / "brief"
DEFAULT_BASELINE_DAYS = 7
GUARDRAILS = (
    "Counts and links only: this brief carries no customer id or other personal data; "
    "the audience files stay in their access-controlled export location.",
    "Do not contact the holdout by other means (it is left out of every export until the "
    "incident resolves + the measurement horizon, so the effect can be measured), and "
    "respect the contact policy (opt-outs, consent, frequency caps) before any outreach.",
    "Rule-based and explainable: tiers follow the status + risk rules above, and every "
    "exported row carries its priority_reason.",
    "The impact figures are illustrative scenarios, not a forecast.",
)

ELLIPSIS = "…"
#: What the incident line says the incident does on the day of each event (None: no
#: event); one entry per event of the vocabulary (INCIDENT_EVENTS, tests/unit/test_brief.py).
INCIDENT_WORDS = {
    "open": "opens",
    "update": "continues",
    "escalate": "escalates",
    "de-escalate": "is lower but not over",
    "resolve": "is resolved",
    None: "is open, no change today",
}


# -- formatting ------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def _number(value: float) -> str:
    """15.0 -> '15', 15.5 -> '15.5', 15.25 -> '15.25' (thresholds, rates)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def fmt_pct(value: float | None) -> str:
    """An absolute share: 23.11 -> '23.11 %'."""
    return "n/a" if value is None else f"{value:.2f} %"


def fmt_points(value: float | None) -> str:
    """A difference of two shares: 5.16 -> '+5.16 pts'."""
    return "n/a" if value is None else f"{value:+.2f} pts"


def fmt_relative(value: float | None) -> str:
    """A relative change: 28.75 -> '+28.75 %'."""
    return "n/a" if value is None else f"{value:+.2f} %"


def fmt_count(value: int | None) -> str:
    return "n/a" if value is None else f"{int(value):,}"


def fmt_money(value: Decimal | float) -> str:
    """Thousands separators and 2 decimals, half away from zero: 44154.04 -> '44,154.04'."""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{amount:,.2f}"


def impact_value(customers: int, rate: float, value_per_customer: float) -> Decimal:
    """Illustrative revenue protected = N × C × V, exact in decimal, to the cent."""
    product = Decimal(int(customers)) * Decimal(str(rate)) * Decimal(str(value_per_customer))
    return product.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _one_line(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _split_link(link: str) -> tuple[str | None, str]:
    """``(url, suffix)`` when the link starts with an http(s) URL, else ``(None, link)``.

    A Google Sheets link carries a note after the URL ("... (tab 'P1 2011-09-22')").
    """
    match = re.match(r"(https?://\S+)(.*)", link.strip(), re.DOTALL)
    if match:
        return match.group(1), match.group(2).strip()
    return None, link.strip()


# -- the facts every format shows --------------------------------------------------------


def _threshold_text(decision: dict[str, Any], warning: str, critical: str) -> str:
    severity = decision["severity"]
    relative = fmt_relative(decision["delta_relative_pct"])
    if decision["delta_relative_pct"] is None:
        return (
            f"Severity {severity}: no relative delta yet (baseline not available), so no "
            f"threshold can be crossed (WARNING ≥ {warning}, CRITICAL ≥ {critical})."
        )
    if severity == "CRITICAL":
        return (
            f"Severity CRITICAL: relative delta {relative} crossed the CRITICAL threshold "
            f"(≥ {critical})."
        )
    if severity == "WARNING":
        return (
            f"Severity WARNING: relative delta {relative} crossed the WARNING threshold "
            f"(≥ {warning}), below CRITICAL (≥ {critical})."
        )
    return (
        f"Severity {severity}: relative delta {relative} is below the WARNING threshold "
        f"(≥ {warning}; CRITICAL ≥ {critical})."
    )


def _mention_label(mention: str) -> str:
    """Slack's ``<!here>`` as people read it: ``@here``."""
    return re.sub(r"^<!(\w+)>$", r"@\1", mention)


def _playbook(plan: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """The playbook this run executes, step by step, as ``playbook_plan`` decided it."""
    severity = decision["severity"]
    event = plan.get("event")
    if not event:
        why = plan.get("reason") or "alert flag is false"
        if not plan.get("reason") and severity in PLAYBOOK_TIERS:  # an alerting severity
            why += (
                f" although severity is {severity} "
                "(sample below the minimum size or no baseline yet)"
            )
        return {
            "name": "no alert",
            "steps": [],
            "skipped": f"No playbook; run logged as skipped ({why}).",
        }
    channel, priority = plan["slack_channel"], plan["ticket_priority"]
    incident = plan.get("incident_id")
    if plan["shadow"]:
        post = f"Send the brief flagged shadow (the scenario posts nothing real; {channel} only)"
        ticket = f"Open no real ticket: a shadow ticket, priority {priority}"
    else:
        post = f"Post to Slack {channel}"
        if event != "open":
            post = f"Reply in the incident's Slack thread in {channel}"
        if plan["escalation"]:
            post += f" with an escalation mention ({_mention_label(plan['mention'])})"
        ticket = {
            "open": f"Open the incident's ticket ({incident}), priority {priority}",
            "resolve": f"Close the incident's ticket ({incident})",
        }.get(event, f"Update the incident's ticket ({incident}), priority {priority}")
    name = str(plan["severity"] or severity)
    if event == "resolve":
        name = "RECOVERY"
    if plan["rollout_mode"] != "production":
        name += f" — {plan['rollout_mode'].upper()} rollout"
        pilot_critical = plan["rollout_mode"] == "pilot" and plan["severity"] == "CRITICAL"
        if pilot_critical and event != "resolve":
            name += " (delivered as the WARNING playbook: no escalation)"
    steps = [post, ticket]
    if plan["tiers"]:
        steps.append(f"Export the {' + '.join(plan['tiers'])} audiences")
    steps.append("Update the run log (ops_runs_log)")
    skipped = None if plan.get("send", True) else f"Nothing is sent: {plan['reason']}."
    return {"name": name, "steps": steps, "skipped": skipped}


def _banner(plan: dict[str, Any], owed: list[dict[str, Any]] | None = None) -> str | None:
    """The first line of a brief that was not sent, or not to the production channel; and,
    first of all, the earlier events the team has not been told yet (the ledger); last,
    that the event waits for a person's approval before it is sent (approval.py)."""
    late = _owed_line(owed or [])
    first = _plan_banner(plan)
    waiting = approval.pending_line(plan)
    return " ".join(part for part in (late, first, waiting) if part) or None


def _owed_line(owed: list[dict[str, Any]]) -> str | None:
    if not owed:
        return None
    events = "; ".join(
        f"the {e['event']} of {e['incident_id']} ({e['run_date']}, {e['state']}"
        + (f": {e['note']}" if e.get("note") else "")
        + ")"
        for e in owed
    )
    return f"OWED — not delivered yet, and going out first: {events}."


def _plan_banner(plan: dict[str, Any]) -> str | None:
    if not plan.get("event"):
        return None
    if not plan.get("send", True):
        return f"NOT SENT — {plan['reason']}."
    if plan["shadow"]:
        return (
            "SHADOW — rollout test: nothing was posted to real channels and no real ticket "
            "was opened."
        )
    if plan["rollout_mode"] == "pilot":
        return f"PILOT — delivered to {plan['slack_channel']} only, without escalation."
    return None


def _incident_facts(context: dict[str, Any]) -> dict[str, Any] | None:
    """Which incident this is, in one line: day N, opened on, peak, pre-incident vs now."""
    incident = context.get("incident")
    if not incident or not incident.get("incident_id"):
        return None
    event = incident.get("event")
    words = INCIDENT_WORDS[event]
    line = (
        f"Incident {incident['incident_id']} {words}: day {incident['days_open']} since "
        f"{incident['opened_on']}, peak {incident['peak_severity']}; AT_RISK "
        f"{fmt_pct(incident['current_value'])} against {fmt_pct(incident['frozen_baseline'])} "
        f"before the incident ({fmt_relative(incident['relative_to_frozen_pct'])})."
    )
    if event == "resolve":
        line += (
            " The share has been back below the WARNING threshold against the pre-incident "
            "baseline for the whole resolution window: the audiences are not exported again."
        )
    return {"id": incident["incident_id"], "event": event, "line": line}


def _watch(context: dict[str, Any]) -> list[str]:
    """What a reader should keep an eye on beside the day's event: the orders feed (late,
    short or high, when the run acted on it anyway; a held day says so in its first line)
    and slow drift, the share against the share ``drift_days`` before (docs/incidents.md)."""
    lines = []
    data = context.get("data_freshness") or {}
    if data.get("note") and not context["plan"].get("held_event"):
        lines.append(str(data["note"]))
    incident = context.get("incident") or {}
    if incident.get("drift_flag"):
        kind = str(incident.get("incident_id") or "").startswith("DRIFT-")
        lines.append(
            f"Slow drift: AT_RISK {fmt_pct(incident['current_value'])} against "
            f"{fmt_pct(incident['drift_earlier_value'])} on {incident['drift_compared_with']} "
            f"({fmt_relative(incident['drift_pct'])}); SQL5's 7-day baseline climbs along "
            "with a slow rise. "
            + (
                f"Incident {incident['incident_id']} follows it."
                if kind
                else "A shadow check (drift_mode: shadow): nothing is opened for it."
                if context.get("drift_mode", "shadow") == "shadow"
                else "It is followed by the open incident."
            )
        )
    return lines


def _audience_line(context: dict[str, Any], tier: dict[str, Any]) -> str | None:
    """An exported tier across days: new / still / left since the last delivered run, the
    contact cooldown, the rows in the file (docs/audiences.md)."""
    if "new" not in tier or not (tier["count"] or tier.get("left")):
        return None  # nothing in the tier, now or then
    previous = context.get("previous_run_date")
    parts = [
        f"{fmt_count(tier['new'])} new, {fmt_count(tier['still'])} still, "
        f"{fmt_count(tier['left'])} left since the delivery of {previous}"
        if previous
        else "no earlier delivery: every customer is new"
    ]
    days = context.get("cooldown_days")
    if tier.get("cooldown_suppressed"):
        parts.append(
            f"{fmt_count(tier['cooldown_suppressed'])} kept back (delivered within the "
            f"{days}-day contact cooldown)"
        )
    if tier.get("cooldown_bypassed"):
        parts.append(
            f"{fmt_count(tier['cooldown_bypassed'])} delivered within it but more urgent now: "
            "exported, marked"
        )
    if tier.get("holdout"):
        parts.append(
            f"{fmt_count(tier['holdout'])} held out (the incident's holdout: not contacted, "
            "to measure the effect)"
        )
    if tier.get("exported_rows") is not None:
        parts.append(f"{fmt_count(tier['exported_rows'])} in the file")
    line = "; ".join(parts)
    return line[0].upper() + line[1:]


def _lead(context: dict[str, Any], exported: list[str]) -> dict[str, str | None]:
    """The three lines a manager reads first, in plain words: what happened, what is ready,
    what is asked of whom by when (and the incident and ticket)."""
    decision, plan = context["decision"], context["plan"]
    incident = context.get("incident") or {}
    windows = context.get("status_windows") or {"active_days": 30, "at_risk_days": 90}
    at_risk = (
        f"at risk of churning (last order {windows['active_days'] + 1} to "
        f"{windows['at_risk_days']} days ago)"
    )
    current, baseline = decision["current_value"], decision["baseline_value"]
    usual = f"a usual {fmt_pct(baseline)}" if baseline is not None else "no usual level yet"
    event = plan.get("event")
    if event == "resolve":
        happened = (
            f"Back to normal: {fmt_pct(current)} of customers are {at_risk}, within the "
            f"WARNING threshold of the {fmt_pct(incident.get('frozen_baseline'))} before "
            f"incident {plan['incident_id']}, which is resolved."
        )
    elif event and (event == "open" or not incident.get("frozen_baseline")):
        happened = (
            f"Churn risk jumped: {fmt_pct(current)} of customers are {at_risk}, against "
            f"{usual} ({fmt_relative(decision['delta_relative_pct'])}, {plan['severity']})."
        )
    elif event:
        # a day of an open incident is measured against where the incident started, not
        # against the rolling baseline that has caught up with it (docs/incidents.md)
        how = {
            "update": "Churn risk is still high",
            "escalate": "Churn risk got worse",
            "de-escalate": "Churn risk is lower, not back to normal",
        }[event]
        relative = incident.get("relative_to_frozen_pct") or 0.0
        happened = (
            f"{how}: {fmt_pct(current)} of customers are {at_risk}, "
            f"{'still ' if relative > 0 else ''}{fmt_relative(relative)} "
            f"{'above' if relative >= 0 else 'against'} the "
            f"{fmt_pct(incident['frozen_baseline'])} before incident {plan['incident_id']} "
            f"({plan['severity']})."
        )
    else:
        reason = context.get("note") or (
            f"{fmt_pct(current)} of customers are {at_risk}, against {usual}"
        )
        happened = f"No action today: {reason}."
    tiers = context["tiers"]
    lists = [
        f"{key} {TIER_NAMES.get(key, key)} "
        f"({fmt_count(_ready(tiers[key]))}: {_one_line(tiers[key]['action'])})"
        for key in exported
        if _ready(tiers[key])
    ]
    total = sum(_ready(tiers[key]) for key in exported)
    if lists:
        ready = (
            f"Ready: {fmt_count(total)} customers to contact, in {len(lists)} "
            + ("list: " if len(lists) == 1 else "lists: ")
            + "; ".join(lists)
            + "."
        )
    elif exported:
        ready = (
            "Ready: no customer to contact today (everyone was contacted recently or is held out)."
        )
    else:
        ready = None
    response = context.get("response") or {}
    owner = response.get("owner") or "the retention team"
    ticket = response.get("ticket_id")
    where = f"incident {plan['incident_id']}" if plan.get("incident_id") else None
    if where and incident.get("days_open"):
        where += f", day {incident['days_open']}"
    if ticket:
        ticket_text = f"ticket {ticket}"
    elif plan.get("shadow"):
        ticket_text = "shadow rollout: no real ticket is opened"
    elif plan.get("send") is False and plan.get("reason"):
        ticket_text = f"no ticket from this run: {plan['reason']}"
    else:
        ticket_text = "the ticket is opened by this run's playbook"
    if event and event != "resolve" and lists and response.get("historical"):
        # a backfill (playbook.history_age): a deadline computed from today means nothing
        ask = f"Ask: historical run for {context['run_date']} (backfill): no deadline"
        ask += f" ({where}; {ticket_text})." if where else "."
    elif event and event != "resolve" and lists:
        due = str(response.get("due_at", "")).replace("T", " ").replace("+00:00", " UTC")
        ask = f"Ask: {owner}, start the outreach by {due}"
        ask += f" ({where}; {ticket_text})." if where else "."
    elif event == "resolve":
        ask = f"Ask: nothing; {owner} may close the follow-up ({where}; " + (
            f"ticket {ticket} is closed by the playbook)."
            if ticket
            else "the ticket is closed by the playbook)."
        )
    else:
        ask = None
    return {"happened": happened, "ready": ready, "ask": ask}


def _ready(tier: dict[str, Any]) -> int:
    """The customers a tier's file holds (or will hold): its rows, else what is eligible."""
    if tier.get("exported_rows") is not None:
        return int(tier["exported_rows"])
    return int(tier.get("exportable", tier["count"]))


def _n_assumption(
    context: dict[str, Any], exported: list[str], contacted: dict[str, int]
) -> str:
    """What N counts: the customers contacted today, per tier, and who is not counted."""
    tiers = context["tiers"]
    per_tier = " + ".join(f"{k} {fmt_count(contacted[k])}" for k in exported)
    done = any(tiers[k].get("exported_rows") is not None for k in exported)
    text = f"N = {fmt_count(sum(contacted.values()))} customers contacted today" + (
        f", the rows exported ({per_tier})"
        if done
        else f", what the export takes ({per_tier}, before the row limit)"
        if exported
        else ""
    )
    held = sum(int(tiers[k].get("holdout") or 0) for k in exported)
    kept = sum(int(tiers[k].get("cooldown_suppressed") or 0) for k in exported)
    left_out = []
    if held:
        left_out.append(f"{fmt_count(held)} held out (the holdout, which measures C)")
    if kept:
        left_out.append(
            f"{fmt_count(kept)} kept back by the {context.get('cooldown_days')}-day contact "
            "cooldown (contacted recently)"
        )
    if left_out:
        text += "; not counted: " + " and ".join(left_out)
    return text + "."


def _holdout_lines(context: dict[str, Any], exported: list[str]) -> list[str]:
    """The holdout in words: each incident's (the tiers drawn, or why not, until when it
    holds), or that the day's incident draws it at its first export, or that none holds."""
    from retentionops.holdouts import lines, pct_text

    holdout = context.get("holdout")
    said = lines(holdout)
    incident = context.get("incident") or {}
    mine = incident.get("incident_id") if incident.get("phase") == "incident" else None
    drawn = {i["incident_id"] for i in (holdout or {}).get("incidents") or []}
    if mine and mine not in drawn and holdout is not None:
        said.append(
            f"Holdout of {mine}: not drawn yet; its first export draws "
            f"{pct_text(holdout['holdout_pct'])} of each tier (tiers under "
            f"{holdout['min_customers']} held out get none)."
        )
    if not said and exported and holdout is not None:
        said.append("No holdout holds on this date: every eligible customer is contacted.")
    return said


def _facts(
    context: dict[str, Any],
    links: dict[str, str] | None,
    chart_link: str | None,
    run_id: str | None,
    chart_src: str | None = None,
) -> dict[str, Any]:
    """Every value the brief shows, formatted once for all formats: one part per section
    of the brief, top down (the templates under ``include/templates/brief/`` read them)."""
    plan = context["plan"]
    exported = list(plan["tiers"])
    return {
        **_heading(context),
        "lead": _lead(context, exported),
        "incident": _incident_facts(context),
        "watch": _watch(context),
        "note": context.get("note"),
        "anomalies": [_one_line(a) for a in context.get("anomalies") or []],
        **_ready_facts(context, exported),
        "playbook": _playbook(plan, context["decision"]),
        **_situation(context),
        **_chart(context, chart_link, chart_src),
        "artifacts": _artifacts(exported, links or {}, chart_link),
        "impact": _impact(context, exported),
        "run_id": run_id,
        **_appendix(context),
        "guardrails": GUARDRAILS,
    }


def _heading(context: dict[str, Any]) -> dict[str, Any]:
    """The head of the brief: the title (the date and its state: the severity, the
    incident's resolution, a day held or warming up), the trial rollout's tag, the banner,
    and whether it escalates (the mention)."""
    decision, plan = context["decision"], context["plan"]
    severity = str(decision["severity"])
    incident = context.get("incident") or {}
    event = plan.get("event")
    if event == "resolve":
        title_state = f"RESOLVED ({plan['incident_id']})"
    elif event:
        title_state = str(plan["severity"])
    elif plan.get("held_event"):  # the orders are late or short: nothing was acted on
        data = context.get("data_freshness") or {}
        state = "data late" if data.get("status") != "fresh" else "data short"
        title_state = f"{state}, held ({severity})"
    elif incident.get("phase") == "warmup":
        title_state = f"warm-up, not acted on ({severity})"
    elif incident.get("incident_id"):
        title_state = f"{incident['incident_id']} open, no change ({severity})"
    else:
        title_state = f"no alert ({severity})"
    trial = bool(event) and plan["rollout_mode"] != "production"
    mode = f"[{plan['rollout_mode'].upper()}] " if trial else ""
    return {
        "title": f"{mode}RetentionOps brief — {context['run_date']} — {title_state}",
        "mode_tag": mode,
        "banner": _banner(plan, context.get("owed") or []),
        "run_date": str(context["run_date"]),
        "severity": severity,
        "alerting": bool(decision["alert_flag"]),
        "escalate": plan["escalation"],
        "mention": plan["mention"],
    }


def _ready_facts(context: dict[str, Any], exported: list[str]) -> dict[str, Any]:
    """What is ready: every tier (its count, definition and action, whether it is
    exported, why it is empty, its audience across days) and the tiers exported."""
    tiers = []
    for key, tier in context["tiers"].items():
        count = int(tier["count"])
        empty_note = None
        if count == 0:
            empty_note = tier["empty_reason"] or "no reason recorded for this empty tier"
        tiers.append(
            {
                "key": key,
                "name": tier.get("name") or TIER_NAMES.get(key, key),
                "count": fmt_count(count),
                "definition": _one_line(tier["definition"]),
                "action": _one_line(tier["action"]),
                "exported": key in exported,
                "empty_reason": _one_line(empty_note) if empty_note else None,
                "audience": _audience_line(context, tier) if key in exported else None,
            }
        )
    return {
        "tiers": tiers,
        "exported": exported,
        "exported_text": " + ".join(exported) if exported else "none",
    }


def _situation(context: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the day (the share, its usual level, the change, the customers
    counted) and the thresholds they are held against."""
    decision = context["decision"]
    baseline_days = int(context.get("baseline_days") or DEFAULT_BASELINE_DAYS)
    warning = f"{_number(decision['threshold_warning'])} %"
    critical = f"{_number(decision['threshold_critical'])} %"
    return {
        "situation": [
            ("Customers at risk (AT_RISK share)", fmt_pct(decision["current_value"])),
            (
                f"Usual level ({baseline_days}-day baseline)",
                fmt_pct(decision["baseline_value"])
                if decision["baseline_value"] is not None
                else "n/a (warming up)",
            ),
            ("Change (points)", fmt_points(decision["delta_pct"])),
            ("Change against the usual level", fmt_relative(decision["delta_relative_pct"])),
            ("Customers counted", f"{fmt_count(decision['sample_size'])} customers"),
        ],
        "alert_date": str(decision["alert_date"]),
        "threshold_text": _threshold_text(decision, warning, critical),
        "warning": warning,
        "critical": critical,
    }


def _chart(
    context: dict[str, Any], chart_link: str | None, chart_src: str | None
) -> dict[str, Any]:
    """The AT_RISK chart under the numbers: where it is, and its words for who cannot see it."""
    chart_url, chart_text = _split_link(chart_link) if chart_link else (None, "")
    return {
        "chart_image": chart_text or chart_url,
        # the email's inline image: the .eml's cid (render_brief_files), else the file
        "chart_src": chart_src or chart_text or chart_url,
        "chart_alt": f"Share of customers at risk, last 60 days to {context['run_date']}",
    }


def _artifacts(
    exported: list[str], links: dict[str, str], chart_link: str | None
) -> list[dict[str, Any]]:
    """The files of the run: each exported tier's audience, then the chart."""
    artifacts = []
    for key in exported:
        link = links.get(key)
        url, text = _split_link(link) if link else (None, "")
        artifacts.append({"label": f"{key} audience", "url": url, "text": text})
    chart_url, chart_text = _split_link(chart_link) if chart_link else (None, "")
    artifacts.append({"label": "AT_RISK % chart", "url": chart_url, "text": chart_text})
    return artifacts


def _impact(context: dict[str, Any], exported: list[str]) -> dict[str, Any]:
    """The illustrative impact N × C × V per assumed rate C, and what it assumes."""
    # N: the customers contacted today, the exported rows (before the export: what it
    # takes), not the tiers: the holdout and the contact cooldown are not contacted
    contacted = {key: _ready(context["tiers"][key]) for key in exported}
    n_customers = sum(contacted.values())
    value = float(context["value_per_customer"])
    rates = [float(rate) for rate in context["impact_rates"]]
    impact_rows = [
        {
            "rate": f"{_number(rate * 100)} %",
            "formula": (f"{fmt_count(n_customers)} × {_number(rate * 100)} % × {fmt_money(value)}"),
            "value": fmt_money(impact_value(n_customers, rate, value)),
        }
        for rate in rates
    ]
    return {
        "n": fmt_count(n_customers),
        "v": fmt_money(value),
        "value_basis": _one_line(context["value_basis"]),
        "rows": impact_rows if exported else [],
        "assumptions": [
            _n_assumption(context, exported, contacted),
            *_holdout_lines(context, exported),
            f"V = {fmt_money(value)} per customer ({_one_line(context['value_basis'])}), "
            "in the currency of total_revenue.",
            "C = the share of contacted customers kept because of the action: an "
            "assumption, not a measured rate (`retentionops impact` measures it against "
            "the holdout).",
            "No costs, cannibalisation or timing are modelled; amounts are rounded to 2 "
            "decimals (half up).",
        ],
    }


def _appendix(context: dict[str, Any]) -> dict[str, Any]:
    """For analysts: the snapshot's statuses and its status × risk-level matrix."""
    statuses = context["status_distribution"]
    risk = context["risk_by_status"]
    levels: list[str] = []
    for row in risk.values():
        levels += [level for level in row if level not in levels]
    return {
        "status_distribution": [(s, fmt_count(n)) for s, n in statuses.items()],
        "risk_levels": levels,
        "risk_rows": [
            (status, [fmt_count(row.get(level, 0)) for level in levels])
            for status, row in risk.items()
        ],
    }


# -- rendering --------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    # one per process: Jinja keeps each compiled template in its environment, so the
    # formats of a run (and the MCP server's calls) compile the templates once
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",),
            disabled_extensions=(),
            default=False,
            default_for_string=False,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md_cell"] = lambda text: str(text).replace("|", "\\|")
    env.filters["mrkdwn"] = slack_escape
    return env


def render_brief(
    context: dict[str, Any],
    fmt: str,
    *,
    links: dict[str, str] | None = None,
    chart_link: str | None = None,
    run_id: str | None = None,
    chart_src: str | None = None,
) -> str | dict[str, Any]:
    """Render the brief: Markdown text, a Slack Block Kit payload, or an email dict.

    ``markdown`` returns a string; ``slack`` returns ``{"text", "blocks"}``; ``email``
    returns ``{"subject", "html", "text"}``. ``chart_src`` is the email's ``<img src>``
    (``cid:...`` of the MIME message), else the chart link.
    """
    if fmt not in BRIEF_FORMATS:
        raise ValueError(
            f"unknown brief format {fmt!r}; allowed formats: {', '.join(BRIEF_FORMATS)}"
        )
    facts = _facts(context, links, chart_link, run_id, chart_src)
    env = _environment()
    if fmt == "markdown":
        return env.get_template("brief.md.j2").render(f=facts)
    if fmt == "slack":
        text = env.get_template("slack_text.md.j2").render(f=facts)
        payload = {
            "text": truncate(text.strip() or facts["title"], SLACK_FALLBACK_MAX),
            "blocks": _slack_blocks(facts),
        }
        problems = slack_limit_violations(payload)
        if problems:  # the builders truncate, so this is a bug, not bad input
            raise AssertionError(f"Slack payload breaks Block Kit limits: {problems}")
        return payload
    return {
        "subject": _email_subject(facts),
        "html": env.get_template("email.html.j2").render(f=facts),
        "text": env.get_template("email.txt.j2").render(f=facts),
    }


def _email_subject(facts: dict[str, Any]) -> str:
    current, relative = facts["situation"][0][1], facts["situation"][3][1]
    state = facts["severity"] if facts["alerting"] else f"No alert ({facts['severity']})"
    subject = (
        f"[RetentionOps] {facts['mode_tag']}{state} — AT_RISK {current} ({relative} vs baseline)"
        f" — {facts['run_date']}"
    )
    return truncate(_one_line(subject), 200)


# -- Slack Block Kit ----------------------------------------------------------------------


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def _section(text: str, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(text, SLACK_SECTION_TEXT_MAX)}
    if fields:
        block["fields"] = [_mrkdwn(f, SLACK_FIELD_MAX) for f in fields[:SLACK_FIELDS_MAX]]
    return block


def _context_block(*texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(t, SLACK_CONTEXT_TEXT_MAX) for t in texts[:SLACK_CONTEXT_ELEMENTS_MAX]]
    return {"type": "context", "elements": elements}


def _slack_link(item: dict[str, Any]) -> str:
    label = slack_escape(item["label"])
    if item["url"]:
        suffix = f" {slack_escape(item['text'])}" if item["text"] else ""
        return f"• {label}: <{slack_escape(item['url'])}|open>{suffix}"
    if not item["text"]:
        return f"• {label}: not produced"
    return f"• {label}: `{slack_escape(item['text'])}`"


def _slack_blocks(f: dict[str, Any]) -> list[dict[str, Any]]:
    e = slack_escape
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f["title"], SLACK_HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    lead = "*Situation*"
    if f["incident"]:
        lead = f"{e(f['incident']['line'])}\n{lead}"
    first = [f"*{e(f['lead']['happened'])}*"]
    if f["lead"]["ready"]:
        first.append(e(f["lead"]["ready"]))
    if f["lead"]["ask"]:
        first.append(f"*{e(f['lead']['ask'])}*")
    lead = "\n".join(first) + f"\n{lead}"
    if f["escalate"]:
        lead = f"{f['mention']} escalation: CRITICAL retention alert\n{lead}"
    if f["banner"]:
        lead = f"*{e(f['banner'])}*\n{lead}"
    blocks.append(_section(lead, [f"*{e(label)}*\n{e(value)}" for label, value in f["situation"]]))
    blocks.append(_context_block(e(f["threshold_text"])))
    for line in f["watch"]:
        blocks.append(_context_block(f"*Watch:* {e(line)}"))
    blocks.append({"type": "divider"})

    tier_fields = []
    for tier in f["tiers"]:
        state = "exported" if tier["exported"] else "not exported"
        text = (
            f"*{e(tier['key'])} {e(tier['name'])}* · {state}\n"
            f"{e(tier['count'])} customers — {e(tier['definition'])}\n_{e(tier['action'])}_"
        )
        if tier["empty_reason"]:
            text += f"\nEmpty: {e(tier['empty_reason'])}"
        if tier["audience"]:
            text += f"\n{e(tier['audience'])}"
        tier_fields.append(text)
    blocks.append(
        _section(
            f"*What is ready* — exported for this severity: {e(f['exported_text'])}", tier_fields
        )
    )
    if f["anomalies"]:
        blocks.append(
            _section("*Audience warnings*\n" + "\n".join(f"⚠ {e(a)}" for a in f["anomalies"]))
        )
    blocks.append({"type": "divider"})

    playbook = f["playbook"]
    if playbook["skipped"]:
        play_text = f"*Playbook*\n{e(playbook['skipped'])}"
    else:
        steps = "\n".join(f"{i}. {e(step)}" for i, step in enumerate(playbook["steps"], 1))
        play_text = f"*Playbook — {e(playbook['name'])}*\n{steps}"
    blocks.append(_section(play_text))
    blocks.append(_section("*Artifacts*\n" + "\n".join(_slack_link(a) for a in f["artifacts"])))
    blocks.append({"type": "divider"})

    impact = f["impact"]
    if impact["rows"]:
        rows = "\n".join(
            f"• C = {row['rate']}: {e(row['formula'])} = *{row['value']}*" for row in impact["rows"]
        )
        impact_text = (
            "*Illustrative impact — illustrative, not a forecast*\n"
            f"Revenue protected = N × C × V\n{rows}"
        )
    else:
        impact_text = (
            "*Illustrative impact — illustrative, not a forecast*\n"
            "No tier is exported on this run, so there is nothing to size."
        )
    blocks.append(_section(impact_text))
    blocks.append(
        _context_block(
            "Assumptions: " + " ".join(e(a) for a in impact["assumptions"]),
            "*Guardrails:* " + " · ".join(e(g) for g in f["guardrails"]),
            f"run {e(f['run_id'] or 'n/a')} · alert date {e(f['alert_date'])}",
        )
    )
    return blocks[:SLACK_MAX_BLOCKS]


def slack_limit_violations(payload: dict[str, Any]) -> list[str]:
    """The Block Kit limits a payload breaks (empty when it is valid)."""
    problems = []
    text = payload.get("text")
    if not text or len(text) > SLACK_FALLBACK_MAX:
        problems.append(f"fallback text length {len(text or '')} not in 1..{SLACK_FALLBACK_MAX}")
    blocks = payload.get("blocks", [])
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {SLACK_MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        kind = block["type"]
        if kind == "header" and len(block["text"]["text"]) > SLACK_HEADER_MAX:
            problems.append(f"block {i}: header text > {SLACK_HEADER_MAX}")
        if kind == "section":
            if len(block.get("text", {}).get("text", "")) > SLACK_SECTION_TEXT_MAX:
                problems.append(f"block {i}: section text > {SLACK_SECTION_TEXT_MAX}")
            fields = block.get("fields", [])
            if len(fields) > SLACK_FIELDS_MAX:
                problems.append(f"block {i}: {len(fields)} fields > {SLACK_FIELDS_MAX}")
            for field in fields:
                if len(field["text"]) > SLACK_FIELD_MAX:
                    problems.append(f"block {i}: field text > {SLACK_FIELD_MAX}")
        if kind == "context":
            elements = block["elements"]
            if len(elements) > SLACK_CONTEXT_ELEMENTS_MAX:
                problems.append(f"block {i}: {len(elements)} context elements")
            for element in elements:
                if len(element["text"]) > SLACK_CONTEXT_TEXT_MAX:
                    problems.append(f"block {i}: context text > {SLACK_CONTEXT_TEXT_MAX}")
    return problems


# -- chart ----------------------------------------------------------------------------------


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def render_chart(
    series: list[dict[str, Any]], path: str | os.PathLike[str], *, run_date: str, days: int = 60
) -> Path:
    """Draw AT_RISK % over the ``days`` days up to ``run_date`` as a PNG; return its path.

    ``series`` holds SQL5 rows (``alert_date``, ``current_value``, ``baseline_value``,
    ``threshold_warning``, ``threshold_critical``). The thresholds are relative to the
    baseline, so their lines are ``baseline × (1 + threshold / 100)`` day by day; days
    without a baseline (warm-up) leave gaps. Fewer than two points in the window still
    give a chart (a single marker, or a "no data" note) so a brief never fails on its
    chart. The file is written atomically (temporary file in the same folder, then
    ``os.replace``).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    end = as_date(run_date)
    start = end - dt.timedelta(days=days - 1)
    rows = sorted(
        (row for row in series if start <= as_date(row["alert_date"]) <= end),
        key=lambda row: as_date(row["alert_date"]),
    )
    x = [as_date(row["alert_date"]) for row in rows]
    current = [_float(row["current_value"]) for row in rows]
    baseline = [_float(row["baseline_value"]) for row in rows]
    warning = [
        b * (1 + _float(row["threshold_warning"]) / 100)
        for b, row in zip(baseline, rows, strict=True)
    ]
    critical = [
        b * (1 + _float(row["threshold_critical"]) / 100)
        for b, row in zip(baseline, rows, strict=True)
    ]

    severity = {as_date(row["alert_date"]): row.get("severity") for row in rows}.get(end)
    top = max([v for v in current + critical if not math.isnan(v)] or [1.0]) * 1.15

    fig = Figure(figsize=(9, 4.8), dpi=100)
    # fixed margins for the fixed size and labels (a constrained layout measures every
    # artist in an extra pass: about a third of the chart's time)
    fig.subplots_adjust(left=0.075, right=0.985, top=0.93, bottom=0.15)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    marker = "o" if len(rows) < 2 else None
    # the severity zones, relative to each day's baseline (SQL5's thresholds)
    ax.fill_between(x, warning, critical, color="#f5b041", alpha=0.25, linewidth=0,
                    label="WARNING zone")  # fmt: skip
    ax.fill_between(x, critical, [top] * len(x), color="#e74c3c", alpha=0.15, linewidth=0,
                    label="CRITICAL zone")  # fmt: skip
    ax.plot(x, current, color="#1f4e79", linewidth=2.2, marker=marker,
            label="share of customers at risk")  # fmt: skip
    ax.plot(x, baseline, color="#555555", linestyle="--", marker=marker,
            label="usual level (7-day average)")  # fmt: skip
    ax.axvline(end, color="#333333", linewidth=1, alpha=0.5)
    on_run_date = [v for day, v in zip(x, current, strict=True) if day == end]
    if on_run_date and not math.isnan(on_run_date[0]):
        color = {"CRITICAL": "#c0392b", "WARNING": "#b9770e"}.get(str(severity), "#1f4e79")
        ax.scatter([end], on_run_date, color=color, s=60, zorder=5)
        ax.annotate(
            f"{end:%d %b}: {on_run_date[0]:.2f} %" + (f" — {severity}" if severity else ""),
            (end, on_run_date[0]),
            textcoords="offset points",
            xytext=(-10, 10),
            ha="right",
            color=color,
            fontweight="bold",
        )
    if not rows:
        ax.text(
            0.5,
            0.5,
            f"no SQL5 rows between {start} and {end}",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
    ax.set_xlim(start - dt.timedelta(days=1), end + dt.timedelta(days=1))
    ax.set_ylim(0, top)
    # every month is labelled: its first day, and the window's first day for the first one
    ticks = [start] + [
        day for day in (start + dt.timedelta(days=i) for i in range(1, days)) if day.day == 1
    ]
    ax.set_xticks(ticks, [f"{day:%d %b %Y}" if i == 0 else f"{day:%d %b}"
                          for i, day in enumerate(ticks)])  # fmt: skip
    ax.set_ylabel("customers at risk (% of customers)")
    ax.set_title(f"Share of customers at risk — last {days} days to {end:%d %b %Y}")
    ax.grid(True, alpha=0.3)
    # the legend sits under the plot, clear of the lines
    fig.legend(loc="lower center", ncols=4, fontsize="small", frameon=False)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    target = write_atomic(path, buffer.getvalue())
    return target
