"""vocabulary.py is where each fixed set of words is defined once and read from: a second
binding of a name silently replaced the first (EXPORT_STATUSES lost 'fallback_local', which
the run log writes), and a set nobody reads is words spelled again somewhere else."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import get_args, get_type_hints

from retentionops import brief, results, runlog, vocabulary

ROOT = Path(vocabulary.__file__).resolve().parents[2]
#: The sets whose words the code still spells itself instead of reading them, and where;
#: the last test checks that each is still unread, so a fix takes its name off this list.
NOT_READ_YET = {
    "SEVERITIES": "include/sql (SQL5 writes them); the code types them (Severity)",
    "DAY_PHASES": "incidents.py sets them; health.py, holdouts.py, brief.py compare them",
    "EXPORT_STATUSES": "runlog.py (export_status)",
    "RUN_STATUSES": "runlog.py (status)",
    "PLAYBOOK_STATUSES": "runlog.py (playbook_status)",
}


def bound_names() -> list[str]:
    """Every name vocabulary.py binds at its top level, as often as it binds it."""
    tree = ast.parse(Path(vocabulary.__file__).read_text())
    names = []
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names


def read_names() -> set[str]:
    """The vocabulary's names the package reads: imported from it or read as its
    attributes in plugins/ and dags/, or read inside it to build another of its names."""
    read = set()
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        own = path.resolve() == Path(vocabulary.__file__).resolve()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "retentionops.vocabulary":
                read |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "vocabulary":
                    read.add(node.attr)
            elif own and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                read.add(node.id)
    return read


def test_no_word_set_is_bound_twice():
    bound = Counter(bound_names())
    assert [name for name, count in bound.items() if count > 1] == []


def test_the_twice_bound_check_sees_every_kind_of_binding():
    # the annotated bindings (TIERS: tuple[str, ...] = ...) count too
    assert {"TIERS", "Tier", "TIER_NAMES", "NO_ALERT", "BRANCHES"} <= set(bound_names())


def test_every_word_set_is_read_by_the_package():
    unread = set(bound_names()) - read_names() - set(NOT_READ_YET)
    assert unread == set()


def test_the_sets_not_read_yet_are_really_unread():
    assert set(NOT_READ_YET) <= set(bound_names())
    assert set(NOT_READ_YET) & read_names() == set()


def test_each_set_is_its_types_words():
    assert vocabulary.SEVERITIES == ("INFO", "WARNING", "CRITICAL")
    assert vocabulary.TIERS == ("P1", "P2", "P3")
    assert vocabulary.EXPORT_STATUSES == ("ok", "fallback_local", "failed", "none")
    assert set(vocabulary.TIER_NAMES) == set(vocabulary.TIERS)
    assert set(vocabulary.PLAYBOOK_TIERS) == set(vocabulary.TICKET_PRIORITIES)
    assert set(vocabulary.PLAYBOOK_TIERS) < set(vocabulary.SEVERITIES)
    assert vocabulary.INCIDENT_EVENTS[:-1] == vocabulary.ALERT_EVENTS


def test_the_results_declare_the_vocabularys_words():
    assert set(results.TierCounts.__annotations__) == set(vocabulary.TIERS)
    assert get_args(get_type_hints(results.ExportResult)["tier"]) == vocabulary.TIERS
    assert get_args(get_type_hints(results.BriefResult)["format"]) == vocabulary.BRIEF_FORMATS
    assert get_args(get_type_hints(results.AlertDecision)["severity"]) == vocabulary.SEVERITIES


def test_the_incident_line_has_words_for_every_event():
    assert set(brief.INCIDENT_WORDS) == {*vocabulary.INCIDENT_EVENTS, None}


def test_the_export_statuses_hold_what_the_run_log_writes():
    source = Path(runlog.__file__).read_text()
    assert '"fallback_local"' in source
    assert "fallback_local" in vocabulary.EXPORT_STATUSES
