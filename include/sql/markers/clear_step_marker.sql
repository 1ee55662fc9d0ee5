-- Forget that one step of a run date is complete: the detection marker when a detection
-- run of the date starts (written again last), the queue's when the detection it was built
-- from changed (markers/read_detection_fingerprint tells).
delete from {{ tables.run_markers }}
where
    run_date = @run_date
    and step = @step
