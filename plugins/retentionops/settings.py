"""One settings object: defaults < YAML file < ``RETENTIONOPS_<NAME>`` environment variables.

The YAML file is ``include/retentionops.yaml`` unless ``RETENTIONOPS_CONFIG`` or the CLI's
``--config`` names another. Every threshold of ``rules.md`` is a setting here, never a
literal in SQL; the SQL receives them as query parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "include" / "retentionops.yaml"
ENV_PREFIX = "RETENTIONOPS_"


STATUSES = ("ACTIVE", "AT_RISK", "INACTIVE")
RISK_LEVELS = ("HIGH", "MEDIUM", "LOW")


class SettingsError(ValueError):
    """A setting is missing, unknown or out of range; the message names it."""


def _choice(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


def _at_least(minimum: float) -> dict[str, Any]:
    return {"min": minimum}


@dataclass(frozen=True)
class Settings:
    # -- warehouse ---------------------------------------------------------------------
    warehouse_backend: str = field(default="duckdb", metadata=_choice("duckdb", "bigquery"))
    duckdb_path: str = "warehouse/retentionops.duckdb"
    bigquery_project: str = ""
    bigquery_dataset: str = "retentionops"
    bigquery_location: str = "EU"
    gcp_conn_id: str = "google_cloud_default"
    # -- Airflow schedule and task policy ------------------------------------------------
    schedule_start_date: str = "2010-12-08"  # the sample's first date with a full baseline week
    schedule_end_date: str = ""  # "" = open-ended
    catchup: bool = True
    # -- Airflow task policy -----------------------------------------------------------
    task_retries: int = field(default=3, metadata=_at_least(0))
    retry_delay_seconds: int = field(default=30, metadata=_at_least(0))
    # -- detection layer (SQL1-SQL5) ---------------------------------------------------
    detection_mode: str = field(default="managed", metadata=_choice("managed", "external"))
    active_days: int = field(default=30, metadata=_at_least(0))
    at_risk_days: int = field(default=90, metadata=_at_least(1))
    frequency_drop_factor: float = field(default=1.5, metadata=_at_least(0))
    status_inconsistent_factor: float = field(default=0.7, metadata=_at_least(0))
    status_inconsistent_max_orders: int = field(default=3, metadata=_at_least(0))
    weight_frequency_drop: int = field(default=50, metadata=_at_least(0))
    weight_value_drop: int = field(default=30, metadata=_at_least(0))
    weight_status_inconsistent: int = field(default=20, metadata=_at_least(0))
    risk_level_high_min: int = field(default=51, metadata=_at_least(0))
    risk_level_medium_min: int = field(default=21, metadata=_at_least(0))
    baseline_days: int = field(default=7, metadata=_at_least(1))
    threshold_warning_pct: float = field(default=15.0, metadata=_at_least(0))
    threshold_critical_pct: float = field(default=25.0, metadata=_at_least(0))
    min_sample_size: int = field(default=100, metadata=_at_least(0))
    # -- priority queue (design section 7; the design's open questions are switches) --
    p1_status: str = field(default="ACTIVE", metadata=_choice(*STATUSES))
    p1_risk_levels: str = field(default="HIGH", metadata={"levels": True})
    p2_status: str = field(default="AT_RISK", metadata=_choice(*STATUSES))
    p2_risk_levels: str = field(default="HIGH,MEDIUM", metadata={"levels": True})
    p3_status: str = field(default="INACTIVE", metadata=_choice(*STATUSES))
    p3_risk_levels: str = field(default="HIGH", metadata={"levels": True})
    p1_value_filter: bool = False  # P1 only above the median total_revenue at D
    p3_recency_cap_days: int = field(default=0, metadata=_at_least(0))  # 0 = no cap
    p1_base_score: int = field(default=70, metadata=_at_least(0))
    p2_base_score: int = field(default=50, metadata=_at_least(0))
    p3_base_score: int = field(default=30, metadata=_at_least(0))
    value_bonus_cap: float = field(default=20.0, metadata=_at_least(0))
    value_bonus_per_log: float = field(default=2.0, metadata=_at_least(0))
    urgency_bonus_cap: float = field(default=10.0, metadata=_at_least(0))
    urgency_days_per_point: float = field(default=3.0, metadata={"min": 0.001})
    p1_action: str = "VIP outreach + light incentive"
    p2_action: str = "Win-back sequence + free shipping / discount"
    p3_action: str = "Strong comeback offer or survey"
    value_proxy_factor: float = field(default=0.3, metadata=_at_least(0))
    impact_value_basis: str = field(
        default="median_total_revenue", metadata=_choice("median_total_revenue", "value_proxy")
    )
    # -- execution: the Make.com playbook and its fallback (design sections 9, 14, 16) -----
    rollout_mode: str = field(default="shadow", metadata=_choice("shadow", "pilot", "production"))
    make_conn_id: str = "make_webhook"  # Airflow HTTP connection holding the webhook URL
    webhook_timeout_seconds: float = field(default=10.0, metadata={"min": 0.1})
    webhook_retries: int = field(default=2, metadata=_at_least(0))
    webhook_retry_delay_seconds: int = field(default=30, metadata=_at_least(0))
    slack_conn_id: str = "slack_fallback"  # Slack incoming-webhook connection (fallback)
    slack_channel: str = "#retention-alerts"
    pilot_slack_channel: str = "#retention-pilot"
    failure_notifications: bool = False  # also notify task failures through Slack
    # -- retention (design 6.1): older partitions are removed ---------------------------
    retention_days: int = field(default=90, metadata=_at_least(1))
    # -- impact measurement (design section 8.3) -----------------------------------------
    holdout_pct: float = field(default=0.0, metadata=_at_least(0))  # share kept out, per tier
    # -- action pack outputs ----------------------------------------------------------
    artifacts_dir: str = "artifacts/runs"
    export_destination: str = ""  # "" = <artifacts_dir>/<date>/; or a folder, or gs://bucket/prefix
    export_kind: str = field(default="csv", metadata=_choice("csv", "gsheet"))
    export_limit: int = field(default=2000, metadata=_at_least(1))
    gsheet_spreadsheet_id: str = ""

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
            minimum = f.metadata.get("min")
            if minimum is not None and value < minimum:
                raise SettingsError(f"setting '{f.name}' is {value}; it must be >= {minimum}")
        self._require(self.active_days < self.at_risk_days, "active_days", "below at_risk_days")
        self._require(
            self.risk_level_medium_min <= self.risk_level_high_min,
            "risk_level_medium_min",
            "at most risk_level_high_min",
        )
        self._require(
            self.threshold_warning_pct <= self.threshold_critical_pct,
            "threshold_warning_pct",
            "at most threshold_critical_pct",
        )
        for name in ("threshold_warning_pct", "threshold_critical_pct"):
            self._require(
                round(getattr(self, name), 2) == getattr(self, name), name, "given to 2 decimals"
            )
        for name in ("frequency_drop_factor", "status_inconsistent_factor"):
            exact = ratio(getattr(self, name)).denominator <= 1000
            self._require(exact, name, "a decimal with 3 places at most")
        if self.warehouse_backend == "bigquery":
            self._require(bool(self.bigquery_project), "bigquery_project", "set for BigQuery")
        self._require(0 <= self.holdout_pct <= 100, "holdout_pct", "between 0 and 100")
        for name in ("schedule_start_date", "schedule_end_date"):
            value = getattr(self, name)
            try:
                if value:
                    dt.date.fromisoformat(value)
            except ValueError:
                raise SettingsError(f"setting '{name}' is {value!r}; use YYYY-MM-DD") from None
        if self.export_kind == "gsheet":
            self._require(
                bool(self.gsheet_spreadsheet_id), "gsheet_spreadsheet_id", "set for gsheet exports"
            )

    def _require(self, ok: bool, name: str, what: str) -> None:
        if not ok:
            raise SettingsError(f"setting '{name}' ({getattr(self, name)!r}) must be {what}")

    @property
    def duckdb_file(self) -> Path:
        path = Path(self.duckdb_path)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def artifacts_path(self) -> Path:
        path = Path(self.artifacts_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def ratio(value: float) -> Fraction:
    """Return a factor as an exact fraction (1.5 -> 3/2) so SQL compares without division."""
    return Fraction(str(value))


def setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


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


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read defaults, then the YAML file, then environment variables, then ``overrides``."""
    env = dict(os.environ if env is None else env)
    path = Path(config_path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_PATH)
    types = {"int": int, "float": float, "str": str, "bool": bool}
    kinds = {f.name: types[f.type] for f in dataclasses.fields(Settings)}

    values: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {path} must hold a mapping of setting: value")
        values.update(loaded)
    elif config_path is not None or f"{ENV_PREFIX}CONFIG" in env:
        raise SettingsError(f"config file {path} does not exist")
    for name in kinds:
        if f"{ENV_PREFIX}{name.upper()}" in env:
            values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    values.update(overrides)

    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)} in {path}; known settings: "
            + ", ".join(kinds)
        )
    return Settings(**{name: _coerce(name, raw, kinds[name]) for name, raw in values.items()})
