-- The delivered resolve of an incident in one rollout mode, if any (its first delivery):
-- once it reached people, no later, late or backfilled run sends another event of the
-- incident (docs/incidents.md, "Never contradicted").
select
    run_date,
    run_id,
    delivered_at
from {{ tables.deliveries }}
where
    incident_id = @incident_id
    and rollout_mode = @rollout_mode
    and event = 'resolve'
order by delivered_at
limit 1
