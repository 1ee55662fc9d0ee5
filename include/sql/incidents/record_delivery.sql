-- Record one delivered event (a retry of the same run lands on the same row).
merge {{ tables.deliveries }} as ledger
using (
    select
        @dedupe_key as dedupe_key,
        @run_id as run_id,
        @run_date as run_date,
        @incident_id as incident_id,
        @event as event,
        @severity as severity,
        @rollout_mode as rollout_mode,
        @resend as resend,
        @ticket_id as ticket_id,
        @slack_message_ts as slack_message_ts
) as delivered
    on ledger.dedupe_key = delivered.dedupe_key and ledger.run_id = delivered.run_id
when matched then
    update set
        ticket_id = delivered.ticket_id,
        slack_message_ts = delivered.slack_message_ts,
        delivered_at = current_timestamp()
when not matched then
    insert (
        dedupe_key, run_id, run_date, incident_id, event, severity, rollout_mode, resend,
        ticket_id, slack_message_ts, delivered_at
    )
    values (
        delivered.dedupe_key, delivered.run_id, delivered.run_date, delivered.incident_id,
        delivered.event, delivered.severity, delivered.rollout_mode, delivered.resend,
        delivered.ticket_id, delivered.slack_message_ts, current_timestamp()
    )
