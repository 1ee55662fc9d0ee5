-- Meta-monitoring (design section 15): one row per run date of ops_runs_log. A command
-- refused before it did anything (status refused: bad input, a missing precondition such
-- as a date without a queue) is counted apart, not as a run: runs, the run statuses and
-- the timings are of the runs that ran.
create or replace view {{ tables.ops_health_daily }} as
with logged as (
    select
        alert_date,
        status,
        playbook_status,
        export_status,
        execution_time_ms,
        alert_flag,
        coalesce(status, '') != 'refused' as ran
    from {{ tables.ops_runs_log }}
)

select
    alert_date as run_date,
    countif(ran) as runs,
    countif(status = 'success') as successful_runs,
    countif(status = 'skipped') as skipped_runs,
    countif(status = 'failed') as failed_runs,
    countif(status = 'refused') as refused_runs,
    countif(playbook_status in ('sent', 'failed')) as webhook_calls,
    countif(playbook_status = 'failed') as webhook_failures,
    countif(export_status in ('ok', 'failed')) as export_runs,
    countif(export_status = 'failed') as export_failures,
    countif(ran and execution_time_ms is not null) as timed_runs,
    sum(if(ran, execution_time_ms, null)) as total_execution_ms,
    countif(alert_flag) as alert_runs
from logged
group by alert_date
