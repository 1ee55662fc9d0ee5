-- The run dates of a range whose runs found the orders feed late or the day short
-- (retentionops/freshness.py): the note of a held day ("data late" / "data short") or the
-- error of a run that failed waiting for the orders ("orders feed late"), one row per
-- date with what its latest such run said. Health lists them: a late feed is not a quiet
-- day, and a run of quiet days on a stuck feed must show as such.
with

flagged as (
    select
        alert_date,
        run_timestamp,
        coalesce(note, error_message) as said
    from {{ tables.ops_runs_log }}
    where
        alert_date between @from_date and @to_date
        and (
            starts_with(coalesce(note, ''), 'data late')
            or starts_with(coalesce(note, ''), 'data short')
            or strpos(coalesce(error_message, ''), 'orders feed late') > 0
        )
),

latest as (
    select
        alert_date,
        max(run_timestamp) as run_timestamp
    from flagged
    group by alert_date
)

select
    flagged.alert_date as run_date,
    min(flagged.said) as said
from flagged
inner join latest
    on
        flagged.alert_date = latest.alert_date
        and flagged.run_timestamp = latest.run_timestamp
group by flagged.alert_date
order by run_date
