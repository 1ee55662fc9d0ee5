-- The last date up to which the alert history (SQL5's row of every date) is stored: a
-- detection run, or an incident read that computed it, stores it up to its date and marks
-- it; a load that changes a date clears the markers of that date and later.
select max(run_date) as covered_to
from {{ tables.run_markers }}
where step in ('detection', 'alert_history')
