-- The events of one rollout mode decided before @run_date and not yet delivered, oldest
-- first (ledger.owed): never sent, or the receiver was down (pending), no answer in time
-- (unknown), or claimed (sending: in_flight while its lease runs, else a sender that died
-- holding it). A run delivers them in this order before its own event, and waits behind
-- one in flight.
{% import "sql/macros/ledger.jinja" as ledger with context -%}
select
    {{ ledger.event_columns() | indent(4) }},
    state = 'sending' and lease_until >= current_timestamp() as in_flight
from {{ tables.incident_events }}
where
    rollout_mode = @rollout_mode
    and run_date < @run_date
    and state in ('pending', 'unknown', 'sending')
order by run_date, recorded_at
