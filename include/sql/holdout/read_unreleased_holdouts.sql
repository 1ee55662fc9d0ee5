-- The incidents whose holdout has no release yet (their resolution was not recorded) and
-- that opened on or before @run_date: a run of @run_date asks the incident layer whether
-- they have resolved by then (holdouts.settle_releases).
select
    incident_id,
    min(opened_on) as opened_on
from {{ tables.incident_holdouts }}
where held_until is null and opened_on <= @run_date
group by incident_id
order by incident_id
