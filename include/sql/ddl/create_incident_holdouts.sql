-- Each incident's holdout (docs/audiences.md): one row per customer the incident saw in a
-- tier of a run date it exported, drawn once, when first seen. held_out customers are kept
-- out of every export, by any door, from the incident's opening until held_until (its
-- resolution + impact_horizon_days), and measure its impact against those it contacted.
-- A record, like audience_exports: not derived from the orders, and outside the queue's
-- retention, so the holdout outlives the 90 days of customer_priority.
create table if not exists {{ tables.incident_holdouts }} (
    incident_id string not null,
    customer_id string not null,
    -- the tier the customer was in when first seen, and when and by which run
    tier string not null,
    assigned_on date not null,
    run_id string not null,
    -- held out (never exported while the holdout holds) or in the incident's treatable
    -- group (exported unless the cooldown or the row limit keeps it back)
    held_out bool not null,
    -- the tier's draw, decided once when the incident first saw the tier: drawn only when
    -- tier_customers x holdout_bp / 10000 (rounded down) reaches holdout_min_customers
    tier_customers int64 not null,
    tier_drawn bool not null,
    -- the rule the incident draws with, whatever the settings say later: holdout_pct in
    -- basis points (10 % = 1000) and the salt of md5(customer_id | salt | incident_id)
    holdout_bp int64 not null,
    holdout_salt string not null,
    -- the incident's opening, its resolution (null until a run sees it) and the last day
    -- the holdout holds: resolved_on + impact_horizon_days (null: until it resolves)
    opened_on date not null,
    resolved_on date,
    held_until date,
    assigned_at timestamp not null
)
cluster by incident_id, customer_id
