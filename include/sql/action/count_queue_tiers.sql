-- The customers of each tier in @run_date's queue: what building the queue answers (the
-- full operational context, with its joins over SQL1-SQL3, is read where it is used).
select
    priority_tier as tier,
    count(*) as customers
from {{ tables.customer_priority }}
where run_date = @run_date
group by priority_tier
