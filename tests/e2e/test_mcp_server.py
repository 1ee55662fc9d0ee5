"""The MCP server end to end: a real subprocess over stdio, driven by the SDK's client.

One server session (module fixture) walks every tool on the bundled sample, with the
playbook simulator as the Make webhook; the tests then compare what came back with the
library computed directly in this process (the DAG's code) on the same warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from devtools.playbook_sim import PlaybookSimulator
from retentionops import actions, detection, runlog, service
from retentionops.dates import as_date
from retentionops.service import context as service_context
from retentionops.settings import load_settings
from retentionops.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parents[2]  # the repository
CRITICAL, WARNING, QUIET = "2011-05-13", "2011-09-09", "2011-07-01"
# the April incident is open on 05-17 but the day has no alert: no event to deliver
NO_EVENT = "2011-05-17"

READS = {
    "get_alert_decision",
    "get_operational_context",
    "get_recommended_action",
    "measure_impact",
    "get_health",
}
# idempotent writes; the incident tools store the alert history they need (SQL5's rows)
WRITES = {
    "build_priority_queue", "generate_brief", "export_audience", "get_incident",
    "list_incidents",
}  # fmt: skip
REQUIRED = {
    "get_alert_decision": ["date"],
    "get_operational_context": ["date"],
    "build_priority_queue": ["date"],
    "generate_brief": ["date"],
    "export_audience": ["date", "tier"],
    "trigger_playbook": ["date"],
    "get_recommended_action": ["customer_id", "date"],
    "measure_impact": [],  # a run_id or an incident_id: the service refuses neither / both
    "get_health": ["from_date", "to_date"],
    "get_incident": ["date"],
    "list_incidents": ["from_date", "to_date"],
}


def _env(base: Path) -> dict[str, str]:
    return {
        "RETENTIONOPS_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        "RETENTIONOPS_ARTIFACTS_DIR": str(base / "artifacts"),
        "RETENTIONOPS_EXPORT_ROOT": str(base),
        "RETENTIONOPS_NOTIFY_MAX_AGE_DAYS": "0",  # the sample is from 2011
    }


class Recorder:
    """Calls a tool and keeps (is_error, structured content or error text) by label, with
    the tool's name and the progress notifications the call received."""

    def __init__(self, session: Any) -> None:
        self.session, self.results = session, {}
        self.tools: dict[str, str] = {}
        self.progress: dict[str, list[tuple[float, float | None, str | None]]] = {}

    async def __call__(self, label: str, tool: str, **arguments: Any) -> Any:
        notes = self.progress.setdefault(label, [])

        async def on_progress(progress: float, total: float | None, message: str | None):
            notes.append((progress, total, message))

        result = await self.session.call_tool(tool, arguments, progress_callback=on_progress)
        if result.is_error:
            value = " ".join(getattr(block, "text", "") for block in result.content)
        else:
            value = result.structured_content
        self.results[label] = (bool(result.is_error), value)
        self.tools[label] = tool
        return value


async def _conversation(env: dict[str, str], base: Path, sim: PlaybookSimulator) -> dict:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "retentionops.mcp_server"],
        env=env,
        cwd=str(ROOT),
    )
    with (base / "server_stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=60) as session,
        ):
            initialized = await session.initialize()
            listed = (await session.list_tools()).tools
            call = Recorder(session)
            # errors first: nothing has been computed yet
            await call("context_before_queue", "get_operational_context", date=CRITICAL)
            await call("impossible_date", "get_alert_decision", date="2011-02-30")
            await call("bad_format", "get_alert_decision", date="13/05/2011")
            await call("no_orders", "get_alert_decision", date="2009-01-01")
            await call("no_orders_queue", "build_priority_queue", date="2009-01-01")
            await call("export_no_queue", "export_audience", date=CRITICAL, tier="P1")
            # the design's flow for the CRITICAL date
            for day in (CRITICAL, WARNING, QUIET):
                await call(f"decision_{day}", "get_alert_decision", date=day)
            await call("queue", "build_priority_queue", date=CRITICAL)
            await call("context", "get_operational_context", date=CRITICAL)
            await call("brief", "generate_brief", date=CRITICAL)
            await call("brief_email", "generate_brief", date=CRITICAL, format="email")
            await call("brief_bad_format", "generate_brief", date=CRITICAL, format="pdf")
            p1 = await call("export_p1", "export_audience", date=CRITICAL, tier="P1")
            await call(
                "export_p2",
                "export_audience",
                date=CRITICAL,
                tier="P2",
                destination="csv",
                limit=120,
                folder=str(base / "exports"),
            )
            await call("export_p4", "export_audience", date=CRITICAL, tier="P4")
            await call("export_limit_0", "export_audience", date=CRITICAL, tier="P1", limit=0)
            with open(p1["link"], newline="") as handle:
                first = next(csv.DictReader(handle))["customer_id"]
            await call("action_p1", "get_recommended_action", customer_id=first, date=CRITICAL)
            await call("action_unknown", "get_recommended_action", customer_id="0", date=CRITICAL)
            # the incidents, then the playbook: a date without an event, a working webhook,
            # the same event again (delivered: not sent), a resend while the webhook is down
            await call("incident", "get_incident", date=CRITICAL)
            await call("incidents", "list_incidents", from_date="2011-01-01", to_date="2011-12-09")
            await call("queue_quiet", "build_priority_queue", date=NO_EVENT)
            await call("playbook_quiet", "trigger_playbook", date=NO_EVENT)
            await call("playbook", "trigger_playbook", date=CRITICAL)
            await call("playbook_again", "trigger_playbook", date=CRITICAL)
            sim.configure(fail_next=99)
            before = len(sim.requests)
            await call("playbook_down", "trigger_playbook", date=CRITICAL, resend=True)
            down_attempts = len(sim.requests) - before
            sim.configure(fail_next=0)
            await call("playbook_bad_mode", "trigger_playbook", date=CRITICAL, rollout_mode="x")
            # v2 and health
            run_id = call.results["playbook"][1]["run_id"]
            await call("impact", "measure_impact", run_id=run_id)
            await call("impact_unknown", "measure_impact", run_id="nope")
            await call("impact_later", "measure_impact", run_id=run_id, horizon_days=365)
            await call("impact_incident", "measure_impact", incident_id="INC-20110513")
            await call("impact_neither", "measure_impact")
            await call("health", "get_health", from_date="2011-01-01", to_date="2011-12-31")
            await call(
                "health_reversed", "get_health", from_date="2011-12-31", to_date="2011-01-01"
            )
    return {
        "tools": listed,
        "results": call.results,
        "called": call.tools,
        "progress": call.progress,
        "server_info": initialized.server_info,
        "down_attempts": down_attempts,
    }


@pytest.fixture(scope="module")
def session(tmp_path_factory, sample_warehouse_file):
    import shutil

    base = tmp_path_factory.mktemp("mcp")
    env = _env(base)
    settings = load_settings(env=env)
    shutil.copyfile(sample_warehouse_file, settings.duckdb_file)

    sim = PlaybookSimulator(base / "sim").start()
    try:
        server_env = {
            **env,
            "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
            "AIRFLOW_HOME": str(base / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_MAKE_WEBHOOK": json.dumps({"conn_type": "http", "host": sim.url}),
            # the DAG's policy would wait 1 s, then 2 s (webhook_retries 2: three attempts);
            # the MCP budget stops before the 2 s wait: two attempts
            "RETENTIONOPS_WEBHOOK_RETRY_DELAY_SECONDS": "1",
            "RETENTIONOPS_MCP_WEBHOOK_WAIT_SECONDS": "1.5",
        }
        outcome = anyio.run(_conversation, server_env, base, sim)
        token = sim.url.rsplit("/", 1)[-1]
        yield {**outcome, "settings": settings, "base": base, "sim": sim, "token": token}
    finally:
        sim.stop()


def _enum(schema: dict) -> list:
    """The enum of a property, also when it is optional (anyOf with null)."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option:
            return option["enum"]
    return []


def ok(session: dict, label: str) -> Any:
    is_error, value = session["results"][label]
    assert not is_error, f"{label}: {value}"
    return value


def error(session: dict, label: str) -> str:
    is_error, value = session["results"][label]
    assert is_error, f"{label} should be a tool error, got {value}"
    assert "Traceback" not in value and 'File "' not in value
    return value


# -- the tool list ------------------------------------------------------------------------


def test_tools_are_the_designs_with_annotations_and_schemas(session):
    tools = {t.name: t for t in session["tools"]}
    assert set(tools) == READS | WRITES | {"trigger_playbook"}
    for name, tool in tools.items():
        assert tool.description and tool.input_schema["type"] == "object"
        assert sorted(tool.input_schema.get("required", [])) == sorted(REQUIRED[name]), name
        hints = tool.annotations
        if name in READS:
            assert hints.read_only_hint is True, name
        elif name in WRITES:
            assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
                False,
                False,
                True,
            ), name
    playbook = tools["trigger_playbook"].annotations
    assert playbook.read_only_hint is False
    assert (playbook.destructive_hint, playbook.idempotent_hint, playbook.open_world_hint) == (
        True,
        False,
        True,
    )
    props = tools["export_audience"].input_schema["properties"]
    assert props["tier"]["enum"] == ["P1", "P2", "P3"]
    # no number of its own: a call without one takes the export_limit setting (tested below)
    assert props["limit"]["default"] is None
    assert "export_limit setting" in props["limit"]["description"]
    [bounded] = [branch for branch in props["limit"]["anyOf"] if branch.get("type") == "integer"]
    assert (bounded["minimum"], bounded["maximum"]) == (1, 100000)
    assert _enum(props["destination"]) == ["csv", "gcs", "gsheet"]
    assert "destination" not in tools["export_audience"].input_schema["required"]
    assert _enum(tools["trigger_playbook"].input_schema["properties"]["rollout_mode"]) == [
        "shadow",
        "pilot",
        "production",
    ]
    assert props["date"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert props["date"]["description"]
    brief = tools["generate_brief"].input_schema["properties"]["format"]
    assert brief["enum"] == ["markdown", "slack", "email"] and brief["default"] == "slack"
    # no default in the schema: the impact_horizon_days setting (30) decides
    assert tools["measure_impact"].input_schema["properties"]["horizon_days"].get("default") is None


def test_the_tools_hide_their_context_parameter(session):
    """Every tool takes the request's ``ctx`` (its lifespan context has the settings); the
    SDK keeps it out of the arguments a client sees."""
    tools = {t.name: t for t in session["tools"]}
    assert set(tools["trigger_playbook"].input_schema["properties"]) == {
        "date", "rollout_mode", "resend", "allow_late_data", "approved_by",
    }  # fmt: skip
    assert set(tools["get_alert_decision"].input_schema["properties"]) == {"date"}
    for name, tool in tools.items():
        assert "ctx" not in tool.input_schema["properties"], name


# -- typed results: the output schemas and the server's version ---------------------------

#: Keys each tool's outputSchema must declare (a sample: the schema has them all, see below).
DECLARED = {
    "get_alert_decision": {"severity", "alert_flag", "current_value", "baseline_value", "source"},
    "get_operational_context": {"decision", "incident", "plan", "tiers", "exported_tiers"},
    "build_priority_queue": {"run_id", "run_date", "tiers", "decision"},
    "generate_brief": {"format", "brief", "slack", "files", "plan", "tiers"},
    "export_audience": {"tier", "link", "row_count", "uploads", "status"},
    "trigger_playbook": {"sent", "reason", "ticket_id", "dedupe_key", "exports"},
    "get_incident": {"phase", "incident_id", "event", "note"},
    "list_incidents": {"from", "to", "incidents", "warmup_until"},
    "get_recommended_action": {"queued", "tier", "recommended_action", "reason"},
    "measure_impact": {"measurable", "per_tier", "measurable_from"},
    "get_health": {"run_success_rate", "webhook_failure_rate", "alert_frequency"},
}


def _inlined(schema: Any, defs: dict | None = None) -> Any:
    """The schema with its ``$ref``s to ``$defs`` replaced by the definitions."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _closed(schema: Any) -> Any:
    """The (inlined) schema with every object that lists its properties closed to other
    keys: a key a tool returns but its TypedDict does not declare then fails validation."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def test_every_tool_declares_the_shape_of_its_result(session):
    schemas = {t.name: _inlined(t.output_schema) for t in session["tools"]}
    assert set(DECLARED) == set(schemas)
    for name, schema in schemas.items():
        assert schema["type"] == "object", name
        assert DECLARED[name] <= set(schema["properties"]), name
        assert schema["description"], name  # what the answer is
    # nested shapes are declared too, not left as free-form objects
    queue = schemas["build_priority_queue"]["properties"]
    severity = queue["decision"]["properties"]["severity"]
    assert severity["enum"] == ["INFO", "WARNING", "CRITICAL"]
    assert set(queue["tiers"]["properties"]) == {"P1", "P2", "P3"}
    exports = schemas["trigger_playbook"]["properties"]["exports"]["items"]["properties"]
    assert {"tier", "link", "row_count"} <= set(exports)
    plan = schemas["generate_brief"]["properties"]["plan"]["properties"]
    assert {"event", "send", "reason", "dedupe_key"} <= set(plan)
    # a field's docstring is its description
    sent = schemas["trigger_playbook"]["properties"]["reason"]
    assert sent["description"].startswith("Why it was not sent")


def test_every_answer_has_exactly_the_declared_shape(session):
    import jsonschema

    schemas = {t.name: _closed(_inlined(t.output_schema)) for t in session["tools"]}
    checked = set()
    for label, (is_error, value) in session["results"].items():
        if is_error:
            continue
        tool = session["called"][label]
        jsonschema.validate(value, schemas[tool])  # raises on an undeclared key or a type
        checked.add(tool)
    assert checked == set(schemas)  # every tool answered at least once
    # variants were checked too: an impact not measurable yet, a repeat not sent
    assert ok(session, "impact_later")["measurable"] is False
    assert ok(session, "playbook_again")["sent"] is False


def test_a_wrong_key_would_fail_the_shape_check(session):
    import jsonschema

    tools = {t.name: t for t in session["tools"]}
    schema = _closed(_inlined(tools["get_incident"].output_schema))
    incident = {**ok(session, "incident"), "surprise": 1}
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.validate(incident, schema)


def test_the_server_reports_the_package_version(session):
    from importlib.metadata import version

    import retentionops

    info = session["server_info"]
    assert info.name == "retentionops"
    assert info.version == version("retentionops") == retentionops.__version__


# -- progress and the bounded webhook wait ------------------------------------------------


def _increasing(notes: list) -> bool:
    values = [progress for progress, _, _ in notes]
    return all(a < b for a, b in zip(values, values[1:], strict=False))


def test_trigger_playbook_reports_progress_while_it_loads_airflow_and_posts(session):
    notes = session["progress"]["playbook"]  # the server's first post: Airflow loads now
    assert notes and _increasing(notes)
    messages = [message for _, _, message in notes]
    assert any(m.startswith("loading Airflow's HTTP hook") for m in messages), messages
    # the reads report nothing: they are quick and not asked to
    assert session["progress"][f"decision_{CRITICAL}"] == []


def test_webhook_retries_stop_at_the_mcp_wait_budget_with_progress(session):
    # webhook_retries (2) allows three attempts and the DAG would wait 1 s then 2 s; the
    # MCP budget (mcp_webhook_wait_seconds 1.5) stops before the second wait
    assert session["down_attempts"] == 2
    assert "HTTP 500" in error(session, "playbook_down")
    notes = session["progress"]["playbook_down"]
    assert _increasing(notes)
    waits = [m for _, _, m in notes if "retrying in 1 s" in m]
    assert waits and waits[0].startswith("webhook attempt 1 failed (webhook answered HTTP 500")
    assert not any("attempt 2 failed" in m for _, _, m in notes)


# -- results against the library (the DAG's code) ----------------------------------------


def test_alert_decisions_equal_the_sql5_series(session):
    settings = session["settings"]
    with open_warehouse(settings, read_only=True) as warehouse:
        for day, severity in ((CRITICAL, "CRITICAL"), (WARNING, "WARNING"), (QUIET, "INFO")):
            decision = dict(ok(session, f"decision_{day}"))  # a copy: the session keeps it
            # asked before any detection ran: computed read-only by the same SQL5
            expected = detection.alert_series(warehouse, settings, *[as_date(day)] * 2)[0]
            # every decision says whether its orders can be trusted: the sample's can
            assert decision.pop("data_freshness")["status"] == "fresh"
            assert decision == {**expected, "source": "computed"}
            assert decision["severity"] == severity
            assert decision["alert_flag"] is (severity != "INFO")


def test_queue_context_and_brief_match_the_library(session):
    settings = session["settings"]
    queue = ok(session, "queue")
    assert queue["tiers"] == {"P1": 47, "P2": 300, "P3": 0}
    context = ok(session, "context")
    with open_warehouse(settings) as warehouse:
        day = as_date(CRITICAL)
        expected_context = service_context.operational_context(warehouse, settings, day)
        # the DAG's step, re-run for the same date, writes the same counts
        assert actions.build_priority_queue(warehouse, settings, day) == queue["tiers"]
    expected_context = json.loads(json.dumps(expected_context, default=str))
    # asked before the playbook ran, the event was still to send; the library, asked after
    # the session's delivery, says it was delivered: the rest is the same
    assert context["plan"]["send"] is True and expected_context["plan"]["send"] is False
    assert expected_context["plan"]["reason"].startswith("already delivered (open of")
    # and the ticket the delivery opened is now the one to respond to, due from now
    assert context["response"]["ticket_id"] is None
    assert expected_context["response"]["ticket_id"] == ok(session, "playbook")["ticket_id"]
    for plan in (context["plan"], expected_context["plan"]):
        del plan["send"], plan["reason"]
    for answer in (context, expected_context):
        del answer["response"]["ticket_id"], answer["response"]["due_at"]
    # the session's exports drew the incident's holdout since: asked before, none held
    assert context["holdout"]["incidents"] == [] and context["tiers"]["P2"]["holdout"] == 0
    [drawn] = expected_context["holdout"]["incidents"]
    assert drawn["incident_id"] == "INC-20110513"
    assert expected_context["tiers"]["P2"]["holdout"] == drawn["tiers"]["P2"]["held_out"] > 0
    for answer in (context, expected_context):
        del answer["holdout"]
        for tier in answer["tiers"].values():
            del tier["holdout"], tier["exportable"]
    assert expected_context == context
    assert {t: v["count"] for t, v in context["tiers"].items()} == queue["tiers"]
    assert context["exported_tiers"] == ["P1", "P2", "P3"]
    assert {**queue["decision"], "source": "computed"} == ok(session, f"decision_{CRITICAL}")

    brief = ok(session, "brief")
    assert brief["format"] == "slack" and "CRITICAL" in json.dumps(brief["brief"])
    assert ok(session, "brief_email")["format"] == "email"
    for path in brief["files"].values():
        assert Path(path).exists(), path


def test_exports_match_the_audience_and_the_csv_files(session):
    settings = session["settings"]
    p1, p2 = ok(session, "export_p1"), ok(session, "export_p2")
    assert (p1["tier"], p1["row_count"]) == ("P1", 47)
    assert (p2["tier"], p2["row_count"]) == ("P2", 120)
    # the folder argument names where; the file is still scoped to the date and the run
    assert Path(p2["link"]).parent == session["base"] / "exports" / CRITICAL / p2["run_id"]
    assert Path(p1["link"]).parent == session["base"] / "artifacts" / CRITICAL / p1["run_id"]
    with open_warehouse(settings, read_only=True) as warehouse:
        for export in (p1, p2):
            with open(export["link"], newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert len(rows) == export["row_count"]
            # the file is the run's recorded audience, row for row
            day = dt.date.fromisoformat(CRITICAL)
            keys = {"run_id": export["run_id"], "tiers": [export["tier"]], "run_date": day}
            audience = warehouse.query("action/read_audience", keys)
            assert [r["customer_id"] for r in rows] == [str(r["customer_id"]) for r in audience]


def test_recommended_action_matches_the_library(session):
    action = ok(session, "action_p1")
    assert action["queued"] is True and action["tier"] == "P1"
    assert action == json.loads(
        json.dumps(
            service.get_recommended_action(session["settings"], action["customer_id"], CRITICAL),
            default=str,
        )
    )
    assert "no order on or before" in error(session, "action_unknown")


def test_playbook_ticket_comes_back_and_is_logged(session):
    result = ok(session, "playbook")
    assert result["severity"] == "CRITICAL" and result["rollout_mode"] == "shadow"
    assert result["ticket_id"] and session["sim"].find_ticket(result["ticket_id"]) is not None
    assert {e["tier"] for e in result["exports"]} == {"P1", "P2", "P3"}
    with open_warehouse(session["settings"], read_only=True) as warehouse:
        logged = runlog.read(warehouse, result["run_id"])
    assert logged["ticket_id"] == result["ticket_id"]
    assert (logged["interface"], logged["status"], logged["playbook_status"]) == (
        "mcp",
        "success",
        "sent",
    )


def test_incidents_match_the_library_and_an_event_is_delivered_once(session):
    incident = ok(session, "incident")
    assert (incident["incident_id"], incident["event"], incident["phase"]) == (
        "INC-20110513", "open", "incident",
    )  # fmt: skip
    assert incident == json.loads(
        json.dumps(service.get_incident(session["settings"], CRITICAL), default=str)
    )
    listed = ok(session, "incidents")
    assert [i["incident_id"] for i in listed["incidents"]] == ["INC-20110513", "INC-20110909"]
    assert listed["warmup_until"] == "2011-03-06"
    again = ok(session, "playbook_again")
    assert again["sent"] is False and again["ticket_id"] is None
    assert again["reason"].startswith("already delivered (open of INC-20110513")
    assert again["dedupe_key"] == ok(session, "playbook")["dedupe_key"]


def test_webhook_down_is_a_clear_error_without_the_token(session):
    message = error(session, "playbook_down")
    assert "webhook" in message and "HTTP 500" in message
    assert session["token"] not in message
    with open_warehouse(session["settings"], read_only=True) as warehouse:
        rows = warehouse.query("action/read_run_logs_for_date", {"run_date": dt.date(2011, 5, 13)})
    failed = [r for r in rows if r["playbook_status"] == "failed"]
    assert len(failed) == 1 and failed[0]["interface"] == "mcp"
    assert session["token"] not in failed[0]["error_message"]


def test_every_write_is_logged_with_interface_mcp(session):
    labels = ["queue", "brief", "brief_email", "export_p1", "export_p2", "queue_quiet", "playbook"]
    with open_warehouse(session["settings"], read_only=True) as warehouse:
        for label in labels:
            run_id = ok(session, label)["run_id"]
            assert run_id.startswith("mcp__"), run_id
            logged = runlog.read(warehouse, run_id)
            assert logged is not None, label
            assert (logged["interface"], logged["status"]) == ("mcp", "success"), label
        interfaces = {r["interface"] for r in warehouse.fetch("SELECT interface FROM ops_runs_log")}
    assert interfaces == {"mcp"}


def test_impact_and_health_match_the_library(session):
    measured = ok(session, "impact")
    run_id = ok(session, "playbook")["run_id"]
    expected = service.measure_impact(session["settings"], run_id)
    assert measured == json.loads(json.dumps(expected, default=str))
    assert measured["measurable"] is True
    assert measured["per_tier"]["P1"]["treated_customers"] == 47
    # P1's 47 customers are too few for a 10 % holdout: it is said, not a bare interval
    assert measured["per_tier"]["P1"]["verdict"] == (
        "P1: 47 customers, a 10 % holdout would be 4, under the minimum 10: no holdout, its "
        "impact cannot be measured"
    )
    assert "no run 'nope'" in error(session, "impact_unknown")
    incident = ok(session, "impact_incident")
    assert incident == json.loads(json.dumps(service.measure_impact(
        session["settings"], incident_id="INC-20110513"), default=str))  # fmt: skip
    assert incident["incident_id"] == "INC-20110513" and incident["per_tier"]["P2"]["mde"] > 0
    assert "name one of them" in error(session, "impact_neither")

    reported = ok(session, "health")
    assert reported == json.loads(
        json.dumps(service.get_health(session["settings"], "2011-01-01", "2011-12-31"), default=str)
    )
    assert reported["runs"] >= 8 and reported["webhook_failure_rate"] == 0.5
    assert "after" in error(session, "health_reversed")


# -- errors: clear tool errors, never a stack trace ----------------------------------------


def test_user_errors_are_tool_errors_with_clear_messages(session):
    assert "'2011-02-30' is not a date" in error(session, "impossible_date")
    assert "should match pattern" in error(session, "bad_format")
    assert "no orders on or before 2009-01-01" in error(session, "no_orders")
    assert "2009-01-01" in error(session, "no_orders_queue")
    assert "build_priority_queue" in error(session, "context_before_queue")
    assert "the MCP tool build_priority_queue" in error(session, "export_no_queue")
    assert "tier" in error(session, "export_p4") and "'P1', 'P2' or 'P3'" in error(
        session, "export_p4"
    )
    assert "limit" in error(session, "export_limit_0")
    assert "format" in error(session, "brief_bad_format")
    assert "rollout_mode" in error(session, "playbook_bad_mode")
    quiet = error(session, "playbook_quiet")
    assert "nothing to deliver on 2011-05-17" in quiet and "INC-20110513" in quiet


def test_server_log_has_no_traceback_and_no_secret(session):
    log = (session["base"] / "server_stderr.log").read_text()
    assert "Traceback" not in log
    assert session["token"] not in log


def test_the_mcp_path_does_not_import_airflow(sample_settings):
    """Listing the tools and calling every one of them except a playbook post leaves Airflow
    unimported (it costs seconds); only trigger_playbook loads it, when it posts."""
    code = f"""
import sys, anyio
from mcp import Client
from retentionops import mcp_server

async def main():
    async with Client(mcp_server.build_server()) as client:
        assert len((await client.list_tools()).tools) == 11
        calls = [
            ("get_alert_decision", {{"date": "{CRITICAL}"}}),
            ("build_priority_queue", {{"date": "{CRITICAL}"}}),
            ("get_operational_context", {{"date": "{CRITICAL}"}}),
            ("generate_brief", {{"date": "{CRITICAL}"}}),
            ("export_audience", {{"date": "{CRITICAL}", "tier": "P1"}}),
            ("get_recommended_action", {{"customer_id": "17180", "date": "{CRITICAL}"}}),
            ("get_incident", {{"date": "{CRITICAL}"}}),
            ("list_incidents", {{"from_date": "2011-01-01", "to_date": "2011-12-09"}}),
            ("build_priority_queue", {{"date": "{NO_EVENT}"}}),
            ("trigger_playbook", {{"date": "{NO_EVENT}"}}),  # refused: nothing to deliver
            ("get_health", {{"from_date": "2011-01-01", "to_date": "2011-12-09"}}),
        ]
        for tool, arguments in calls:
            result = await client.call_tool(tool, arguments)
            assert result.is_error == (tool == "trigger_playbook"), (tool, result.content)

anyio.run(main)
loaded = sorted(n for n in sys.modules if n.split(".")[0] == "airflow")
assert not loaded, loaded[:5]
print("no airflow")
"""
    import subprocess

    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "no airflow"


def test_module_import_opens_nothing():
    code = (
        "import sys; import retentionops.mcp_server as m; "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('airflow', 'duckdb', 'mcp')]; "
        "assert not bad, bad; "
        "import argparse; p = argparse.ArgumentParser(); m.add_arguments(p); "
        "a = p.parse_args([]); assert (a.transport, a.host, a.port) == ('stdio', '127.0.0.1', 8766)"
    )
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unexpected_exception_is_a_short_error_naming_the_tool(settings, monkeypatch, caplog):
    from mcp import Client

    from retentionops import mcp_server, service

    def broken(*args, **kwargs):
        raise RuntimeError("boom at https://hook.example/SECRET-TOKEN")

    monkeypatch.setattr(service, "get_alert_decision", broken)
    server = mcp_server.build_server(settings)

    async def run() -> Any:
        async with Client(server) as client:
            return await client.call_tool("get_alert_decision", {"date": CRITICAL})

    result = anyio.run(run)
    text = " ".join(block.text for block in result.content)
    assert result.is_error and "get_alert_decision failed unexpectedly" in text
    assert "SECRET-TOKEN" not in text and "Traceback" not in text
    assert any(r.exc_info and "SECRET-TOKEN" in str(r.exc_info[1]) for r in caplog.records)


def test_an_export_without_a_limit_takes_the_served_settings_export_limit(sample_settings):
    """The tools read the settings from the server's lifespan context: a server built for
    export_limit 5 exports 5 rows of P2 (265 queued) unless the call names a limit."""
    import dataclasses

    from mcp import Client

    from retentionops import mcp_server

    settings = dataclasses.replace(sample_settings, export_limit=5)
    service.build_priority_queue(settings, CRITICAL)

    async def run() -> tuple[Any, Any]:
        async with Client(mcp_server.build_server(settings)) as client:
            default = await client.call_tool("export_audience", {"date": CRITICAL, "tier": "P2"})
            named = await client.call_tool(
                "export_audience", {"date": CRITICAL, "tier": "P2", "limit": 7}
            )
            return default, named

    default, named = anyio.run(run)
    assert not default.is_error and not named.is_error, (default.content, named.content)
    assert default.structured_content["row_count"] == 5
    assert named.structured_content["row_count"] == 7
