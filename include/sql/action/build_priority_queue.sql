-- customer_priority for @run_date (design section 7): one set-based statement over
-- retention_snapshot + churn_detection + base_customers of the same date. Tier rules,
-- filters, bases, caps, actions and the value proxy are settings passed as parameters.
-- Across days (docs/audiences.md) each row also says, from what was delivered before this
-- run (the deliveries receipts and the audiences those runs exported):
--   * new_in_tier: not in this tier at the last delivered run (@previous_run_date);
--   * cooldown_status: 'suppressed' when delivered for a date within
--     @contact_cooldown_days of @run_date, on either side (runs come late and out of
--     order: a customer contacted for a later date is inside an earlier date's cooldown
--     too), 'bypassed' when now in a more urgent tier than any it was delivered in then
--     (@cooldown_bypass), else 'none'.
-- Who is held out is not the queue's to say: each incident draws its holdout at its first
-- export (holdout/draw_incident_holdout.sql), outside the queue's retention.
{% import "sql/macros/detection.jinja" as detection with context -%}
{% import "sql/macros/tiers.jinja" as tiers -%}
with

-- the audiences of runs whose playbook reached people, or is owed to them (recorded in the
-- ledger and not yet delivered: it goes out before anything newer, so those customers are
-- as good as told), for the dates of the contact cooldown window around @run_date, its own
-- date aside (a re-run of the date rebuilds the same audience). Shadow runs reach nobody.
-- Constant bounds, so BigQuery reads the window's partitions only.
told_runs as (
    select ledger.run_id
    from {{ tables.deliveries }} as ledger
    where ledger.rollout_mode != 'shadow'
    union distinct
    select owed.built_by as run_id
    from {{ tables.incident_events }} as owed
    where
        owed.state in ('pending', 'sending', 'unknown')
        and owed.rollout_mode != 'shadow'
        and owed.built_by is not null
),

delivered as (
    select distinct
        exported.run_date,
        exported.customer_id,
        exported.tier
    from {{ tables.audience_exports }} as exported
    where
        exported.run_date != @run_date
        and exported.run_date >= date_sub(@run_date, interval @contact_cooldown_days day)
        and exported.run_date <= date_add(@run_date, interval @contact_cooldown_days day)
        and exported.run_id in (select told_runs.run_id from told_runs)
),

previous_members as (
    -- the tiers at the last delivered run, @previous_run_date (NULL: none), read first
    -- (action/read_last_delivered_run, over the same runs as delivered): a constant, so
    -- BigQuery reads that one queue partition, not every one retention keeps
    select
        queue.customer_id,
        queue.priority_tier
    from {{ tables.customer_priority }} as queue
    where queue.run_date = @previous_run_date
),

contacts as (
    -- the most urgent tier each customer was delivered in during the cooldown window
    select
        customer_id,
        min(case tier when 'P1' then 1 when 'P2' then 2 else 3 end) as contacted_rank
    from delivered
    group by customer_id
),

candidates as (
    -- the customers whose status and risk level match a tier's rule (any other gets no
    -- tier below): joining SQL1's facts for these only, not for every customer
    select
        snap.customer_id,
        snap.retention_status,
        snap.days_since_last_order,
        churn.churn_risk_level,
        churn.churn_risk_score,
        churn.is_frequency_drop,
        churn.is_value_drop,
        churn.is_status_inconsistent
    {{ detection.customer_day(
        "@run_date", ("retention_snapshot", "snap"), ("churn_detection", "churn")
    ) | indent(4) }}
    and (
        {%- for n in (1, 2, 3) %}
        {{ "or " if not loop.first }}(
            {{ tiers.rule(n, "snap.retention_status", "churn.churn_risk_level") | indent(12) }}
        )
        {%- endfor %}
    )
),

median_revenue as (
    -- the median total_revenue of all customers at @run_date (P1's value filter, the
    -- reason's "high value"): BigQuery's PERCENTILE_CONT is analytic only, so over the one
    -- column, then its one distinct value
    select distinct percentile_cont(cast(total_revenue as float64), 0.5) over () as median
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
),

facts as (
    select
        candidates.*,
        base.total_revenue,
        base.total_orders,
        base.avg_order_value,
        median_revenue.median as median_total_revenue
    from candidates
    inner join {{ tables.base_customers }} as base
        on candidates.customer_id = base.customer_id
    cross join median_revenue
    where base.snapshot_date = @run_date
),

tiered as (
    select
        *,
        case
            when
                {{ tiers.rule(1) | indent(16) }}
                and (not @p1_value_filter or total_revenue > median_total_revenue)
                then 'P1'
            when
                {{ tiers.rule(2) | indent(16) }}
                then 'P2'
            when
                {{ tiers.rule(3) | indent(16) }}
                and (@p3_recency_cap_days = 0 or days_since_last_order <= @p3_recency_cap_days)
                then 'P3'
        end as priority_tier
    from facts
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
    scored.customer_id,
    scored.retention_status,
    scored.churn_risk_level,
    scored.churn_risk_score,
    scored.priority_tier,
    scored.priority_score,
    concat(
        scored.retention_status, ' + ', scored.churn_risk_level, ' risk: ',
        if(scored.signals = '', 'no signal fired', scored.signals),
        '; ',
        if(
            scored.total_revenue > scored.median_total_revenue,
            'high value (revenue above median)',
            'standard value'
        ),
        ', last order ', cast(scored.days_since_last_order as string), ' days ago'
    ) as priority_reason,
    scored.days_since_last_order,
    scored.total_revenue,
    scored.total_orders,
    scored.avg_order_value,
    case scored.priority_tier
        when 'P1' then @p1_action
        when 'P2' then @p2_action
        else @p3_action
    end as recommended_action,
    -- exact decimal arithmetic: rounding a FLOAT64 product to cents differs between engines
    -- at half a cent (49.35 x 0.3 = 14.805: DuckDB 14.81, BigQuery 14.80)
    round(scored.total_revenue * cast(@value_proxy_factor as numeric), 2) as value_proxy,
    previous_members.customer_id is null as new_in_tier,
    case
        when contacts.customer_id is null then 'none'
        when
            @cooldown_bypass
            and case scored.priority_tier when 'P1' then 1 when 'P2' then 2 else 3 end
            < contacts.contacted_rank
            then 'bypassed'
        else 'suppressed'
    end as cooldown_status,
    @previous_run_date as previous_run_date,
    current_timestamp() as created_at
from scored
left join previous_members
    on
        scored.customer_id = previous_members.customer_id
        and scored.priority_tier = previous_members.priority_tier
left join contacts
    on scored.customer_id = contacts.customer_id
