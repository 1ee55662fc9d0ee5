-- Audit trail (design section 6.2): exactly one row per run_id, written with MERGE.
create table if not exists {{ tables.ops_runs_log }} (
    run_id string not null,
    run_timestamp timestamp not null,
    alert_date date,
    severity string,
    alert_flag bool,
    current_value float64,
    baseline_value float64,
    delta_relative_pct float64,
    sample_size int64,
    p1_count int64,
    p2_count int64,
    p3_count int64,
    total_exported int64,
    slack_posted bool,
    slack_message_ts string,
    ticket_id string,
    export_p1_link string,
    export_p2_link string,
    export_p3_link string,
    brief_link string,
    -- success | skipped (a daily run with no event) | failed | refused (a CLI/MCP command
    -- refused before it did anything: bad input, a missing queue; not a run for health)
    status string,
    error_message string,
    execution_time_ms int64,
    -- which interface started the run: dag | mcp | cli
    interface string,
    -- sent | failed | dry_run | suppressed | not_needed (no event);
    -- ok | fallback_local (an upload failed, the local CSV is linked) | failed | none
    playbook_status string,
    export_status string,
    -- the incident of the run date and its event of the day; why nothing was sent
    incident_id string,
    incident_event string,
    note string,
    -- rows in each tier's linked file; customers each tier kept back by the contact
    -- cooldown; new / still / left per tier since the last delivered run; volume warnings
    exported_p1 int64,
    exported_p2 int64,
    exported_p3 int64,
    cooldown_p1 int64,
    cooldown_p2 int64,
    cooldown_p3 int64,
    audience_changes string,
    anomalies string,
    -- the measurement's groups per tier (docs/audiences.md): customers an incident's
    -- holdout held out on the date, customers this run contacted (its file's rows); each
    -- incident's holdout in words (tiers drawn, or why not, and until when it holds)
    holdout_p1 int64,
    holdout_p2 int64,
    holdout_p3 int64,
    treated_p1 int64,
    treated_p2 int64,
    treated_p3 int64,
    holdout_note string,
    created_at timestamp default current_timestamp()
)
partition by date(run_timestamp)
cluster by alert_date, severity
