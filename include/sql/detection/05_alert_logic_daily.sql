{% extends "sql/detection/05_alert_logic.sql" %}

{% block about %}
-- SQL5 alert_logic for one date, @run_date (= @from_date), on a daily run: the run that finds
-- the alert history stored up to the day before (detection.extend_history chooses this file;
-- the BigQuery DAG's history_from_date branch does too). It is 05_alert_logic.sql with
-- another source of the daily values, and the same decision after them (baseline, deltas,
-- rounding, severity, flag): only the block daily_values differs, so the rules exist once.
--
-- It reads no orders. By rules.md, a date's current_value is the AT_RISK share of the
-- customers in SQL2's snapshot of that date, which this run has just written; the 7 baseline
-- days are the rows the earlier runs stored. Both agree with the orders-based block to the
-- last digit (tests/sql/test_history_incremental.py compares them on every date of the
-- sample; the ZetaSQL differential compares the engines):
-- - SQL2 is AT_RISK for active_days < D - last order date <= at_risk_days, the same span the
--   orders-based block counts, and its snapshot holds every customer with an order up to D;
-- - a stored current_value is current_bp / 100 in FLOAT64, and round(x * 100) gives the
--   integer back exactly (|current_bp| <= 10000);
-- - the stored history holds a row for every date from the first order on, so the days found
--   before the first order (warm-up) are the same as well.
{% endblock %}

{% block daily_values %}
daily_values as (
    -- the baseline days: the rows the daily runs of D-7 .. D-1 stored
    select
        alert_date as metric_date,
        sample_size,
        cast(round(current_value * 100) as int64) as current_bp
    from {{ tables.alert_logic }}
    where
        alert_date
        between date_sub(@run_date, interval @baseline_days day)
        and date_sub(@run_date, interval 1 day)
    union all
    -- the run date: the AT_RISK share of SQL2's snapshot, in basis points rounded half away
    -- from zero (no row when no customer has ordered yet, as from the orders)
    select
        @run_date as metric_date,
        count(*) as sample_size,
        div(
            (20000 * countif(retention_status = 'AT_RISK') + count(*)), (2 * count(*))
        ) as current_bp
    from {{ tables.retention_snapshot }}
    where snapshot_date = @run_date
    having count(*) > 0
),
{% endblock %}
