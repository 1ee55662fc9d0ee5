"""``python -m bench [--sizes 10000,100000,1000000] [--repeats 3]`` (run from the repo root)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import runner
from retentionops import progress


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes {text!r}: give integers, e.g. 10000,100000"
        ) from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("--sizes: at least one size, each >= 100 customers")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(runner.DEFAULT_SIZES),
        help="customer counts, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per step (median; default 3)")
    parser.add_argument(
        "--out-dir", type=Path, default=runner.BENCH_DIR, help="where results.md/json go"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=runner.DEFAULT_CACHE, help="generated orders cache"
    )
    parser.add_argument(
        "--peer-history-dates",
        type=int,
        default=None,
        help="dates the pandas history peer loops over before scaling to 365 "
        "(default: 365, 60 at 1 M customers)",
    )
    parser.add_argument("--no-dag-parse", action="store_true", help="skip the DagBag timing")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite results.md (targets, bench/ANALYSIS.md) from the existing results.json",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch warehouses")
    # a bar counting the step runs on stderr (a terminal; --progress: plain lines anywhere)
    progress.add_flags(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        if args.report_only:
            runner.rewrite_report(args.out_dir)
            print(f"rewrote {args.out_dir / 'results.md'}")
            return 0
        with progress.reporting(progress.cli_reporter(args.progress)):
            runner.run(
                args.sizes,
                repeats=args.repeats,
                out_dir=args.out_dir,
                cache_dir=args.cache_dir,
                peer_history_dates=args.peer_history_dates,
                dag_parse=not args.no_dag_parse,
                keep_work=args.keep_work,
                log=lambda line: print(line, flush=True),
            )
    except runner.BenchError as error:
        print(f"benchmark FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
