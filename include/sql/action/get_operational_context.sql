-- Operational context for @run_date (design section 8.2): the status distribution, the
-- risk level x status matrix, the queued tier counts and the median total_revenue, as
-- one long table (facet, status, risk_level, tier, customers, metric_value, holdout).
-- Per tier also what the audience is across days (docs/audiences.md): the customers new in
-- the tier since the last delivered run, those the contact cooldown keeps back or lets
-- through (bypass), how many an export takes (@new_only: the new ones), and the tier's
-- size at the last delivered run (previous_customers, on previous_run_date).
{% import "sql/macros/detection.jinja" as detection with context -%}
{% import "sql/macros/holdouts.jinja" as holdouts with context -%}
{#- One row of the long table: every column in its order, the facet's own values given by
    name (a SQL expression each), any other its empty value. -#}
{%- macro facet_row(facet) -%}
{%- set columns = [
    ("status", "cast(null as string)"),
    ("risk_level", "cast(null as string)"),
    ("tier", "cast(null as string)"),
    ("customers", "0"),
    ("metric_value", "cast(null as float64)"),
    ("holdout_customers", "0"),
    ("new_customers", "0"),
    ("cooldown_suppressed", "0"),
    ("cooldown_bypassed", "0"),
    ("exportable", "0"),
    ("previous_customers", "0"),
    ("previous_run_date", "cast(null as date)"),
] -%}
{%- for name in kwargs if name not in columns | map("first") -%}
{{ facet_row_has_no_such_column[name] }}
{%- endfor -%}
'{{ facet }}' as facet
{%- for name, empty in columns %},
{{ kwargs.get(name, empty) }} as {{ name }}
{%- endfor %}
{%- endmacro %}
with

-- each facet reads only the tables it needs: status x risk, then revenue (SQL1-SQL3 of a
-- date hold the same customers: everyone with an order on or before @run_date)
statuses as (
    select
        snap.retention_status,
        churn.churn_risk_level
    {{ detection.customer_day(
        "@run_date", ("retention_snapshot", "snap"), ("churn_detection", "churn")
    ) | indent(4) }}
),

matrix as (
    select
        {{ facet_row(
            "risk_by_status",
            status="retention_status", risk_level="churn_risk_level", customers="count(*)",
        ) | indent(8) }}
    from statuses
    group by retention_status, churn_risk_level
),

-- held: the customers an incident's holdout holds on @run_date (docs/audiences.md); queue:
-- the columns the facets use only (BigQuery bills every column a query references)
{{ holdouts.held_queue("@run_date", [
    "priority_tier", "value_proxy", "new_in_tier", "cooldown_status", "previous_run_date"
]) }},

-- what each queued customer counts for in its tier's row
queued as (
    select
        priority_tier,
        value_proxy,
        is_holdout,
        coalesce(new_in_tier, true) as is_new,
        not is_holdout and cooldown_status = 'suppressed' as is_suppressed,
        not is_holdout and cooldown_status = 'bypassed' as is_bypassed,
        not is_holdout
        and coalesce(cooldown_status, 'none') != 'suppressed'
        and (not @new_only or coalesce(new_in_tier, true)) as is_exportable,
        previous_run_date
    from queue
),

previous as (
    select
        previous_queue.priority_tier,
        count(*) as customers
    from {{ tables.customer_priority }} as previous_queue
    -- the queue's previous_run_date, read first (action/read_previous_run_date): a constant,
    -- so BigQuery reads that one partition
    where previous_queue.run_date = @previous_run_date
    group by previous_queue.priority_tier
),

-- metric_value: the tier's value_proxy, summed exactly (NUMERIC), then cast (a float sum
-- varies with the order of its terms)
tiers as (
    select
        {{ facet_row(
            "tier",
            tier="queued.priority_tier",
            customers="count(*)",
            metric_value="cast(sum(queued.value_proxy) as float64)",
            holdout_customers="countif(queued.is_holdout)",
            new_customers="countif(queued.is_new)",
            cooldown_suppressed="countif(queued.is_suppressed)",
            cooldown_bypassed="countif(queued.is_bypassed)",
            exportable="countif(queued.is_exportable)",
            previous_customers="coalesce(max(previous.customers), 0)",
            previous_run_date="max(queued.previous_run_date)",
        ) | indent(8) }}
    from queued
    left join previous
        on queued.priority_tier = previous.priority_tier
    group by queued.priority_tier
),

-- a tier empty today but not at the last delivered run still has a row (it "left")
emptied as (
    select
        {{ facet_row(
            "tier", tier="previous.priority_tier", metric_value="0.0",
            previous_customers="previous.customers", previous_run_date="@previous_run_date",
        ) | indent(8) }}
    from previous
    where previous.priority_tier not in (select queue.priority_tier from queue)
),

median_revenue as (
    select distinct
        {{ facet_row(
            "median_total_revenue",
            customers="count(*) over ()",
            metric_value="percentile_cont(cast(total_revenue as float64), 0.5) over ()",
        ) | indent(8) }}
    from {{ tables.base_customers }}
    where snapshot_date = @run_date
)

select * from matrix
union all
select * from tiers
union all
select * from emptied
union all
select * from median_revenue
