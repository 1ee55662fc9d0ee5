"""ZetaSQL (Google's GoogleSQL analyzer and reference engine) for the production-path tests.

One ``ZetaSqlLocalService`` per test session: creating it compiles a 28 MB WebAssembly
module (about 30 s on 2 cores), so wasmtime's on-disk compilation cache is switched on and
kept under ``.cache/wasmtime`` (git-ignored); later sessions start in under a second.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import decimal
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache" / "wasmtime"

#: The language features the package's SQL needs, each one BigQuery's GoogleSQL has. The
#: analyzer starts from none (ZetaSQL's strictest dialect) in PRODUCT_EXTERNAL mode (the
#: public type names BigQuery uses: INT64, FLOAT64, no INT32 / UINT / DOUBLE), so a
#: statement that needs anything else fails until the feature is written down here.
#: docs/production-path.md explains each one against BigQuery's documentation.
BIGQUERY_FEATURES = (
    "FEATURE_ANALYTIC_FUNCTIONS",  # window functions: lead, sum over, percentile_cont
    "FEATURE_NUMERIC_TYPE",  # NUMERIC = DECIMAL(38, 9)
    "FEATURE_CREATE_TABLE_PARTITION_BY",  # CREATE TABLE ... PARTITION BY
    "FEATURE_CREATE_TABLE_CLUSTER_BY",  # CREATE TABLE ... CLUSTER BY
    "FEATURE_V_1_3_COLUMN_DEFAULT_VALUE",  # created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP()
    "FEATURE_CREATE_TABLE_NOT_NULL",  # NOT NULL columns
    "FEATURE_V_1_3_OMIT_INSERT_COLUMN_LIST",  # INSERT INTO t SELECT ... (no column list)
    "FEATURE_WITH_RECURSIVE",  # WITH RECURSIVE (incidents/incident_days.sql)
)

#: BigQuery's table options with their types (CREATE TABLE ... OPTIONS): an option outside
#: this list, or of the wrong type, fails the analysis as BigQuery would reject it.
BIGQUERY_TABLE_OPTIONS = {
    "partition_expiration_days": "FLOAT64",
    "require_partition_filter": "BOOL",
    "expiration_timestamp": "TIMESTAMP",
    "description": "STRING",
    "friendly_name": "STRING",
    "kms_key_name": "STRING",
    "default_rounding_mode": "STRING",
}


class ZetaSqlFailure(AssertionError):
    """ZetaSQL rejected a statement: names the file, line and column and its message."""


def _enable_compilation_cache() -> None:
    """Make zetasql's WasmClient build its wasmtime Engine with the on-disk cache on."""
    import wasmtime
    import zetasql.core.wasm_client as wasm_client

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    config_file = CACHE_DIR / "config.toml"
    config_file.write_text(f'[cache]\ndirectory = "{CACHE_DIR / "modules"}"\n')

    class CachedConfig(wasmtime.Config):
        def __init__(self) -> None:
            super().__init__()
            self.cache = str(config_file)

    # WasmClient builds `Config()` by the name it imported; only that name is replaced.
    wasm_client.Config = CachedConfig

    # zetasql copies requests in and answers out of wasm memory one byte at a time in
    # Python (seconds for a table of a few thousand rows); one memmove does the same.
    def write_bytes(self, ptr: int, data: bytes) -> None:
        base = ctypes.addressof(self.memory.data_ptr().contents)
        ctypes.memmove(base + ptr, data, len(data))

    def read_bytes(self, ptr: int, size: int) -> bytes:
        return ctypes.string_at(ctypes.addressof(self.memory.data_ptr().contents) + ptr, size)

    wasm_client.WasmClient.write_bytes = write_bytes
    wasm_client.WasmClient.read_bytes = read_bytes


def start_service():
    """The local service (the analyzer and the reference engine in one wasm instance)."""
    _enable_compilation_cache()
    from zetasql.core import ZetaSqlLocalService

    return ZetaSqlLocalService()


# -- types and values ------------------------------------------------------------------


def zeta_type(type_name: str):
    """A ZetaSQL Type from a BigQuery type name (INT64, ARRAY<STRING>, ...)."""
    from zetasql import types

    type_name = type_name.strip().upper()
    if type_name.startswith("ARRAY<") and type_name.endswith(">"):
        return types.Type(
            type_kind=types.TypeKind.TYPE_ARRAY,
            array_type=types.ArrayType(element_type=zeta_type(type_name[6:-1])),
        )
    kinds = {
        "INT64": "TYPE_INT64",
        "FLOAT64": "TYPE_DOUBLE",
        "NUMERIC": "TYPE_NUMERIC",
        "BIGNUMERIC": "TYPE_BIGNUMERIC",
        "STRING": "TYPE_STRING",
        "BOOL": "TYPE_BOOL",
        "DATE": "TYPE_DATE",
        "TIMESTAMP": "TYPE_TIMESTAMP",
        "DATETIME": "TYPE_DATETIME",
        "BYTES": "TYPE_BYTES",
    }
    return types.Type(type_kind=getattr(types.TypeKind, kinds[type_name]))


def type_name(zeta) -> str:
    """The BigQuery name of a ZetaSQL Type (the inverse of ``zeta_type``)."""
    kind = zeta.type_kind
    if isinstance(kind, int) and not hasattr(kind, "name"):  # a raw TypeProto's enum
        from zetasql.wasi._pb2.zetasql.public import type_pb2

        kind = type_pb2.TypeKind.Name(kind)
    else:
        kind = kind.name
    kind = kind.removeprefix("TYPE_")
    if kind == "ARRAY":
        return f"ARRAY<{type_name(zeta.array_type.element_type)}>"
    return {"DOUBLE": "FLOAT64"}.get(kind, kind)


_EPOCH = dt.date(1970, 1, 1)


def numeric_bytes(value: decimal.Decimal | int | float | str) -> bytes:
    """ZetaSQL's NUMERIC wire format: value x 10^9 as minimal little-endian two's complement."""
    scaled = decimal.Decimal(str(value)).scaleb(9)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than 9 decimals: not a NUMERIC")
    number = int(scaled)
    length = 1
    while not -(1 << (8 * length - 1)) <= number < (1 << (8 * length - 1)):
        length += 1
    return number.to_bytes(length, "little", signed=True)


def zeta_value(type_text: str, value: Any):
    """A ZetaSQL ValueProto of a BigQuery type from a Python value (None = typed NULL).

    Raw protobuf, not zetasql's ProtoModel wrapper: the wrapper loses TIMESTAMP values (a
    google.protobuf.Timestamp) in both directions.
    """
    from zetasql.wasi._pb2.zetasql.public import value_pb2

    type_text = type_text.upper()
    if value is None:
        return value_pb2.ValueProto()
    if type_text.startswith("ARRAY<"):
        element = type_text[6:-1]
        return value_pb2.ValueProto(
            array_value=value_pb2.ValueProto.Array(element=[zeta_value(element, v) for v in value])
        )
    if type_text == "INT64":
        return value_pb2.ValueProto(int64_value=int(value))
    if type_text == "FLOAT64":
        return value_pb2.ValueProto(double_value=float(value))
    if type_text == "STRING":
        return value_pb2.ValueProto(string_value=str(value))
    if type_text == "BOOL":
        return value_pb2.ValueProto(bool_value=_bool(value))
    if type_text == "DATE":
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        return value_pb2.ValueProto(date_value=(day - _EPOCH).days)
    if type_text == "NUMERIC":
        return value_pb2.ValueProto(numeric_value=numeric_bytes(value))
    if type_text == "TIMESTAMP":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        proto = value_pb2.ValueProto()
        proto.timestamp_value.FromDatetime(moment.astimezone(dt.UTC))
        return proto
    raise ValueError(f"no ZetaSQL value for BigQuery type {type_text}")


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return {"true": True, "false": False}[value.lower()]
    return bool(value)


def job_parameters(query_parameters: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(name, BigQuery type, value) of a job's ``queryParameters`` (what BigQuery receives)."""
    out = []
    for parameter in query_parameters:
        kind = parameter["parameterType"]
        if kind["type"] == "ARRAY":
            element = kind["arrayType"]["type"]
            values = [v.get("value") for v in parameter["parameterValue"]["arrayValues"]]
            out.append((parameter["name"], f"ARRAY<{element}>", values))
        else:
            out.append((parameter["name"], kind["type"], parameter["parameterValue"].get("value")))
    return out


# -- options, catalog and errors -------------------------------------------------------


def language_options():
    from zetasql import types

    return types.LanguageOptions(
        product_mode=types.ProductMode.PRODUCT_EXTERNAL,
        name_resolution_mode=types.NameResolutionMode.NAME_RESOLUTION_DEFAULT,
        enabled_language_features=[getattr(types.LanguageFeature, f) for f in BIGQUERY_FEATURES],
    )


def analyzer_options(parameters: list[tuple[str, str, Any]] = ()):
    """Named parameters declared with their BigQuery types; unknown options rejected."""
    from zetasql import types

    allowed = types.AllowedHintsAndOptions(
        disallow_unknown_options=True,
        option=[
            types.AllowedHintsAndOptions.Option(name=name, type=zeta_type(kind))
            for name, kind in BIGQUERY_TABLE_OPTIONS.items()
        ],
    )
    return types.AnalyzerOptions(
        language_options=language_options(),
        parameter_mode=types.ParameterMode.PARAMETER_NAMED,
        query_parameters=[
            types.AnalyzerOptions.QueryParameter(name=name, type=zeta_type(kind))
            for name, kind, _ in parameters
        ],
        allowed_hints_and_options=allowed,
        error_message_mode=types.ErrorMessageMode.ERROR_MESSAGE_MULTI_LINE_WITH_CARET,
        default_timezone="UTC",
    )


def catalog(tables: dict[str, list[tuple[str, str]]]):
    """A catalog of tables (name -> [(column, BigQuery type)]) with the builtin functions."""
    from zetasql import types
    from zetasql.api import CatalogBuilder, TableBuilder

    builder = CatalogBuilder("bigquery").with_builtin_functions(
        types.ZetaSQLBuiltinFunctionOptions(language_options=language_options())
    )
    for name, columns in tables.items():
        table = TableBuilder(name)
        for column, kind in columns:
            table.add_column(column, zeta_type(kind))
        builder.add_table(table.build())
    return builder.build()


_LOCATION = re.compile(r"\[at (\d+):(\d+)\]")


def failure(path: str, sql_text: str, error: Exception) -> ZetaSqlFailure:
    """The error as `path:line:column: ZetaSQL: message`, then ZetaSQL's caret under the spot.

    Lines are those of the file (rendering only replaces `{{ tables.x }}` on its line).
    """
    # ServerError.message keeps only the first line; raw_error has all of it
    raw = getattr(error, "raw_error", None) or str(error)
    message = re.sub(r"^Code: \d+, Message: ", "", raw, flags=re.DOTALL)
    match = _LOCATION.search(message)
    line, column = (match.group(1), match.group(2)) if match else ("?", "?")
    return ZetaSqlFailure(f"{path}:{line}:{column}: ZetaSQL: {message}")


# -- analysis of the package's statements ----------------------------------------------


class Analysis:
    """Analyses rendered statements in dependency order: tables, views, then the rest.

    The catalog is what ``include/sql/ddl/`` creates, as ZetaSQL itself resolved it: every
    CREATE TABLE adds its columns, every CREATE VIEW its output columns. ``count`` is the
    number of statements that ZetaSQL accepted.
    """

    def __init__(self, service) -> None:
        self.service = service
        self.tables: dict[str, list[tuple[str, str]]] = {}
        self.statements: dict[str, Any] = {}
        self.count = 0

    def analyse(self, path: str, text: str, parameters=()):
        """One statement (a file of the package holds exactly one): its resolved AST."""
        return self.check(path, text, parameters).model

    def check(self, path: str, text: str, parameters=()) -> Resolved:
        """``analyse`` without building the Python model of the AST until it is asked for."""
        try:
            response = _analyze(self.service, text, parameters, self.tables)
        except Exception as error:  # the service raises ServerError with the message
            raise failure(path, text, error) from None
        statement = self._record(Resolved(response.resolved_statement))
        self.statements[path] = statement
        self.count += 1
        return statement

    def analyse_script(self, path: str, text: str, parameters=()) -> list[tuple[Resolved, str]]:
        """A multi-statement script, split and analysed by ZetaSQL statement by statement
        (as BigQuery runs a script): ``[(resolved statement, its text)]``."""
        from zetasql import types

        data = text.encode()
        position, out = 0, []
        while data[position:].strip(b" \n\t;"):
            resume = types.ParseResumeLocation(
                input=text, byte_position=position, allow_resume=True
            )
            try:
                response = _analyze(self.service, None, parameters, self.tables, resume=resume)
            except Exception as error:
                raise failure(path, text, error) from None
            end = response.resume_byte_position
            piece = data[position:end].decode().strip().rstrip(";").strip()
            out.append((self._record(Resolved(response.resolved_statement)), piece))
            position = end
        self.statements[path] = [statement for statement, _ in out]
        self.count += len(out)
        return out

    def _record(self, statement: Resolved) -> Resolved:
        if statement.kind in ("ResolvedCreateTableStmt", "ResolvedCreateViewStmt"):
            model = statement.model
            name = ".".join(model.name_path)
            if statement.kind == "ResolvedCreateTableStmt":
                columns = [(c.name, type_name(c.type)) for c in model.column_definition_list]
            else:
                columns = [(c.name, type_name(c.column.type)) for c in model.output_column_list]
            self.tables[name] = columns
        return statement


class Resolved:
    """A resolved statement as the service returned it (a protobuf message); ``model`` is
    zetasql's Python model of it, built on first use (building it costs more than the
    analysis for a long query)."""

    def __init__(self, any_statement) -> None:
        self.raw = any_statement
        node = any_statement
        while type(node).__name__.startswith("AnyResolved"):  # oneof wrappers
            node = getattr(node, node.WhichOneof("node"))
        self.node = node
        self.kind = type(node).__name__.removesuffix("Proto")
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from zetasql.types import parse_proto

            self._model = parse_proto(self.raw)
        return self._model


_OPTIONS_PROTOS: dict[tuple, Any] = {}


def _options_proto(parameters):
    key = (BIGQUERY_FEATURES, tuple((name, kind) for name, kind, _ in parameters))
    if key not in _OPTIONS_PROTOS:
        _OPTIONS_PROTOS[key] = analyzer_options(parameters).to_proto()
    return _OPTIONS_PROTOS[key]


def _analyze(service, text, parameters, tables, resume=None):
    """The service's Analyze with the options built once per shape and the catalog
    registered once per set of tables (an unregistered catalog rebuilds the builtin
    functions in every call: 20 ms)."""
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    if resume is None:
        target = {"sql_statement": text}
    else:
        target = {"parse_resume_location": resume.to_proto()}
    request = pb.AnalyzeRequest(
        options=_options_proto(parameters),
        registered_catalog_id=_registered_catalog(service, tables),
        **target,
    )
    return service.wasm_client.call_grpc_func(
        "ZetaSqlLocalService_Analyze", request, pb.AnalyzeResponse
    )


_REGISTERED: dict[tuple, int] = {}


def _registered_catalog(service, tables) -> int:
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    proto = _catalog_proto(tables)
    key = (id(service), id(proto))  # protos are kept for the session: ids stay unique
    if key not in _REGISTERED:
        response = service.wasm_client.call_grpc_func(
            "ZetaSqlLocalService_RegisterCatalog",
            pb.RegisterCatalogRequest(simple_catalog=proto),
            pb.RegisterResponse,
        )
        _REGISTERED[key] = response.registered_id
    return _REGISTERED[key]


def output_columns(statement) -> list[tuple[str, str]]:
    """(name, BigQuery type) of a query's output (a model or the raw statement proto)."""
    return [(c.name, type_name(c.column.type)) for c in statement.output_column_list]


# -- BigQuery's partitioning and clustering rules --------------------------------------

#: Column types BigQuery accepts as clustering columns (FLOAT64, ARRAY, STRUCT, JSON and
#: INTERVAL are not among them).
CLUSTERING_TYPES = frozenset(
    {"STRING", "INT64", "NUMERIC", "BIGNUMERIC", "BOOL", "DATE", "DATETIME", "TIMESTAMP",
     "GEOGRAPHY", "RANGE"}
)  # fmt: skip
MAX_CLUSTERING_COLUMNS = 4
#: time units BigQuery allows per truncation function in PARTITION BY
_PARTITION_UNITS = {
    "date_trunc": ({"DATE"}, {"MONTH", "YEAR"}),
    "datetime_trunc": ({"DATETIME"}, {"DAY", "HOUR", "MONTH", "YEAR"}),
    "timestamp_trunc": ({"TIMESTAMP"}, {"DAY", "HOUR", "MONTH", "YEAR"}),
}


def _function(node) -> str:
    return node.function.name.split(":")[-1].lower()


def _date_part(node) -> str | None:
    from zetasql.wasi._pb2.zetasql.public.functions import datetime_pb2

    if type(node).__name__ != "ResolvedLiteral":
        return None
    return datetime_pb2.DateTimestampPart.Name(node.value.value.enum_value)


def partitioning_problems(statement) -> list[str]:
    """What BigQuery would refuse in a CREATE TABLE's PARTITION BY / CLUSTER BY / OPTIONS."""
    problems = []
    partitions = list(statement.partition_by_list or [])
    if len(partitions) > 1:
        problems.append(f"PARTITION BY has {len(partitions)} expressions; BigQuery takes one")
    for node in partitions:
        kind = type(node).__name__
        if kind == "ResolvedColumnRef":
            column_type = type_name(node.type)
            if column_type != "DATE":
                problems.append(
                    f"PARTITION BY column {node.column.name} is {column_type}; a bare column "
                    "must be DATE (use DATE(ts) or TIMESTAMP_TRUNC(ts, unit) otherwise)"
                )
        elif kind == "ResolvedFunctionCall" and _function(node) == "date":
            argument = node.argument_list[0]
            if type(argument).__name__ != "ResolvedColumnRef" or type_name(argument.type) not in (
                "TIMESTAMP",
                "DATETIME",
            ):
                problems.append("PARTITION BY DATE(x) needs a TIMESTAMP or DATETIME column")
        elif kind == "ResolvedFunctionCall" and _function(node) in _PARTITION_UNITS:
            types_allowed, units = _PARTITION_UNITS[_function(node)]
            argument, unit = node.argument_list[0], _date_part(node.argument_list[1])
            if type(argument).__name__ != "ResolvedColumnRef" or (
                type_name(argument.type) not in types_allowed
            ):
                problems.append(f"PARTITION BY {_function(node)} needs a column of its type")
            if unit not in units:
                problems.append(
                    f"PARTITION BY {_function(node)}(..., {unit}): BigQuery allows "
                    f"{', '.join(sorted(units))}"
                )
        elif kind == "ResolvedFunctionCall" and _function(node) == "range_bucket":
            pass  # integer-range partitioning
        else:
            problems.append("PARTITION BY expression is not one BigQuery accepts")
    clusters = list(statement.cluster_by_list or [])
    if len(clusters) > MAX_CLUSTERING_COLUMNS:
        problems.append(
            f"CLUSTER BY has {len(clusters)} columns; BigQuery allows at most "
            f"{MAX_CLUSTERING_COLUMNS}"
        )
    for node in clusters:
        if type(node).__name__ != "ResolvedColumnRef":
            problems.append("CLUSTER BY takes top-level columns only, not expressions")
        elif type_name(node.type) not in CLUSTERING_TYPES:
            problems.append(
                f"CLUSTER BY column {node.column.name} is {type_name(node.type)}; BigQuery "
                f"clusters on {', '.join(sorted(CLUSTERING_TYPES))}"
            )
    for option in statement.option_list or []:
        if option.name == "partition_expiration_days":
            time_unit = partitions and not (
                type(partitions[0]).__name__ == "ResolvedFunctionCall"
                and _function(partitions[0]) == "range_bucket"
            )
            if not time_unit:
                problems.append("partition_expiration_days needs a time-unit partitioned table")
            days = option.value.value.value.double_value
            if days is None or days <= 0:
                problems.append("partition_expiration_days must be a positive number")
    return problems


# -- execution by the reference engine -------------------------------------------------


def decode(zeta_type_, value) -> Any:
    """A Python value from a ZetaSQL ValueProto (NUMERIC read from its wire bytes)."""
    kind = type_name(zeta_type_)
    if kind.startswith("ARRAY<"):
        if not value.HasField("array_value"):
            return None
        return [decode(zeta_type_.array_type.element_type, v) for v in value.array_value.element]
    fields = {
        "INT64": "int64_value", "FLOAT64": "double_value", "STRING": "string_value",
        "BOOL": "bool_value", "DATE": "date_value", "NUMERIC": "numeric_value",
        "TIMESTAMP": "timestamp_value",
    }  # fmt: skip
    if not value.HasField(fields[kind]):
        return None  # an empty ValueProto is the NULL of the column's type
    raw = getattr(value, fields[kind])
    if kind == "DATE":
        return _EPOCH + dt.timedelta(days=raw)
    if kind == "NUMERIC":
        return decimal.Decimal(int.from_bytes(raw, "little", signed=True)).scaleb(-9)
    if kind == "TIMESTAMP":
        return raw.ToDatetime(tzinfo=dt.UTC)
    return raw


#: For a DELETE or UPDATE the engine's tables carry one pseudo-column more, the row's
#: position, declared as the primary key: the engine then says which rows it touched.
#: Pseudo-columns are invisible to ``SELECT *``, so the statement never sees it. (INSERT
#: runs without it: the engine cannot fill a key it is not given.)
ROW_KEY = "_row_key"


def table_content(columns: list[tuple[str, str]], rows: list[dict[str, Any]], row_key=False):
    """A table's rows as the engine takes them (with ``row_key``, each row's position)."""
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    key = (lambda position: [zeta_value("INT64", position)]) if row_key else (lambda _: [])
    return pb.TableContent(
        table_data=pb.TableData(
            row=[
                pb.TableData.Row(
                    cell=[zeta_value(kind, row.get(name)) for name, kind in columns] + key(position)
                )
                for position, row in enumerate(rows)
            ]
        )
    )


_CATALOG_PROTOS: dict[tuple, Any] = {}


def _catalog_proto(tables, row_key: bool = False):
    # building the catalog (with the builtin-function options) costs more than many of the
    # queries: one proto per distinct set of tables and language features is kept
    key = (
        BIGQUERY_FEATURES,
        row_key,
        tuple((name, tuple(columns)) for name, columns in sorted(tables.items())),
    )
    if key not in _CATALOG_PROTOS:
        proto = catalog(tables).to_proto()
        if row_key:
            for table in proto.table:
                column = table.column.add(name=ROW_KEY, is_pseudo_column=True)
                column.type.CopyFrom(zeta_type("INT64").to_proto())
                table.primary_key_column_index.append(len(table.column) - 1)
        _CATALOG_PROTOS[key] = proto
    return _CATALOG_PROTOS[key]


def _request(kind, text, parameters, tables, contents, row_key=False):
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    return kind(
        sql=text,
        options=_options_proto(parameters),
        simple_catalog=_catalog_proto(tables, row_key=row_key),
        table_content={
            name: content
            if not isinstance(content, list)
            else table_content(tables[name], content, row_key)
            for name, content in contents.items()
        },
        params=[pb.Parameter(name=n, value=zeta_value(k, v)) for n, k, v in parameters],
    )


def _call(service, path, text, method, request, response_type):
    try:
        return service.wasm_client.call_grpc_func(method, request, response_type)
    except Exception as error:
        raise failure(path, text, error) from None


def evaluate(service, path: str, text: str, parameters, tables, contents) -> list[dict[str, Any]]:
    """Run one query on the reference engine; ``contents`` maps a table name to its rows
    (dicts) or to its ``table_content``."""
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    request = _request(pb.EvaluateQueryRequest, text, parameters, tables, contents)
    response = _call(
        service, path, text, "ZetaSqlLocalService_EvaluateQuery", request,
        pb.EvaluateQueryResponse,
    )  # fmt: skip
    columns = response.prepared.columns
    return [
        {c.name: decode(c.type, v) for c, v in zip(columns, row.cell, strict=True)}
        for row in response.content.table_data.row
    ]


def modify(service, path: str, text: str, parameters, tables, contents, rows_of, *, row_key):
    """Run one DML statement (INSERT, UPDATE, DELETE) on the reference engine.

    ``contents`` as for ``evaluate``, built with ``row_key`` (True for UPDATE and DELETE);
    ``rows_of(table)`` gives a table's rows as ``contents`` holds them. Returns the
    modified table's name, its rows afterwards and the number of rows the statement touched.
    """
    from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2 as pb

    request = _request(pb.EvaluateModifyRequest, text, parameters, tables, contents, row_key)
    response = _call(
        service, path, text, "ZetaSqlLocalService_EvaluateModify", request,
        pb.EvaluateModifyResponse,
    )  # fmt: skip
    name = response.table_name
    columns = tables[name]
    kinds = {name: zeta_type(kind) for name, kind in columns}
    operation = pb.EvaluateModifyResponse.Row

    def row_of(cells) -> dict[str, Any]:
        return {c: decode(kinds[c], v) for (c, _), v in zip(columns, cells, strict=False)}

    deleted, updated, inserted = set(), {}, []
    for change in response.content:
        if change.operation == operation.INSERT:
            inserted.append(row_of(change.cell))
        else:
            key = change.old_primary_key[0].int64_value
            if change.operation == operation.DELETE:
                deleted.add(key)
            else:
                updated[key] = row_of(change.cell)
    before = rows_of(name)
    after = [updated.get(i, r) for i, r in enumerate(before) if i not in deleted] + inserted
    return name, after, len(response.content)


#: What the production-path suite did, for the line `make test` prints at the end.
STATS = {"analysed": 0, "compared": 0, "rows": 0, "mismatches": 0}
