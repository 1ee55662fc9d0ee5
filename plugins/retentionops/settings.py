"""One settings object: defaults < YAML file < ``RETENTIONOPS_<NAME>`` environment variables.

Every setting is defined once, below, with its default, its rule and one line of meaning;
``include/retentionops.yaml`` and the README's settings table are generated from these
definitions (``retentionops settings --template`` / ``--markdown``) and a test keeps them in
step. The YAML file read is ``include/retentionops.yaml`` unless ``RETENTIONOPS_CONFIG`` or
the CLI's ``--config`` names another. Every threshold of ``rules.md`` is a setting here,
never a literal in SQL; the SQL receives them as query parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from retentionops.dates import EARLIEST_DATE
from retentionops.errors import UserError
from retentionops.vocabulary import (
    APPROVAL_DEFAULTS,
    APPROVAL_LEVELS,
    DRIFT_MODES,
    EXPORT_DESTINATIONS,
    EXPORT_MODES,
    RISK_LEVELS,
    ROLLOUT_MODES,
    STATUSES,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "include" / "retentionops.yaml"
ENV_PREFIX = "RETENTIONOPS_"
#: The ``RETENTIONOPS_*`` environment variables that are not settings, and who reads them.
#: Any other ``RETENTIONOPS_*`` variable that names no setting is refused: a typo (``_ENABLE``
#: for ``RETENTIONOPS_PLAYBOOK_ENABLED``) would otherwise leave the kill switch on, silently.
OTHER_ENV_VARIABLES = {
    f"{ENV_PREFIX}CONFIG": "the settings file to read (load_settings, like the CLI's --config)",
    f"{ENV_PREFIX}SQL_CACHE_DIR": "where transpiled SQL is kept between processes (sql.py)",
}
#: The total of the three score weights: churn_risk_score runs from 0 to this.
SCORE_WEIGHTS_TOTAL = 100


class SettingsError(UserError, ValueError):
    """A setting is missing, unknown or out of range; the message names it."""


def _setting(default: Any, doc: str, **rules: Any) -> Any:
    """A settings field: its default, one line of meaning, and its rule (choices, min, ...)."""
    return field(default=default, metadata={"doc": doc, **rules})


# One constructor per kind of setting that carries a rule; __post_init__ applies the rules.
def _number(default: float, doc: str, **rules: Any) -> Any:
    """A number: at least 0 unless ``min`` says otherwise, at most ``max`` when given."""
    return _setting(default, doc, **{"min": 0, **rules})


def _choice(default: str, doc: str, choices: Sequence[str], **rules: Any) -> Any:
    """One of ``choices``."""
    return _setting(default, doc, choices=choices, **rules)


def _date(default: str, doc: str, **rules: Any) -> Any:
    """A calendar date, YYYY-MM-DD from EARLIEST_DATE on (empty: none)."""
    return _setting(default, doc, date=True, **rules)


def _levels(default: str, doc: str) -> Any:
    """A comma-separated list of risk levels (RISK_LEVELS)."""
    return _setting(default, doc, levels=True)


@dataclass(frozen=True)
class Settings:
    # -- warehouse ---------------------------------------------------------------------
    warehouse_backend: str = _choice(
        "duckdb", "duckdb (embedded) or bigquery", ("duckdb", "bigquery"), section="warehouse"
    )
    duckdb_path: str = _setting(
        "warehouse/retentionops.duckdb", "the DuckDB file, relative to the repository root"
    )
    bigquery_project: str = _setting("", "GCP project of the dataset (required for bigquery)")
    bigquery_dataset: str = _setting("retentionops", "BigQuery dataset holding every table")
    bigquery_location: str = _setting("EU", "BigQuery location of the dataset and its jobs")
    gcp_conn_id: str = _setting(
        "google_cloud_default", "Airflow connection of the Google provider (BigQuery, GCS, Sheets)"
    )
    duckdb_lock_wait_seconds: float = _number(
        60.0,
        "how long a CLI or MCP write waits for another process's DuckDB lock (0 = not at all)",
        max=3600,
    )
    # -- loading orders ------------------------------------------------------------------
    load_max_dropped_pct: float = _number(
        50.0,
        "refuse a load that drops more than this share of the file's rows (percent)",
        max=100,
        section="loading orders",
    )
    implausible_orders: str = _choice(
        "refuse",
        "orders with an amount <= 0 or a date outside orders_min_date..today: refuse the "
        "file, drop them, or keep them (always counted in the load report)",
        ("refuse", "drop", "keep"),
    )
    orders_min_date: str = _date("1990-01-01", "the earliest plausible order date")
    max_range_days: int = _number(
        3660, "longest date range one alerts/health query may cover", min=1, max=36600
    )
    # -- trusting the orders feed (retentionops/freshness.py) ----------------------------
    orders_max_lag_days: int = _number(
        0,
        "trading days (weekdays with orders in the feed's last 4 weeks) the newest order may "
        "lie before the run date before the feed is late and nothing is sent",
        max=30,
        section="trusting the orders feed",
    )
    orders_volume_low_pct: float = _number(
        50.0,
        "a day with fewer orders than this share of the same weekday's usual (mean of 1-4 "
        "weeks before) is short: nothing is sent on it (0 = never short)",
        max=100,
    )
    orders_volume_high_pct: float = _number(
        300.0,
        "a day with more orders than this share of the same weekday's usual is said to be "
        "high (shown, not held)",
        min=100,
        max=100000,
    )
    orders_wait_minutes: int = _number(
        360,
        "how long the DAG's wait_for_orders waits for the run date's orders before the run "
        "fails as late (0 = check once)",
        max=2880,
    )
    # -- Airflow schedule and task policy ------------------------------------------------
    schedule_start_date: str = _date(
        "2010-12-08",
        "the DAG's first run date (the sample's first date with a full baseline week)",
        section="Airflow schedule and task policy",
    )
    schedule_end_date: str = _date("", "the DAG's last run date; empty = open-ended")
    catchup: bool = _setting(True, "create runs for past dates when the DAG is unpaused")
    task_retries: int = _number(
        3, "retries of every task but write_run_log (exponential backoff x2)", max=10
    )
    retry_delay_seconds: int = _number(30, "first retry delay, then doubled, at most 10 minutes")
    # -- detection layer (SQL1-SQL5) ---------------------------------------------------
    detection_mode: str = _choice(
        "managed",
        "managed: the DAG computes SQL1-SQL5; external: another job does, the DAG checks them",
        ("managed", "external"),
        section="detection layer (SQL1-SQL5, rules.md)",
    )
    active_days: int = _number(30, "days_since_last_order <= this -> ACTIVE")
    at_risk_days: int = _number(90, "<= this -> AT_RISK, otherwise INACTIVE", min=1)
    frequency_drop_factor: float = _number(
        1.5, "frequency drop: days since last order > factor x average gap"
    )
    status_inconsistent_factor: float = _number(
        0.7, "status inconsistent: ACTIVE but days since last order > factor x average gap"
    )
    status_inconsistent_max_orders: int = _number(
        3, "status inconsistent: ACTIVE with at most this many orders"
    )
    weight_frequency_drop: int = _number(50, "score weight of a frequency drop")
    weight_value_drop: int = _number(30, "score weight of a value drop (never fires in v1)")
    weight_status_inconsistent: int = _number(20, "score weight of an inconsistent status")
    risk_level_high_min: int = _number(51, "churn_risk_score >= this -> HIGH")
    risk_level_medium_min: int = _number(21, "churn_risk_score >= this -> MEDIUM, else LOW")
    baseline_days: int = _number(7, "baseline = mean of the previous N daily values", min=1)
    threshold_warning_pct: float = _number(
        15.0, "relative delta >= this (percent, 2 decimals) -> WARNING"
    )
    threshold_critical_pct: float = _number(
        25.0, "relative delta >= this (percent, 2 decimals) -> CRITICAL"
    )
    min_sample_size: int = _number(100, "fewer customers than this never alert")
    # -- incidents across days (docs/incidents.md) ---------------------------------------
    warmup_days: int = _number(
        0,
        "days of order history before an alert may open an incident (0 = at_risk_days + "
        "baseline_days)",
        max=3660,
        section="incidents across days (docs/incidents.md)",
    )
    incident_gap_days: int = _number(
        2, "days without an alert an incident needs, at least, before it can resolve"
    )
    resolve_after_days: int = _number(
        3,
        "consecutive calm days (below WARNING against the pre-incident baseline) that resolve",
        min=1,
        max=365,
    )
    deescalate_after_days: int = _number(
        7,
        "consecutive days below CRITICAL against the pre-incident baseline before a CRITICAL "
        "incident de-escalates (a week: weekday swings do not flap its severity)",
        min=1,
        max=365,
    )
    drift_days: int = _number(
        28,
        "slow drift beside SQL5: compare the AT_RISK share with the share this many days "
        "before (a multiple of 7 keeps the weekday)",
        min=7,
        max=364,
    )
    drift_threshold_pct: float = _number(
        15.0,
        "a share this many percent (relative) above the share drift_days before is a drift day",
        min=0.01,
    )
    drift_mode: str = _choice(
        "shadow",
        "shadow: drift days are shown in the brief and health only; incident: a drift day "
        "opens an incident of its own kind (DRIFT-YYYYMMDD) when none is open",
        DRIFT_MODES,
    )
    alert_frequency_target_per_month: int = _number(
        3, "incidents a month the health report accepts (design 15: low single digits)", min=1
    )
    # -- priority queue (design section 7; the design's open questions are switches) --
    p1_status: str = _choice(
        "ACTIVE", "P1 Prevention: retention status", STATUSES, section="priority queue"
    )
    p1_risk_levels: str = _levels("HIGH", "P1: risk levels (comma-separated)")
    p2_status: str = _choice("AT_RISK", "P2 Intervention: retention status", STATUSES)
    p2_risk_levels: str = _levels("HIGH,MEDIUM", "P2: risk levels (comma-separated)")
    p3_status: str = _choice("INACTIVE", "P3 Win-back: retention status", STATUSES)
    p3_risk_levels: str = _levels("HIGH", "P3: risk levels (comma-separated)")
    p1_value_filter: bool = _setting(
        False, "open question: P1 only above the median total_revenue at D"
    )
    p3_recency_cap_days: int = _number(
        0, "open question: P3 only if the last order is at most N days old (0 = off)"
    )
    p1_base_score: int = _number(70, "priority_score base of P1")
    p2_base_score: int = _number(50, "priority_score base of P2")
    p3_base_score: int = _number(30, "priority_score base of P3")
    value_bonus_cap: float = _number(20.0, "value bonus = min(cap, ln(1 + revenue) x per_log)")
    value_bonus_per_log: float = _number(2.0, "value bonus points per unit of ln(1 + revenue)")
    urgency_bonus_cap: float = _number(10.0, "urgency bonus = min(cap, days / days_per_point)")
    urgency_days_per_point: float = _number(
        3.0, "days since last order worth one urgency point", min=0.001
    )
    p1_action: str = _setting("VIP outreach + light incentive", "recommended_action of P1")
    p2_action: str = _setting(
        "Win-back sequence + free shipping / discount", "recommended_action of P2"
    )
    p3_action: str = _setting("Strong comeback offer or survey", "recommended_action of P3")
    value_proxy_factor: float = _number(0.3, "value_proxy = factor x total_revenue")
    impact_value_basis: str = _choice(
        "median_total_revenue",
        "V of the brief's illustrative impact table",
        ("median_total_revenue", "value_proxy"),
    )
    # -- execution: the Make.com playbook and its fallback (design sections 9, 14, 16) -----
    rollout_mode: str = _choice(
        "shadow",
        "shadow (flagged, nothing posted) | pilot (WARNING playbook, pilot channel) | production",
        ROLLOUT_MODES,
        section="execution: the Make.com playbook (design 9, 14, 16)",
    )
    make_conn_id: str = _setting(
        "make_webhook", "HTTP connection whose host is the full webhook URL (the secret)"
    )
    webhook_timeout_seconds: float = _number(10.0, "timeout of one webhook call", min=0.1)
    webhook_retries: int = _number(
        2, "webhook retries, only for timeouts, connection errors, 408, 429 and 5xx", max=10
    )
    webhook_retry_delay_seconds: int = _number(
        30, "first webhook retry delay, then doubled (a Retry-After answer wins)"
    )
    webhook_max_wait_seconds: float = _number(
        300.0,
        "longest total wait between webhook attempts; a Retry-After beyond it ends the retries",
        max=3600,
    )
    delivery_lease_seconds: int = _number(
        900,
        "how long a run's claim on an event holds while it posts; a sender killed mid-send "
        "leaves it to expire, then the next attempt re-sends with the same key",
        min=1,
        max=86400,
    )
    slack_conn_id: str = _setting(
        "slack_fallback", "Slack incoming-webhook connection used when the playbook failed"
    )
    slack_channel: str = _setting("#retention-alerts", "production Slack channel")
    pilot_slack_channel: str = _setting("#retention-pilot", "shadow and pilot Slack channel")
    failure_notifications: bool = _setting(
        False, "also send task failures to Slack through the provider's notifier"
    )
    playbook_enabled: bool = _setting(
        True,
        "false stops all sending (the kill switch, design 16); detection, queue, brief and "
        "log keep running",
    )
    notify_max_age_days: int = _number(
        2,
        "a run whose date is older than this when it starts sends nothing (history is not "
        "news); 0 = no limit",
    )
    silence_until: str = _date(
        "", "send nothing until this date (inclusive); incidents are still recorded"
    )
    silence_reason: str = _setting("", "why the playbook is silenced (shown in the brief)")
    escalation_mention: str = _setting(
        "@here", "the Slack mention of an escalation (@here, @channel, or <!subteam^ID>)"
    )
    incident_owner: str = _setting("", "who owns an incident's response (sent with each event)")
    response_sla_hours: int = _number(
        24, "hours to respond to an event; the payload carries the due time", min=1, max=720
    )
    # -- approval before sending (a person in the loop, docs/incidents.md) ---------------
    approval_required: str = _choice(
        "none",
        "which events wait for a person's approval before they are sent: none, critical (an "
        "alert event of a CRITICAL incident) or all (every event that would be sent)",
        APPROVAL_LEVELS,
        section="approval before sending (docs/incidents.md)",
    )
    approval_timeout_minutes: float = _number(
        240.0,
        "how long the DAG waits for the answer in Airflow (Required actions) before "
        "approval_default applies",
        min=0.1,
        max=10080,
    )
    approval_default: str = _choice(
        "withhold",
        "what an approval nobody answered in time does: withhold (nothing is sent) or send",
        APPROVAL_DEFAULTS,
    )
    # -- retention, measurement and outputs ----------------------------------------------
    retention_days: int = _number(
        90,
        "detection partitions and customer_priority older than this are removed",
        min=1,
        section="retention, measurement and outputs",
    )
    holdout_pct: float = _number(
        10.0,
        "share of each tier (percent) an incident holds out, drawn at its first export and "
        "kept out of every export until it resolves + impact_horizon_days, to measure its "
        "impact; 0 = none",
    )
    holdout_min_customers: int = _number(
        10,
        "a tier whose holdout would hold fewer customers than this (tier x holdout_pct, "
        "rounded down) gets none: its impact cannot be measured, and the brief says so",
    )
    holdout_salt: str = _setting(
        "retentionops",
        "changing it draws other holdouts for later incidents (assignment = hash of "
        "customer, salt, incident)",
    )
    impact_horizon_days: int = _number(
        30,
        "impact is repurchase within this many days of the contact; an incident's holdout is "
        "held until it resolves + this many days",
        min=1,
        max=365,
    )
    contact_cooldown_days: int = _number(
        14,
        "a customer delivered in a playbook for a date within this many days of the run date "
        "(either side: runs come out of order) is not exported again, in any tier; 0 = off",
        max=365,
    )
    cooldown_bypass_on_escalation: bool = _setting(
        True,
        "a customer now in a more urgent tier (P1 before P2 before P3) than any tier it was "
        "delivered in during the cooldown is exported anyway, and marked",
    )
    export_mode: str = _choice(
        "all",
        "all: every eligible customer of a tier; new_only: only those not in the tier at the "
        "last delivered run",
        EXPORT_MODES,
    )
    audience_change_factor: float = _number(
        3.0,
        "a tier that grows or shrinks more than this factor against the last delivered run "
        "(or drops to zero) is flagged as an anomaly",
        min=1.01,
        max=1000,
    )
    artifacts_dir: str = _setting(
        "artifacts/runs", "one folder per run date (brief, chart, run-log JSON), repo-relative"
    )
    export_destinations: str = _setting(
        "csv",
        "where each tier goes: csv (a local CSV in the run's folder, always written first) "
        "plus gcs and/or gsheet uploads (comma-separated)",
    )
    export_gcs_uri: str = _setting(
        "", "gs://bucket/prefix receiving the gcs uploads (required with gcs)"
    )
    export_limit: int = _number(
        2000, "rows per tier file, best priority_score first", min=1, max=1_000_000
    )
    gsheet_spreadsheet_id: str = _setting(
        "", "the spreadsheet receiving one tab per tier and run (required with gsheet)"
    )
    export_root: str = _setting(
        "artifacts",
        "every local export stays inside this folder (repo-relative); others are refused",
    )
    export_buckets: str = _setting(
        "",
        "other gs:// buckets a run's export_destination may name (comma-separated); "
        "export_gcs_uri's bucket is always allowed",
    )
    # -- the MCP server ------------------------------------------------------------------
    mcp_http_token: str = _setting(
        "",
        "bearer token the MCP HTTP transport requires (set it in RETENTIONOPS_MCP_HTTP_TOKEN); "
        "without one it serves on loopback only",
        section="the MCP server",
        secret=True,
    )
    mcp_webhook_wait_seconds: float = _number(
        30.0,
        "longest total wait between webhook attempts of an MCP trigger_playbook call (also "
        "capped by webhook_max_wait_seconds): MCP clients time out, the DAG's tasks do not",
        max=3600,
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            allowed = f.metadata.get("choices")
            if allowed and value not in allowed:
                raise SettingsError(
                    f"setting '{f.name}' is {value!r}; allowed values: {', '.join(allowed)}"
                )
            if f.metadata.get("levels"):
                bad = [v for v in split_list(value) if v not in RISK_LEVELS] or not value
                if bad:
                    raise SettingsError(
                        f"setting '{f.name}' is {value!r}; give comma-separated risk levels "
                        f"from: {', '.join(RISK_LEVELS)}"
                    )
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingsError(f"setting '{f.name}' is {value}; it must be a finite number")
            minimum, maximum = f.metadata.get("min"), f.metadata.get("max")
            if minimum is not None and value < minimum:
                raise SettingsError(f"setting '{f.name}' is {value}; it must be >= {minimum}")
            if maximum is not None and value > maximum:
                raise SettingsError(f"setting '{f.name}' is {value}; it must be <= {maximum}")
            if f.metadata.get("date") and value:
                _check_date_setting(f.name, value)
        self._require(self.active_days < self.at_risk_days, "active_days", "below at_risk_days")
        weights = (
            self.weight_frequency_drop + self.weight_value_drop + self.weight_status_inconsistent
        )
        self._require(
            weights > 0,
            "weight_frequency_drop",
            "positive for at least one signal (with every weight 0 no customer can be at risk)",
        )
        if weights != SCORE_WEIGHTS_TOTAL:  # the risk levels and the brief read a 0-100 score
            raise SettingsError(
                f"the score weights must sum to {SCORE_WEIGHTS_TOTAL} (churn_risk_score runs "
                f"from 0 to {SCORE_WEIGHTS_TOTAL}): weight_frequency_drop "
                f"{self.weight_frequency_drop} + weight_value_drop {self.weight_value_drop} + "
                f"weight_status_inconsistent {self.weight_status_inconsistent} = {weights}"
            )
        self._require(
            self.risk_level_high_min <= weights,
            "risk_level_high_min",
            f"at most the highest possible churn_risk_score ({weights}, the sum of the weights)",
        )
        for low, high in (
            ("risk_level_medium_min", "risk_level_high_min"),
            ("threshold_warning_pct", "threshold_critical_pct"),
        ):
            self._require(getattr(self, low) <= getattr(self, high), low, f"at most {high}")
        for name in ("threshold_warning_pct", "threshold_critical_pct"):
            self._require(
                round(getattr(self, name), 2) == getattr(self, name), name, "given to 2 decimals"
            )
        for name in ("frequency_drop_factor", "status_inconsistent_factor"):
            exact = ratio(getattr(self, name)).denominator <= 1000
            self._require(exact, name, "a decimal with 3 places at most")
        if self.warehouse_backend == "bigquery":
            self._require(bool(self.bigquery_project), "bigquery_project", "set for BigQuery")
        longest_send = self.webhook_max_wait_seconds + (self.webhook_retries + 1) * (
            self.webhook_timeout_seconds
        )
        self._require(
            self.delivery_lease_seconds > longest_send,
            "delivery_lease_seconds",
            f"longer than the longest send ({longest_send:g} s: webhook_max_wait_seconds + "
            "(webhook_retries + 1) x webhook_timeout_seconds), or a slow send would lose its "
            "claim to another run",
        )
        self._require(
            0 <= self.holdout_pct < 100,
            "holdout_pct",
            "at least 0 and below 100 (at 100 every customer is held out: nobody is contacted)",
        )
        self._require(
            _dedicated_folder(self.export_root_path),
            "export_root",
            "a folder of its own for the exports: not the filesystem root, the home folder, "
            "nor a folder holding this repository",
        )
        destinations = split_list(self.export_destinations.lower())
        self._require(
            bool(destinations) and set(destinations) <= set(EXPORT_DESTINATIONS),
            "export_destinations",
            f"a comma-separated list of {', '.join(EXPORT_DESTINATIONS)} (csv is always written)",
        )
        if "gsheet" in destinations:
            self._require(
                bool(self.gsheet_spreadsheet_id.strip()),
                "gsheet_spreadsheet_id",
                "set when export_destinations includes gsheet (the id in the sheet's URL, "
                "docs.google.com/spreadsheets/d/<id>/edit)",
            )
        if "gcs" in destinations or self.export_gcs_uri:
            bucket = gcs_bucket(self.export_gcs_uri)
            self._require(
                bucket is not None,
                "export_gcs_uri",
                "gs://bucket[/prefix] when export_destinations includes gcs",
            )
        for name in ("slack_channel", "pilot_slack_channel"):
            channel = getattr(self, name)
            self._require(
                channel.startswith("#") and len(channel) > 1 and " " not in channel,
                name,
                "a Slack channel name such as #retention-alerts",
            )

    def _require(self, ok: bool, name: str, what: str) -> None:
        if not ok:
            raise SettingsError(f"setting '{name}' ({getattr(self, name)!r}) must be {what}")

    def __repr__(self) -> str:  # never print a secret setting
        shown = {
            f.name: "***"
            if f.metadata.get("secret") and getattr(self, f.name)
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def duckdb_file(self) -> Path:
        return repo_path(self.duckdb_path)

    @property
    def artifacts_path(self) -> Path:
        return repo_path(self.artifacts_dir)

    @property
    def export_root_path(self) -> Path:
        return repo_path(self.export_root).resolve()

    def as_dict(self) -> dict[str, Any]:
        """The effective settings, secrets shown as set or not (never their value)."""
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.metadata.get("secret") and values[f.name]:
                values[f.name] = "***"
        return values


def repo_path(value: str | os.PathLike[str]) -> Path:
    """A path setting's path: as given when absolute, else relative to the repository root."""
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _check_date_setting(name: str, value: str) -> None:
    """A date setting is a calendar date (YYYY-MM-DD) from ``EARLIEST_DATE`` on."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise SettingsError(
            f"setting '{name}' is {value!r}: not a calendar date; use YYYY-MM-DD"
        ) from None
    if day < EARLIEST_DATE:
        raise SettingsError(f"setting '{name}' is {value!r}; it must be {EARLIEST_DATE} or later")


def _dedicated_folder(folder: Path) -> bool:
    """Whether ``folder`` (resolved) can confine exports: a CSV written anywhere below the
    filesystem root, the home folder or the repository could land among unrelated files."""
    try:
        home = Path.home().resolve()
    except RuntimeError:  # no home folder known (a bare container user)
        home = None
    return (
        folder != Path(folder.anchor) and folder != home and not PROJECT_ROOT.is_relative_to(folder)
    )


def check_warehouse_path(settings: Settings) -> None:
    """Refuse, before any work, a DuckDB file that cannot be created where duckdb_path says
    (under /proc, in a read-only folder): a door checks it first, so the error is one line
    naming the setting, not DuckDB's own words after the run has started."""
    if settings.warehouse_backend == "duckdb":
        from retentionops.files import check_can_create

        check_can_create(settings.duckdb_file, "the DuckDB warehouse (duckdb_path)")


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def gcs_bucket(uri: str) -> str | None:
    """The bucket of ``gs://bucket[/prefix]`` (None: not such a URI)."""
    text = str(uri or "").strip()
    if not text.startswith("gs://"):
        return None
    bucket = text[len("gs://") :].split("/", 1)[0]
    valid = bucket and all(ch.isalnum() or ch in "-_." for ch in bucket)
    return bucket if valid else None


def ratio(value: float) -> Fraction:
    """Return a factor as an exact fraction (1.5 -> 3/2) so SQL compares without division."""
    return Fraction(str(value))


def setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_KINDS = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce(name: str, raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() in _TRUE | _FALSE:
            return str(raw).strip().lower() in _TRUE
        raise SettingsError(f"setting '{name}' is {raw!r}; it must be true or false")
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    try:
        if kind is int:
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            return int(str(raw).strip())
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(str(raw).strip())
        return str(raw)
    except ValueError:
        raise SettingsError(
            f"setting '{name}' is {raw!r}; it must be {'an integer' if kind is int else 'a number'}"
        ) from None


class _TextDatesLoader(yaml.SafeLoader):
    """YAML's safe loader, with dates left as the text they were written as.

    The safe loader turns ``2011-02-03`` into a ``datetime.date`` but fails on an impossible
    date such as ``2011-02-30`` with a bare ``ValueError``; as text, the setting's own rule
    checks it and names the setting and the value.
    """


_TextDatesLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _read_yaml(path: Path) -> Any:
    """The YAML file's content, or a one-line error saying what is wrong with the file."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDatesLoader) or {}
    except UnicodeDecodeError:
        raise SettingsError(f"config file {path} is not a text (UTF-8 YAML) file") from None
    except IsADirectoryError:
        raise SettingsError(f"config file {path} is a directory, not a YAML file") from None
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise SettingsError(f"config file {path} is not valid YAML{where}: {problem}") from None


#: Settings that no longer exist, and what replaced them (named in the error).
RENAMED = {
    "export_kind": "list the destinations in export_destinations (csv, gcs, gsheet)",
    "export_destination": "local CSVs always go to the run's folder; put a gs:// prefix in "
    "export_gcs_uri and add gcs to export_destinations (a run may still name a folder or "
    "gs:// prefix with the export_destination Param)",
    "holdout_period_days": "the holdout is drawn per incident and held until it resolves + "
    "impact_horizon_days (docs/audiences.md); remove the key",
}


def _nearest(name: str, known: list[str], *, prefix: str = "", quote: bool = False) -> str:
    """The hint after an unknown name: the closest known one, or where to find them."""
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
    if not close:
        return "no setting has a similar name (`retentionops settings` lists them)"
    match = next(k for k in known if k.lower() == close[0])
    shown = f"'{prefix}{match}'" if quote else f"{prefix}{match}"
    return f"did you mean {shown}?"


def _refuse_unknown_variables(env: dict[str, str], kinds: dict[str, type]) -> None:
    """Refuse a ``RETENTIONOPS_*`` variable that names no setting (nor one of
    ``OTHER_ENV_VARIABLES``), naming the nearest setting's variable."""
    settings = [name.upper() for name in kinds]
    known = {f"{ENV_PREFIX}{name}" for name in [*settings, *map(str.upper, RENAMED)]}
    known |= set(OTHER_ENV_VARIABLES)
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
    if unknown:
        others = [name.removeprefix(ENV_PREFIX) for name in OTHER_ENV_VARIABLES]
        raise SettingsError(
            "; ".join(
                f"unknown setting {name}: "
                + _nearest(name.removeprefix(ENV_PREFIX), [*settings, *others], prefix=ENV_PREFIX)
                for name in unknown
            )
        )


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read defaults, then the YAML file, then environment variables, then ``overrides``."""
    env = dict(os.environ if env is None else env)
    path = Path(config_path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_PATH)
    kinds = {f.name: _KINDS[f.type] for f in dataclasses.fields(Settings)}

    values: dict[str, Any] = {}
    if path.exists():
        loaded = _read_yaml(path)
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {path} must hold a mapping of setting: value")
        values.update(loaded)
    elif config_path is not None or f"{ENV_PREFIX}CONFIG" in env:
        raise SettingsError(f"config file {path} does not exist")
    _refuse_unknown_variables(env, kinds)
    for name in [*kinds, *RENAMED]:
        if f"{ENV_PREFIX}{name.upper()}" in env:
            values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    values.update(overrides)

    renamed = sorted(set(values) & set(RENAMED))
    if renamed:
        raise SettingsError(
            "; ".join(f"setting '{name}' was replaced: {RENAMED[name]}" for name in renamed)
        )
    unknown = sorted(set(values) - set(kinds), key=str)
    if unknown:
        raise SettingsError(
            "; ".join(
                f"unknown setting '{name}' in {path}: "
                + _nearest(str(name), list(kinds), quote=True)
                for name in unknown
            )
        )
    return Settings(**{name: _coerce(name, raw, kinds[name]) for name, raw in values.items()})


# -- the generated documentation of the settings ----------------------------------------


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def yaml_template() -> str:
    """The shipped ``include/retentionops.yaml``: every setting, commented, at its default."""
    lines = [
        "# RetentionOps settings. Every key below is shown at its default, commented out:",
        "# uncomment a line to change it. Each key can also be set by an environment variable",
        "# RETENTIONOPS_<KEY IN CAPITALS> (which wins over this file); the CLI takes",
        "# --config FILE (or RETENTIONOPS_CONFIG) to read another file instead of this one.",
        "# Generated by `retentionops settings --template`; a test keeps it in step with the code.",
    ]
    for f in dataclasses.fields(Settings):
        if f.metadata.get("section"):
            lines += ["", f"# -- {f.metadata['section']} " + "-" * 20]
        lines.append(f"# {f.name}: {_yaml_value(f.default)}    # {f.metadata['doc']}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The README's settings table, one row per setting."""
    rows = [
        "| setting (env: `RETENTIONOPS_<NAME>`) | default | meaning |",
        "| --- | --- | --- |",
    ]
    for f in dataclasses.fields(Settings):
        default = f"`{_yaml_value(f.default)}`" if f.default != "" else '""'
        rows.append(f"| `{f.name}` | {default} | {f.metadata['doc'].replace('|', '/')} |")
    return "\n".join(rows) + "\n"
