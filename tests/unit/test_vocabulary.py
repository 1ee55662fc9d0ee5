"""vocabulary.py is where each fixed set of words is defined once: a second binding of a
name silently replaced the first (EXPORT_STATUSES lost 'fallback_local', which the run log
writes)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from retentionops import runlog, vocabulary


def test_no_word_set_is_bound_twice():
    tree = ast.parse(Path(vocabulary.__file__).read_text())
    bound = Counter(
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    )
    assert [name for name, count in bound.items() if count > 1] == []


def test_the_export_statuses_hold_what_the_run_log_writes():
    source = Path(runlog.__file__).read_text()
    assert '"fallback_local"' in source
    assert "fallback_local" in vocabulary.EXPORT_STATUSES
