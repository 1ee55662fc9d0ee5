-- When an event (its dedupe_key) was first delivered, and by which run; no row: never.
select
    run_id,
    delivered_at
from {{ tables.deliveries }}
where dedupe_key = @dedupe_key
order by delivered_at
limit 1
