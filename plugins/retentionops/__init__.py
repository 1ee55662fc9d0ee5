"""RetentionOps: detect -> prioritize -> package -> execute -> log, as an Airflow 3 DAG package."""

#: The package's version (pyproject.toml reads it; the MCP server reports it).
__version__ = "0.1.0"


def package_version() -> str:
    """The installed distribution's version; the package's own without one (plugins/ on
    the path, as Airflow and Composer load it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retentionops")
    except PackageNotFoundError:
        return __version__
