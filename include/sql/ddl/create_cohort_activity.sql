-- The orders summarised by month, for SQL4's cohorts and SQL5's sample size: how many
-- customers of each cohort (the month of their first order) ordered in each month, by the
-- date of their first order in that month. A reader for date D keeps the rows with
-- first_active_date <= D, which is exactly "ordered in that month on or before D"; the
-- rows with activity_month = cohort_month count each customer once, on the day of their
-- first order. Kept by every load in the same transaction as the orders
-- (include/sql/maintenance/refresh_*): a few hundred rows where the orders have millions.
create table if not exists {{ tables.cohort_activity }} (
    cohort_month date not null,
    activity_month date not null,
    first_active_date date not null,
    customers int64 not null
)
partition by date_trunc(activity_month, month)
