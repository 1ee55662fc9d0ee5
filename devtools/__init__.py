"""Development tools, outside the runtime package: the Make playbook simulator and the tool
that copies real runs' outputs into ``artifacts/``. Run them from the repository root:
``python -m devtools.playbook_sim`` and ``python -m devtools.examples``."""
