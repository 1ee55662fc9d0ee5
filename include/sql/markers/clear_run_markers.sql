-- Forget that a date's detection and queue are complete (a new detection run starts).
delete from {{ tables.run_markers }}
where run_date = @run_date
