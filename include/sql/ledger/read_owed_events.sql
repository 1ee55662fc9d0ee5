-- The events of one rollout mode decided before @run_date and still owed to the team,
-- oldest first (ledger.owed): never sent, or the receiver was down (pending), no answer in
-- time (unknown), or a sender that died holding it (a lease that ran out). A run delivers
-- them in this order before its own event.
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
where
    rollout_mode = @rollout_mode
    and run_date < @run_date
    and (
        state in ('pending', 'unknown')
        or (state = 'sending' and lease_until < current_timestamp())
    )
order by run_date, recorded_at
