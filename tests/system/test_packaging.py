"""The package as a user installs it: `pip install .` in an empty virtualenv.

The install runs uv (the Makefile's installer, pip-compatible) with the runtime lock as
constraints: reproducible, and served from uv's cache when `make install` filled it (offline
first; the package registry only when the cache lacks something). The source is copied to a
temporary folder first, so building it writes nothing into the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

UV = Path(sys.executable).parent / "uv"


def _uv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(UV), *args], capture_output=True, text=True, timeout=600)


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "plugins" / "retentionops",
        source / "plugins" / "retentionops",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    venv = base / "venv"
    made = _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = ["pip", "install", "--python", str(python), "-c", str(ROOT / "requirements.lock")]
    done = _uv(*install, "--offline", str(source))
    if done.returncode != 0:  # the cache lacks something: the package registry serves it
        done = _uv(*install, str(source))
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_pip_install_gives_a_working_command(fresh_venv, tmp_path):
    command = fresh_venv / "bin" / "retentionops"
    shown = subprocess.run([str(command), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: retentionops")
    for name in ("load-orders", "alerts", "trigger", "mcp", "settings"):
        assert name in shown.stdout
    settings = subprocess.run(
        [str(command), "settings"], capture_output=True, text=True, cwd=tmp_path
    )
    assert settings.returncode == 0 and '"warehouse_backend": "duckdb"' in settings.stdout


def test_the_package_declares_the_runtime_pins_and_nothing_else(fresh_venv):
    python = fresh_venv / "bin" / "python"
    listed = _uv("pip", "list", "--python", str(python), "--format", "freeze")
    assert listed.returncode == 0, listed.stderr
    installed = _pins_from_text(listed.stdout)
    runtime = _pins(ROOT / "requirements.txt")
    # every runtime pin of requirements.txt is installed at its version ...
    assert {name: installed.get(name) for name in runtime} == runtime
    # ... and no development tool came with them
    for tool in _pins(ROOT / "requirements-dev.txt"):
        if tool not in _pins(ROOT / "requirements.lock"):
            assert tool not in installed, f"{tool} is a development tool"
    # the package's metadata lists exactly requirements.txt (pyproject reads that file)
    code = "import importlib.metadata as m, json; print(json.dumps(m.requires('retentionops')))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    declared = _pins_from_text("\n".join(json.loads(out.stdout)))
    assert declared == runtime


def test_commands_that_need_the_repository_say_so(fresh_venv, tmp_path):
    """A plain install has the code, not the repository's include/ folder (SQL, templates):
    a command needing it says what to do instead of a traceback."""
    loaded = subprocess.run(
        [str(fresh_venv / "bin" / "retentionops"), "load-sample"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"RETENTIONOPS_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "PATH": "/usr/bin:/bin"},
    )
    assert loaded.returncode == 2, loaded.stderr
    [line] = loaded.stderr.strip().splitlines()
    assert "the SQL files are not where the package looks for them" in line
    assert "pip install -e ." in line and "Traceback" not in loaded.stderr


def _pins_from_text(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins
