-- One customer's detection facts and queue row at @run_date (get_recommended_action); the
-- queue columns are NULL when no tier takes the customer. held_by names the incident whose
-- holdout holds the customer on @run_date (NULL: none), so no export takes it.
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
with

held as (
    select
        customer_id,
        min(incident_id) as incident_id
    from {{ tables.incident_holdouts }}
    where
        customer_id = @customer_id
        and held_out
        and {{ holdouts.holds_on("@run_date") }}
    group by customer_id
)

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
    held.incident_id as held_by
from {{ tables.churn_detection }} as churn
inner join {{ tables.retention_snapshot }} as snap
    on churn.customer_id = snap.customer_id and snap.snapshot_date = @run_date
left join {{ tables.customer_priority }} as queue
    on churn.customer_id = queue.customer_id and queue.run_date = @run_date
left join held
    on churn.customer_id = held.customer_id
where
    churn.snapshot_date = @run_date
    and churn.customer_id = @customer_id
