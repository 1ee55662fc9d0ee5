-- Record the customers a run exports for the tiers @tiers of @run_date, each tier in file
-- order: the queue's tier without the customers an incident's holdout holds on @run_date
-- (whatever the door, the date's incident or none: holdout/draw_incident_holdout.sql
-- drew them first), without customers the contact cooldown keeps back (a bypass on
-- escalation is exported), only the new ones when @new_only, at most @row_limit per tier,
-- best priority_score first (ties by customer_id). The audience files are read back from
-- here.
insert into {{ tables.audience_exports }} (
    run_id, run_date, tier, customer_id, export_rank, exported_at
)
select
    @run_id as run_id,
    run_date,
    priority_tier as tier,
    customer_id,
    export_rank,
    current_timestamp() as exported_at
from (
    select
        run_date,
        priority_tier,
        customer_id,
        row_number() over (
            partition by priority_tier order by priority_score desc, customer_id asc
        ) as export_rank
    from {{ tables.customer_priority }}
    where
        run_date = @run_date
        and priority_tier in unnest(@tiers)
        -- held-out customers are never contacted while their holdout holds: they measure
        -- the incident's impact (from its opening to its resolution + the horizon). A
        -- holdout still running (no release recorded) holds for an export of any date: a
        -- backfill of a date before the incident contacts its customers now, inside it
        and customer_id not in (
            select held.customer_id
            from {{ tables.incident_holdouts }} as held
            where
                held.held_out
                and (held.held_until is null or held.held_until >= @run_date)
                and (held.held_until is null or held.opened_on <= @run_date)
        )
        and coalesce(cooldown_status, 'none') != 'suppressed'
        and (not @new_only or coalesce(new_in_tier, true))
)
where export_rank <= @row_limit
