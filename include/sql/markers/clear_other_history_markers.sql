-- Forget the alert-history coverage computed with other settings: the rows it vouched for
-- are about to be rewritten with the current ones (@step is the current history marker).
delete from {{ tables.run_markers }}
where
    starts_with(step, 'alert_history@')
    and step != @step
