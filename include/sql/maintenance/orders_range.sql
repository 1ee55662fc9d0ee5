-- How far the order history reaches (warnings for dates outside it).
select
    min(order_date) as first_order_date,
    max(order_date) as last_order_date,
    count(*) as orders
from {{ tables.orders }}
