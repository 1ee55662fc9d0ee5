-- Draw the holdout of incident @incident_id (opened @opened_on) over the customers of
-- @run_date's queue it has not seen yet, in one set-based statement (docs/audiences.md):
-- the first export of the incident draws every tier; a later one adds the customers first
-- seen that day, with the same rule. Per tier (stratified), decided once, when the incident
-- first sees the tier: the tier is drawn when tier x holdout_bp / 10000 (rounded down)
-- reaches @holdout_min_customers, and a drawn tier holds out each customer whose
-- first 32 bits of md5(customer_id | salt | incident_id) modulo 10000 fall below
-- holdout_bp, the same on both backends, for a re-run, a backfill and any door. The rule
-- (holdout_bp, salt) is the incident's as first drawn; today's settings only start it.
-- Columns by position, in the table's order (the rows are new: an INSERT without a list).
insert into {{ tables.incident_holdouts }}
with

seen as (
    select
        customer_id,
        tier,
        tier_customers,
        tier_drawn,
        holdout_bp,
        holdout_salt,
        resolved_on,
        held_until
    from {{ tables.incident_holdouts }}
    where incident_id = @incident_id
),

incident_rule as (
    -- every row of an incident carries the same rule and release: max() reads the one value
    select
        coalesce(max(holdout_bp), @holdout_bp) as holdout_bp,
        coalesce(max(holdout_salt), @holdout_salt) as holdout_salt,
        max(resolved_on) as resolved_on,
        max(held_until) as held_until
    from seen
),

queue as (
    select
        customer_id,
        priority_tier
    from {{ tables.customer_priority }}
    where run_date = @run_date
),

tier_sizes as (
    select
        priority_tier,
        count(*) as customers
    from queue
    group by priority_tier
),

decided as (
    select
        tier,
        max(tier_customers) as tier_customers,
        logical_or(tier_drawn) as tier_drawn
    from seen
    group by tier
),

tier_draws as (
    -- a tier the incident saw before keeps its decision; a new one is decided on its size
    select
        tier_sizes.priority_tier,
        coalesce(decided.tier_customers, tier_sizes.customers) as tier_customers,
        coalesce(
            decided.tier_drawn,
            incident_rule.holdout_bp > 0
            and div(tier_sizes.customers * incident_rule.holdout_bp, 10000)
            >= @holdout_min_customers
        ) as tier_drawn
    from tier_sizes
    cross join incident_rule
    left join decided
        on tier_sizes.priority_tier = decided.tier
)

select
    @incident_id as incident_id,
    queue.customer_id,
    queue.priority_tier as tier,
    @run_date as assigned_on,
    @run_id as run_id,
    tier_draws.tier_drawn
    and mod(
        cast(
            concat(
                '0x',
                substr(
                    to_hex(md5(concat(
                        queue.customer_id, '|', incident_rule.holdout_salt, '|', @incident_id
                    ))),
                    1,
                    8
                )
            ) as int64
        ),
        10000
    ) < incident_rule.holdout_bp as held_out,
    tier_draws.tier_customers,
    tier_draws.tier_drawn,
    incident_rule.holdout_bp,
    incident_rule.holdout_salt,
    @opened_on as opened_on,
    incident_rule.resolved_on,
    incident_rule.held_until,
    current_timestamp() as assigned_at
from queue
inner join tier_draws
    on queue.priority_tier = tier_draws.priority_tier
cross join incident_rule
where queue.customer_id not in (select seen.customer_id from seen)
