-- SQL4 cohort_retention_evolution: for each first-order month (cohort) and month offset
-- k >= 0 up to @run_date's month, the share of the cohort that ordered in month k.
with

orders_to_date as (
    select
        customer_id,
        date_trunc(order_date, month) as order_month
    from {{ tables.orders }}
    where order_date <= @run_date
),

cohorts as (
    select
        customer_id,
        min(order_month) as cohort_month
    from orders_to_date
    group by customer_id
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_size,
        date_diff(date_trunc(@run_date, month), cohort_month, month) as max_offset
    from cohorts
    group by cohort_month
),

monthly_activity as (
    select
        cohorts.cohort_month,
        date_diff(orders_to_date.order_month, cohorts.cohort_month, month) as month_offset,
        count(distinct orders_to_date.customer_id) as active_customers
    from orders_to_date
    inner join cohorts
        on orders_to_date.customer_id = cohorts.customer_id
    group by cohorts.cohort_month, month_offset
),

curve as (
    select
        sizes.cohort_month,
        offset_k as month_offset,
        sizes.cohort_size,
        coalesce(activity.active_customers, 0) as active_customers
    from cohort_sizes as sizes
    cross join unnest(generate_array(0, sizes.max_offset)) as offset_k
    left join monthly_activity as activity
        on
            sizes.cohort_month = activity.cohort_month
            and offset_k = activity.month_offset
)

select
    @run_date as snapshot_date,
    cohort_month,
    month_offset,
    cohort_size,
    active_customers,
    -- percent to 2 decimals, rounded half away from zero in exact integer arithmetic
    div((20000 * active_customers + cohort_size), (2 * cohort_size)) / 100 as retention_rate
from curve
