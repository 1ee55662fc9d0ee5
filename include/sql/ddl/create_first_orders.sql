-- Each customer's first order date: a summary of the orders kept by every load in the same
-- transaction as the orders (include/sql/maintenance/refresh_*). Not point-in-time data:
-- a customer's first order never depends on the run date, and a reader for date D keeps
-- the customers whose first order is on or before D.
create table if not exists {{ tables.first_orders }} (
    customer_id string not null,
    first_order_date date not null
)
partition by date_trunc(first_order_date, month)
cluster by customer_id
