-- One incident's holdout per tier it drew (impact.measure_incident_impact, the brief):
-- holdouts.tier_summary (its size, draw, customers seen and held out, rule, opening,
-- resolution and last day held) and when its first customer was assigned.
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
select
    tier,
    {{ holdouts.tier_summary() | indent(4) }},
    min(assigned_on) as first_assigned_on
from {{ tables.incident_holdouts }}
where incident_id = @incident_id
group by tier
order by tier
