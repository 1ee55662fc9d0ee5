-- Incidents over the stored alert history (SQL5 rows up to @run_date only, so a run for D
-- sees what it would have seen on D): one row per day of @from_date..@run_date with the
-- day's phase, its incident and the incident's event of the day. Rules (docs/incidents.md):
--   * warm-up: a day with less than @warmup_days of order history opens nothing;
--   * an incident opens on an alert day outside warm-up when none is open; its baseline is
--     the SQL5 baseline of that day, frozen; every later alert day belongs to it;
--   * it resolves on the first day that ends @resolve_after_days consecutive calm days (no
--     alert, and the share below the WARNING threshold against the frozen baseline) when
--     its last alert day lies more than @incident_gap_days before;
--   * the incident's severity is judged against its frozen baseline too: a day's severity is
--     the worse of SQL5's and the same thresholds applied to the share against the frozen
--     baseline; the incident is CRITICAL from a CRITICAL day on until
--     @deescalate_after_days consecutive days have not been, WARNING otherwise;
--   * events: open, escalate / de-escalate (the incident's severity rose / fell, on any day),
--     update (an alert day of the same severity), resolve;
--   * slow drift, beside SQL5: a day whose share is @drift_threshold % or more above the
--     share @drift_days before (a frozen earlier level; SQL5's 7-day baseline moves with a
--     slow climb) is a drift day. Shadow unless @drift_opens: then a drift day outside
--     warm-up opens an incident of its own kind (DRIFT-YYYYMMDD) when none is open, judged
--     against that earlier level, and keeps an open incident from resolving.
-- Each alert day is a candidate opening with its own frozen baseline and resolution; the
-- recursive step only follows "the first candidate after the previous resolution".
with recursive

first_order as (
    -- the first order up to @run_date, from the orders' summary (a row per day with orders)
    select min(activity_date) as first_day
    from {{ tables.cohort_activity }}
    where activity_date <= @run_date
),

days as (
    select
        history.alert_date as day,
        history.current_value,
        history.baseline_value,
        history.severity,
        history.alert_flag,
        earlier.alert_date as drift_compared_with,
        earlier.current_value as drift_earlier_value,
        -- (current / earlier - 1) x 100 to 2 decimals, half away from zero, in exact
        -- integer basis points (both shares have 2 decimals), as SQL5 rounds
        if(
            earlier.current_value > 0,
            sign(round(history.current_value * 100) - round(earlier.current_value * 100))
            * div(
                cast(
                    20000
                    * abs(round(history.current_value * 100) - round(earlier.current_value * 100))
                    + round(earlier.current_value * 100) as int64
                ),
                cast(2 * round(earlier.current_value * 100) as int64)
            )
            / 100,
            null
        ) as drift_pct,
        date_diff(history.alert_date, first_order.first_day, day) + 1 < @warmup_days
            as is_warmup,
        case history.severity when 'CRITICAL' then 2 when 'WARNING' then 1 else 0 end
            as severity_rank
    from {{ tables.alert_logic }} as history
    cross join first_order
    left join {{ tables.alert_logic }} as earlier
        on earlier.alert_date = date_sub(history.alert_date, interval @drift_days day)
    where history.alert_date <= @run_date
),

signals as (
    -- a day that opens or keeps an incident: SQL5's alert, or (with @drift_opens) a
    -- drift day that SQL5 does not alert on
    select
        *,
        coalesce(drift_pct >= @drift_threshold, false) as drift_flag,
        alert_flag
        or (@drift_opens and not alert_flag and coalesce(drift_pct >= @drift_threshold, false))
            as signal_flag
    from days
),

candidates as (
    select
        day as opened_on,
        if(alert_flag, 'INC-', 'DRIFT-') as id_prefix,
        if(alert_flag, baseline_value, drift_earlier_value) as frozen_baseline
    from signals
    where signal_flag and not is_warmup
),

candidate_days as (
    -- a day is calm for a candidate when it does not alert and the share is below the
    -- WARNING threshold against the candidate's frozen baseline (rounded as SQL5 rounds)
    select
        candidates.opened_on,
        signals.day,
        signals.signal_flag,
        signals.signal_flag
        or round((signals.current_value / candidates.frozen_baseline - 1) * 100, 2)
        >= @threshold_warning as unsettled
    from candidates
    inner join signals
        on candidates.opened_on <= signals.day
),

streaks as (
    select
        opened_on,
        day,
        max(if(unsettled, day, null)) over (
            partition by opened_on order by day
            rows between unbounded preceding and current row
        ) as last_unsettled,
        max(if(signal_flag, day, null)) over (
            partition by opened_on order by day
            rows between unbounded preceding and current row
        ) as last_alert
    from candidate_days
),

resolutions as (
    select
        opened_on,
        min(day) as resolved_on
    from streaks
    where
        date_diff(day, last_unsettled, day) >= @resolve_after_days
        and date_diff(day, last_alert, day) > @incident_gap_days
    group by opened_on
),

successors as (
    -- after a candidate's resolution, the next alert day opens the next incident
    select
        resolutions.opened_on,
        min(later.opened_on) as next_opened_on
    from resolutions
    inner join candidates as later
        on resolutions.resolved_on < later.opened_on
    group by resolutions.opened_on
),

chain_links as (
    select
        candidates.opened_on,
        candidates.id_prefix,
        candidates.frozen_baseline,
        resolutions.resolved_on,
        successors.next_opened_on
    from candidates
    left join resolutions
        on candidates.opened_on = resolutions.opened_on
    left join successors
        on candidates.opened_on = successors.opened_on
),

incidents as (
    select
        opened_on,
        id_prefix,
        frozen_baseline,
        resolved_on,
        next_opened_on
    from chain_links
    where opened_on = (select min(candidates.opened_on) from candidates)
    union all
    select
        chain_links.opened_on,
        chain_links.id_prefix,
        chain_links.frozen_baseline,
        chain_links.resolved_on,
        chain_links.next_opened_on
    from incidents
    inner join chain_links
        on incidents.next_opened_on = chain_links.opened_on
),

incident_days as (
    select
        signals.*,
        incidents.opened_on,
        incidents.id_prefix,
        incidents.frozen_baseline,
        incidents.resolved_on
    from signals
    left join incidents
        on
            signals.day >= incidents.opened_on
            and (incidents.resolved_on is null or signals.day <= incidents.resolved_on)
),

judged as (
    -- a day's severity: the worse of SQL5's (on an alert day) and the thresholds applied to
    -- the share against the incident's frozen baseline (rounded as SQL5 rounds)
    select
        *,
        greatest(
            if(alert_flag, severity_rank, 0),
            case
                when opened_on is null then 0
                when
                    round((current_value / frozen_baseline - 1) * 100, 2)
                    >= @threshold_critical
                    then 2
                when
                    round((current_value / frozen_baseline - 1) * 100, 2)
                    >= @threshold_warning
                    then 1
                else 0
            end
        ) as day_rank
    from incident_days
),

tracked as (
    select
        *,
        max(if(signal_flag, day, null)) over (
            partition by opened_on order by day
            rows between unbounded preceding and current row
        ) as last_alert_on,
        max(if(day_rank = 2, day, null)) over (
            partition by opened_on order by day
            rows between unbounded preceding and current row
        ) as last_critical_on,
        max(day_rank) over (
            partition by opened_on order by day
            rows between unbounded preceding and current row
        ) as peak_rank
    from judged
),

leveled as (
    -- CRITICAL until @deescalate_after_days consecutive days below it: a share swinging
    -- around the CRITICAL threshold with the weekdays does not flap the incident's severity
    select
        *,
        if(
            date_diff(day, last_critical_on, day) < @deescalate_after_days, 2, 1
        ) as current_rank
    from tracked
),

ranked as (
    select
        *,
        lag(current_rank) over (partition by opened_on order by day) as previous_rank
    from leveled
)

select
    day,
    case
        when opened_on is not null then 'incident'
        when is_warmup then 'warmup'
        else 'quiet'
    end as phase,
    alert_flag,
    severity,
    current_value,
    if(opened_on is null, null, concat(id_prefix, format_date('%Y%m%d', opened_on)))
        as incident_id,
    opened_on,
    if(day = resolved_on, resolved_on, null) as resolved_on,
    frozen_baseline,
    if(
        opened_on is null, null, round((current_value / frozen_baseline - 1) * 100, 2)
    ) as relative_to_frozen_pct,
    if(opened_on is null, null, date_diff(day, opened_on, day) + 1) as days_open,
    -- outside an incident the window columns describe no incident (they ran over every
    -- day without one): null
    case
        when opened_on is null then null
        when current_rank = 2 then 'CRITICAL'
        when current_rank = 1 then 'WARNING'
    end as incident_severity,
    case
        when opened_on is null then null
        when previous_rank = 2 then 'CRITICAL'
        when previous_rank = 1 then 'WARNING'
    end as previous_severity,
    case
        when opened_on is null then null
        when peak_rank = 2 then 'CRITICAL'
        when peak_rank = 1 then 'WARNING'
    end as peak_severity,
    if(opened_on is null, null, last_alert_on) as last_alert_day,
    case
        when opened_on is null then null
        when day = opened_on then 'open'
        when day = resolved_on then 'resolve'
        when current_rank > previous_rank then 'escalate'
        when current_rank < previous_rank then 'de-escalate'
        when alert_flag then 'update'
    end as event,
    drift_compared_with,
    drift_earlier_value,
    drift_pct,
    drift_flag and not is_warmup as drift_flag
from ranked
where day between @from_date and @run_date
