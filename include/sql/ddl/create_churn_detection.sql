-- SQL3 output: explainable churn signals, score and level as of snapshot_date.
create table if not exists {{ tables.churn_detection }} (
    snapshot_date date not null,
    customer_id string not null,
    total_orders int64 not null,
    days_since_last_order int64 not null,
    avg_days_between_orders float64,
    is_frequency_drop bool not null,
    is_value_drop bool not null,
    is_status_inconsistent bool not null,
    churn_risk_score int64 not null,
    churn_risk_level string not null
)
partition by snapshot_date
cluster by churn_risk_level, customer_id
