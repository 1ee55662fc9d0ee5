-- Withhold an owed event for good (ledger.withhold): sending it now would contradict what
-- the team was told since (its incident's resolve was delivered). The note says why.
update {{ tables.incident_events }}
set
    state = 'withheld',
    lease_until = null,
    note = @note,
    updated_at = current_timestamp()
where dedupe_key = @dedupe_key and state in ('pending', 'unknown', 'failed')
