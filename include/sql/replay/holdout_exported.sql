-- The replay's invariant on the holdout: customers in an exported audience while the
-- date's queue held them out (they must never reach a file).
select
    exported.run_id,
    exported.run_date,
    exported.customer_id
from {{ tables.audience_exports }} as exported
inner join {{ tables.customer_priority }} as queue
    on
        exported.run_date = queue.run_date
        and exported.customer_id = queue.customer_id
where queue.is_holdout
order by exported.run_date, exported.customer_id
