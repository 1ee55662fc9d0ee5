-- Operational context for @run_date (design section 8.2): the status distribution, the
-- risk level x status matrix, the queued tier counts and the median total_revenue, as
-- one long table (facet, status, risk_level, tier, customers, metric_value, holdout).
-- Per tier also what the audience is across days (docs/audiences.md): the customers new in
-- the tier since the last delivered run, those the contact cooldown keeps back or lets
-- through (bypass), how many an export takes (@new_only: the new ones), and the tier's
-- size at the last delivered run (previous_customers, on previous_run_date).
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
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
        0 as holdout_customers,
        0 as new_customers,
        0 as cooldown_suppressed,
        0 as cooldown_bypassed,
        0 as exportable,
        0 as previous_customers,
        cast(null as date) as previous_run_date
    from statuses
    group by retention_status, churn_risk_level
),

-- held: the customers an incident's holdout holds on @run_date (docs/audiences.md); queue:
-- the columns the facets use only (BigQuery bills every column a query references)
{{ holdouts.held_queue("@run_date", [
    "priority_tier", "value_proxy", "new_in_tier", "cooldown_status", "previous_run_date"
]) }},

previous as (
    select
        previous_queue.priority_tier,
        count(*) as customers
    from {{ tables.customer_priority }} as previous_queue
    -- the queue's previous_run_date, read first (action/read_previous_run_date): a constant,
    -- so BigQuery reads that one partition
    where previous_queue.run_date = @previous_run_date
    group by previous_queue.priority_tier
),

tiers as (
    select
        'tier' as facet,
        cast(null as string) as status,
        cast(null as string) as risk_level,
        queue.priority_tier as tier,
        count(*) as customers,
        -- exact (NUMERIC), then cast: a float sum varies with the order of its terms
        cast(sum(queue.value_proxy) as float64) as metric_value,
        countif(queue.is_holdout) as holdout_customers,
        countif(coalesce(queue.new_in_tier, true)) as new_customers,
        countif(not queue.is_holdout and queue.cooldown_status = 'suppressed')
            as cooldown_suppressed,
        countif(not queue.is_holdout and queue.cooldown_status = 'bypassed')
            as cooldown_bypassed,
        countif(
            not queue.is_holdout
            and coalesce(queue.cooldown_status, 'none') != 'suppressed'
            and (not @new_only or coalesce(queue.new_in_tier, true))
        ) as exportable,
        coalesce(max(previous.customers), 0) as previous_customers,
        max(queue.previous_run_date) as previous_run_date
    from queue
    left join previous
        on queue.priority_tier = previous.priority_tier
    group by queue.priority_tier
),

-- a tier empty today but not at the last delivered run still has a row (it "left")
emptied as (
    select
        'tier' as facet,
        cast(null as string) as status,
        cast(null as string) as risk_level,
        previous.priority_tier as tier,
        0 as customers,
        0.0 as metric_value,
        0 as holdout_customers,
        0 as new_customers,
        0 as cooldown_suppressed,
        0 as cooldown_bypassed,
        0 as exportable,
        previous.customers as previous_customers,
        @previous_run_date as previous_run_date
    from previous
    where previous.priority_tier not in (select queue.priority_tier from queue)
),

median_revenue as (
    select distinct
        'median_total_revenue' as facet,
        cast(null as string) as status,
        cast(null as string) as risk_level,
        cast(null as string) as tier,
        count(*) over () as customers,
        percentile_cont(cast(total_revenue as float64), 0.5) over () as metric_value,
        0 as holdout_customers,
        0 as new_customers,
        0 as cooldown_suppressed,
        0 as cooldown_bypassed,
        0 as exportable,
        0 as previous_customers,
        cast(null as date) as previous_run_date
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
)

select * from matrix
union all
select * from tiers
union all
select * from emptied
union all
select * from median_revenue
