-- The holdouts that hold on @run_date (docs/audiences.md), as one long table:
--   * facet 'tier': per tier of @run_date's queue, its customers and those held out that
--     day by any incident's holdout (what no export of the date takes);
--   * facet 'incident': per incident whose holdout holds on @run_date (opened on or before
--     it, not released before it) and per tier it drew: the tier's size when its draw was
--     decided, whether it was drawn, the customers seen and held out, the rule and release.
-- The two facets' columns line up (tiers names them): an incident's customers are its
-- tier's size when its draw was decided (tier_customers).
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
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
    where {{ holdouts.holds_on("@run_date") }}
),

{{ holdouts.held_queue("@run_date", ["priority_tier"]) }},

tiers as (
    select
        'tier' as facet,
        cast(null as string) as incident_id,
        priority_tier as tier,
        count(*) as customers,
        cast(null as bool) as tier_drawn,
        cast(null as int64) as seen,
        countif(is_holdout) as held_out,
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
        {{ holdouts.tier_summary() | indent(8) }}
    from holding
    group by incident_id, tier
)

select * from tiers
union all
select * from incidents
