"""DAG parse time: ``python -m bench.dagparse OUT.json`` loads ``dags/`` into a DagBag.

Run in a fresh process per measurement (the parent sets the backend's environment): the
time to import Airflow, the time to build the DagBag, and the DagBag's own per-file parse
duration (``dagbag_stats``, what the DAG processor measures against its timeouts).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter()
    bag = DagBag(dag_folder="dags")
    built = time.perf_counter()
    stats = [
        {"file": Path(s.file).name, "seconds": s.duration.total_seconds(), "tasks": s.task_num}
        for s in bag.dagbag_stats
    ]
    payload = {
        "airflow_import_seconds": imported - started,
        "dagbag_seconds": built - imported,
        "file_parse_seconds": sum(s["seconds"] for s in stats),
        "files": stats,
        "dags": sorted(bag.dag_ids),
        "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
    }
    Path(argv[0]).write_text(json.dumps(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
