-- The ledger of what the team is told (docs/incidents.md, "The ledger"): one row per
-- incident event (its dedupe_key), recorded with its webhook body when a run decides to
-- send it, claimed before the POST and settled by the answer. state: pending (owed: not
-- yet sent, or the receiver was down) -> sending (claimed, the POST under way until
-- lease_until) -> delivered | pending again (a transient failure: a later run delivers it,
-- in order) | unknown (no answer in time: the receiver may have acted; the next attempt
-- re-sends with the same key) | failed (refused for good: a resend after a fix).
-- A record, not a derived table: no load, recompute or retention removes it.
create table if not exists {{ tables.incident_events }} (
    dedupe_key string not null,
    incident_id string not null,
    event string not null,
    run_date date not null,
    rollout_mode string not null,
    severity string,
    state string not null,
    attempts int64 not null,
    claim_token string,
    claimed_by string,
    lease_until timestamp,
    ticket_id string,
    ticket_url string,
    slack_message_ts string,
    note string,
    settings_fingerprint string,
    built_by string,
    payload string,
    recorded_at timestamp not null,
    updated_at timestamp not null
)
cluster by incident_id, dedupe_key
