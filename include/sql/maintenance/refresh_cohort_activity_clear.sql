-- A load changed the orders from @changed_from on: the months from its month on are
-- recounted. An earlier month's row counts orders before @changed_from, unchanged, of
-- customers whose first order is earlier still, unchanged too.
delete from {{ tables.cohort_activity }}
where activity_month >= date_trunc(@changed_from, month)
