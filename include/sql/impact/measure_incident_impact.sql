-- Repurchase within @horizon_days, per tier, for incident @incident_id's two groups
-- (docs/audiences.md): its held-out customers, from the day each was assigned, against the
-- customers it saw and did not hold out that an export for a date of the incident
-- (@from_date = its opening .. @to_date = its resolution, or the last date measured)
-- contacted, from their first such export. The tier is the one the incident first saw the
-- customer in. Customers seen but never exported (kept back by the cooldown, another
-- tier, the row limit) are in neither group. last_start: the latest start of a group, from
-- which the horizon must have passed.
with

seen as (
    -- distinct: two doors drawing at the same moment may both have recorded a customer
    select distinct
        customer_id,
        tier,
        held_out,
        assigned_on
    from {{ tables.incident_holdouts }}
    where incident_id = @incident_id
),

contacted as (
    select
        exported.customer_id,
        min(exported.run_date) as first_contact
    from {{ tables.audience_exports }} as exported
    inner join seen
        on exported.customer_id = seen.customer_id
    where
        not seen.held_out
        and exported.run_date >= @from_date
        and exported.run_date <= @to_date
    group by exported.customer_id
),

cohort as (
    select
        seen.customer_id,
        seen.tier,
        false as held_out,
        contacted.first_contact as start_date
    from seen
    inner join contacted
        on seen.customer_id = contacted.customer_id
    union all
    select
        customer_id,
        tier,
        true as held_out,
        assigned_on as start_date
    from seen
    where held_out
),

outcomes as (
    select
        cohort.tier,
        cohort.held_out,
        cohort.customer_id,
        cohort.start_date,
        count(orders.order_id) > 0 as repurchased,
        coalesce(sum(orders.order_amount), 0) as revenue_after
    from cohort
    left join {{ tables.orders }} as orders
        on
            cohort.customer_id = orders.customer_id
            and cohort.start_date < orders.order_date
            and date_add(cohort.start_date, interval @horizon_days day) >= orders.order_date
    group by cohort.tier, cohort.held_out, cohort.customer_id, cohort.start_date
)

select
    tier,
    held_out,
    count(*) as customers,
    countif(repurchased) as repurchasers,
    -- summed exactly (NUMERIC), then cast: a float sum depends on the order of its terms,
    -- which a parallel aggregate does not fix
    cast(sum(revenue_after) as float64) as revenue_after,
    max(start_date) as last_start
from outcomes
group by tier, held_out
