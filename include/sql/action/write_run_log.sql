-- Upsert the run's audit row: a retry, a re-run or a failure callback followed by the
-- final log task all land on the same row. A NULL parameter keeps what is stored (a
-- failure callback records the error; the final write completes the rest), and a new
-- error message is appended to the stored ones, so every cause stays, in order.
merge {{ tables.ops_runs_log }} as log
using (
    select
        @run_id as run_id,
        @run_timestamp as run_timestamp,
        @alert_date as alert_date,
        @severity as severity,
        @alert_flag as alert_flag,
        @current_value as current_value,
        @baseline_value as baseline_value,
        @delta_relative_pct as delta_relative_pct,
        @sample_size as sample_size,
        @p1_count as p1_count,
        @p2_count as p2_count,
        @p3_count as p3_count,
        @total_exported as total_exported,
        @slack_posted as slack_posted,
        @slack_message_ts as slack_message_ts,
        @ticket_id as ticket_id,
        @export_p1_link as export_p1_link,
        @export_p2_link as export_p2_link,
        @export_p3_link as export_p3_link,
        @brief_link as brief_link,
        @status as status,
        @error_message as error_message,
        @execution_time_ms as execution_time_ms,
        @interface as interface,
        @playbook_status as playbook_status,
        @export_status as export_status,
        @incident_id as incident_id,
        @incident_event as incident_event,
        @note as note,
        @exported_p1 as exported_p1,
        @exported_p2 as exported_p2,
        @exported_p3 as exported_p3,
        @cooldown_p1 as cooldown_p1,
        @cooldown_p2 as cooldown_p2,
        @cooldown_p3 as cooldown_p3,
        @audience_changes as audience_changes,
        @anomalies as anomalies
) as run
    on log.run_id = run.run_id
when matched then
    update
        set
            run_timestamp = run.run_timestamp,
            alert_date = coalesce(run.alert_date, log.alert_date),
            severity = coalesce(run.severity, log.severity),
            alert_flag = coalesce(run.alert_flag, log.alert_flag),
            current_value = coalesce(run.current_value, log.current_value),
            baseline_value = coalesce(run.baseline_value, log.baseline_value),
            delta_relative_pct = coalesce(run.delta_relative_pct, log.delta_relative_pct),
            sample_size = coalesce(run.sample_size, log.sample_size),
            p1_count = coalesce(run.p1_count, log.p1_count),
            p2_count = coalesce(run.p2_count, log.p2_count),
            p3_count = coalesce(run.p3_count, log.p3_count),
            total_exported = coalesce(run.total_exported, log.total_exported),
            slack_posted = coalesce(run.slack_posted, log.slack_posted),
            slack_message_ts = coalesce(run.slack_message_ts, log.slack_message_ts),
            ticket_id = coalesce(run.ticket_id, log.ticket_id),
            export_p1_link = coalesce(run.export_p1_link, log.export_p1_link),
            export_p2_link = coalesce(run.export_p2_link, log.export_p2_link),
            export_p3_link = coalesce(run.export_p3_link, log.export_p3_link),
            brief_link = coalesce(run.brief_link, log.brief_link),
            status = run.status,
            error_message = case
                when run.error_message is null then log.error_message
                when log.error_message is null then run.error_message
                when strpos(log.error_message, run.error_message) > 0 then log.error_message
                else concat(log.error_message, '; ', run.error_message)
            end,
            execution_time_ms = coalesce(run.execution_time_ms, log.execution_time_ms),
            interface = coalesce(run.interface, log.interface),
            playbook_status = coalesce(run.playbook_status, log.playbook_status),
            export_status = coalesce(run.export_status, log.export_status),
            incident_id = coalesce(run.incident_id, log.incident_id),
            incident_event = coalesce(run.incident_event, log.incident_event),
            note = coalesce(run.note, log.note),
            exported_p1 = coalesce(run.exported_p1, log.exported_p1),
            exported_p2 = coalesce(run.exported_p2, log.exported_p2),
            exported_p3 = coalesce(run.exported_p3, log.exported_p3),
            cooldown_p1 = coalesce(run.cooldown_p1, log.cooldown_p1),
            cooldown_p2 = coalesce(run.cooldown_p2, log.cooldown_p2),
            cooldown_p3 = coalesce(run.cooldown_p3, log.cooldown_p3),
            audience_changes = coalesce(run.audience_changes, log.audience_changes),
            anomalies = coalesce(run.anomalies, log.anomalies)
when not matched then insert (
    run_id, run_timestamp, alert_date, severity, alert_flag, current_value, baseline_value,
    delta_relative_pct, sample_size, p1_count, p2_count, p3_count, total_exported,
    slack_posted, slack_message_ts, ticket_id, export_p1_link, export_p2_link,
    export_p3_link, brief_link, status, error_message, execution_time_ms, interface,
    playbook_status, export_status, incident_id, incident_event, note, exported_p1,
    exported_p2, exported_p3, cooldown_p1, cooldown_p2, cooldown_p3, audience_changes,
    anomalies, created_at
) values (
    run.run_id, run.run_timestamp, run.alert_date, run.severity, run.alert_flag,
    run.current_value, run.baseline_value, run.delta_relative_pct, run.sample_size,
    run.p1_count, run.p2_count, run.p3_count, run.total_exported, run.slack_posted,
    run.slack_message_ts, run.ticket_id, run.export_p1_link, run.export_p2_link,
    run.export_p3_link, run.brief_link, run.status, run.error_message,
    run.execution_time_ms, run.interface, run.playbook_status, run.export_status,
    run.incident_id, run.incident_event, run.note, run.exported_p1, run.exported_p2,
    run.exported_p3, run.cooldown_p1, run.cooldown_p2, run.cooldown_p3,
    run.audience_changes, run.anomalies, current_timestamp()
)
