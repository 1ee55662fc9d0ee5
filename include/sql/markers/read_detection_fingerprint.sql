-- A fingerprint of @run_date's detection rows (SQL1-SQL5), one row per table holding any:
-- the row count and an order-independent hash of the rows (the xor of the first 60 bits of
-- each row's md5). A detection run of the date reads it before and after rewriting the
-- date: equal fingerprints keep the date's queue, any difference invalidates it. Each
-- table holds one row per key and date (customer, cohort month and offset, alert date),
-- so two equal rows never cancel out.
with row_hashes as (
    select
        'base_customers' as table_name,
        to_hex(md5(to_json_string(base_row))) as row_hash
    from {{ tables.base_customers }} as base_row
    where base_row.snapshot_date = @run_date
    union all
    select
        'retention_snapshot' as table_name,
        to_hex(md5(to_json_string(snapshot_row))) as row_hash
    from {{ tables.retention_snapshot }} as snapshot_row
    where snapshot_row.snapshot_date = @run_date
    union all
    select
        'churn_detection' as table_name,
        to_hex(md5(to_json_string(churn_row))) as row_hash
    from {{ tables.churn_detection }} as churn_row
    where churn_row.snapshot_date = @run_date
    union all
    select
        'cohort_retention_evolution' as table_name,
        to_hex(md5(to_json_string(cohort_row))) as row_hash
    from {{ tables.cohort_retention_evolution }} as cohort_row
    where cohort_row.snapshot_date = @run_date
    union all
    select
        'alert_logic' as table_name,
        to_hex(md5(to_json_string(alert_row))) as row_hash
    from {{ tables.alert_logic }} as alert_row
    where alert_row.alert_date = @run_date
)

select
    table_name,
    count(*) as row_count,
    bit_xor(cast(concat('0x', substr(row_hash, 1, 15)) as int64)) as fingerprint
from row_hashes
group by table_name
order by table_name
