-- Repurchase within @horizon_days after @run_date, per tier, for the customers the run
-- @run_id exported (treated, from audience_exports) against the holdout of the same tier
-- and score window: when @row_limit cut the export, the holdout customers ranked no lower
-- than the last exported one (like for like); otherwise the whole tier's holdout. Customers
-- the contact cooldown kept back were treated by an earlier run: they are in neither group.
with

exported as (
    select
        customer_id,
        tier
    from {{ tables.audience_exports }}
    where run_id = @run_id and run_date = @run_date
),

ranked as (
    select
        queue.customer_id,
        queue.priority_tier,
        queue.is_holdout,
        exported.customer_id is not null as treated,
        row_number() over (
            partition by queue.priority_tier
            order by queue.priority_score desc, queue.customer_id asc
        ) as overall_rank
    from {{ tables.customer_priority }} as queue
    left join exported
        on queue.customer_id = exported.customer_id and queue.priority_tier = exported.tier
    where
        queue.run_date = @run_date
        and queue.priority_tier in unnest(@tiers)
),

score_window as (
    select
        priority_tier,
        if(
            countif(treated) < @row_limit,
            max(overall_rank),
            max(if(treated, overall_rank, null))
        ) as last_rank
    from ranked
    group by priority_tier
),

cohort as (
    select
        ranked.customer_id,
        ranked.priority_tier,
        ranked.is_holdout
    from ranked
    inner join score_window
        on ranked.priority_tier = score_window.priority_tier
    where
        ranked.overall_rank <= score_window.last_rank
        and (ranked.treated or ranked.is_holdout)
),

outcomes as (
    select
        cohort.priority_tier,
        cohort.is_holdout,
        cohort.customer_id,
        count(orders.order_id) > 0 as repurchased,
        coalesce(sum(orders.order_amount), 0) as revenue_after
    from cohort
    left join {{ tables.orders }} as orders
        on
            cohort.customer_id = orders.customer_id
            and orders.order_date > @run_date
            and orders.order_date <= date_add(@run_date, interval @horizon_days day)
    group by cohort.priority_tier, cohort.is_holdout, cohort.customer_id
)

select
    priority_tier,
    is_holdout,
    count(*) as customers,
    countif(repurchased) as repurchasers,
    sum(cast(revenue_after as float64)) as revenue_after
from outcomes
group by priority_tier, is_holdout
