-- Forget what a run exported for a tier of @run_date (the run exports it again: retry,
-- re-run). The date keeps the DELETE to its partition: BigQuery bills a DELETE for the
-- partitions it scans, and without it that is every date ever exported.
delete from {{ tables.audience_exports }}
where run_date = @run_date and run_id = @run_id and tier = @tier
