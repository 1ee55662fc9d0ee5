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
    {{ ledger.insert_event(
        "decided", state="'pending'", attempts="0", payload="decided.payload"
    ) | indent(4) }}
