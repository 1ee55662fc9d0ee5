-- The holdouts that hold on @run_date (docs/audiences.md), as one long table:
--   * facet 'tier': per tier of @run_date's queue, its customers and those held out that
--     day by any incident's holdout (what no export of the date takes);
--   * facet 'incident': per incident whose holdout holds on @run_date (opened on or before
--     it, not released before it) and per tier it drew: the tier's size when its draw was
--     decided, whether it was drawn, the customers seen and held out, the rule and release.
with

holding as (
    select
        incident_id,
        customer_id,
        tier,
        held_out,
        tier_customers,
        tier_drawn,
        holdout_bp,
        opened_on,
        resolved_on,
        held_until
    from {{ tables.incident_holdouts }}
    where opened_on <= @run_date and coalesce(held_until >= @run_date, true)
),

held as (
    select distinct customer_id
    from holding
    where held_out
),

queue as (
    select
        queue.priority_tier,
        held.customer_id is not null as held_out
    from {{ tables.customer_priority }} as queue
    left join held
        on queue.customer_id = held.customer_id
    where queue.run_date = @run_date
),

tiers as (
    select
        'tier' as facet,
        cast(null as string) as incident_id,
        priority_tier as tier,
        count(*) as customers,
        cast(null as int64) as seen,
        countif(held_out) as held_out,
        cast(null as bool) as tier_drawn,
        cast(null as int64) as holdout_bp,
        cast(null as date) as opened_on,
        cast(null as date) as resolved_on,
        cast(null as date) as held_until
    from queue
    group by priority_tier
),

incidents as (
    select
        'incident' as facet,
        incident_id,
        tier,
        max(tier_customers) as customers,
        count(distinct customer_id) as seen,
        count(distinct if(held_out, customer_id, null)) as held_out,
        logical_or(tier_drawn) as tier_drawn,
        max(holdout_bp) as holdout_bp,
        min(opened_on) as opened_on,
        max(resolved_on) as resolved_on,
        max(held_until) as held_until
    from holding
    group by incident_id, tier
)

select * from tiers
union all
select * from incidents
