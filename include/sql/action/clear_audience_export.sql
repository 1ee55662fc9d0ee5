-- Forget what a run exported for the tiers @tiers of @run_date (the run exports them
-- again: retry, re-run). The date keeps the DELETE to its partition: BigQuery bills a
-- DELETE for the partitions it scans, and without it that is every date ever exported.
delete from {{ tables.audience_exports }}
where run_date = @run_date and run_id = @run_id and tier in unnest(@tiers)
