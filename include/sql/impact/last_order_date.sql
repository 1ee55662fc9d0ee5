-- How far the order history reaches (the impact horizon must lie within it).
select max(order_date) as last_order_date
from {{ tables.orders }}
