-- SQL1 output: customer facts as of snapshot_date (one partition per run date).
create table if not exists {{ tables.base_customers }} (
    snapshot_date date not null,
    customer_id string not null,
    first_order_date date not null,
    last_order_date date not null,
    total_orders int64 not null,
    total_revenue numeric not null,
    avg_order_value numeric not null,
    country string
)
partition by snapshot_date
cluster by customer_id
