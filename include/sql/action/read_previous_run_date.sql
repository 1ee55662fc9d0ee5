-- The last delivered run the queue of @run_date compares itself with (previous_run_date,
-- the same on every row of a date's queue; NULL when none). The operational context takes
-- it as a parameter: a date found by a subquery is not a constant, and BigQuery would read
-- every queue partition retention keeps to find that run's tiers.
select max(previous_run_date) as previous_run_date
from {{ tables.customer_priority }}
where run_date = @run_date
