-- One tier's audience for @run_date, ranked by priority_score (ties by customer_id).
select
    run_date,
    customer_id,
    priority_tier,
    priority_score,
    priority_reason,
    retention_status,
    churn_risk_level,
    churn_risk_score,
    days_since_last_order,
    total_revenue,
    total_orders,
    avg_order_value,
    recommended_action,
    value_proxy
from {{ tables.customer_priority }}
where
    run_date = @run_date
    and priority_tier = @tier
    -- holdout customers are never contacted: they measure the actions' effect
    and not is_holdout
order by priority_score desc, customer_id asc
limit @row_limit
