-- Every event of the ledger that reached people, oldest first, without their bodies
-- (ledger.delivered_incidents groups them per incident): what the team was told, whatever
-- today's settings would compute.
select
    dedupe_key,
    incident_id,
    event,
    run_date,
    rollout_mode,
    severity,
    ticket_id,
    settings_fingerprint,
    updated_at
from {{ tables.incident_events }}
where state = 'delivered'
order by rollout_mode, incident_id, run_date, updated_at
