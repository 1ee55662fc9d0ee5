-- The rows a run exported for the tiers @tiers of @run_date (audience_exports), tier by
-- tier in file order, with the queue's columns: what the audience files hold, row for row.
-- One read for every tier a run exports: each read bills the queue's columns over D's
-- whole partition, whatever tiers it keeps.
select
    queue.run_date,
    queue.customer_id,
    queue.priority_tier,
    queue.priority_score,
    queue.priority_reason,
    queue.retention_status,
    queue.churn_risk_level,
    queue.churn_risk_score,
    queue.days_since_last_order,
    queue.total_revenue,
    queue.total_orders,
    queue.avg_order_value,
    queue.recommended_action,
    queue.value_proxy,
    coalesce(queue.new_in_tier, true) as new_in_tier,
    coalesce(queue.cooldown_status, 'none') = 'bypassed' as cooldown_bypass
from {{ tables.audience_exports }} as exported
inner join {{ tables.customer_priority }} as queue
    on
        exported.run_date = queue.run_date
        and exported.customer_id = queue.customer_id
        and exported.tier = queue.priority_tier
where
    exported.run_date = @run_date
    and exported.run_id = @run_id
    and exported.tier in unnest(@tiers)
    -- implied by the join, stated so that BigQuery reads the queue's one partition (and
    -- the tiers' clustered blocks), not every date retention keeps
    and queue.run_date = @run_date
    and queue.priority_tier in unnest(@tiers)
order by queue.priority_tier, exported.export_rank
