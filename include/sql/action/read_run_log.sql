-- The audit row of one run (every column).
select *  -- noqa: AM04
from {{ tables.ops_runs_log }}
where run_id = @run_id
