-- The latest date whose run marker is older than @cutoff_ts: its rows are the newest
-- apply_retention may delete (rows no marker vouches for go only before @cutoff_date), so
-- the retention DELETEs are bounded by it and read no partition after it.
select max(run_date) as latest_due
from {{ tables.run_markers }}
where completed_at < @cutoff_ts
