-- Record an event a run decided to send, with the webhook body it built and that run's id
-- (built_by: the run whose audience the body links; ledger.record):
-- new, it is pending (owed). Known and not yet delivered, its body is the latest build (the
-- key, and so what the receiver dedupes on, stays the same); a delivered or claimed event
-- keeps its row.
{% import "sql/macros/ledger.jinja" as ledger with context -%}
merge {{ tables.incident_events }} as ledger
using (
    select
        {{ ledger.decided_event() | indent(8) }},
        @payload as payload
) as decided
    on ledger.dedupe_key = decided.dedupe_key
when matched and ledger.state in ('pending', 'failed', 'unknown') then
    update set
        payload = decided.payload,
        built_by = decided.built_by,
        severity = decided.severity,
        settings_fingerprint = decided.settings_fingerprint,
        updated_at = current_timestamp()
when not matched then
    insert (
        dedupe_key, incident_id, event, run_date, rollout_mode, severity, state, attempts,
        settings_fingerprint, built_by, payload, recorded_at, updated_at
    )
    values (
        decided.dedupe_key, decided.incident_id, decided.event, decided.run_date,
        decided.rollout_mode, decided.severity, 'pending', 0, decided.settings_fingerprint,
        decided.built_by, decided.payload, current_timestamp(), current_timestamp()
    )
