-- Health per month between @from_date and @to_date, from the ops_health_daily view: the
-- runs that ran, and apart from them the commands refused before they did anything.
select
    date_trunc(run_date, month) as month,
    sum(runs) as runs,
    sum(successful_runs) as successful_runs,
    sum(skipped_runs) as skipped_runs,
    sum(failed_runs) as failed_runs,
    sum(refused_runs) as refused_runs,
    sum(webhook_calls) as webhook_calls,
    sum(webhook_failures) as webhook_failures,
    sum(export_runs) as export_runs,
    sum(export_failures) as export_failures,
    sum(timed_runs) as timed_runs,
    sum(total_execution_ms) as total_execution_ms,
    countif(alert_runs > 0) as alert_days
from {{ tables.ops_health_daily }}
where run_date between @from_date and @to_date
group by month
order by month
