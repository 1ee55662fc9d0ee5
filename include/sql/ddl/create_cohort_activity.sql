-- The orders summarised by day and cohort, for SQL4's cohorts, SQL5's sample size and the
-- orders' range: for each cohort (the month of a customer's first order) and each day with
-- orders, how many orders its customers placed that day, and how many of them placed
-- their first order of that month that day. A reader for date D keeps the rows with
-- activity_date <= D: "ordered in month m on or before D" is a first order of month m on
-- or before D, and the rows of a cohort's own month count each customer once, on the day
-- of their first order. Kept by every load in the same transaction as the orders
-- (include/sql/maintenance/refresh_*): about cohorts x days rows where the orders have
-- millions.
create table if not exists {{ tables.cohort_activity }} (
    cohort_month date not null,
    activity_date date not null,
    customers int64 not null,
    orders int64 not null
)
partition by date_trunc(activity_date, month)
