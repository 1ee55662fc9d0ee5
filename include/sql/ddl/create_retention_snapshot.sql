-- SQL2 output: retention status of every customer as of snapshot_date.
create table if not exists {{ tables.retention_snapshot }} (
    snapshot_date date not null,
    customer_id string not null,
    last_order_date date not null,
    days_since_last_order int64 not null,
    retention_status string not null
)
partition by snapshot_date
cluster by retention_status, customer_id
