-- The stored SQL5 decisions for the dates @from_date..@run_date (one date: from = run),
-- read by the DAG, the CLI, the MCP tools and the brief's chart.
select
    alert_date,
    alert_type,
    metric_name,
    scope,
    current_value,
    baseline_value,
    delta_pct,
    delta_relative_pct,
    threshold_warning,
    threshold_critical,
    severity,
    alert_flag,
    sample_size
from {{ tables.alert_logic }}
where alert_date between @from_date and @run_date
