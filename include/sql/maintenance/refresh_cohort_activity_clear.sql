-- A load changed the orders from @changed_from on: the months from its month on are
-- recounted (a row's customers depend on the customer's first order of the month). An
-- earlier month's rows count orders before @changed_from, unchanged, of customers whose
-- first order is earlier still, unchanged too.
delete from {{ tables.cohort_activity }}
where activity_date >= date_trunc(@changed_from, month)
