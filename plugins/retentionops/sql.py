"""The SQL seam: every query is BigQuery Standard SQL under ``include/sql/``, written once.

Two steps turn a file into something a backend runs:

1. ``render`` fills in table names (``{{ tables.orders }}``) from the settings. This is the
   only templating; values never enter SQL text, they are ``@name`` query parameters.
2. ``to_duckdb`` transpiles the rendered BigQuery text with sqlglot for the embedded
   warehouse. Every BigQuery/DuckDB difference is handled here and nowhere else.

The BigQuery path sends the rendered text unchanged (``BigQueryInsertJobOperator`` renders
the same file with the same ``tables`` mapping through Airflow's Jinja environment).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from retentionops.errors import UserError
from retentionops.settings import PROJECT_ROOT, Settings, ratio, split_list
from retentionops.vocabulary import TIERS

INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"


@dataclass(frozen=True)
class Table:
    """A table the package reads or writes, by logical name.

    ``partition_field`` is the date column a run replaces (or the table's date column);
    ``derived`` tables are computed
    from the orders (stale once the orders change); ``retained`` tables lose a date's rows
    ``retention_days`` after they were written, the write time being the completion time
    of the run marker step named by ``marker``.
    """

    name: str
    partition_field: str | None = None
    derived: bool = False
    retained: bool = False
    marker: str | None = None
    #: columns added after the table first shipped: ``ensure_tables`` adds them to older
    #: warehouses (``alter table ... add column if not exists``)
    added_columns: tuple[tuple[str, str], ...] = ()
    #: columns a later version retired: ``ensure_tables`` drops them from older warehouses
    #: (``alter table ... drop column if exists``), so no writer has to fill them
    dropped_columns: tuple[str, ...] = ()


#: Every table of the package, in creation order (the one list of table names).
TABLE_CATALOG = (
    Table("orders"),
    Table("orders_incoming"),
    # the orders' summaries, kept by every load with the orders (not per date)
    Table("first_orders"),
    Table("cohort_activity"),
    Table("base_customers", "snapshot_date", derived=True, retained=True, marker="detection"),
    Table("retention_snapshot", "snapshot_date", derived=True, retained=True, marker="detection"),
    Table("churn_detection", "snapshot_date", derived=True, retained=True, marker="detection"),
    Table(
        "cohort_retention_evolution",
        "snapshot_date",
        derived=True,
        retained=True,
        marker="detection",
    ),
    Table("alert_logic", "alert_date", derived=True, marker="detection"),
    Table(
        "customer_priority",
        "run_date",
        derived=True,
        retained=True,
        marker="customer_priority",
        added_columns=(
            ("new_in_tier", "bool"),
            ("cooldown_status", "string"),
            ("previous_run_date", "date"),
        ),
        # the period-based holdout, replaced by incident_holdouts (docs/audiences.md)
        dropped_columns=("is_holdout",),
    ),
    Table("run_markers", "run_date", derived=True),
    Table(
        "ops_runs_log",
        "alert_date",
        added_columns=(
            ("incident_id", "string"),
            ("incident_event", "string"),
            ("note", "string"),
            *((f"exported_{tier}", "int64") for tier in ("p1", "p2", "p3")),
            *((f"cooldown_{tier}", "int64") for tier in ("p1", "p2", "p3")),
            ("audience_changes", "string"),
            ("anomalies", "string"),
            *((f"holdout_{tier}", "int64") for tier in ("p1", "p2", "p3")),
            *((f"treated_{tier}", "int64") for tier in ("p1", "p2", "p3")),
            ("holdout_note", "string"),
        ),
    ),
    Table("deliveries", "run_date"),
    # the ledger: one row per incident event, claimed before it is sent (ledger.py)
    Table("incident_events", "run_date"),
    # what each run exported, one row per customer (not derived: it happened)
    Table("audience_exports", "run_date"),
    # each incident's holdout, one row per customer it saw (not derived, not retained: a
    # decision, kept for as long as it is measured; holdouts.py)
    Table("incident_holdouts"),
    Table("ops_health_daily"),
)
TABLES = tuple(t.name for t in TABLE_CATALOG)
DERIVED_TABLES = tuple(t.name for t in TABLE_CATALOG if t.derived)
RETAINED_TABLES = tuple(t.name for t in TABLE_CATALOG if t.retained)


def table(name: str) -> Table:
    """The catalog entry of a table; an unknown name is a bug, said plainly."""
    for entry in TABLE_CATALOG:
        if entry.name == name:
            return entry
    raise KeyError(f"no table '{name}'; known tables: {', '.join(TABLES)}")


@dataclass(frozen=True)
class Column:
    """One column as a table's DDL (``include/sql/ddl/create_<table>.sql``) defines it."""

    name: str
    type: str  # the BigQuery type: STRING, DATE, NUMERIC, ...
    required: bool  # NOT NULL
    precision: int | None = None  # NUMERIC(P, S) / BIGNUMERIC(P, S) only
    scale: int | None = None

    @property
    def decimal_places(self) -> int | None:
        """The digits a NUMERIC / BIGNUMERIC keeps after the point (9 / 38 by default)."""
        if self.type not in ("NUMERIC", "BIGNUMERIC"):
            return None
        if self.scale is not None:
            return self.scale
        return 9 if self.type == "NUMERIC" else 38


@lru_cache(maxsize=32)
def table_columns(name: str) -> tuple[Column, ...]:
    """A table's columns, in order, parsed from its DDL: a load job that must give the table
    its schema (BigQuery's WRITE_TRUNCATE replaces it) states exactly this one."""
    import sqlglot
    from sqlglot import exp

    text = (
        _jinja().get_template(sql_path(f"ddl/create_{name}")).render(tables={t: t for t in TABLES})
    )
    statement = sqlglot.parse_one(text, read="bigquery")
    if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
        raise ValueError(f"include/sql/ddl/create_{name}.sql does not define a table's columns")
    columns = []
    for definition in statement.this.expressions:
        if not isinstance(definition, exp.ColumnDef):  # a table constraint (primary key)
            continue
        kind = definition.args["kind"]
        parameters = [int(e.sql()) for e in kind.expressions]
        precision, scale = (parameters + [None, None])[:2] if parameters else (None, None)
        columns.append(
            Column(
                name=definition.name,
                type=exp.DataType(this=kind.this).sql(dialect="bigquery"),
                required=any(
                    isinstance(c.args.get("kind"), exp.NotNullColumnConstraint)
                    for c in definition.constraints
                ),
                precision=precision,
                scale=scale,
            )
        )
    return tuple(columns)


# Parameters whose BigQuery type cannot be inferred from a templated string value (or from
# a NULL: the last delivered run's date may be none).
_DATE_PARAMETERS = frozenset({"run_date", "from_date", "previous_run_date"})


def table_refs(settings: Settings) -> dict[str, str]:
    """Map logical table names to what the SQL text should say for this backend."""
    if settings.warehouse_backend == "bigquery":
        prefix = f"{settings.bigquery_project}.{settings.bigquery_dataset}"
        return {name: f"`{prefix}.{name}`" for name in TABLES}
    return {name: name for name in TABLES}


@lru_cache(maxsize=1)
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(INCLUDE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML; only identifiers from settings are substituted
    )


def sql_path(name: str) -> str:
    """Return the include-relative path of a SQL file (``detection/01_base_customers``)."""
    relative = f"sql/{name}" if name.endswith(".sql") else f"sql/{name}.sql"
    if not (INCLUDE_DIR / "sql").is_dir():
        # a plain `pip install .` copies the code, not the repository's include/ folder
        raise UserError(
            f"the SQL files are not where the package looks for them ({INCLUDE_DIR / 'sql'}): "
            "RetentionOps runs from its repository (dags/, plugins/, include/); install it "
            "from a checkout with `pip install -e .` (or `make install`)"
        )
    if not (INCLUDE_DIR / relative).is_file():
        raise FileNotFoundError(f"no SQL file include/{relative}")
    return relative


def render(name: str, settings: Settings) -> str:
    """Render one SQL file to BigQuery text with this backend's table names (the only
    templating: every value is a query parameter)."""
    return _jinja().get_template(sql_path(name)).render(tables=table_refs(settings))


def _wrap_integer_division_operands(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # sqlglot prints DIV(a + b, c) as `a + b // c`; parenthesise to keep the meaning.
    if isinstance(node, exp.IntDiv):
        for key in ("this", "expression"):
            operand = node.args[key]
            if not isinstance(operand, exp.Paren | exp.Column | exp.Literal | exp.Parameter):
                node.set(key, exp.Paren(this=operand.copy()))
    return node


def _full_precision_numeric(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # BigQuery NUMERIC is DECIMAL(38, 9); DuckDB's bare DECIMAL would be DECIMAL(18, 3).
    decimal_types = (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)
    if isinstance(node, exp.DataType) and node.this in decimal_types and not node.expressions:
        return exp.DataType.build("DECIMAL(38, 9)", dialect="duckdb")
    return node


def _countif_counts_zero(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # BigQuery's COUNTIF of only NULL or FALSE inputs is 0; DuckDB's COUNT_IF is then NULL.
    # COUNT(CASE WHEN x THEN 1 END) is 0 on both.
    if isinstance(node, exp.CountIf):
        condition = node.this.copy()
        return exp.Count(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]))
    return node


def _date_trunc_returns_date(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # BigQuery's DATE_TRUNC(date, MONTH) is a DATE; DuckDB's date_trunc('MONTH', date) is a
    # TIMESTAMP, which leaked into results (get_health's `month`). The package truncates
    # DATE values only, so the cast restores BigQuery's type.
    if isinstance(node, exp.DateTrunc) and not isinstance(node.parent, exp.PartitionedByProperty):
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


def _date_arithmetic_returns_date(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # BigQuery's DATE_ADD / DATE_SUB take and return a DATE (TIMESTAMP_ADD is another
    # function); DuckDB's date + INTERVAL is a TIMESTAMP, which leaked into results (and
    # into a cast to STRING: '2011-02-03 00:00:00', not '2011-02-03').
    parent = node.parent
    already_date = isinstance(parent, exp.Cast) and parent.to.this == exp.DataType.Type.DATE
    if isinstance(node, exp.DateAdd | exp.DateSub) and not already_date:
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


def _enforced_keys(node):  # sqlglot expression in, expression out
    from sqlglot import exp

    # BigQuery accepts keys only as `NOT ENFORCED` hints; DuckDB has no such clause and
    # enforces every key, which is the point: the embedded warehouse refuses a duplicate.
    if isinstance(node, exp.PrimaryKey) and node.args.get("options"):
        kept = [o for o in node.args["options"] if str(o).upper() != "NOT ENFORCED"]
        node.set("options", kept or None)
    return node


#: ``RETENTIONOPS_SQL_CACHE_DIR``: where transpiled statements are kept between processes
#: (default ``$XDG_CACHE_HOME/retentionops/sql`` or ``~/.cache/retentionops/sql``; empty:
#: no disk cache).
SQL_CACHE_ENV = "RETENTIONOPS_SQL_CACHE_DIR"


@lru_cache(maxsize=1)
def _cache_key_prefix() -> str:
    """What a cached answer depends on besides the SQL text: sqlglot's version and this
    module's own code (the seam's fixes)."""
    import hashlib
    from importlib.metadata import version

    return f"{version('sqlglot')}\0{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}"


def _cache_dir() -> Path | None:
    configured = os.environ.get(SQL_CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory (a bare service account): no disk cache
            return None
    return Path(base) / "retentionops" / "sql"


def _disk_cached(kind: str, text: str, compute: Any) -> str:
    """``compute(text)`` (a string), kept on disk so that each new process (every Airflow
    task is one) does not transpile the same statements again: about 1.3 s per daily pack.

    The file is named by a hash of the inputs and holds a checksum of its body: a file
    changed or cut short is ignored and rewritten; a cache that cannot be read or written
    (read-only home, a file in the way) is skipped, never an error."""
    import hashlib

    folder = _cache_dir()
    if folder is None:
        return compute(text)
    key = hashlib.sha256(f"{kind}\0{_cache_key_prefix()}\0{text}".encode()).hexdigest()
    path = folder / key[:2] / f"{key}.sql"
    try:
        stored = path.read_text(encoding="utf-8")
        checksum, _, body = stored.partition("\n")
        if checksum == "-- " + hashlib.sha256(body.encode()).hexdigest():
            return body
    except (OSError, UnicodeDecodeError):
        pass
    body = compute(text)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        checksum = "-- " + hashlib.sha256(body.encode()).hexdigest()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(f"{checksum}\n{body}", encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass
    return body


@lru_cache(maxsize=256)
def to_duckdb(bigquery_sql: str) -> str:
    """Transpile rendered BigQuery SQL to DuckDB (one statement); cached per process and on
    disk (``RETENTIONOPS_SQL_CACHE_DIR``)."""
    return _disk_cached("duckdb", bigquery_sql, _transpile)


def _transpile(bigquery_sql: str) -> str:
    import sqlglot  # imported here: DAG parsing never needs the transpiler

    tree = sqlglot.parse_one(bigquery_sql, read="bigquery")
    tree = (
        tree.transform(_wrap_integer_division_operands)
        .transform(_full_precision_numeric)
        .transform(_countif_counts_zero)
        .transform(_date_trunc_returns_date)
        .transform(_date_arithmetic_returns_date)
        .transform(_enforced_keys)
    )
    return tree.sql(dialect="duckdb", unsupported_level=sqlglot.ErrorLevel.IGNORE)


@lru_cache(maxsize=256)
def parameter_names(bigquery_sql: str) -> frozenset[str]:
    """Names of the ``@parameters`` a statement (or a multi-statement script) uses (cached
    like ``to_duckdb``)."""
    names = _disk_cached("parameters", bigquery_sql, _parameter_names)
    return frozenset(name for name in names.split(",") if name)


def _parameter_names(bigquery_sql: str) -> str:
    import sqlglot
    from sqlglot import exp

    statements = sqlglot.parse(bigquery_sql, read="bigquery")
    names = {node.name for tree in statements if tree for node in tree.find_all(exp.Parameter)}
    return ",".join(sorted(names))


def detection_parameters(
    settings: Settings, run_date: Any, from_date: Any | None = None
) -> dict[str, Any]:
    """Every value the detection SQL needs; thresholds come from settings only.

    SQL5 reads orders from ``@from_date`` - (baseline_days + at_risk_days): a ``from_date``
    of "the whole history" (``date.min``) is raised just enough for that date to exist on
    both engines (no order is dated in the first months of year 1).
    """
    if isinstance(from_date, dt.date):
        earliest = dt.date.min + dt.timedelta(days=settings.baseline_days + settings.at_risk_days)
        from_date = max(from_date, earliest)
    frequency = ratio(settings.frequency_drop_factor)
    inconsistent = ratio(settings.status_inconsistent_factor)
    return {
        "run_date": run_date,
        "from_date": run_date if from_date is None else from_date,
        "active_days": settings.active_days,
        "at_risk_days": settings.at_risk_days,
        "frequency_drop_num": frequency.numerator,
        "frequency_drop_den": frequency.denominator,
        "status_inconsistent_num": inconsistent.numerator,
        "status_inconsistent_den": inconsistent.denominator,
        "status_inconsistent_max_orders": settings.status_inconsistent_max_orders,
        "weight_frequency_drop": settings.weight_frequency_drop,
        "weight_value_drop": settings.weight_value_drop,
        "weight_status_inconsistent": settings.weight_status_inconsistent,
        "risk_level_high_min": settings.risk_level_high_min,
        "risk_level_medium_min": settings.risk_level_medium_min,
        "baseline_days": settings.baseline_days,
        # percent given to 2 decimals -> integer basis points, as SQL5 compares them
        "threshold_warning_bp": round(settings.threshold_warning_pct * 100),
        "threshold_critical_bp": round(settings.threshold_critical_pct * 100),
        "min_sample_size": settings.min_sample_size,
    }


def alert_history_parameters(
    settings: Settings, run_date: Any, from_date: Any = dt.date.min
) -> dict[str, Any]:
    """SQL5 for the dates ``from_date``..``run_date`` (by default every date up to the run
    date): the alert history incidents are built from.

    Each row depends on the orders up to its own date only, so rewriting the history of
    earlier dates gives back the same rows (point-in-time), and a fresh warehouse or a
    backfill gets the whole history in the one pass SQL5 makes anyway. A run that finds the
    history stored up to some date computes only the dates after it (detection.extend_history).
    """
    return detection_parameters(settings, run_date, from_date=from_date)


def alert_settings_fingerprint(settings: Settings) -> str:
    """A short hash of every setting SQL5's rows depend on: stored rows are reused only
    while it is unchanged (a new threshold or window recomputes the history)."""
    import hashlib

    values = detection_parameters(settings, None)
    values.pop("run_date"), values.pop("from_date")
    text = ";".join(f"{key}={values[key]}" for key in sorted(values))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


#: The settings the priority queue's SQL reads under their own names (``@value_bonus_cap``).
_PRIORITY_SETTINGS = (
    "p1_value_filter", "p3_recency_cap_days", "value_bonus_cap", "value_bonus_per_log",
    "urgency_bonus_cap", "urgency_days_per_point", "value_proxy_factor", "contact_cooldown_days",
)  # fmt: skip


def priority_parameters(settings: Settings, run_date: Any) -> dict[str, Any]:
    """Values of the priority queue rules (design section 7), all from settings."""
    values: dict[str, Any] = {"run_date": run_date}
    for tier in (t.lower() for t in TIERS):
        values[f"{tier}_status"] = getattr(settings, f"{tier}_status")
        values[f"{tier}_risk_levels"] = split_list(getattr(settings, f"{tier}_risk_levels"))
        values[f"{tier}_base_score"] = getattr(settings, f"{tier}_base_score")
        values[f"{tier}_action"] = getattr(settings, f"{tier}_action")
    values.update({name: getattr(settings, name) for name in _PRIORITY_SETTINGS})
    values.update(
        cooldown_bypass=settings.cooldown_bypass_on_escalation,
        # the last delivered run, a fact of the warehouse read when the queue runs
        # (actions.last_delivered_run; the BigQuery DAG's task last_delivered_run): the
        # caller sets it, NULL means none
        previous_run_date=None,
    )
    return values


def bigquery_parameter_type(name: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    if name in _DATE_PARAMETERS or isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    return "STRING"


def bigquery_parameter_value(value: Any) -> dict[str, Any]:
    """A scalar's ``parameterValue`` in a BigQuery job's ``queryParameters``."""
    if value is None:
        return {}  # a typed NULL: the value is simply absent
    if isinstance(value, dt.date):
        return {"value": value.isoformat()}
    if isinstance(value, bool):
        return {"value": str(value).lower()}
    return {"value": str(value)}


def bigquery_query_parameters(
    bigquery_sql: str, values: dict[str, Any], types: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Build the job's ``queryParameters`` for the parameters the statement uses.

    Types come from the values; ``types`` names them where a value may be NULL.
    """
    used = parameter_names(bigquery_sql)
    missing = sorted(used - set(values))
    if missing:
        raise KeyError(f"no value for query parameter(s) {', '.join(missing)}")
    parameters = []
    for name in sorted(used):
        value = values[name]
        if isinstance(value, list | tuple):
            element = bigquery_parameter_type(name, value[0]) if value else "STRING"
            parameters.append(
                {
                    "name": name,
                    "parameterType": {"type": "ARRAY", "arrayType": {"type": element}},
                    "parameterValue": {"arrayValues": [bigquery_parameter_value(v) for v in value]},
                }
            )
            continue
        kind = (types or {}).get(name) or bigquery_parameter_type(name, value)
        parameters.append(
            {
                "name": name,
                "parameterType": {"type": kind},
                "parameterValue": bigquery_parameter_value(value),
            }
        )
    return parameters
