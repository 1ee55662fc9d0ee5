"""RetentionOps: detect -> prioritize -> package -> execute -> log, as an Airflow 3 DAG package."""

#: The package's version (pyproject.toml reads it; the MCP server reports it).
__version__ = "0.1.0"
