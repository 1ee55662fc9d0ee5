from __future__ import annotations

import pytest

from retentionops.settings import Settings, SettingsError, load_settings, ratio, setting_names


def test_defaults_are_the_rules_thresholds():
    s = load_settings(env={})
    assert (s.active_days, s.at_risk_days) == (30, 90)
    assert (s.frequency_drop_factor, s.status_inconsistent_factor) == (1.5, 0.7)
    assert (s.weight_frequency_drop, s.weight_value_drop, s.weight_status_inconsistent) == (
        50,
        30,
        20,
    )
    assert (s.risk_level_high_min, s.risk_level_medium_min) == (51, 21)
    assert (s.baseline_days, s.threshold_warning_pct, s.threshold_critical_pct) == (7, 15.0, 25.0)
    assert s.min_sample_size == 100
    assert (s.warehouse_backend, s.detection_mode) == ("duckdb", "managed")


def test_the_shipped_yaml_is_the_generated_template_and_holds_only_defaults():
    """Each default is defined once, in code; the YAML file documents it, commented out."""
    from retentionops.settings import DEFAULT_CONFIG_PATH, yaml_template

    text = DEFAULT_CONFIG_PATH.read_text()
    assert text == yaml_template(), "run `retentionops settings --template` to regenerate"
    for name in setting_names():
        assert f"\n# {name}: " in text, name
    assert load_settings(env={}) == Settings()  # nothing is set by the shipped file


def test_uncommenting_a_line_of_the_template_sets_that_value(tmp_path):
    from retentionops.settings import yaml_template

    text = yaml_template().replace("# min_sample_size: 100", "min_sample_size: 250")
    (tmp_path / "c.yaml").write_text(text)
    assert load_settings(tmp_path / "c.yaml", env={}).min_sample_size == 250


def test_the_readme_settings_table_is_the_code():
    from support import ROOT

    from retentionops.settings import markdown_table

    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run `retentionops settings --markdown` into the README"


def test_environment_overrides_the_file_and_is_typed(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("active_days: 20\nduckdb_path: from_file.duckdb\n")
    s = load_settings(
        config,
        env={
            "RETENTIONOPS_DUCKDB_PATH": "/tmp/x.duckdb",
            "RETENTIONOPS_THRESHOLD_WARNING_PCT": "12.5",
        },
    )
    assert s.active_days == 20
    assert s.duckdb_path == "/tmp/x.duckdb"
    assert s.threshold_warning_pct == 12.5


def test_bad_choice_names_key_and_allowed_values():
    with pytest.raises(SettingsError, match=r"'warehouse_backend'.*'postgres'.*duckdb, bigquery"):
        load_settings(env={"RETENTIONOPS_WAREHOUSE_BACKEND": "postgres"})


def test_non_numeric_value_is_named():
    with pytest.raises(SettingsError, match="'baseline_days' is 'seven'.*integer"):
        load_settings(env={"RETENTIONOPS_BASELINE_DAYS": "seven"})


def test_inconsistent_thresholds_are_refused():
    with pytest.raises(SettingsError, match="active_days"):
        Settings(active_days=90, at_risk_days=90)
    with pytest.raises(SettingsError, match="threshold_warning_pct"):
        Settings(threshold_warning_pct=30.0)
    with pytest.raises(SettingsError, match="bigquery_project"):
        Settings(warehouse_backend="bigquery")


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_factor_is_an_exact_fraction():
    assert (ratio(1.5).numerator, ratio(1.5).denominator) == (3, 2)
    assert (ratio(0.7).numerator, ratio(0.7).denominator) == (7, 10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"export_destinations": "csv,gsheet"},
         "setting 'gsheet_spreadsheet_id' ('') must be set when export_destinations includes"),
        ({"export_destinations": "csv,gcs"},
         "setting 'export_gcs_uri' ('') must be gs://bucket[/prefix]"),
        ({"export_destinations": "gcs", "export_gcs_uri": "gs://"},
         "setting 'export_gcs_uri' ('gs://') must be gs://bucket[/prefix]"),
        ({"export_gcs_uri": "s3://bucket/x"}, "setting 'export_gcs_uri' ('s3://bucket/x')"),
        ({"export_destinations": "csv,s3"},
         "setting 'export_destinations' ('csv,s3') must be a comma-separated list of csv, gcs"),
        ({"export_destinations": ""}, "setting 'export_destinations' ('')"),
        ({"export_mode": "changed"}, "export_mode"),
        ({"audience_change_factor": 1.0}, "audience_change_factor"),
        ({"impact_horizon_days": 0}, "impact_horizon_days"),
        ({"holdout_min_customers": -1}, "holdout_min_customers"),
    ],
)  # fmt: skip
def test_export_configuration_errors_fail_when_settings_load(overrides, message):
    """Sheets without a spreadsheet, gcs without a bucket and the like fail up front, naming
    the key and the fix, not in the middle of a run."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env={}, **overrides)
    assert message in str(caught.value)


def test_a_replaced_setting_says_what_replaced_it(tmp_path):
    config = tmp_path / "old.yaml"
    config.write_text("export_kind: gsheet\n")
    with pytest.raises(SettingsError, match="'export_kind' was replaced: list the destinations"):
        load_settings(config, env={})
    with pytest.raises(SettingsError, match="'export_destination' was replaced: .*export_gcs_uri"):
        load_settings(env={"RETENTIONOPS_EXPORT_DESTINATION": "gs://b/x"})
    # the period-based holdout is gone: one mechanism, the incident's (docs/audiences.md)
    with pytest.raises(SettingsError, match="'holdout_period_days' was replaced: .*per incident"):
        load_settings(env={"RETENTIONOPS_HOLDOUT_PERIOD_DAYS": "28"})
    ok = load_settings(
        env={}, export_destinations="csv,gcs,gsheet", export_gcs_uri="gs://exports-bucket/daily",
        gsheet_spreadsheet_id="abc",
    )  # fmt: skip
    assert ok.export_destinations == "csv,gcs,gsheet"
