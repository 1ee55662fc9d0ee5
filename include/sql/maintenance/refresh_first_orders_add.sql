-- After refresh_first_orders_clear: the customers left without a first order ordered only
-- on or after @changed_from, so their first order is among those orders.
insert into {{ tables.first_orders }} (customer_id, first_order_date)
select
    orders.customer_id,
    min(orders.order_date) as first_order_date
from {{ tables.orders }} as orders
left join {{ tables.first_orders }} as known
    on orders.customer_id = known.customer_id
where
    orders.order_date >= @changed_from
    and known.customer_id is null
group by orders.customer_id
