-- The completed steps of one run date.
select
    step,
    completed_at
from {{ tables.run_markers }}
where run_date = @run_date
