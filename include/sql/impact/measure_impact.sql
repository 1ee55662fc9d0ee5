-- Repurchase within @horizon_days after @run_date, per tier, for the customers the run
-- @run_id exported (treated, from audience_exports) against the customers an incident's
-- holdout held out on @run_date (assigned by then), in the tier their incident first saw
-- them in. Neither group needs the date's queue, so a run stays measurable after the
-- queue's retention. Customers the contact cooldown kept back were treated by an earlier
-- run: they are in neither group.
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
        and opened_on <= @run_date
        and coalesce(held_until >= @run_date, true)
        and tier in unnest(@tiers)
    group by customer_id
),

cohort as (
    select
        customer_id,
        tier,
        false as held_out
    from exported
    union all
    select
        customer_id,
        tier,
        true as held_out
    from held
),

outcomes as (
    select
        cohort.tier,
        cohort.held_out,
        cohort.customer_id,
        count(orders.order_id) > 0 as repurchased,
        coalesce(sum(orders.order_amount), 0) as revenue_after
    from cohort
    left join {{ tables.orders }} as orders
        on
            cohort.customer_id = orders.customer_id
            and orders.order_date > @run_date
            and orders.order_date <= date_add(@run_date, interval @horizon_days day)
    group by cohort.tier, cohort.held_out, cohort.customer_id
)

select
    tier,
    held_out,
    count(*) as customers,
    countif(repurchased) as repurchasers,
    -- summed exactly (NUMERIC), then cast: a float sum depends on the order of its terms,
    -- which a parallel aggregate does not fix
    cast(sum(revenue_after) as float64) as revenue_after
from outcomes
group by tier, held_out
