-- Which steps of a run date are complete: `detection` (SQL1-SQL5, written last, after all
-- five tables) and `customer_priority`. Readers of a date require its markers, so a run
-- killed half-way is never read as if it were whole; a load that changes the orders
-- deletes the markers of every date it affects. completed_at is the write time that
-- retention counts from.
create table if not exists {{ tables.run_markers }} (
    run_date date not null,
    step string not null,
    completed_at timestamp not null
)
cluster by run_date, step
