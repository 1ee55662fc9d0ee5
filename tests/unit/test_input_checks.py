"""What comes in is checked (issue 24, parts 5 and 6): every value a person gives at a door
(environment, settings file, command line, MCP, orders file, `make airflow`) is refused with
one clear line (exit code 2 at the CLI) or handled in a documented, logged way; never a
traceback, never silently accepted."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest
from support import ROOT

from retentionops.cli import main
from retentionops.dates import DateError, as_date
from retentionops.settings import SettingsError, load_settings

UNKNOWN_USER = "~nosuchuser-retentionops/x"


def cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, stderr), argparse's exits included."""
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2, err
    assert len(lines) == 1 and "error" in lines[0], err
    assert "Traceback" not in err


# -- 1. unknown RETENTIONOPS_* variables and settings-file keys ------------------------------


def test_an_unknown_variable_is_refused_naming_the_nearest_setting(monkeypatch, capsys):
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"RETENTIONOPS_PLAYBOOK_ENABLE": "false"})
    assert str(caught.value) == (
        "unknown setting RETENTIONOPS_PLAYBOOK_ENABLE: did you mean RETENTIONOPS_PLAYBOOK_ENABLED?"
    )
    monkeypatch.setenv("RETENTIONOPS_PLAYBOOK_ENABLE", "false")
    code, _, err = cli(capsys, "settings")
    one_line_error(code, err)
    assert "RETENTIONOPS_PLAYBOOK_ENABLED?" in err


def test_an_unknown_variable_without_a_near_name_says_where_the_names_are():
    with pytest.raises(SettingsError, match="RETENTIONOPS_ZZZ: no setting has a similar name"):
        load_settings(env={"RETENTIONOPS_ZZZ": "1"})


def test_the_variables_read_outside_the_settings_are_allowed(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("min_sample_size: 7\n")
    env = {"RETENTIONOPS_CONFIG": str(config), "RETENTIONOPS_SQL_CACHE_DIR": str(tmp_path)}
    assert load_settings(env=env).min_sample_size == 7


def test_every_variable_the_repository_names_is_a_setting_or_allowed():
    """The allow-list is complete: each RETENTIONOPS_* the code, tests, Makefile, compose
    file, scripts and CI name is a setting, a replaced one (refused with its own message) or
    one of OTHER_ENV_VARIABLES."""
    from retentionops.settings import ENV_PREFIX, OTHER_ENV_VARIABLES, RENAMED, setting_names

    known = {f"{ENV_PREFIX}{name.upper()}" for name in [*setting_names(), *RENAMED]}
    known |= set(OTHER_ENV_VARIABLES)
    places = [ROOT / p for p in ("plugins", "dags", "tests", "scripts", "devtools", ".ci")]
    files = [
        f
        for place in places
        if place.exists()
        for f in place.rglob("*")
        # what the repository holds, not what an install generated (an egg-info's copy of
        # the README names a misspelt variable on purpose)
        if f.is_file() and not any(part.endswith(".egg-info") for part in f.parts)
    ]
    files += [ROOT / "Makefile", ROOT / "docker-compose.yaml"]
    named = {}
    for file in files:
        if file == Path(__file__) or file.suffix in (".pyc", ".duckdb", ".parquet", ".xlsx"):
            continue
        for name in re.findall(r"\bRETENTIONOPS_[A-Z0-9_]*[A-Z0-9]\b", file.read_text("latin-1")):
            named.setdefault(name, file)
    assert {name: str(f) for name, f in named.items() if name not in known} == {}


def test_an_unknown_key_in_the_settings_file_names_the_nearest_setting(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("silence_untl: 2011-01-01\n")
    expected = "unknown setting 'silence_untl' in .*did you mean 'silence_until'"
    with pytest.raises(SettingsError, match=expected):
        load_settings(config, env={})


# -- 2. the score weights sum to 100 -----------------------------------------------------------


def test_weights_not_summing_to_100_are_refused_naming_them_and_their_sum():
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"RETENTIONOPS_WEIGHT_VALUE_DROP": "70"})
    message = str(caught.value)
    assert "must sum to 100" in message
    assert (
        "weight_frequency_drop 50 + weight_value_drop 70 + weight_status_inconsistent 20 = 140"
        in (message)
    )
    shifted = load_settings(env={}, weight_frequency_drop=60, weight_value_drop=20)
    assert shifted.weight_frequency_drop == 60  # any split that sums to 100 is fine


# -- 3. every date is bounded: 1970-01-01 .. tomorrow (UTC) ----------------------------------


def test_far_dates_are_refused_in_one_line():
    with pytest.raises(DateError, match=r"'9999-12-31' is after .* \(tomorrow, UTC\)"):
        as_date("9999-12-31")
    with pytest.raises(DateError, match="'1969-12-31' is before 1970-01-01"):
        as_date("1969-12-31")
    with pytest.raises(DateError, match="is after"):
        as_date(dt.date(9999, 12, 31))


def test_the_sample_dates_a_dag_run_and_tomorrow_still_work():
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert as_date("2011-05-13") == dt.date(2011, 5, 13)  # a DAG run's ds
    assert as_date("2010-12-01T00:00:00+00:00") == dt.date(2010, 12, 1)
    assert as_date(tomorrow.isoformat()) == tomorrow
    assert as_date("1970-01-01") == dt.date(1970, 1, 1)


def test_detect_on_a_far_date_answers_at_once(settings, capsys):
    started = time.monotonic()
    code, _, err = cli(capsys, "detect", "--date", "9999-12-31")
    one_line_error(code, err)
    assert "'9999-12-31' is after" in err and time.monotonic() - started < 10


def test_a_date_setting_before_1970_is_refused():
    with pytest.raises(SettingsError, match="'orders_min_date' is '1900-01-01'; it must be 1970"):
        load_settings(env={}, orders_min_date="1900-01-01")


# -- 4. the MCP bearer token -------------------------------------------------------------------


@pytest.fixture
def mcp_server(settings):
    from retentionops import mcp_server

    return mcp_server, mcp_server.build_server(settings)


def test_a_blank_token_is_no_token(mcp_server, caplog):
    from retentionops.errors import UserError

    module, server = mcp_server
    with pytest.raises(UserError, match="without a bearer token"):
        module.http_app(server, "0.0.0.0", "   ")
    with caplog.at_level(logging.WARNING, logger="retentionops.mcp"):
        app = module.http_app(server, "127.0.0.1", " \t")
    assert not isinstance(app, module.BearerAuth)
    assert "mcp_http_token is blank" in caplog.text


def test_the_bearer_scheme_is_case_insensitive(mcp_server):
    from starlette.testclient import TestClient

    module, server = mcp_server
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = "application/json, text/event-stream"
    with TestClient(module.http_app(server, "127.0.0.1", "t0ken-abc")) as client:
        for header in ("bearer t0ken-abc", "BEARER t0ken-abc", "Bearer t0ken-abc"):
            answer = client.post(
                "/mcp", json=ping, headers={"Authorization": header, "Accept": accept}
            )
            assert answer.status_code != 401, header
        for header in ("bearer nope", "Basic t0ken-abc", "bearer", "t0ken-abc"):
            answer = client.post(
                "/mcp", json=ping, headers={"Authorization": header, "Accept": accept}
            )
            assert answer.status_code == 401, header


# -- 5. values that cannot work ----------------------------------------------------------------


def test_an_impossible_date_in_the_settings_file_names_the_setting_and_value(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("silence_until: 2011-02-30\n")
    code, _, err = cli(capsys, "--config", str(config), "settings")
    one_line_error(code, err)
    assert "setting 'silence_until' is '2011-02-30': not a calendar date" in err
    config.write_text("silence_until: 2011-02-03\n")  # YAML's own dates still work
    assert load_settings(config, env={}).silence_until == "2011-02-03"


@pytest.mark.parametrize(
    ("fmt", "header", "good", "bad", "column"),
    [
        ("orders", "customer_id,order_id,order_date,order_amount",
         "c1,o1,2011-01-05,10", "c2,o2,2011-01-06,1e30", "'order_amount'"),
        ("uci", "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID",
         "1,a,x,2,2011-01-05 10:00,1.5,17850", "2,a,x,3,2011-01-06 10:00,1e30,17851",
         "'Quantity x UnitPrice'"),
    ],
)  # fmt: skip
def test_a_huge_order_amount_is_refused_by_column_and_row(
    settings, tmp_path, capsys, fmt, header, good, bad, column
):
    kept = tmp_path / "kept.csv"
    kept.write_text(f"{header}\n{good}\n")
    assert cli(capsys, "load-orders", str(kept), "--format", fmt)[0] == 0
    huge = tmp_path / "huge.csv"
    huge.write_text(f"{header}\n{good}\n{bad}\n")
    code, _, err = cli(capsys, "load-orders", str(huge), "--format", fmt)
    one_line_error(code, err)
    assert f"column {column} has a value beyond 1e+15" in err and "data row 2" in err
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        assert con.execute("select count(*) from orders").fetchone()[0] == 1  # intact


def test_an_unknown_users_home_is_a_clear_error(settings, capsys):
    code, _, err = cli(
        capsys, "export", "--date", "2011-05-13", "--tier", "P1", "--to", UNKNOWN_USER
    )
    one_line_error(code, err)
    assert "the home folder of user 'nosuchuser-retentionops' is unknown" in err
    from retentionops.files import PathError
    from retentionops.mcp_tools import _export_audience

    with pytest.raises(PathError, match="nosuchuser-retentionops"):  # the MCP tool's folder
        _export_audience(settings, "2011-05-13", "P1", destination=UNKNOWN_USER)


def test_a_warehouse_where_no_file_can_be_made_is_a_clear_error(monkeypatch, capsys):
    from retentionops import mcp_server

    monkeypatch.setenv("RETENTIONOPS_DUCKDB_PATH", "/proc/x.duckdb")
    code, _, err = cli(capsys, "detect", "--date", "2011-05-13")
    one_line_error(code, err)
    assert "the DuckDB warehouse (duckdb_path) /proc/x.duckdb cannot be created" in err
    assert mcp_server.main(["--transport", "stdio"]) == 2
    assert "duckdb_path" in capsys.readouterr().err


def test_a_holdout_of_everyone_is_refused():
    with pytest.raises(SettingsError, match="'holdout_pct' .*below 100.*nobody is contacted"):
        load_settings(env={}, holdout_pct=100)
    assert load_settings(env={}, holdout_pct=99.5).holdout_pct == 99.5


@pytest.mark.parametrize("root", ["/", str(ROOT), str(ROOT.parent), "~"])
def test_exports_must_have_a_folder_of_their_own(root):
    with pytest.raises(SettingsError, match="'export_root' .* a folder of its own"):
        load_settings(env={}, export_root=os.path.expanduser(root))


def test_a_dedicated_export_folder_is_accepted(tmp_path):
    assert load_settings(env={}, export_root=str(tmp_path / "exports")).export_root_path.name == (
        "exports"
    )


# -- 6. `make airflow` is private by default ---------------------------------------------------


def _make_airflow_dry_run(tmp_path, *extra):
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "airflow", f"AIRFLOW_HOME={tmp_path}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MAKEFLAGS"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_airflow_binds_loopback_and_asks_for_a_login(tmp_path, monkeypatch):
    monkeypatch.setenv("HOST", "my-laptop")  # some shells export it: it is not a choice
    recipe = _make_airflow_dry_run(tmp_path)
    assert "--host 127.0.0.1" in recipe
    assert "ALL_ADMINS=True" not in recipe.replace(" ", "")
    assert "--host 0.0.0.0" in _make_airflow_dry_run(tmp_path, "HOST=0.0.0.0")


def test_the_launcher_defaults_to_loopback_and_warns_otherwise():
    from devtools import airflow_local

    assert airflow_local.build_parser().parse_args([]).host == "127.0.0.1"
    assert airflow_local.exposure_warning("127.0.0.1", 8080) is None
    assert "WARNING: serving Airflow on 0.0.0.0:8080" in airflow_local.exposure_warning(
        "0.0.0.0", 8080
    )


def test_the_admin_password_is_generated_once_and_kept_private(tmp_path):
    from devtools import airflow_local

    env = airflow_local.auth_env(tmp_path, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "1"})
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    password = airflow_local.ensure_login(path)
    assert password and len(password) >= 16
    assert json.loads(path.read_text()) == {"admin": password}
    assert path.stat().st_mode & 0o777 == 0o600
    assert airflow_local.ensure_login(path) is None  # shown once: the next start keeps it
    assert json.loads(path.read_text()) == {"admin": password}


# -- 7. --version ------------------------------------------------------------------------------


def test_version_prints_the_package_version(capsys):
    code, out, err = cli(capsys, "--version")
    assert code == 0 and out == f"retentionops {version('retentionops')}\n" and err == ""


def test_a_dag_export_destination_with_an_unknown_home_is_one_line():
    """The DAG's export_destination Param reaches pack.resolve_destination directly."""
    from retentionops import pack
    from retentionops.files import PathError
    from retentionops.settings import load_settings

    with pytest.raises(PathError, match="home folder of user 'nosuchuser' is unknown"):
        pack.resolve_destination(load_settings(), "~nosuchuser/x")
