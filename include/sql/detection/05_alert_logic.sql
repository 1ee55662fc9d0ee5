{% block about -%}
-- SQL5 alert_logic: one decision per date in [@from_date, @run_date] (a daily run passes
-- @from_date = @run_date; `retentionops alerts` passes a whole range).
--
-- The daily AT_RISK share is rebuilt from order history in one set-based pass, so the
-- 7-day baseline exists on a fresh warehouse, in a backfill and in any order of dates, and
-- a year of history costs orders + days (not orders x days). After each order day o a
-- customer is AT_RISK on days o + active_days + 1 .. o + at_risk_days unless the next order
-- comes first: each such span adds +1 on the day it starts and -1 on the day it ends, and a
-- running sum over a calendar gives the count for every date. Only orders up to @run_date
-- are read, and a date's value depends only on orders up to that date (point-in-time).
--
-- Only the dates @from_date - @baseline_days .. @run_date are needed, and AT_RISK on a day t
-- depends only on the orders of t - @at_risk_days .. t (an older order's span has ended,
-- whatever came next). So the spans come from the orders of @from_date - @baseline_days -
-- @at_risk_days .. @run_date. The sample counts each customer from their first order day
-- on: those days come from cohort_activity (the orders summarised by cohort and day, kept by
-- every load), whose rows of a cohort's own month count the customers by first order day.
{% endblock %}
--
-- Rounding is done in exact integer arithmetic on basis points (1/100 of a percent), half
-- away from zero, so BigQuery and DuckDB agree to the last digit. Each day's value is its
-- rounded share; baseline_value is the exact mean of the 7 rounded values and delta_pct
-- the exact difference (rules.md rounds neither; each is one division of exact integers);
-- delta_relative_pct is rounded to 2 decimals.
-- (Jinja blocks: 05_alert_logic_daily.sql, a daily run's SQL5, replaces the blocks about and
-- daily_values, where a date's value comes from, and keeps the decision that follows.)
with

{% block daily_values %}
first_order_days as (
    -- the customers whose first order was on first_order_date, up to @run_date: in their
    -- cohort's own month, a customer's first order of the month is their first order
    select
        activity_date as first_order_date,
        customers
    from {{ tables.cohort_activity }}
    where
        date_trunc(activity_date, month) = cohort_month
        and activity_date <= @run_date
),

recent_orders as (
    select
        customer_id,
        order_date
    from {{ tables.orders }}
    where
        order_date
        between date_sub(@from_date, interval (@baseline_days + @at_risk_days) day)
        and @run_date
),

order_spans as (
    -- several orders on one day: all but the last get that same day as next order, so
    -- their spans are empty and dropped below; counting customers needs no distinct here
    select
        order_date,
        lead(order_date) over (
            partition by customer_id order by order_date
        ) as next_order_date
    from recent_orders
),

at_risk_spans as (
    select
        date_add(order_date, interval (@active_days + 1) day) as starts_on,
        least(
            coalesce(next_order_date, date_add(order_date, interval (@at_risk_days + 1) day)),
            date_add(order_date, interval (@at_risk_days + 1) day)
        ) as ends_on
    from order_spans
),

daily_changes as (
    select
        starts_on as metric_date,
        1 as at_risk_change,
        0 as customer_change
    from at_risk_spans
    where starts_on < ends_on
    union all
    select
        ends_on as metric_date,
        -1 as at_risk_change,
        0 as customer_change
    from at_risk_spans
    where starts_on < ends_on
    union all
    select
        first_order_date as metric_date,
        0 as at_risk_change,
        customers as customer_change
    from first_order_days
),

change_totals as (
    select
        metric_date,
        sum(at_risk_change) as at_risk_change,
        sum(customer_change) as customer_change
    from daily_changes
    group by metric_date
),

calendar as (
    select metric_date
    from
        unnest(
            generate_date_array((select min(first_order_date) from first_order_days), @run_date)
        ) as metric_date
),

daily_counts as (
    select
        calendar.metric_date,
        sum(coalesce(totals.at_risk_change, 0)) over (
            order by calendar.metric_date rows between unbounded preceding and current row
        ) as at_risk_customers,
        sum(coalesce(totals.customer_change, 0)) over (
            order by calendar.metric_date rows between unbounded preceding and current row
        ) as sample_size
    from calendar
    left join change_totals as totals
        on calendar.metric_date = totals.metric_date
),

daily_values as (
    select
        metric_date,
        sample_size,
        div((20000 * at_risk_customers + sample_size), (2 * sample_size)) as current_bp
    from daily_counts
    -- earlier days lack the spans of orders before recent_orders: never used, not exposed
    where metric_date >= date_sub(@from_date, interval @baseline_days day)
),
{% endblock %}

baselines as (
    select
        today.metric_date,
        count(*) as baseline_days_found,
        sum(previous.current_bp) as baseline_sum_bp
    from daily_values as today
    inner join daily_values as previous
        on
            previous.metric_date
            between date_sub(today.metric_date, interval @baseline_days day)
            and date_sub(today.metric_date, interval 1 day)
    where today.metric_date between @from_date and @run_date
    group by today.metric_date
),

decisions as (
    select
        today.metric_date as alert_date,
        today.sample_size,
        today.current_bp,
        -- NULL during warm-up: all @baseline_days previous days must exist. The baseline
        -- is the exact mean baseline_sum_bp / @baseline_days; it is only rounded for display.
        if(
            base.baseline_days_found = @baseline_days, base.baseline_sum_bp, null
        ) as baseline_sum_bp
    from daily_values as today
    left join baselines as base
        on today.metric_date = base.metric_date
    where today.metric_date between @from_date and @run_date
),

deltas as (
    select
        alert_date,
        sample_size,
        current_bp,
        baseline_sum_bp,
        -- x = (current - mean) x @baseline_days, exact; ROUND(x / n) half away from zero is
        -- sign(x) * div(2|x| + n, 2n)
        @baseline_days * current_bp - baseline_sum_bp as scaled_delta
    from decisions
),

rounded as (
    select
        alert_date,
        sample_size,
        current_bp,
        baseline_sum_bp,
        scaled_delta,
        -- (current / mean - 1) x 100 in basis points: 10000 x scaled_delta / baseline_sum_bp
        if(
            baseline_sum_bp > 0,
            sign(scaled_delta)
            * div(
                (20000 * abs(scaled_delta) + baseline_sum_bp), (2 * baseline_sum_bp)
            ),
            null
        ) as delta_relative_bp
    from deltas
),

classified as (
    select
        *,
        case
            when delta_relative_bp >= @threshold_critical_bp then 'CRITICAL'
            when delta_relative_bp >= @threshold_warning_bp then 'WARNING'
            else 'INFO'
        end as severity
    from rounded
)

select
    alert_date,
    'retention_status_degradation' as alert_type,
    'at_risk_pct' as metric_name,
    'global' as scope,
    current_bp / 100 as current_value,
    baseline_sum_bp / (100 * @baseline_days) as baseline_value,
    scaled_delta / (100 * @baseline_days) as delta_pct,
    delta_relative_bp / 100 as delta_relative_pct,
    @threshold_warning_bp / 100 as threshold_warning,
    @threshold_critical_bp / 100 as threshold_critical,
    severity,
    coalesce(
        sample_size >= @min_sample_size
        and baseline_sum_bp is not null
        and severity in ('WARNING', 'CRITICAL'),
        false
    ) as alert_flag,
    sample_size
from classified
