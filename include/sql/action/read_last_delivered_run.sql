-- The last run before @run_date whose playbook reached people (a delivered run that is not
-- a shadow run, with the audiences it exported): the queue of @run_date compares itself
-- with that run's tiers (new_in_tier, previous_run_date). Read first and passed to the
-- queue as @previous_run_date, a constant: a date found by a subquery inside the queue
-- would make BigQuery read every queue partition retention keeps to find that run's tiers.
-- Delivered runs only (the queue's contact cooldown also counts audiences still owed).
select max(exported.run_date) as previous_run_date
from {{ tables.audience_exports }} as exported
inner join {{ tables.deliveries }} as ledger
    on exported.run_id = ledger.run_id
where
    exported.run_date < @run_date
    and ledger.rollout_mode != 'shadow'
