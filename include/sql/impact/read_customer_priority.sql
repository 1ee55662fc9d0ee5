-- One customer's detection facts and queue row at @run_date (get_recommended_action); the
-- queue columns are NULL when no tier takes the customer.
select
    churn.customer_id,
    snap.retention_status,
    churn.days_since_last_order,
    churn.churn_risk_level,
    churn.churn_risk_score,
    queue.priority_tier,
    queue.priority_score,
    queue.priority_reason,
    queue.recommended_action,
    queue.is_holdout
from {{ tables.churn_detection }} as churn
inner join {{ tables.retention_snapshot }} as snap
    on churn.customer_id = snap.customer_id and snap.snapshot_date = @run_date
left join {{ tables.customer_priority }} as queue
    on churn.customer_id = queue.customer_id and queue.run_date = @run_date
where
    churn.snapshot_date = @run_date
    and churn.customer_id = @customer_id
