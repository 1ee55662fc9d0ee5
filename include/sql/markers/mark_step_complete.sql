-- Record that one step of a run date is complete (written after the step's tables).
merge {{ tables.run_markers }} as marker
using (
    select
        @run_date as run_date,
        @step as step
) as done
    on marker.run_date = done.run_date and marker.step = done.step
when matched then update set completed_at = current_timestamp()
when not matched then
    insert (run_date, step, completed_at)
    values (done.run_date, done.step, current_timestamp())
