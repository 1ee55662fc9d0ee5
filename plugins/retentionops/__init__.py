"""RetentionOps: detect -> prioritize -> package -> execute -> log, as an Airflow 3 DAG package."""
