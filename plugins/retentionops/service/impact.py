"""The measurement operations (design 8.3): one customer's recommended action, and the
impact of a run or an incident against its holdout."""

from __future__ import annotations

from typing import Any

from retentionops import detection
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.service.request import DateLike
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse


def get_recommended_action(
    settings: Settings, customer_id: str, run_date: DateLike
) -> dict[str, Any]:
    """One customer's tier, recommended action and reason at a date, or why it has none."""
    from retentionops import impact

    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        detection.require_queue(warehouse, day)
        return impact.recommended_action(warehouse, settings, customer_id, day)


def measure_impact(
    settings: Settings,
    run_id: str | None = None,
    horizon_days: int | None = None,
    *,
    incident_id: str | None = None,
) -> dict[str, Any]:
    """Treated vs held out, repurchase within the horizon (``impact_horizon_days`` unless
    given), per tier: of a run (its exports against the holdout of its date) or of an
    incident (everyone it contacted against its whole holdout); sizes, the 95 % interval,
    the minimum detectable uplift and a verdict per tier (underpowered, no holdout...)."""
    from retentionops import impact

    if (run_id is None) == (incident_id is None):
        raise ServiceError("measure the impact of a run (run_id) or of an incident "
                           "(incident_id): name one of them")  # fmt: skip
    with open_warehouse(settings, read_only=True) as warehouse:
        if incident_id is not None:
            return impact.measure_incident_impact(warehouse, settings, incident_id, horizon_days)
        assert run_id is not None  # one of the two, checked above
        return impact.measure_impact(warehouse, settings, run_id, horizon_days)
