"""Airflow on this machine for ``make airflow``: its components, and all of them stopped.

Starts ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` from this
virtualenv (each in a session of its own, output in ``$AIRFLOW_HOME/logs/local/<name>.log``),
optionally with the playbook simulator as the ``make_webhook`` connection, and waits. On
Ctrl-C (SIGINT), SIGTERM or SIGHUP, or when a component dies, it stops **every** process
it started, however deep: the components, the LocalExecutor's workers (which ignore SIGINT),
the task processes they fork (in process groups of their own) and anything orphaned on the
way. ``airflow standalone``, which this replaces, stopped only on Ctrl-C and only its direct
children: after a SIGTERM the scheduler needed SIGKILL and idle workers stayed behind.

How nothing escapes:

- the launcher is the *child subreaper* of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``):
  a process whose parent dies is re-parented to the launcher, not to init, so it is still
  found among the launcher's descendants;
- stopping sends SIGTERM to every descendant and to each component's process group, waits
  ``--grace`` seconds, then SIGKILLs whatever is left, and repeats until no descendant
  remains (something started during the shutdown is caught by the next round);
- ``make`` forwards its SIGTERM to the recipe's process, which is this one (the recipe
  ``exec``s it), and ``PR_SET_PDEATHSIG`` gives the launcher a SIGTERM if ``make`` itself
  dies first.

Private by default: the api-server listens on 127.0.0.1 only, and the UI and REST API ask for
a login (Airflow's simple auth manager, user ``admin``). Its password is generated on the first
start, shown once, and kept (mode 0600) in the auth manager's passwords file in
``AIRFLOW_HOME``; ``--host 0.0.0.0`` (``make airflow HOST=0.0.0.0``) serves beyond this
machine, with a warning.

A development tool (``python -m devtools.airflow_local --help``), not part of the package.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retentionops.connections import is_loopback

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
#: The one user of the simple auth manager, and its role.
ADMIN_USER = "admin"
DEFAULT_GRACE_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 180.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

_stop_signal: int | None = None


def _say(message: str) -> None:
    print(f"airflow-local: {message}", file=sys.stderr, flush=True)


def _prctl(option: int, value: int) -> bool:
    """Linux ``prctl``; False where it does not exist (the launcher still works, with the
    process snapshot alone)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _on_signal(signum: int, _frame: Any) -> None:
    global _stop_signal
    _stop_signal = signum


def _descendants() -> list[Any]:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _reap() -> None:
    """Collect exited children (orphans re-parented here included), so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(processes: list[Any], groups: list[int], signum: int) -> None:
    import psutil

    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def stop_everything(groups: list[int], grace: float) -> int:
    """SIGTERM every descendant (and the components' groups), SIGKILL what outlives
    ``grace``, until none is left; return how many had to be killed."""
    import psutil

    killed = 0
    for _round in range(10):
        processes = _descendants()
        if not processes:
            return killed
        _signal_all(processes, groups, signal.SIGTERM)
        deadline = time.monotonic() + grace
        alive = processes
        while alive and time.monotonic() < deadline:
            _reap()
            _, alive = psutil.wait_procs(alive, timeout=0.2)
        if alive:
            names = sorted({_name(p) for p in alive})
            _say(f"{len(alive)} process(es) outlived SIGTERM by {grace:.0f} s: SIGKILL ({names})")
            killed += len(alive)
            _signal_all(alive, [], signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
        _reap()
        groups = []  # the groups are empty now; later rounds catch latecomers one by one
    return killed


def _name(process: Any) -> str:
    try:
        return " ".join(process.cmdline()[:3]) or process.name()
    except Exception:
        return str(process.pid)


def _health(address: str, port: int) -> dict[str, Any] | None:
    url = f"http://{address}:{port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def _local_address(host: str) -> str:
    """The address this machine's processes reach the api-server at."""
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::", "") or is_loopback(host):
        return "127.0.0.1"
    return f"[{bare}]" if ":" in bare else bare  # an IPv6 address in a URL


def passwords_file(home: Path, env: dict[str, str]) -> Path:
    """Where the simple auth manager keeps its users' passwords (its own default)."""
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured) if configured else home / "simple_auth_manager_passwords.json.generated"


def ensure_login(path: Path) -> str | None:
    """Give ``admin`` a password in the auth manager's file unless it has one; return the
    new password (to be shown once), or None when one was already there.

    Generated here rather than by Airflow, which prints it among its api-server's log lines:
    here it is said once, in the terminal, and the file is readable by its owner only.
    """
    try:
        passwords = json.loads(path.read_text().strip() or "{}")
    except FileNotFoundError:
        passwords = {}
    if passwords.get(ADMIN_USER):
        return None
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as stream:
        stream.write(json.dumps({**passwords, ADMIN_USER: password}) + "\n")
    os.chmod(path, 0o600)  # also when the file existed with a wider mode
    return password


def auth_env(home: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment of a private UI: the simple auth manager with one admin user, its
    login required (never ``simple_auth_manager_all_admins``, whatever the caller set)."""
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(home, env)),
    }


def exposure_warning(host: str, port: int) -> str | None:
    """What to say when the api-server listens beyond this machine (None: it does not)."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: serving Airflow on {host}:{port}, beyond this machine: anyone who reaches "
        f"it gets the login page (user {ADMIN_USER}; the simple auth manager is for "
        "development only). Leave out HOST to keep it on 127.0.0.1."
    )


def _say_login(path: Path, password: str | None) -> None:
    if password:
        _say(f"login: {ADMIN_USER} / {password} (shown once; kept in {path}, mode 0600)")
    else:
        _say(f"login: {ADMIN_USER}, its password is in {path}")


def _start(name: str, host: str, port: int, env: dict[str, str], logs: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "airflow", name]
    if name == "api-server":
        command += ["--host", host, "--port", str(port)]
    log = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: stopped as a whole, not by a tty's ^C
    )
    log.close()
    return process


def run(args: argparse.Namespace) -> int:
    subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    parent = os.getppid()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 1

    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    logs = home / "logs" / "local"
    logs.mkdir(parents=True, exist_ok=True)
    local = _local_address(args.host)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": args.host,
        "AIRFLOW__API__PORT": str(args.port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{local}:{args.port}/execution/",
    }
    env.update(auth_env(home, env))
    if warning := exposure_warning(args.host, args.port):
        _say(warning)
    login = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    _say_login(login, ensure_login(login))
    stack = contextlib.ExitStack()
    processes: dict[str, subprocess.Popen] = {}
    code = 0
    try:
        if args.playbook_sim:
            from devtools.playbook_sim import PlaybookSimulator

            sim = stack.enter_context(
                PlaybookSimulator(Path(args.playbook_sim), log_stream=(logs / "sim.log").open("a"))
            )
            env["AIRFLOW_CONN_MAKE_WEBHOOK"] = json.dumps({"conn_type": "http", "host": sim.url})
        # the api-server first: the tasks the scheduler starts reach Airflow only through
        # its execution API, so a task started before it answers would fail
        waiting = [name for name in args.components if name != "api-server"]
        api = "api-server" in args.components
        if api:
            processes["api-server"] = _start("api-server", args.host, args.port, env, logs)
            _say(f"started api-server (pid {processes['api-server'].pid}), log {logs}")
        shown_ready = False
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while _stop_signal is None:
            if waiting and (not api or _health(local, args.port) is not None):
                for name in waiting:
                    processes[name] = _start(name, args.host, args.port, env, logs)
                    _say(f"started {name} (pid {processes[name].pid})")
                waiting = []
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                for name in dead:
                    log = logs / f"{name}.log"
                    tail = log.read_text(errors="replace").splitlines()[-5:]
                    _say(f"{name} exited; the end of {log}:\n  " + "\n  ".join(tail))
                _say("stopping the others")
                code = 1
                break
            if (
                not shown_ready
                and not waiting
                and (not api or _health(local, args.port) is not None)
            ):
                _say(
                    f"ready: http://{local}:{args.port} (log in as {ADMIN_USER}; Ctrl-C or "
                    "SIGTERM stops every process started here)"
                )
                shown_ready = True
            if api and not shown_ready and time.monotonic() > deadline:
                _say(f"the api-server did not answer within {READY_TIMEOUT_SECONDS:.0f} s")
                code = 1
                break
            _reap()
            time.sleep(0.5)
    finally:
        why = signal.Signals(_stop_signal).name if _stop_signal else "shutdown"
        _say(f"{why}: stopping every process started here")
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second ^C must not cut the cleanup short
        groups = [p.pid for p in processes.values()]
        killed = stop_everything(groups, args.grace)
        stack.close()
        left = _descendants()
        _say(
            f"stopped ({killed} needed SIGKILL); {len(left)} process(es) left"
            + ("" if subreaper else " (no subreaper on this system: orphans are not tracked)")
        )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.airflow_local",
        description="Run Airflow's components locally; stop all of them (and their "
        "workers) on Ctrl-C, SIGTERM or SIGHUP.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the api-server's port")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the api-server's address (default {DEFAULT_HOST}: this machine only; "
        "0.0.0.0 serves every network it is on, with a warning)",
    )
    parser.add_argument(
        "--components",
        type=lambda text: [c for c in text.split(",") if c],
        default=list(COMPONENTS),
        help=f"comma-separated, from {', '.join(COMPONENTS)} (default: all)",
    )
    parser.add_argument(
        "--playbook-sim",
        metavar="OUT_DIR",
        help="serve the playbook simulator (its files in OUT_DIR) as the make_webhook connection",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="seconds processes get to exit after SIGTERM before SIGKILL",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = sorted(set(args.components) - set(COMPONENTS))
    if unknown:
        print(f"unknown component(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
