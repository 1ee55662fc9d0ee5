-- Daily prioritized queue (design section 6.1): one partition per run date.
-- BigQuery cannot cluster on a FLOAT64 column nor with DESC, so the design's
-- `cluster by priority_tier, priority_score desc` becomes `priority_tier, customer_id`;
-- ranking by score happens at read time (read_audience.sql).
create table if not exists {{ tables.customer_priority }} (
    run_date date not null,
    customer_id string not null,
    retention_status string not null,
    churn_risk_level string not null,
    churn_risk_score int64,
    priority_tier string not null,
    priority_score float64 not null,
    priority_reason string not null,
    days_since_last_order int64,
    total_revenue numeric,
    total_orders int64,
    avg_order_value numeric,
    recommended_action string,
    value_proxy numeric,
    -- across days (docs/audiences.md): not in this tier at the last delivered run (whose
    -- date is previous_run_date); none | suppressed | bypassed by the contact cooldown
    new_in_tier bool,
    cooldown_status string,
    previous_run_date date,
    created_at timestamp default current_timestamp()
)
partition by run_date
cluster by priority_tier, customer_id
