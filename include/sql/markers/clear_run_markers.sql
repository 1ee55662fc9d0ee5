-- Forget that a date's detection and queue are complete (a new detection run starts).
-- The alert-history marker stays: it vouches for SQL5's rows up to the date, which only a
-- load that changes orders (it deletes the markers from the changed date on) or other
-- settings (another marker name) make stale.
delete from {{ tables.run_markers }}
where
    run_date = @run_date
    and not starts_with(step, 'alert_history@')
