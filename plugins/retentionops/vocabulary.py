"""Every fixed set of words of the package, defined once and read everywhere.

Settings choices, SQL parameters, the brief, the exports, the run log, the CLI choices and
the MCP tool schemas all take their words from here, so a new tier or rollout mode is one
edit, not a search.

A set a door declares (the MCP tools' results, ``results.py``) is a ``Literal`` type, and its
tuple is read from the type: the words are spelled once, and the type checker holds every
other spelling of them (a mapping's keys, a comparison) to the set.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Retention statuses of SQL2 and risk levels of SQL3 (rules.md).
STATUSES = ("ACTIVE", "AT_RISK", "INACTIVE")
RISK_LEVELS = ("HIGH", "MEDIUM", "LOW")
#: SQL5 severities, from quiet to loud.
Severity = Literal["INFO", "WARNING", "CRITICAL"]
SEVERITIES: tuple[str, ...] = get_args(Severity)

#: Priority tiers of customer_priority (design section 7) and their names.
Tier = Literal["P1", "P2", "P3"]
TIERS: tuple[str, ...] = get_args(Tier)
TIER_NAMES: dict[Tier, str] = {"P1": "Prevention", "P2": "Intervention", "P3": "Win-back"}

#: The playbook of each alerting severity (design section 9): tiers exported, ticket priority.
PLAYBOOK_TIERS: dict[Severity, tuple[Tier, ...]] = {
    "WARNING": ("P1", "P2"),
    "CRITICAL": ("P1", "P2", "P3"),
}
TICKET_PRIORITIES: dict[Severity, str] = {"WARNING": "HIGH", "CRITICAL": "URGENT"}
#: The events of an incident (at most one a day); the first four deliver an alert.
INCIDENT_EVENTS = ("open", "update", "escalate", "de-escalate", "resolve")
ALERT_EVENTS = INCIDENT_EVENTS[:4]
#: The phases of a day in the incident layer.
DAY_PHASES = ("warmup", "quiet", "incident")

#: The branches of the daily run: nothing to deliver, an alert of one severity, a recovery.
NO_ALERT = "no_alert"
RESOLVED = "resolved"
BRANCHES = (NO_ALERT, "warning", "critical", RESOLVED)
#: The daily run's steps whose failure its log row names apart (the DAG's task ids): the
#: audience export (a mapped export's id starts with it) and the webhook call.
EXPORT_STEP = "export_audience"
PLAYBOOK_STEP = "trigger_playbook"

#: Rollout stages of the playbook automation (design section 16).
RolloutMode = Literal["shadow", "pilot", "production"]
ROLLOUT_MODES: tuple[str, ...] = get_args(RolloutMode)
#: What slow drift does (settings' drift_mode): shown only, or an incident of its own.
DriftMode = Literal["shadow", "incident"]
DRIFT_MODES: tuple[str, ...] = get_args(DriftMode)
#: Which events wait for a person's approval before they are sent, and what an unanswered
#: approval does (retentionops/approval.py).
APPROVAL_LEVELS = ("none", "critical", "all")
APPROVAL_DEFAULTS = ("withhold", "send")

#: Formats of the manager brief, and how audiences are exported.
BriefFormat = Literal["markdown", "slack", "email"]
BRIEF_FORMATS: tuple[str, ...] = get_args(BriefFormat)
#: Where a tier's audience goes: the local CSV (always, first) and the uploads.
EXPORT_DESTINATIONS = ("csv", "gcs", "gsheet")
EXPORT_MODES = ("all", "new_only")
#: What became of an export's uploads (the CSV is always there): all went, or its link
#: falls back to the local CSV; the run log's export_status adds a failed export and none.
ExportOutcome = Literal["ok", "fallback_local"]
ExportStatus = Literal[ExportOutcome, "failed", "none"]
EXPORT_STATUSES: tuple[str, ...] = get_args(ExportStatus)

#: Who started a run (the ``interface`` column of ops_runs_log).
INTERFACES = ("dag", "mcp", "cli")
#: What the run log says of a run, of its playbook call and of its exports.
RUN_STATUSES = ("success", "failed", "skipped", "refused")
PLAYBOOK_STATUSES = ("sent", "failed", "dry_run", "suppressed", "not_needed")
