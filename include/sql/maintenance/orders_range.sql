-- How far the order history reaches (warnings for dates outside it), from the orders'
-- summary cohort_activity (kept by every load; a row per cohort and day with orders), not
-- from the orders: the same answer without a scan of every order date.
select
    min(activity_date) as first_order_date,
    max(activity_date) as last_order_date,
    coalesce(sum(orders), 0) as orders
from {{ tables.cohort_activity }}
