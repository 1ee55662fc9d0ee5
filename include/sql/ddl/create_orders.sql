-- Orders, one row per order (input of the detection layer; see `retentionops load-orders`).
create table if not exists {{ tables.orders }} (
    customer_id string not null,
    order_id string not null,
    order_date date not null,
    order_amount numeric not null,
    country string
)
partition by date_trunc(order_date, month)
cluster by customer_id
