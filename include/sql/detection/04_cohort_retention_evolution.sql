-- SQL4 cohort_retention_evolution: for each first-order month (cohort) and month offset
-- k >= 0 up to @run_date's month, the share of the cohort that ordered in month k.
--
-- The counts come from cohort_activity, the orders summarised by cohort and day and kept by
-- every load (include/sql/ddl/create_cohort_activity.sql): a customer ordered in a month
-- on or before @run_date exactly when their first order of that month is on or before it,
-- and is in a cohort of @run_date exactly when their first order is. So no order is read
-- here, and the answer is the one a pass over the orders up to @run_date gives.
with

activity as (
    select
        cohort_month,
        date_trunc(activity_date, month) as activity_month,
        sum(customers) as active_customers
    from {{ tables.cohort_activity }}
    where activity_date <= @run_date
    group by cohort_month, activity_month
),

cohort_sizes as (
    -- each customer of a cohort ordered in its first month
    select
        cohort_month,
        active_customers as cohort_size,
        date_diff(date_trunc(@run_date, month), cohort_month, month) as max_offset
    from activity
    where activity_month = cohort_month
),

monthly_activity as (
    select
        cohort_month,
        date_diff(activity_month, cohort_month, month) as month_offset,
        active_customers
    from activity
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
