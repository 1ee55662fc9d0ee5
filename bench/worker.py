"""Run one benchmark step in this (fresh) process: ``python -m bench.worker SPEC.json OUT.json``.

Peak memory is the process's RSS high-water mark as the kernel keeps it (``VmHWM`` in
``/proc/self/status``), read at the end: exact, so no short peak is missed (a sampling poller
such as psutil can miss one), and it counts everything the process touched, DuckDB's native
buffers included. ``getrusage(RUSAGE_SELF or RUSAGE_CHILDREN).ru_maxrss`` is not used: Linux
carries the parent's high-water mark over fork + exec into it, so a child would report at
least the parent's size. It is read once after the imports too, so the step's own share can
be told apart from the interpreter and libraries (a constant of ~150-250 MiB).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _maxrss_mib() -> float:
    """VmHWM of this process image (KiB in /proc), in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    from bench import peer, steps

    step = spec["step"]
    steps.prepare(spec)  # untimed: the warehouse as the morning finds it
    steps.preload(step)
    before = _maxrss_mib()
    runner = {
        "floor": steps.floor,
        "previous_decisions": steps.previous_decisions,
        "peer_pack": peer.daily_pack,
        "peer_history": peer.alert_history,
    }.get(step, steps.product)
    started = time.perf_counter()
    result = runner(spec)
    seconds = time.perf_counter() - started
    payload = {
        "step": step,
        "seconds": seconds,
        "rss_after_imports_mib": before,
        "peak_rss_mib": _maxrss_mib(),
        "result": result,
    }
    Path(argv[1]).write_text(json.dumps(payload, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
