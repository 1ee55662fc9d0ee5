-- After refresh_cohort_activity_clear and the first orders' refresh: the months from
-- @changed_from's month on, counted again. Each customer ordering in a month is one row of
-- customer_months (their first order date in that month), then counted by cohort.
insert into {{ tables.cohort_activity }} (
    cohort_month, activity_month, first_active_date, customers
)
select
    date_trunc(known.first_order_date, month) as cohort_month,
    customer_months.activity_month,
    customer_months.first_active_date,
    count(*) as customers
from (
    select
        customer_id,
        date_trunc(order_date, month) as activity_month,
        min(order_date) as first_active_date
    from {{ tables.orders }}
    where order_date >= date_trunc(@changed_from, month)
    group by customer_id, activity_month
) as customer_months
inner join {{ tables.first_orders }} as known
    on customer_months.customer_id = known.customer_id
group by cohort_month, customer_months.activity_month, customer_months.first_active_date
