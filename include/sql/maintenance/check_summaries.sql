-- After SQL1 for @run_date: the customers and the orders up to @run_date, counted from the
-- orders (base_customers) and from the orders' summary (cohort_activity, kept by every
-- load). They differ when the orders were written by something other than a load (orders
-- added or removed), or by a version that kept no summaries: detection then rebuilds the
-- summaries.
select
    (
        select count(*)
        from {{ tables.base_customers }}
        where snapshot_date = @run_date
    ) as customers_from_orders,
    (
        select coalesce(sum(customers), 0)
        from {{ tables.cohort_activity }}
        where
            date_trunc(activity_date, month) = cohort_month
            and activity_date <= @run_date
    ) as customers_from_summaries,
    (
        select coalesce(sum(total_orders), 0)
        from {{ tables.base_customers }}
        where snapshot_date = @run_date
    ) as orders_from_orders,
    (
        select coalesce(sum(orders), 0)
        from {{ tables.cohort_activity }}
        where activity_date <= @run_date
    ) as orders_from_summaries
