-- Staging for a load: the new orders land here first, are compared with `orders` (which
-- dates change) and only then replace them.
create table if not exists {{ tables.orders_incoming }} (
    customer_id string not null,
    order_id string not null,
    order_date date not null,
    order_amount numeric not null,
    country string
)
