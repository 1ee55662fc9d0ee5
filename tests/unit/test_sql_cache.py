"""The transpiled-SQL cache on disk: the same answer as sqlglot, never an error of its own."""

from __future__ import annotations

import pytest

from retentionops import sql

STATEMENT = "select countif(x > @low) as n, date_trunc(d, month) as m from t where d <= @run_date"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(sql.SQL_CACHE_ENV, str(folder))
    sql.to_duckdb.cache_clear()
    sql.parameter_names.cache_clear()
    yield folder
    sql.to_duckdb.cache_clear()
    sql.parameter_names.cache_clear()


def _no_sqlglot(monkeypatch):
    def refuse(text):
        raise AssertionError("sqlglot was called although the answer is cached")

    monkeypatch.setattr(sql, "_transpile", refuse)
    monkeypatch.setattr(sql, "_parameter_names", refuse)


def test_a_new_process_reads_the_answer_instead_of_transpiling(cache, monkeypatch):
    expected = sql._transpile(STATEMENT)
    assert "COUNT(CASE WHEN" in expected  # the seam's own fix is in the cached text
    assert sql.to_duckdb(STATEMENT) == expected
    assert sql.parameter_names(STATEMENT) == {"low", "run_date"}
    assert len(list(cache.rglob("*.sql"))) == 2
    sql.to_duckdb.cache_clear()  # what a new process starts with
    sql.parameter_names.cache_clear()
    _no_sqlglot(monkeypatch)
    assert sql.to_duckdb(STATEMENT) == expected
    assert sql.parameter_names(STATEMENT) == {"low", "run_date"}


def test_a_changed_or_cut_file_is_ignored_and_rewritten(cache):
    expected = sql.to_duckdb(STATEMENT)
    [path] = [p for p in cache.rglob("*.sql") if "COUNT" in p.read_text()]
    path.write_text(path.read_text().replace("COUNT", "DROP TABLE t; SELECT COUNT"))
    sql.to_duckdb.cache_clear()
    assert sql.to_duckdb(STATEMENT) == expected
    path.write_text(path.read_text()[:40])  # cut short
    sql.to_duckdb.cache_clear()
    assert sql.to_duckdb(STATEMENT) == expected
    assert path.read_text().endswith(expected)  # repaired


def test_an_unusable_cache_folder_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(sql.SQL_CACHE_ENV, str(blocker / "cache"))
    sql.to_duckdb.cache_clear()
    try:
        assert sql.to_duckdb(STATEMENT) == sql._transpile(STATEMENT)
    finally:
        sql.to_duckdb.cache_clear()


def test_an_empty_setting_turns_the_disk_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv(sql.SQL_CACHE_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sql.to_duckdb.cache_clear()
    try:
        assert sql.to_duckdb(STATEMENT) == sql._transpile(STATEMENT)
    finally:
        sql.to_duckdb.cache_clear()
    assert not any(tmp_path.iterdir())


def test_the_key_depends_on_the_statement(cache):
    other = STATEMENT.replace("@low", "@high")
    assert sql.to_duckdb(other) != sql.to_duckdb(STATEMENT)
    assert sql.parameter_names(other) == {"high", "run_date"}


def test_no_home_directory_means_no_disk_cache(monkeypatch):
    monkeypatch.delenv(sql.SQL_CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(sql.Path, "home", staticmethod(no_home))
    sql.to_duckdb.cache_clear()
    try:
        assert sql._cache_dir() is None
        assert sql.to_duckdb(STATEMENT) == sql._transpile(STATEMENT)
    finally:
        sql.to_duckdb.cache_clear()
