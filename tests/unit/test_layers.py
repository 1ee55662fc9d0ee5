"""The house's floors, kept by the code's own imports (read with ``ast``, nothing run).

- the foundation (settings, SQL seam, warehouse, words, files …) imports nothing above it;
- the domain modules compute or read one thing each and do not compose each other: the
  edges between them that remain are listed in ``SIDEWAYS`` (a list that only shrinks:
  a new edge fails, and so does a listed one that is gone, so that it leaves the list);
- only the service package composes them, and nothing below it imports it;
- the doors (DAG operators, CLI, MCP server, replay) sit on top; the service never
  imports a door (it posts through Airflow's HTTP hook, ``hooks``, as the DAG does).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "retentionops"

FOUNDATION = {
    "bigquery", "connections", "dates", "errors", "exports", "files", "orders", "progress",
    "sample", "settings", "slack", "sql", "vocabulary", "warehouse",
}  # fmt: skip
DOMAIN = {
    "actions", "approval", "brief", "detection", "freshness", "health", "holdouts",
    "impact", "incidents", "ledger", "pack", "playbook", "runlog",
}  # fmt: skip
DOORS = {"cli", "hooks", "mcp_server", "mcp_tools", "operators", "replay", "results"}
#: Airflow's HTTP hook for the webhook: the service's CLI/MCP send posts through it too.
ADAPTERS = {"hooks"}

#: Domain -> domain imports still standing (issue 26 removed the context's composition from
#: actions; these are reads of a neighbour's types, markers or words). Only ever shrinks.
SIDEWAYS = {
    ("actions", "detection"), ("actions", "freshness"), ("actions", "holdouts"),
    ("actions", "incidents"), ("actions", "playbook"),
    ("brief", "approval"), ("brief", "holdouts"),
    ("holdouts", "incidents"),
    ("impact", "actions"), ("impact", "holdouts"), ("impact", "runlog"),
    ("pack", "actions"), ("pack", "brief"), ("pack", "detection"),
    ("playbook", "approval"),
    ("runlog", "holdouts"), ("runlog", "pack"),
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    """The retentionops modules a file imports (first name under the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("retentionops"):
            parts = node.module.split(".")
            found |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if "." in a.name}
    return found - {"__version__", "package_version"}  # the package's own names


def _modules() -> dict[str, set[str]]:
    return {p.stem: _imports(p) - {p.stem} for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_every_module_has_a_floor():
    assert set(_modules()) == FOUNDATION | DOMAIN | DOORS


def test_the_foundation_imports_nothing_above_it():
    for name, imported in _modules().items():
        if name in FOUNDATION:
            assert imported <= FOUNDATION, (name, imported - FOUNDATION)


def test_domain_modules_do_not_compose_each_other():
    edges = {
        (name, other)
        for name, imported in _modules().items()
        if name in DOMAIN
        for other in imported
        if other in DOMAIN
    }
    assert edges - SIDEWAYS == set(), "a new sideways import: compose in the service instead"
    assert SIDEWAYS - edges == set(), "an edge is gone: take it off SIDEWAYS"
    for name, imported in _modules().items():
        if name in DOMAIN:
            assert imported <= FOUNDATION | DOMAIN, (name, imported - FOUNDATION - DOMAIN)


def test_only_the_doors_import_the_service_and_the_service_no_door():
    for name, imported in _modules().items():
        if name not in DOORS:
            assert "service" not in imported, name
    for path in (PACKAGE / "service").glob("*.py"):
        imported = _imports(path)
        assert imported & (DOORS - ADAPTERS) == set(), (path.name, imported & DOORS)
