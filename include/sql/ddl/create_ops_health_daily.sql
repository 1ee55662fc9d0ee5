-- Meta-monitoring (design section 15): one row per run date of ops_runs_log.
create or replace view {{ tables.ops_health_daily }} as
select
    alert_date as run_date,
    count(*) as runs,
    countif(status = 'success') as successful_runs,
    countif(status = 'skipped') as skipped_runs,
    countif(status = 'failed') as failed_runs,
    countif(playbook_status in ('sent', 'failed')) as webhook_calls,
    countif(playbook_status = 'failed') as webhook_failures,
    countif(export_status in ('ok', 'failed')) as export_runs,
    countif(export_status = 'failed') as export_failures,
    countif(execution_time_ms is not null) as timed_runs,
    sum(execution_time_ms) as total_execution_ms,
    countif(alert_flag) as alert_runs
from {{ tables.ops_runs_log }}
group by alert_date
