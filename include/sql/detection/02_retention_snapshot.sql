-- SQL2 retention_snapshot: status of every customer as of @run_date.
with

facts as (
    select
        customer_id,
        last_order_date,
        date_diff(@run_date, last_order_date, day) as days_since_last_order
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
)

select
    @run_date as snapshot_date,
    customer_id,
    last_order_date,
    days_since_last_order,
    case
        -- cannot happen with point-in-time inputs; kept as a guard
        when days_since_last_order < 0 then 'DATA_QUALITY_ISSUE'
        when days_since_last_order <= @active_days then 'ACTIVE'
        when days_since_last_order <= @at_risk_days then 'AT_RISK'
        else 'INACTIVE'
    end as retention_status
from facts
