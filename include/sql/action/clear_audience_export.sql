-- Forget what a run exported for a tier (the run exports it again: retry, re-run).
delete from {{ tables.audience_exports }}
where run_id = @run_id and tier = @tier
