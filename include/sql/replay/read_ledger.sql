-- Every event of the ledger, oldest first, without its body (retentionops replay's report).
select
    dedupe_key,
    incident_id,
    event,
    run_date,
    rollout_mode,
    severity,
    state,
    attempts,
    claim_token,
    claimed_by,
    lease_until,
    ticket_id,
    ticket_url,
    slack_message_ts,
    note,
    settings_fingerprint,
    recorded_at,
    updated_at
from {{ tables.incident_events }}
order by run_date, recorded_at
