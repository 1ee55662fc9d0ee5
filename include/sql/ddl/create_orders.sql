-- Orders, one row per order (input of the detection layer; see `retentionops load-orders`).
-- One row per order_id is what lets SQL1 count rows as orders. DuckDB enforces the key (a
-- load with a repeated order_id fails and changes nothing); BigQuery only accepts it NOT
-- ENFORCED, as a hint to the optimiser, so there the loader's check is the guarantee
-- (`orders.require_one_row_per_order`, run by every load).
create table if not exists {{ tables.orders }} (
    customer_id string not null,
    order_id string not null,
    order_date date not null,
    order_amount numeric not null,
    country string,
    primary key (order_id) not enforced
)
partition by date_trunc(order_date, month)
cluster by customer_id
