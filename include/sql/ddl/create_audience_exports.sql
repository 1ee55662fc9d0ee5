-- What each run exported, one row per customer and tier, in file order (export_rank): the
-- file a log row links to holds exactly these rows. The contact cooldown and "what
-- changed" read the rows of runs whose playbook was delivered (the deliveries ledger).
create table if not exists {{ tables.audience_exports }} (
    run_id string not null,
    run_date date not null,
    tier string not null,
    customer_id string not null,
    export_rank int64 not null,
    exported_at timestamp not null
)
partition by run_date
cluster by customer_id, run_id
