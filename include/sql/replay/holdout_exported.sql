-- The replay's invariant on the holdout: rows of any export (every door, every date) that
-- hold a customer an incident held out on that date. The window is checked against the
-- incident's release as the holdout recorded it and, independently, against what the
-- ledger says reached people: a customer held out must not be exported from the opening
-- until @horizon_days after a delivered resolve of its incident (or at all, while none was
-- delivered and no release is recorded).
with

resolves as (
    select
        incident_id,
        min(run_date) as resolved_on
    from {{ tables.deliveries }}
    where event = 'resolve'
    group by incident_id
),

held as (
    select
        holdout.incident_id,
        holdout.customer_id,
        holdout.opened_on,
        greatest(
            coalesce(holdout.held_until, date '9999-12-31'),
            coalesce(
                date_add(resolves.resolved_on, interval @horizon_days day),
                holdout.held_until,
                date '9999-12-31'
            )
        ) as held_until
    from {{ tables.incident_holdouts }} as holdout
    left join resolves
        on holdout.incident_id = resolves.incident_id
    where holdout.held_out
)

select
    exported.run_id,
    exported.run_date,
    exported.customer_id,
    held.incident_id
from {{ tables.audience_exports }} as exported
inner join held
    on
        exported.customer_id = held.customer_id
        and exported.run_date >= held.opened_on
        and exported.run_date <= held.held_until
order by exported.run_date, exported.customer_id
