-- SQL3 churn_detection: explainable risk signals, score and level per customer at @run_date.
-- Factor comparisons are exact integer cross-multiplications: "days > 1.5 x avg gap" with
-- avg gap = span / (n - 1) becomes days * (n - 1) * 2 > 3 * span (factor = num / den).
{% import "sql/macros/detection.jinja" as detection with context -%}
with

facts as (
    select
        base.customer_id,
        base.total_orders,
        snap.days_since_last_order,
        snap.retention_status,
        date_diff(base.last_order_date, base.first_order_date, day) as order_span_days
    {{ detection.customer_day(
        "@run_date", ("base_customers", "base"), ("retention_snapshot", "snap")
    ) | indent(4) }}
),

signals as (
    select
        customer_id,
        total_orders,
        days_since_last_order,
        if(
            total_orders > 1, order_span_days / (total_orders - 1), null
        ) as avg_days_between_orders,
        coalesce(
            total_orders > 1
            and days_since_last_order * (total_orders - 1) * @frequency_drop_den
            > @frequency_drop_num * order_span_days,
            false
        ) as is_frequency_drop,
        -- disabled in v1: the field exists so its weight can be switched on later
        false as is_value_drop,
        coalesce(
            retention_status = 'ACTIVE'
            and (
                total_orders <= @status_inconsistent_max_orders
                or (
                    total_orders > 1
                    and days_since_last_order * (total_orders - 1) * @status_inconsistent_den
                    > @status_inconsistent_num * order_span_days
                )
            ),
            false
        ) as is_status_inconsistent
    from facts
),

scored as (
    select
        *,
        @weight_frequency_drop * if(is_frequency_drop, 1, 0)
        + @weight_value_drop * if(is_value_drop, 1, 0)
        + @weight_status_inconsistent * if(is_status_inconsistent, 1, 0) as churn_risk_score
    from signals
)

select
    @run_date as snapshot_date,
    customer_id,
    total_orders,
    days_since_last_order,
    avg_days_between_orders,
    is_frequency_drop,
    is_value_drop,
    is_status_inconsistent,
    churn_risk_score,
    case
        when churn_risk_score >= @risk_level_high_min then 'HIGH'
        when churn_risk_score >= @risk_level_medium_min then 'MEDIUM'
        else 'LOW'
    end as churn_risk_level
from scored
