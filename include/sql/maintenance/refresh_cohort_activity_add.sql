-- After refresh_cohort_activity_clear and the first orders' refresh: the months from
-- @changed_from's month on, counted again. Each customer's day with orders is one row of
-- customer_days (with the customer's first order day of that month), then counted by
-- cohort and day.
insert into {{ tables.cohort_activity }} (cohort_month, activity_date, customers, orders)
select
    date_trunc(known.first_order_date, month) as cohort_month,
    customer_days.order_date as activity_date,
    countif(customer_days.order_date = customer_days.first_in_month) as customers,
    sum(customer_days.orders) as orders
from (
    select
        customer_id,
        order_date,
        count(*) as orders,
        min(order_date) over (
            partition by customer_id, date_trunc(order_date, month)
        ) as first_in_month
    from {{ tables.orders }}
    where order_date >= date_trunc(@changed_from, month)
    group by customer_id, order_date
) as customer_days
inner join {{ tables.first_orders }} as known
    on customer_days.customer_id = known.customer_id
group by cohort_month, activity_date
