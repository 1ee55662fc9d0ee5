-- The delivery ledger: every incident event a run delivered (what reached people), one row
-- per (dedupe_key, run). A re-run, retry or backfill of a date finds its event here and
-- sends nothing again; later events of an incident find its ticket and Slack thread here.
create table if not exists {{ tables.deliveries }} (
    dedupe_key string not null,
    run_id string not null,
    run_date date not null,
    incident_id string not null,
    event string not null,
    severity string,
    rollout_mode string not null,
    resend bool not null,
    ticket_id string,
    slack_message_ts string,
    delivered_at timestamp not null
)
cluster by incident_id, run_date
