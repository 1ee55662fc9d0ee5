-- The ledger's events, oldest first: one by its dedupe_key (no row: never recorded), or
-- every one when @dedupe_key is NULL (retentionops replay's report).
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
    payload,
    recorded_at,
    updated_at
from {{ tables.incident_events }}
where @dedupe_key is null or dedupe_key = @dedupe_key
order by run_date, recorded_at
