-- SQL4 output: monthly cohort retention curves as of snapshot_date.
create table if not exists {{ tables.cohort_retention_evolution }} (
    snapshot_date date not null,
    cohort_month date not null,
    month_offset int64 not null,
    cohort_size int64 not null,
    active_customers int64 not null,
    retention_rate float64 not null
)
partition by snapshot_date
cluster by cohort_month
