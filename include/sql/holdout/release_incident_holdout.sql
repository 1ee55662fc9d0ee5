-- Record when incident @incident_id resolved (@resolved_on, decided by the incident layer)
-- and so the last day its holdout holds (@held_until = resolved + impact_horizon_days), on
-- every row of its holdout, once: a later run that computes another resolution (other
-- settings, reloaded orders) does not move a release already recorded.
update {{ tables.incident_holdouts }}
set
    resolved_on = @resolved_on,
    held_until = @held_until
where incident_id = @incident_id and held_until is null
