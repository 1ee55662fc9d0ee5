-- Settle a claimed event with what its POST came to (ledger.settle): only the run holding
-- the claim (its claim_token) may, so a sender whose lease ran out and was taken over by
-- another run cannot overwrite that run's outcome.
update {{ tables.incident_events }}
set
    state = @state,
    lease_until = null,
    ticket_id = coalesce(@ticket_id, ticket_id),
    ticket_url = coalesce(@ticket_url, ticket_url),
    slack_message_ts = coalesce(@slack_message_ts, slack_message_ts),
    note = @note,
    updated_at = current_timestamp()
where dedupe_key = @dedupe_key and claim_token = @claim_token
