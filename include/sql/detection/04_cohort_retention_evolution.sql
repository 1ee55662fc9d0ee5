-- SQL4 cohort_retention_evolution: for each first-order month (cohort) and month offset
-- k >= 0 up to @run_date's month, the share of the cohort that ordered in month k.
--
-- The cohorts come from SQL1's base_customers of @run_date (first_order_date), so the
-- orders are not aggregated a second time for them. The orders are still read once, for
-- their (customer, month) pairs: base_customers keeps each customer's first and last order
-- only, and whether a customer ordered in a month between those two is in no other table.
-- The pairs are made distinct before the one join, which then joins months, not orders.
with

cohorts as (
    select
        customer_id,
        date_trunc(first_order_date, month) as cohort_month
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
),

customer_months as (
    select distinct
        customer_id,
        date_trunc(order_date, month) as order_month
    from {{ tables.orders }}
    where order_date <= @run_date
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
        date_diff(customer_months.order_month, cohorts.cohort_month, month) as month_offset,
        -- the pairs are distinct: each row is one customer active in that month
        count(*) as active_customers
    from customer_months
    inner join cohorts
        on customer_months.customer_id = cohorts.customer_id
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
