-- Repurchase within @horizon_days after @run_date, per exported tier, for the customers
-- that were exported (treated) against the holdout of the same score window: when
-- @row_limit cut the export, both groups stop at the rank of the last exported customer,
-- so the comparison is like for like; otherwise the whole tier is compared.
with

ranked as (
    select
        customer_id,
        priority_tier,
        is_holdout,
        row_number() over (
            partition by priority_tier order by priority_score desc, customer_id asc
        ) as overall_rank,
        row_number() over (
            partition by priority_tier, is_holdout order by priority_score desc, customer_id asc
        ) as group_rank
    from {{ tables.customer_priority }}
    where
        run_date = @run_date
        and priority_tier in unnest(@tiers)
),

score_window as (
    select
        priority_tier,
        if(
            countif(not is_holdout) <= @row_limit,
            max(overall_rank),
            max(if(not is_holdout and group_rank <= @row_limit, overall_rank, null))
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
    where ranked.overall_rank <= score_window.last_rank
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
