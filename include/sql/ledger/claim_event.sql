-- Claim one incident event for this run before its webhook POST (ledger.claim). One
-- statement decides and writes: a new event is inserted as sending; a known one is taken
-- over only when no other run may be sending it (pending, failed, unknown, a lease that ran
-- out), or delivered when the run resends on purpose. The caller reads the row back:
-- the claim is its own when claim_token is its token (two runs never both hold it: DuckDB
-- has one writer, BigQuery serialises two DML statements that change the same rows).
{% import "sql/macros/ledger.jinja" as ledger with context -%}
merge {{ tables.incident_events }} as ledger
using (
    select
        {{ ledger.decided_event() | indent(8) }}
) as wanted
    on ledger.dedupe_key = wanted.dedupe_key
when matched and (
    ledger.state in ('pending', 'failed', 'unknown')
    or (ledger.state = 'sending' and ledger.lease_until < current_timestamp())
    or (@resend and ledger.state = 'delivered')
) then
    update set
        state = 'sending',
        attempts = ledger.attempts + 1,
        claim_token = @claim_token,
        claimed_by = @run_id,
        lease_until = timestamp_add(current_timestamp(), interval @lease_seconds second),
        severity = wanted.severity,
        settings_fingerprint = wanted.settings_fingerprint,
        updated_at = current_timestamp()
when not matched then
    {{ ledger.insert_event(
        "wanted", state="'sending'", attempts="1", claim_token="@claim_token",
        claimed_by="@run_id",
        lease_until="timestamp_add(current_timestamp(), interval @lease_seconds second)",
    ) | indent(4) }}
