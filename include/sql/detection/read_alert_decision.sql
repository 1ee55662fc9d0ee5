-- The stored SQL5 decision for one date (read by the DAG, the CLI and the MCP tools).
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
where alert_date = @run_date
