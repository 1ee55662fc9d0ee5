-- The replay's invariant on contacts: customers delivered twice for dates within
-- @contact_cooldown_days of each other, the later delivery not in a more urgent tier than
-- the earlier one (the escalation that may bypass the cooldown), nor for the same date (a
-- re-run or a resend of it delivers that date's audience again, on purpose).
with contacts as (
    select
        exported.customer_id,
        exported.run_date,
        exported.tier,
        case exported.tier when 'P1' then 1 when 'P2' then 2 else 3 end as tier_rank,
        min(ledger.delivered_at) as delivered_at
    from {{ tables.audience_exports }} as exported
    inner join {{ tables.deliveries }} as ledger
        on exported.run_id = ledger.run_id
    where ledger.rollout_mode != 'shadow'
    group by exported.customer_id, exported.run_date, exported.tier
)

select
    earlier.customer_id,
    earlier.run_date as first_date,
    earlier.tier as first_tier,
    later.run_date as second_date,
    later.tier as second_tier
from contacts as earlier
inner join contacts as later
    on
        earlier.customer_id = later.customer_id
        and earlier.delivered_at < later.delivered_at
        and earlier.run_date != later.run_date
        and abs(date_diff(later.run_date, earlier.run_date, day)) <= @contact_cooldown_days
        and earlier.tier_rank <= later.tier_rank
order by earlier.customer_id, earlier.run_date, later.run_date
