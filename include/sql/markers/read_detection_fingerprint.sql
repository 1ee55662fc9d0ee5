-- A fingerprint of @run_date's detection rows (SQL1-SQL5), one row per table holding any:
-- the row count and an order-independent hash of the rows (the xor of the first 60 bits of
-- each row's md5). A detection run of the date reads it before and after rewriting the
-- date: equal fingerprints keep the date's queue, any difference invalidates it. Each
-- table holds one row per key and date (customer, cohort month and offset, alert date),
-- so two equal rows never cancel out.
with row_hashes as (
    {%- for table_name, date_column in [
        ("base_customers", "snapshot_date"),
        ("retention_snapshot", "snapshot_date"),
        ("churn_detection", "snapshot_date"),
        ("cohort_retention_evolution", "snapshot_date"),
        ("alert_logic", "alert_date"),
    ] %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select
        '{{ table_name }}' as table_name,
        to_hex(md5(to_json_string(detection_row))) as row_hash
    from {{ tables[table_name] }} as detection_row
    where detection_row.{{ date_column }} = @run_date
    {%- endfor %}
)

select
    table_name,
    count(*) as row_count,
    bit_xor(cast(concat('0x', substr(row_hash, 1, 15)) as int64)) as fingerprint
from row_hashes
group by table_name
order by table_name
