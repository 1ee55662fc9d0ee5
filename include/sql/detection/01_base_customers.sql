-- SQL1 base_customers: one row of facts per customer, from orders up to @run_date only.
-- Materialised into the @run_date partition of base_customers (replaced on re-run).
with

orders_to_date as (
    select
        customer_id,
        order_date,
        order_amount,
        country
    from {{ tables.orders }}
    where order_date <= @run_date
)

select
    @run_date as snapshot_date,
    customer_id,
    min(order_date) as first_order_date,
    max(order_date) as last_order_date,
    -- rules.md's COUNT(DISTINCT order_id): the orders table holds one row per order_id (its
    -- primary key, enforced on DuckDB and by the loader on BigQuery), so rows are orders and
    -- several orders on one day still count separately
    count(*) as total_orders,
    sum(order_amount) as total_revenue,
    sum(order_amount) / count(*) as avg_order_value,
    -- a customer keeps one country in practice; max() keeps the choice deterministic
    max(country) as country
from orders_to_date
group by customer_id
