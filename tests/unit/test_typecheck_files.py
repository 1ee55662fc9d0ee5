"""`make typecheck` runs mypy, strict, on the files pyproject.toml lists: a list that only
grows. A file leaves it only by a change of this test, in review."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the files checked since the type checker came in (issue 26, step 3)
CHECKED_SINCE_THE_START = {
    "plugins/retentionops/approval.py",
    "plugins/retentionops/actions.py",
    "plugins/retentionops/connections.py",
    "plugins/retentionops/detection.py",
    "plugins/retentionops/exports.py",
    "plugins/retentionops/health.py",
    "plugins/retentionops/hooks.py",
    "plugins/retentionops/incidents.py",
    "plugins/retentionops/mcp_server.py",
    "plugins/retentionops/progress.py",
    "plugins/retentionops/dates.py",
    "plugins/retentionops/errors.py",
    "plugins/retentionops/files.py",
    "plugins/retentionops/freshness.py",
    "plugins/retentionops/holdouts.py",
    "plugins/retentionops/ledger.py",
    "plugins/retentionops/service/",  # the whole package, each operation's module
    "plugins/retentionops/slack.py",
    "plugins/retentionops/vocabulary.py",
    "plugins/retentionops/warehouse.py",
}


def test_the_type_checked_files_only_grow_and_stay_strict():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert set(config["files"]) >= CHECKED_SINCE_THE_START
    # a file, or a package folder (every module in it)
    for name in config["files"]:
        assert (ROOT / name).is_file() or (ROOT / name / "__init__.py").is_file(), name


def test_make_test_and_test_all_run_the_type_checker():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ntest: lint typecheck\n" in makefile and "\ntest-all: lint typecheck\n" in makefile
