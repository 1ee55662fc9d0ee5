-- The ledger's events, oldest first: one by its dedupe_key (no row: never recorded), or
-- every one when @dedupe_key is NULL (retentionops replay's report, health). Each carries
-- its number within its incident (event_number, per rollout mode): the order of the
-- incident's days, so a late or backfilled event takes its place among the others
-- whenever it was recorded.
{% import "sql/macros/ledger.jinja" as ledger with context -%}
with numbered as (
    select
        {{ ledger.event_columns() | indent(8) }},
        row_number() over (
            partition by incident_id, rollout_mode order by run_date, recorded_at
        ) as event_number
    from {{ tables.incident_events }}
)

select *
from numbered
where @dedupe_key is null or dedupe_key = @dedupe_key
order by run_date, recorded_at
