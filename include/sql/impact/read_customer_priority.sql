-- One customer's queue row and detection facts at @run_date (for get_recommended_action).
select
    snap.customer_id,
    snap.retention_status,
    snap.days_since_last_order,
    churn.churn_risk_level,
    churn.churn_risk_score,
    churn.is_frequency_drop,
    churn.is_status_inconsistent,
    queue.priority_tier,
    queue.priority_score,
    queue.priority_reason,
    queue.recommended_action,
    queue.is_holdout
from {{ tables.retention_snapshot }} as snap
inner join {{ tables.churn_detection }} as churn
    on snap.customer_id = churn.customer_id and churn.snapshot_date = @run_date
left join {{ tables.customer_priority }} as queue
    on snap.customer_id = queue.customer_id and queue.run_date = @run_date
where
    snap.snapshot_date = @run_date
    and snap.customer_id = @customer_id
