-- The earliest order date at which the staged orders differ from the stored ones, counting
-- orders added, removed or changed; NULL when both hold exactly the same orders. Every
-- derived row dated on or after it is stale (a date's rows depend on orders up to it).
with
{%- for name, orders in [("stored", tables.orders), ("incoming", tables.orders_incoming)] %}

{{ name }} as (
    select
        customer_id,
        order_id,
        order_date,
        order_amount,
        country
    from {{ orders }}
),
{%- endfor %}

removed as (
    select * from stored
    except distinct
    select * from incoming
),

added as (
    select * from incoming
    except distinct
    select * from stored
)

select min(order_date) as changed_from
from (
    select order_date from removed
    union all
    select order_date from added
) as changed
