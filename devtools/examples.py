"""Copy real runs' outputs into ``artifacts/`` as the committed examples (``make artifacts``).

Run after ``airflow dags test retention_ops`` for the sample's WARNING and CRITICAL dates;
nothing here is written by hand, files are only copied (the brief's links to the chart and to
the P1 audience are pointed at the copied files; the other audiences are not kept).
"""

from __future__ import annotations

import shutil
import sys

from retentionops import pack, service
from retentionops.dates import as_date
from retentionops.files import write_atomic, write_json_atomic
from retentionops.settings import PROJECT_ROOT, load_settings

EXAMPLES_DIR = PROJECT_ROOT / "artifacts"


def main(warning_date: str, critical_date: str) -> list[str]:
    settings = load_settings()
    written = []
    for label, date in (("warning", warning_date), ("critical", critical_date)):
        day = as_date(date)  # the door: parsed once
        latest = service.run_log_rows(settings, day)[0]  # the DAG run just made
        folder = pack.run_dir(settings, day, latest["run_id"])
        chart = EXAMPLES_DIR / f"example_chart_{label}.png"
        shutil.copyfile(folder / pack.BRIEF_FILES["chart"], chart)
        brief = (folder / pack.BRIEF_FILES["markdown"]).read_text()
        brief = brief.replace(pack.BRIEF_FILES["chart"], chart.name)
        if label == "critical":  # the one audience kept as an example
            brief = brief.replace(f"audience_p1_{critical_date}.csv", "example_audience_p1.csv")
        target = EXAMPLES_DIR / f"example_brief_{label}.md"
        write_atomic(target, brief)
        written += [str(target), str(chart)]
    audience = EXAMPLES_DIR / "example_audience_p1.csv"
    shutil.copyfile(folder / f"audience_p1_{critical_date}.csv", audience)
    log = write_json_atomic(EXAMPLES_DIR / "example_run_log.json", latest)
    written += [str(audience), str(log)]
    return [str(p) for p in written]


if __name__ == "__main__":
    for path in main(*sys.argv[1:3]):
        print(path)
