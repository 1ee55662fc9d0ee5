-- The orders feed as a run for @run_date finds it (dbt's source freshness, a volume
-- monitor), from the orders' summary cohort_activity (a row per cohort and day with
-- orders, kept by every load): one row.
--   * orders_last_date: the feed's newest order date, its high-water mark. A run of a past
--     date (a backfill) finds the feed beyond it: fresh. A day without orders inside the
--     feed (a holiday) is not lateness but volume.
--   * trading_days_missing: the days after orders_last_date up to @run_date on a weekday
--     that had orders in the feed's last 4 weeks (the sample has no Saturday trading: a
--     Saturday without orders is not late);
--   * orders_on_day against usual_orders: the same weekday's orders 1 to 4 weeks before
--     (the weeks the feed covers; a day without orders counts 0), their mean without the
--     highest and the lowest week when there are 3 or more, so that one promotion day does
--     not make the next four weeks look short.
-- The status and volume words are read in Python (retentionops/freshness.py), against the
-- settings, so that the one rule lives in one place.
with

feed as (
    select
        min(activity_date) as orders_first_date,
        max(activity_date) as orders_last_date
    from {{ tables.cohort_activity }}
),

daily as (
    select
        activity_date,
        sum(orders) as orders
    from {{ tables.cohort_activity }}
    where
        activity_date
        between date_sub(
            least(@run_date, (select feed.orders_last_date from feed)), interval 28 day
        )
        and @run_date
    group by activity_date
),

trading_weekdays as (
    -- weekdays as days since a Sunday, modulo 7 (both engines agree; EXTRACT's numbering
    -- differs between them)
    select distinct mod(date_diff(daily.activity_date, date '1970-01-04', day), 7) as weekday
    from daily
    cross join feed
    where
        daily.orders > 0
        and daily.activity_date
        between date_sub(least(@run_date, feed.orders_last_date), interval 27 day)
        and least(@run_date, feed.orders_last_date)
),

missing_days as (
    select missing_day
    from feed
    cross join
        unnest(
            generate_date_array(date_add(feed.orders_last_date, interval 1 day), @run_date)
        ) as missing_day
    where feed.orders_last_date < @run_date
),

same_weekday as (
    select
        count(*) as weeks,
        sum(coalesce(daily.orders, 0)) as orders,
        max(coalesce(daily.orders, 0)) as most,
        min(coalesce(daily.orders, 0)) as fewest
    from unnest([7, 14, 21, 28]) as weeks_back
    cross join feed
    left join daily
        on daily.activity_date = date_sub(@run_date, interval weeks_back day)
    where date_sub(@run_date, interval weeks_back day) >= feed.orders_first_date
)

select
    feed.orders_first_date,
    feed.orders_last_date,
    greatest(date_diff(@run_date, feed.orders_last_date, day), 0) as lag_days,
    (
        select count(*)
        from missing_days
        where
            mod(date_diff(missing_days.missing_day, date '1970-01-04', day), 7)
            in (select trading_weekdays.weekday from trading_weekdays)
    ) as trading_days_missing,
    coalesce(
        (
            select daily.orders
            from daily
            where daily.activity_date = @run_date
        ),
        0
    ) as orders_on_day,
    (select same_weekday.weeks from same_weekday) as usual_weeks,
    (
        select
            case
                when same_weekday.weeks = 0 then null
                when same_weekday.weeks < 3 then same_weekday.orders / same_weekday.weeks
                else
                    (same_weekday.orders - same_weekday.most - same_weekday.fewest)
                    / (same_weekday.weeks - 2)
            end
        from same_weekday
    ) as usual_orders
from feed
