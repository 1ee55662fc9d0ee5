-- One event of the ledger by its dedupe_key (no row: never claimed nor withheld).
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
where dedupe_key = @dedupe_key
