"""Airflow's plugin manager walks plugins/ and imports every .py it finds as a top-level
module; the library lives there for Airflow and pip, so plugins/.airflowignore keeps it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from support import ROOT

# In a fresh interpreter: load the plugins of a folder, then list the modules that the
# plugin manager created from files (they get bare names such as "cli" or "settings").
PROBE = """
import json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
library = {p.stem for p in __import__("pathlib").Path(sys.argv[1]).glob("retentionops/*.py")}
print(json.dumps({"loaded": sorted(library & set(sys.modules)), "errors": errors,
                  "plugins": [p.name for p in plugins]}))
"""


def load_plugins_of(folder) -> dict:
    env = {
        **os.environ,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": "",  # the library is not importable except through the plugin loader
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)], env=env, capture_output=True, text=True,
        cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_plugin_manager_loads_no_module_of_the_library():
    result = load_plugins_of(ROOT / "plugins")
    assert result == {"loaded": [], "errors": {}, "plugins": []}


def test_without_the_ignore_file_the_library_would_load_twice(tmp_path):
    """The check above can fail: the same folder without .airflowignore loads the library."""
    copy = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".airflowignore").unlink()
    result = load_plugins_of(copy)
    assert {"vocabulary", "files"} <= set(result["loaded"])
