-- The events of one rollout mode decided before @run_date and not yet delivered, oldest
-- first (ledger.owed): never sent, or the receiver was down (pending), no answer in time
-- (unknown), or claimed (sending: in_flight while its lease runs, else a sender that died
-- holding it). A run delivers them in this order before its own event, and waits behind
-- one in flight.
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
    updated_at,
    state = 'sending' and lease_until >= current_timestamp() as in_flight
from {{ tables.incident_events }}
where
    rollout_mode = @rollout_mode
    and run_date < @run_date
    and state in ('pending', 'unknown', 'sending')
order by run_date, recorded_at
