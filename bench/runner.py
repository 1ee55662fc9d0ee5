"""Orchestrate the benchmark: data, one fresh worker process per step run, checks, medians."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import bigquery_bytes, data, steps
from retentionops import progress

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
DEFAULT_CACHE = BENCH_DIR / ".cache"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
#: Order of the steps inside one repeat (each product step needs the previous ones' tables).
STEP_ORDER = (
    "floor", "detection", "priority", "exports_brief", "daily_pack", "history",
    "peer_pack", "peer_history",
)  # fmt: skip
#: History dates the pandas peer loops over before the benchmark extrapolates (per size).
PEER_HISTORY_AUTO = {1_000_000: 60}
#: Dates on which the product's alert_series and the peer's loop are compared.
CHECK_DATES = 12


class BenchError(RuntimeError):
    """A step failed or a check did not hold; the message says which."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without RETENTIONOPS_* (reproducible settings), plus plugins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIONOPS_")}
    paths = [str(ROOT / "plugins"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def run_child(module: str, spec: dict[str, Any] | None, scratch: Path, env=None) -> dict:
    """Run ``python -m module [SPEC] OUT`` in a fresh process; return its JSON and wall time."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(prefix="result-", suffix=".json", dir=scratch)
    os.close(fd)
    args = [sys.executable, "-m", module]
    if spec is not None:
        spec_path = Path(out).with_name(Path(out).name.replace("result-", "spec-"))
        spec_path.write_text(json.dumps(spec))
        args.append(str(spec_path))
    args.append(out)
    log = Path(out).with_suffix(".log")
    started = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(
            args, cwd=ROOT, env=env or child_env(), stdout=handle, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - started
    if done.returncode != 0 or not Path(out).stat().st_size:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BenchError(f"`{' '.join(args[1:3])}` failed (exit {done.returncode}):\n{tail}")
    payload = json.loads(Path(out).read_text())
    payload["process_wall_seconds"] = wall
    return payload


def machine() -> dict[str, Any]:
    import duckdb
    import numpy
    import pandas
    import sqlglot

    try:
        from importlib.metadata import version

        airflow_version = version("apache-airflow")
    except Exception:  # pragma: no cover - Airflow is in the lock
        airflow_version = "unknown"
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kib = int(next(x for x in handle if x.startswith("MemTotal")).split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "sqlglot": sqlglot.__version__,
        "airflow": airflow_version,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    times = [r["seconds"] for r in runs]
    return {
        "median_seconds": statistics.median(times),
        "min_seconds": min(times),
        "max_seconds": max(times),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "step_rss_mib": max(r["peak_rss_mib"] - r["rss_after_imports_mib"] for r in runs),
        "runs": len(runs),
    }


def check_tiers(size: int, runs: dict[str, list[dict]]) -> dict[str, Any]:
    """The peer's tier counts must equal build_priority_queue's (every run of both)."""
    product = [r["result"]["tier_counts"] for r in runs["priority"] + runs["daily_pack"]]
    context = [r["result"]["context_tier_counts"] for r in runs["exports_brief"]]
    peer = [r["result"]["tier_counts"] for r in runs["peer_pack"]]
    reference = product[0]
    for name, counts in (("product", product), ("context", context), ("peer", peer)):
        for c in counts:
            if c != reference:
                raise BenchError(
                    f"{size} customers: tier counts differ: build_priority_queue gives "
                    f"{reference}, {name} gives {c}"
                )
    return {"equal": True, "tier_counts": reference}


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str):
        return a == b
    return abs(float(a) - float(b)) < 1e-9


def check_history(size: int, runs: dict[str, list[dict]]) -> dict[str, Any]:
    """alert_series must equal the peer's loop on evenly spread dates and every alert date."""
    product = {r["alert_date"]: r for r in runs["history"][0]["result"]["series"]}
    if len(product) != steps.HISTORY_DAYS:
        raise BenchError(f"{size} customers: alert_series gave {len(product)} dates, not 365")
    peer = {r["alert_date"]: r for r in runs["peer_history"][0]["result"]["series"]}
    common = sorted(set(product) & set(peer))
    if not common:
        raise BenchError(f"{size} customers: the peer history shares no date with alert_series")
    step = max(1, len(common) // CHECK_DATES)
    chosen = set(common[::step]) | {common[-1]}
    chosen |= {d for d in common if product[d]["severity"] != "INFO" or peer[d]["alert_flag"]}
    fields = (
        "current_value", "baseline_value", "delta_relative_pct", "severity", "alert_flag",
        "sample_size",
    )  # fmt: skip
    for d in sorted(chosen):
        for f in fields:
            if not _same(product[d][f], peer[d][f]):
                raise BenchError(
                    f"{size} customers, {d}: alert_series {f}={product[d][f]!r} but the pandas "
                    f"peer gives {peer[d][f]!r}"
                )
    severities: dict[str, int] = {}
    for row in product.values():
        severities[row["severity"]] = severities.get(row["severity"], 0) + 1
    return {
        "equal": True,
        "dates_compared": len(chosen),
        "alert_dates": sorted(d for d in product if product[d]["alert_flag"]),
        "severities": severities,
    }


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every size of one benchmark run shares: the repeats, where the generated orders
    are cached and the sizes work, the peer's history dates (None: by size) and the log."""

    repeats: int
    cache_dir: Path
    work_root: Path
    peer_history_dates: int | None
    log: Callable[[str], None]


def bench_size(size: int, plan: Plan, bar: progress.Step | None = None) -> dict[str, Any]:
    repeats, cache_dir, log = plan.repeats, plan.cache_dir, plan.log
    work_root, peer_history_dates = plan.work_root, plan.peer_history_dates
    bar = bar or progress.Step("benchmark")
    label = f"{size:,}"
    log(f"[{label}] preparing orders (cache: {cache_dir})")
    bar.update(description=f"[{label}] preparing orders")
    cached, gen = data.ensure_cached(cache_dir, size)
    if gen["generated"]:
        log(f"[{label}] generated {gen['orders']:,} orders in {gen['seconds']:.1f} s")
    work = work_root / str(size)
    shutil.rmtree(work, ignore_errors=True)
    warehouse = data.working_copy(cached, work)
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    orders, customers, first, last = con.execute(
        "select count(*), count(distinct customer_id), min(order_date), max(order_date) "
        "from orders"
    ).fetchone()
    con.close()
    log(f"[{label}] {orders:,} orders of {customers:,} customers, {first} .. {last}")
    dates = peer_history_dates or PEER_HISTORY_AUTO.get(size) or steps.HISTORY_DAYS
    dates = min(dates, steps.HISTORY_DAYS)
    base_spec = {
        "duckdb_path": str(warehouse),
        "artifacts_dir": str(work / "runs"),
        "run_date": data.RUN_DATE.isoformat(),
        "dates": dates,
    }
    setup = run_child("bench.worker", {**base_spec, "step": "previous_decisions"}, work / "scratch")
    log(
        f"[{label}] setup: the alert history stored up to {setup['result']['to_date']} "
        f"({setup['result']['days']} days, as the daily runs before D left it) in "
        f"{setup['seconds']:.2f} s"
    )
    runs: dict[str, list[dict]] = {name: [] for name in STEP_ORDER}
    for repeat in range(1, repeats + 1):
        for name in STEP_ORDER:
            bar.update(description=f"[{label}] repeat {repeat}/{repeats} {name}")
            payload = run_child("bench.worker", {**base_spec, "step": name}, work / "scratch")
            bar.update(bar.completed + 1)
            runs[name].append(payload)
            extra = ""
            if name.startswith("peer"):
                r = payload["result"]
                extra = f" (load {r['load_seconds']:.2f} s + compute {r['compute_seconds']:.2f} s"
                extra += f", {r['dates']} dates)" if name == "peer_history" else ")"
            log(
                f"[{label}] repeat {repeat}/{repeats} {name:<13} {payload['seconds']:8.2f} s"
                f"  peak {payload['peak_rss_mib']:7.0f} MiB{extra}"
            )
    if dates < steps.HISTORY_DAYS:
        # the loop's cost per date is constant: scale the measured loop to 365 dates
        for payload in runs["peer_history"]:
            r = payload["result"]
            k = 7
            factor = (steps.HISTORY_DAYS + k) / (dates + k)
            r["measured_seconds"] = payload["seconds"]
            r["extrapolation_factor"] = factor
            payload["seconds"] = r["load_seconds"] + r["compute_seconds"] * factor
    checks = {"tiers": check_tiers(size, runs), "history": check_history(size, runs)}
    log(f"[{label}] checks passed: peer tier counts = product {checks['tiers']['tier_counts']}; "
        f"alert history equal on {checks['history']['dates_compared']} dates")
    summary = {name: summarise(r) for name, r in runs.items()}
    for name in ("peer_pack", "peer_history"):
        summary[name]["median_load_seconds"] = statistics.median(
            r["result"]["load_seconds"] for r in runs[name]
        )
        summary[name]["median_compute_seconds"] = statistics.median(
            r["result"]["compute_seconds"] for r in runs[name]
        )
    summary["peer_history"]["dates_measured"] = dates
    bigquery = bigquery_bytes.estimate(str(warehouse), data.RUN_DATE)
    log(
        f"[{label}] BigQuery estimate: {bigquery['total_billed_bytes'] / 2**30:.2f} GiB per "
        f"daily run = {bigquery['ratio_to_orders_scan']:.2f}x one scan of the orders' "
        f"referenced columns ({bigquery['orders_scan_bytes'] / 2**30:.2f} GiB)"
    )
    shutil.rmtree(work / "scratch", ignore_errors=True)
    return {
        "customers": int(customers),
        "orders": int(orders),
        "first_order_date": str(first),
        "last_order_date": str(last),
        "run_date": data.RUN_DATE.isoformat(),
        "generation": gen,
        "steps": summary,
        "previous_decisions": {"seconds": setup["seconds"], **setup["result"]},
        "bigquery": bigquery,
        "checks": checks,
        "runs": {
            name: [{k: v for k, v in r.items() if k != "result"} | {"result": _brief(r)}
                   for r in rs]
            for name, rs in runs.items()
        },
    }


def _brief(payload: dict[str, Any]) -> dict[str, Any]:
    """Keep the raw JSON small: drop the 365-row series, keep counts and decisions."""
    result = dict(payload["result"])
    if "series" in result:
        result["series_rows"] = len(result.pop("series"))
    return result


def bench_dag_parse(
    repeats: int,
    scratch: Path,
    log: Callable[[str], None],
    bar: progress.Step | None = None,
) -> dict[str, Any]:
    bar = bar or progress.Step("benchmark")
    backends = {
        "duckdb": {
            "RETENTIONOPS_WAREHOUSE_BACKEND": "duckdb",
            "RETENTIONOPS_DUCKDB_PATH": str(scratch / "dagparse.duckdb"),
        },
        "bigquery": {
            "RETENTIONOPS_WAREHOUSE_BACKEND": "bigquery",
            "RETENTIONOPS_BIGQUERY_PROJECT": "bench-project",
        },
    }
    out: dict[str, Any] = {}
    scratch.mkdir(parents=True, exist_ok=True)
    for backend, extra in backends.items():
        runs = []
        for repeat in range(1, repeats + 1):
            home = Path(tempfile.mkdtemp(prefix="airflow-home-", dir=scratch))
            env = child_env(
                {
                    **extra,
                    "AIRFLOW_HOME": str(home),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                }
            )
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])
            bar.update(description=f"[dag-parse] {backend} repeat {repeat}/{repeats}")
            payload = run_child("bench.dagparse", None, scratch, env=env)
            bar.update(bar.completed + 1)
            if payload["import_errors"] or payload["dags"] != ["retention_ops"]:
                raise BenchError(f"DagBag on {backend}: {payload['import_errors']}")
            runs.append(payload)
            log(
                f"[dag-parse] {backend:<8} repeat {repeat}/{repeats}: file parse "
                f"{payload['file_parse_seconds']:.2f} s, airflow import "
                f"{payload['airflow_import_seconds']:.2f} s, process "
                f"{payload['process_wall_seconds']:.2f} s"
            )
        out[backend] = {
            key: statistics.median(r[key] for r in runs)
            for key in (
                "file_parse_seconds", "dagbag_seconds", "airflow_import_seconds",
                "process_wall_seconds",
            )  # fmt: skip
        } | {"runs": len(runs), "tasks": runs[0]["files"][0]["tasks"]}
    return out


def run(
    sizes: list[int],
    *,
    repeats: int = 3,
    out_dir: Path = BENCH_DIR,
    cache_dir: Path = DEFAULT_CACHE,
    peer_history_dates: int | None = None,
    dag_parse: bool = True,
    keep_work: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every size, write ``results.json`` and ``results.md`` into ``out_dir``.

    ``log`` gets the record (a line per step run); the installed progress reporter, if any
    (``python -m bench`` installs the CLI's), one step whose bar counts the step runs."""
    from bench import report

    started = time.perf_counter()
    work_root = Path(tempfile.mkdtemp(prefix="work-", dir=_mkdir(cache_dir)))
    # the steps' processes share one transpiled-SQL cache, as an Airflow worker's tasks do
    # from the second day on: the first repeat pays sqlglot, the others read the cache
    os.environ.setdefault("RETENTIONOPS_SQL_CACHE_DIR", str(work_root / "sql-cache"))
    results: dict[str, Any] = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": f"python -m bench --sizes {','.join(map(str, sizes))} --repeats {repeats}",
        "repeats": repeats,
        "machine": machine(),
        # other processes share the cores: the load average (1, 5, 15 min) says how busy
        "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
        "sizes": {},
    }
    log(f"benchmark: sizes {sizes}, {repeats} repeat(s); machine {results['machine']['cores']} "
        f"cores, {results['machine']['ram_gib']} GiB")
    runs = len(sizes) * repeats * len(STEP_ORDER) + (2 * repeats if dag_parse else 0)
    try:
        plan = Plan(repeats, cache_dir, work_root, peer_history_dates, log)
        with progress.step("benchmark", total=runs) as bar:
            for size in sizes:
                results["sizes"][str(size)] = bench_size(size, plan, bar=bar)
            if dag_parse:
                results["dag_parse"] = bench_dag_parse(
                    repeats, work_root / "dagparse", log, bar=bar
                )
            bar.update(description=f"benchmark: {runs} step runs")
    finally:
        if not keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = report.evaluate_targets(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(report.markdown(results))
    log(f"wrote {out_dir / 'results.md'} and results.json in {results['total_seconds']:.0f} s")
    return results


def rewrite_report(out_dir: Path = BENCH_DIR) -> dict[str, Any]:
    """Re-evaluate the targets and rewrite results.md from an existing results.json."""
    from bench import report

    path = out_dir / "results.json"
    if not path.exists():
        raise BenchError(f"no {path}: run the benchmark first")
    results = json.loads(path.read_text())
    results["targets"] = report.evaluate_targets(results)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(report.markdown(results))
    return results


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
