-- After SQL1 for @run_date: the customers with an order up to @run_date, counted from the
-- orders (base_customers) and from the orders' summaries (cohort_activity, kept by every
-- load). They differ only when the orders were written by something other than a load, or
-- by a version that kept no summaries: detection then rebuilds the summaries.
select
    (
        select count(*)
        from {{ tables.base_customers }}
        where snapshot_date = @run_date
    ) as from_orders,
    (
        select coalesce(sum(customers), 0)
        from {{ tables.cohort_activity }}
        where
            activity_month = cohort_month
            and first_active_date <= @run_date
    ) as from_summaries
