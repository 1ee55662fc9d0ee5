-- One incident's holdout per tier it drew (impact.measure_incident_impact, the brief): the
-- tier's size when its draw was decided, whether it was drawn, the customers seen and
-- held out, the rule, the opening, the resolution and the last day it holds. Customers
-- are counted once (two doors drawing at the same moment may both have recorded one).
select
    tier,
    max(tier_customers) as tier_customers,
    logical_or(tier_drawn) as tier_drawn,
    count(distinct customer_id) as seen,
    count(distinct if(held_out, customer_id, null)) as held_out,
    max(holdout_bp) as holdout_bp,
    min(opened_on) as opened_on,
    max(resolved_on) as resolved_on,
    max(held_until) as held_until,
    min(assigned_on) as first_assigned_on
from {{ tables.incident_holdouts }}
where incident_id = @incident_id
group by tier
order by tier
