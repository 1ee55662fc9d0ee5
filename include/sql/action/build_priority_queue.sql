-- customer_priority for @run_date (design section 7): one set-based statement over
-- retention_snapshot + churn_detection + base_customers of the same date. Tier rules,
-- filters, bases, caps, actions and the value proxy are settings passed as parameters.
with

facts as (
    select
        snap.customer_id,
        snap.retention_status,
        snap.days_since_last_order,
        churn.churn_risk_level,
        churn.churn_risk_score,
        churn.is_frequency_drop,
        churn.is_value_drop,
        churn.is_status_inconsistent,
        base.total_revenue,
        base.total_orders,
        base.avg_order_value
    from {{ tables.retention_snapshot }} as snap
    inner join {{ tables.churn_detection }} as churn
        on snap.customer_id = churn.customer_id
    inner join {{ tables.base_customers }} as base
        on snap.customer_id = base.customer_id
    where
        snap.snapshot_date = @run_date
        and churn.snapshot_date = @run_date
        and base.snapshot_date = @run_date
),

with_median as (
    select
        *,
        percentile_cont(cast(total_revenue as float64), 0.5) over () as median_total_revenue
    from facts
),

tiered as (
    select
        *,
        case
            when
                retention_status = @p1_status
                and churn_risk_level in unnest(@p1_risk_levels)
                and (not @p1_value_filter or total_revenue > median_total_revenue)
                then 'P1'
            when
                retention_status = @p2_status
                and churn_risk_level in unnest(@p2_risk_levels)
                then 'P2'
            when
                retention_status = @p3_status
                and churn_risk_level in unnest(@p3_risk_levels)
                and (@p3_recency_cap_days = 0 or days_since_last_order <= @p3_recency_cap_days)
                then 'P3'
        end as priority_tier
    from with_median
),

scored as (
    select
        *,
        least(
            100,
            case priority_tier
                when 'P1' then @p1_base_score
                when 'P2' then @p2_base_score
                else @p3_base_score
            end
            + least(
                @value_bonus_cap,
                ln(1 + greatest(cast(total_revenue as float64), 0)) * @value_bonus_per_log
            )
            + least(@urgency_bonus_cap, days_since_last_order / @urgency_days_per_point)
        ) as priority_score,
        array_to_string(
            [
                if(is_frequency_drop, 'frequency drop', null),
                if(is_value_drop, 'value drop', null),
                if(is_status_inconsistent, 'status inconsistent', null)
            ],
            ', '
        ) as signals
    from tiered
    where priority_tier is not null
)

select
    @run_date as run_date,
    customer_id,
    retention_status,
    churn_risk_level,
    churn_risk_score,
    priority_tier,
    priority_score,
    concat(
        retention_status, ' + ', churn_risk_level, ' risk: ',
        if(signals = '', 'no signal fired', signals),
        '; ',
        if(
            total_revenue > median_total_revenue,
            'high value (revenue above median)',
            'standard value'
        ),
        ', last order ', cast(days_since_last_order as string), ' days ago'
    ) as priority_reason,
    days_since_last_order,
    total_revenue,
    total_orders,
    avg_order_value,
    case priority_tier
        when 'P1' then @p1_action
        when 'P2' then @p2_action
        else @p3_action
    end as recommended_action,
    -- exact decimal arithmetic: rounding a FLOAT64 product to cents differs between engines
    -- at half a cent (49.35 x 0.3 = 14.805: DuckDB 14.81, BigQuery 14.80)
    round(total_revenue * cast(@value_proxy_factor as numeric), 2) as value_proxy,
    -- holdout: the first 32 bits of md5(customer_id | run_date), the same on both backends
    mod(
        cast(
            concat(
                '0x',
                substr(to_hex(md5(concat(customer_id, '|', cast(@run_date as string)))), 1, 8)
            ) as int64
        ),
        10000
    ) < @holdout_bp as is_holdout,
    current_timestamp() as created_at
from scored
