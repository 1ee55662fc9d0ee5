-- SQL5 output: one alert decision per date.
create table if not exists {{ tables.alert_logic }} (
    alert_date date not null,
    alert_type string not null,
    metric_name string not null,
    scope string not null,
    current_value float64 not null,
    baseline_value float64,
    delta_pct float64,
    delta_relative_pct float64,
    threshold_warning float64 not null,
    threshold_critical float64 not null,
    severity string not null,
    alert_flag bool not null,
    sample_size int64 not null
)
partition by alert_date
