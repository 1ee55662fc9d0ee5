-- Repurchase within @horizon_days after @run_date, per tier, for the customers the run
-- @run_id exported (treated, from audience_exports) against the customers an incident's
-- holdout held out on @run_date (assigned by then), in the tier their incident first saw
-- them in. Neither group needs the date's queue, so a run stays measurable after the
-- queue's retention. Customers the contact cooldown kept back were treated by an earlier
-- run: they are in neither group. Both groups start on @run_date (last_start).
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
{% import "sql/macros/impact.jinja" as impact with context -%}
with

exported as (
    select distinct
        customer_id,
        tier
    from {{ tables.audience_exports }}
    where
        run_id = @run_id
        and run_date = @run_date
        and tier in unnest(@tiers)
),

held as (
    -- a customer two incidents hold counts once, in its most urgent tier
    select
        customer_id,
        min(tier) as tier
    from {{ tables.incident_holdouts }}
    where
        held_out
        and assigned_on <= @run_date
        and {{ holdouts.holds_on("@run_date") }}
        and tier in unnest(@tiers)
    group by customer_id
),

cohort as (
    select
        customer_id,
        tier,
        false as held_out,
        @run_date as start_date
    from exported
    union all
    select
        customer_id,
        tier,
        true as held_out,
        @run_date as start_date
    from held
),

{{ impact.repurchases(start="@run_date") }}
