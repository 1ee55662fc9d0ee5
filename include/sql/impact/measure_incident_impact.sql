-- Repurchase within @horizon_days, per tier, for incident @incident_id's two groups
-- (docs/audiences.md): its held-out customers, from the day each was assigned, against the
-- customers it saw and did not hold out that an export for a date of the incident
-- (@from_date = its opening .. @to_date = its resolution, or the last date measured)
-- contacted, from their first such export. The tier is the one the incident first saw the
-- customer in. Customers seen but never exported (kept back by the cooldown, another
-- tier, the row limit) are in neither group. last_start: the latest start of a group, from
-- which the horizon must have passed.
{% import "sql/macros/impact.jinja" as impact with context -%}
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

{{ impact.repurchases() }}
