-- Operational context for @run_date (design section 8.2): the status distribution, the
-- risk level x status matrix, the queued tier counts and the median total_revenue, as
-- one long table (facet, status, risk_level, tier, customers, metric_value, holdout).
with

-- each facet reads only the tables it needs: status x risk, then revenue (SQL1-SQL3 of a
-- date hold the same customers: everyone with an order on or before @run_date)
statuses as (
    select
        snap.retention_status,
        churn.churn_risk_level
    from {{ tables.retention_snapshot }} as snap
    inner join {{ tables.churn_detection }} as churn
        on snap.customer_id = churn.customer_id
    where snap.snapshot_date = @run_date and churn.snapshot_date = @run_date
),

matrix as (
    select
        'risk_by_status' as facet,
        retention_status as status,
        churn_risk_level as risk_level,
        cast(null as string) as tier,
        count(*) as customers,
        cast(null as float64) as metric_value,
        0 as holdout_customers
    from statuses
    group by retention_status, churn_risk_level
),

tiers as (
    select
        'tier' as facet,
        cast(null as string) as status,
        cast(null as string) as risk_level,
        priority_tier as tier,
        count(*) as customers,
        sum(cast(value_proxy as float64)) as metric_value,
        countif(is_holdout) as holdout_customers
    from {{ tables.customer_priority }}
    where run_date = @run_date
    group by priority_tier
),

median_revenue as (
    select distinct
        'median_total_revenue' as facet,
        cast(null as string) as status,
        cast(null as string) as risk_level,
        cast(null as string) as tier,
        count(*) over () as customers,
        percentile_cont(cast(total_revenue as float64), 0.5) over () as metric_value,
        0 as holdout_customers
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
)

select * from matrix
union all
select * from tiers
union all
select * from median_revenue
