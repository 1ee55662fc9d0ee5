-- What the delivered audiences of a replay came to: contacts (a customer on a date),
-- customers, and the most dates one customer was contacted for.
with contacts as (
    select
        exported.customer_id,
        exported.run_date
    from {{ tables.audience_exports }} as exported
    inner join {{ tables.deliveries }} as ledger
        on exported.run_id = ledger.run_id
    where ledger.rollout_mode != 'shadow'
    group by exported.customer_id, exported.run_date
),

per_customer as (
    select
        customer_id,
        count(*) as dates
    from contacts
    group by customer_id
)

select
    sum(dates) as contacts,
    count(*) as customers,
    max(dates) as most_dates_per_customer
from per_customer
