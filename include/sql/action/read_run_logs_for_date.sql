-- Every audit row of one run date, newest first.
select *  -- noqa: AM04
from {{ tables.ops_runs_log }}
where alert_date = @run_date
order by run_timestamp desc
