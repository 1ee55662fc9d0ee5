"""Development tools, outside the runtime package: the Make playbook simulator, the tool
that copies real runs' outputs into ``artifacts/`` and the local Airflow launcher of
``make airflow``. Run them from the repository root: ``python -m devtools.playbook_sim``,
``python -m devtools.examples`` and ``python -m devtools.airflow_local``."""
