-- The last date up to which the alert history (SQL5's row of every date) is stored with
-- the current settings: @step is the history marker, which names the settings'
-- fingerprint. A detection run, or an incident read that computed it, extends the history
-- to its date and marks it; a load that changes a date clears the markers of that date and
-- later, so the coverage falls back to before it.
select max(run_date) as covered_to
from {{ tables.run_markers }}
where step = @step
