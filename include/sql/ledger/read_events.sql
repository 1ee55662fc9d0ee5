-- The ledger's events, oldest first: one by its dedupe_key (no row: never recorded), or
-- every one when @dedupe_key is NULL (retentionops replay's report, health). Each carries
-- its number within its incident (event_number, per rollout mode): the order of the
-- incident's days, so a late or backfilled event takes its place among the others
-- whenever it was recorded.
with numbered as (
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
        built_by,
        payload,
        recorded_at,
        updated_at,
        row_number() over (
            partition by incident_id, rollout_mode order by run_date, recorded_at
        ) as event_number
    from {{ tables.incident_events }}
)

select *
from numbered
where @dedupe_key is null or dedupe_key = @dedupe_key
order by run_date, recorded_at
