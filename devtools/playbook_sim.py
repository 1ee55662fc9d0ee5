"""A local stand-in for the Make.com playbook scenario, for demos and fault tests.

The real scenario is a Make.com custom webhook: the DAG POSTs the body described by
``include/contracts/playbook_webhook.schema.json``; the scenario posts the brief to Slack,
opens a ticket and its "Webhook response" module answers with the body described by
``playbook_response.schema.json``. The webhook URL (its path token is the secret) lives only
in the Airflow connection ``make_webhook``.

:class:`PlaybookSimulator` serves the same contract on a loopback address (stdlib
``ThreadingHTTPServer`` in a background thread). Instead of Slack and a ticketing system it
writes ``slack_<ts>.json`` and ``ticket_<id>.json`` files into ``out_dir`` (``out_dir/shadow``
for ``shadow: true``). Faults are injected with ``fail_next``/``fail_status`` (answer an error
status for the next N valid requests) and ``delay`` (answer late, to provoke client timeouts),
either in-process with :meth:`PlaybookSimulator.configure` or from another process with
``POST /_control``. ``GET /_health`` answers ``{"ok": true}``.

The hook path never reaches a log line or an error body: requests are logged as
``POST <hook> 200``.

Command line: ``python -m devtools.playbook_sim`` (from the repository root):
:func:`add_arguments` and :func:`run_from_args`, or :func:`main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from retentionops import playbook
from retentionops.connections import is_loopback
from retentionops.files import write_atomic

WEBHOOK_SCHEMA = "playbook_webhook"
RESPONSE_SCHEMA = "playbook_response"

TICKET_PREFIX = "RET-"
SHADOW_PREFIX = "SHADOW-"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_DELAY_SECONDS = 600.0
HOOK_LOG_NAME = "<hook>"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_OUT = "artifacts/playbook_sim"

_TICKET_FILE_RE = re.compile(r"^ticket_(?:SHADOW-)?RET-(\d+)\.json$")


class SimulatorError(ValueError):
    """A bad simulator setting (non-loopback host, bad token, bad fault setting)."""


# --------------------------------------------------------------------------- contracts


def load_schema(name: str) -> dict[str, Any]:
    """``include/contracts/<name>.schema.json`` (the package's own copy of the contract)."""
    return playbook.load_schema(name)


def first_violation(body: Any, name: str = WEBHOOK_SCHEMA) -> dict[str, str] | None:
    """The most relevant schema violation of ``body`` (``None`` when it is valid).

    Returns ``{"path": "/json/pointer", "message": ...}``; a long message is cut in the
    middle so a huge offending value is not echoed back in full.
    """
    from jsonschema.exceptions import best_match

    error = best_match(playbook.validator(name).iter_errors(body))
    if error is None:
        return None
    pointer = "".join(f"/{part}" for part in error.absolute_path) or "/"
    message = error.message
    if len(message) > 300:
        # Keep both ends: the offending value's repr leads, the rule ("is too long") ends.
        message = message[:150] + " ... " + message[-145:]
    return {"path": pointer, "message": message}


# --------------------------------------------------------------------------- helpers


def _check_fault_settings(
    fail_next: Any = None, fail_status: Any = None, delay: Any = None
) -> None:
    if fail_next is not None and (
        isinstance(fail_next, bool) or not isinstance(fail_next, int) or fail_next < 0
    ):
        raise SimulatorError(f"fail_next must be an integer >= 0, got {fail_next!r}")
    if fail_status is not None and (
        isinstance(fail_status, bool)
        or not isinstance(fail_status, int)
        or not 400 <= fail_status <= 599
    ):
        raise SimulatorError(
            f"fail_status must be an HTTP error status 400-599, got {fail_status!r}"
        )
    if delay is not None and (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not 0 <= delay <= MAX_DELAY_SECONDS
    ):
        raise SimulatorError(f"delay must be 0-{MAX_DELAY_SECONDS:g} seconds, got {delay!r}")


def _write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _write_text_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    write_atomic(path, text, mode=mode)


def _fmt(value: Any, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value}{suffix}"


def _ticket_body(body: dict[str, Any], slack_ts: str) -> str:
    decision = body["decision"]
    counts = body["tier_counts"]
    lines = [
        f"Retention incident {body['incident']['incident_id']}: {body['incident']['event']} "
        f"on {body['run_date']} (Airflow run {body['run_id']}).",
        f"Severity: {body['severity']} · rollout: {body['rollout_mode']} · "
        f"escalation: {'yes' if body['escalation'] else 'no'}",
        f"AT_RISK: {_fmt(decision['current_value'], '%')} vs baseline "
        f"{_fmt(decision['baseline_value'], '%')} (delta {_fmt(decision['delta_pct'], ' pts')}, "
        f"relative {_fmt(decision['delta_relative_pct'], '%')}; "
        f"sample {decision['sample_size']}; thresholds WARNING {decision['threshold_warning']}% "
        f"/ CRITICAL {decision['threshold_critical']}%)",
        f"Tier counts: P1={counts['P1']}, P2={counts['P2']}, P3={counts['P3']}",
        "Exports:",
    ]
    if body["exports"]:
        lines += [f"- {e['tier']} ({e['row_count']} rows): {e['link']}" for e in body["exports"]]
    else:
        lines.append("- none for this severity")
    lines.append(f"Brief: {body['brief_link'] or 'not published'}")
    lines.append(f"Slack: {body['slack_channel']} message {slack_ts}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: PlaybookSimulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves socket.getfqdn(), which can stall for seconds
        # without DNS; a loopback simulator does not need a server name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line instead of socketserver's traceback; a client that gave up (its timeout
        # fired during ``delay``) is expected here, not an error.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            self.sim._log("client went away before the answer (connection closed)")
        else:
            self.sim._log(f"error while handling a request: {exc.__class__.__name__}: {exc}")


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "PlaybookSim/1"
    sys_version = ""

    # ---- logging: never the raw request line (the hook path is the secret)

    def _log_path(self) -> str:
        path = getattr(self, "path", "") or ""
        route = path.split("?", 1)[0]
        if self.server.sim._is_hook(route):
            return HOOK_LOG_NAME
        if route in ("/_control", "/_health") or re.fullmatch(r"/tickets/[A-Za-z0-9-]+", route):
            return route
        return "<other>"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = getattr(code, "value", code)
        self.server.sim._log(f"{self.command or '-'} {self._log_path()} {status}")

    def log_error(self, format: str, *args: Any) -> None:
        # send_error() logs "code %d, message %s" where the message may quote the request
        # line; log_request() still records the status line, so drop the detail.
        pass

    def log_message(self, format: str, *args: Any) -> None:
        self.server.sim._log(f"{self.command or '-'} {self._log_path()} (message suppressed)")

    # ---- responses

    def _send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(value).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, val in (headers or {}).items():
            self.send_header(key, val)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
        self._send_json(status, {"error": code, "message": message, **extra})

    def _read_body(self) -> bytes | None:
        """The request body, or ``None`` after answering an error."""
        length = self.headers.get("Content-Length")
        if length is None:
            self._error(411, "length_required", "Content-Length is required")
            return None
        try:
            size = int(length)
        except ValueError:
            self._error(400, "bad_request", "invalid Content-Length")
            return None
        if size < 0 or size > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(413, "payload_too_large", f"body must be at most {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(size)

    def _read_json(self) -> tuple[bool, Any]:
        """(ok, parsed body); answers 400/411/413 itself when not ok."""
        raw = self._read_body()
        if raw is None:
            return False, None
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            self._error(400, "unsupported_content_type", "Content-Type must be application/json")
            return False, raw.decode("utf-8", "replace")
        try:
            return True, json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._error(400, "invalid_json", f"body is not valid JSON: {exc.__class__.__name__}")
            return False, raw.decode("utf-8", "replace")

    # ---- routes

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0]
        sim = self.server.sim
        if route == "/_health":
            self._send_json(200, {"ok": True})
        elif route.startswith("/tickets/"):
            ticket = sim.find_ticket(route[len("/tickets/") :])
            if ticket is None:
                self._error(404, "not_found", "no such ticket")
            else:
                self._send_json(200, ticket)
        elif sim._is_hook(route):
            self._send_json(
                405, {"error": "method_not_allowed", "message": "use POST"}, {"Allow": "POST"}
            )
        else:
            self._error(404, "not_found", "no such path")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        route = self.path.split("?", 1)[0]
        sim = self.server.sim
        if route == "/_control":
            self._control()
        elif sim._is_hook(route):
            self._hook()
        else:
            # Drain the body so the client sees the 404 rather than a reset.
            self._read_body_quietly()
            self._error(404, "not_found", "no such path")

    def _read_body_quietly(self) -> None:
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            size = 0
        if 0 < size <= MAX_BODY_BYTES:
            self.rfile.read(size)
        elif size:
            self.close_connection = True

    def _control(self) -> None:
        ok, body = self._read_json()
        if not ok:
            return
        allowed = {"fail_next", "fail_status", "delay"}
        if not isinstance(body, dict) or set(body) - allowed:
            self._error(
                400,
                "invalid_control",
                "body must be an object with any of fail_next, fail_status, delay",
            )
            return
        try:
            config = self.server.sim.configure(**body)
        except SimulatorError as exc:
            self._error(400, "invalid_control", str(exc))
            return
        self._send_json(200, {"ok": True, "config": config})

    def _hook(self) -> None:
        sim = self.server.sim
        ok, body = self._read_json()
        if not ok:
            sim._record(body, self._status_sent())
            return
        violation = first_violation(body)
        if violation is not None:
            sim._record(body, 400)
            sim._sleep()
            self._error(400, "schema_violation", violation["message"], path=violation["path"])
            return
        failure = sim._take_failure()
        if failure is not None:
            sim._record(body, failure)
            sim._sleep()
            self._error(failure, "injected_failure", f"simulated failure (status {failure})")
            return
        # The scenario's Slack and ticket modules run before its "Webhook response" module,
        # so a late answer (delay) still leaves the message and ticket behind, as Make does.
        # A repeat of a delivery (same idempotency key) gets the first answer again and
        # posts nothing, as a scenario that checks its data store does.
        key = self.headers.get(playbook.IDEMPOTENCY_HEADER) or body["dedupe_key"]
        response = sim._execute_once(key, body)
        sim._record(body, 200)
        sim._sleep()
        self._send_json(200, response)

    def _status_sent(self) -> int:
        return getattr(self, "_last_status", 400)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._last_status = int(code)
        super().send_response(code, message)


class PlaybookSimulator:
    """A loopback HTTP server implementing the playbook webhook contract.

    >>> with PlaybookSimulator(tmp_dir) as sim:          # doctest: +SKIP
    ...     requests.post(sim.url, json=body, timeout=5)

    ``url`` is the hook URL (``http://HOST:PORT/hook/<token>``); ``base_url`` is the server
    root. Files go to ``out_dir`` (``out_dir/shadow`` for shadow requests). ``log_stream``
    receives one line per request (default: ``sys.stderr`` at the time of the request).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        fail_next: int = 0,
        fail_status: int = 500,
        delay: float = 0.0,
        token: str | None = None,
        log_stream: TextIO | None = None,
        allow_any_host: bool = False,
    ) -> None:
        if not is_loopback(host) and not allow_any_host:
            raise SimulatorError(
                f"refusing to listen on non-loopback host {host!r}: the playbook simulator is "
                "local only (use 127.0.0.1, ::1 or localhost)"
            )
        if token is not None and not TOKEN_RE.fullmatch(token):
            raise SimulatorError("token must be 8-128 characters of A-Z, a-z, 0-9, '_' or '-'")
        _check_fault_settings(fail_next, fail_status, delay)
        self.out_dir = Path(out_dir)
        self.host = host.strip("[]")
        self._port = port
        self._token = token or secrets.token_urlsafe(24)
        self._hook_path = f"/hook/{self._token}"
        self._log_stream = log_stream
        self._lock = threading.Lock()
        self._fail_next = fail_next
        self._fail_status = fail_status
        self._delay = float(delay)
        self._requests: list[Any] = []
        self._statuses: list[int] = []
        self._ticket_seq: dict[bool, int | None] = {False: None, True: None}
        self._answers: dict[str, dict[str, Any]] = {}  # by idempotency key
        self._ts_counter = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> PlaybookSimulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        server_class = _Server6 if ":" in self.host else _Server
        server = server_class((self.host, self._port), _Handler)
        server.sim = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="playbook-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on ``delay``
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> PlaybookSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full hook URL, token included: treat it as a secret."""
        return self.base_url + self._hook_path

    def __repr__(self) -> str:  # never show the token
        state = f"{self.base_url}" if self._server is not None else "stopped"
        return f"PlaybookSimulator({state}, out_dir={str(self.out_dir)!r})"

    # ---- observation and control

    @property
    def requests(self) -> list[Any]:
        """Bodies received on the hook path, in order (parsed JSON, or text if unparseable)."""
        with self._lock:
            return list(self._requests)

    @property
    def statuses(self) -> list[int]:
        """The status answered for each entry of :attr:`requests`."""
        with self._lock:
            return list(self._statuses)

    def configure(
        self,
        fail_next: int | None = None,
        fail_status: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Change the fault settings (``None`` keeps a setting); returns the new settings."""
        _check_fault_settings(fail_next, fail_status, delay)
        with self._lock:
            if fail_next is not None:
                self._fail_next = fail_next
            if fail_status is not None:
                self._fail_status = fail_status
            if delay is not None:
                self._delay = float(delay)
            return self._config()

    @property
    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config()

    def _config(self) -> dict[str, Any]:
        return {
            "fail_next": self._fail_next,
            "fail_status": self._fail_status,
            "delay": self._delay,
        }

    def find_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        if not re.fullmatch(r"(?:SHADOW-)?RET-\d+", ticket_id):
            return None
        folder = self.out_dir / "shadow" if ticket_id.startswith(SHADOW_PREFIX) else self.out_dir
        path = folder / f"ticket_{ticket_id}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    # ---- internals used by the handler

    def _is_hook(self, route: str) -> bool:
        return hmac.compare_digest(route.encode("utf-8", "replace"), self._hook_path.encode())

    def _log(self, line: str) -> None:
        stream = self._log_stream or sys.stderr
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        try:
            stream.write(f"playbook-sim {stamp} {line}\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def _record(self, body: Any, status: int) -> None:
        with self._lock:
            self._requests.append(body)
            self._statuses.append(status)

    def _take_failure(self) -> int | None:
        with self._lock:
            if self._fail_next > 0:
                self._fail_next -= 1
                return self._fail_status
            return None

    def _sleep(self) -> None:
        with self._lock:
            delay = self._delay
        if delay > 0:
            self._stopping.wait(delay)

    def _next_ts(self, folder: Path) -> str:
        # Under self._lock. Slack's ts is "<epoch seconds>.<6 digits>"; the counter suffix
        # makes it unique per call, the existence check unique across restarts.
        while True:
            self._ts_counter = self._ts_counter % 999_999 + 1
            ts = f"{int(time.time())}.{self._ts_counter:06d}"
            if not (folder / f"slack_{ts}.json").exists():
                return ts

    def _next_ticket_id(self, folder: Path, shadow: bool) -> str:
        # Under self._lock. Start after the highest ticket already in the folder, so a
        # restarted simulator never reuses an id.
        last = self._ticket_seq[shadow]
        if last is None:
            last = 0
            if folder.is_dir():
                for path in folder.iterdir():
                    match = _TICKET_FILE_RE.match(path.name)
                    if match:
                        last = max(last, int(match.group(1)))
        prefix = (SHADOW_PREFIX if shadow else "") + TICKET_PREFIX
        while True:
            last += 1
            ticket_id = f"{prefix}{last:04d}"
            if not (folder / f"ticket_{ticket_id}.json").exists():
                self._ticket_seq[shadow] = last
                return ticket_id

    def _execute_once(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer of the first delivery with this key; later ones repeat it, unless the
        body is an explicit resend (the scenario then acts on the event again)."""
        with self._lock:
            known = self._answers.get(key)
        if known is not None and not body.get("resend"):
            return {**known, "duplicate": True}
        answer = self._execute(body)
        with self._lock:
            self._answers[key] = answer
            return answer

    def _execute(self, body: dict[str, Any]) -> dict[str, Any]:
        """Post the "Slack message" and open, update or close the incident's "ticket" (as
        files); the 200 answer. One ticket per incident: ``open`` (no ticket_id yet) creates
        it, later events update it, ``resolve`` closes it; later posts reply in the first
        post's thread."""
        shadow = bool(body["shadow"])
        folder = self.out_dir / "shadow" if shadow else self.out_dir
        folder.mkdir(parents=True, exist_ok=True)
        incident = body["incident"]
        channel = body["slack_channel"]
        text = body["brief"]["text"]
        mention = body.get("mention")
        if mention and mention not in text:
            text = f"{mention} {text}"
        with self._lock:
            ts = self._next_ts(folder)
            created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            ticket = self.find_ticket(incident["ticket_id"]) if incident["ticket_id"] else None
            if ticket is None:
                ticket_id = self._next_ticket_id(folder, shadow)
                ticket = {
                    "id": ticket_id,
                    "incident_id": incident["incident_id"],
                    "status": "open",
                    "title": f"[{body['severity']}] Retention incident {incident['incident_id']} "
                    f"(opened {incident['opened_on']})",
                    "body": _ticket_body(body, ts),
                    "rollout_mode": body["rollout_mode"],
                    "shadow": shadow,
                    "slack_channel": channel,
                    "slack_thread_ts": ts,
                    "url": f"{self.base_url}/tickets/{ticket_id}",
                    "created_at": created,
                    "events": [],
                }
            ticket["priority"] = body["ticket_priority"]
            ticket["severity"] = body["severity"]
            ticket["owner"] = body.get("owner")
            ticket["due_at"] = body.get("due_at")
            ticket["events"].append(
                {
                    "event": incident["event"],
                    "run_date": body["run_date"],
                    "run_id": body["run_id"],
                    "severity": body["severity"],
                    "tier_counts": body["tier_counts"],
                    "exports": body["exports"],
                    "brief_link": body["brief_link"],
                    "slack_message_ts": ts,
                    "resend": bool(body.get("resend")),
                    "at": created,
                }
            )
            if incident["event"] == "resolve":
                ticket["status"] = "closed"
                ticket["closed_at"] = created
            slack = {
                "channel": channel,
                "ts": ts,
                "thread_ts": incident["thread_ts"] or ticket["slack_thread_ts"],
                "text": text,
                "blocks": body["brief"]["blocks"],
                "escalation": body["escalation"],
                "mention": mention,
                "shadow": shadow,
                "incident_id": incident["incident_id"],
                "event": incident["event"],
                "run_id": body["run_id"],
                "run_date": body["run_date"],
                "posted_at": created,
            }
            if slack["thread_ts"] == ts:
                slack["thread_ts"] = None  # the first post starts the thread
            _write_json_atomic(folder / f"slack_{ts}.json", slack)
            _write_json_atomic(folder / f"ticket_{ticket['id']}.json", ticket)
        return {
            "slack_message_ts": ts,
            "ticket_id": ticket["id"],
            "slack_channel": channel,
            "ticket_url": ticket["url"],
            "shadow": shadow,
        }


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m devtools.playbook_sim``."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"loopback address only (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"0 picks a free port (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"where the Slack message and ticket files go (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--fail-next", type=int, default=0, metavar="N", help="answer --fail-status N times"
    )
    parser.add_argument("--fail-status", type=int, default=500, metavar="CODE", help="default 500")
    parser.add_argument(
        "--delay", type=float, default=0.0, metavar="SECONDS", help="answer this late"
    )
    parser.add_argument(
        "--token", default=None, help="hook path token (default: random; it is never printed)"
    )
    parser.add_argument(
        "--allow-any-host",
        action="store_true",
        help="allow a non-loopback --host: only inside a private container network "
        "(docker-compose.yaml), never on a shared host",
    )
    parser.add_argument(
        "--url-file",
        metavar="PATH",
        default=None,
        help="write the full hook URL (the secret) to this file, mode 0600",
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; 0 on a clean stop, 2 on a bad option."""
    try:
        sim = PlaybookSimulator(
            args.out,
            host=args.host,
            port=args.port,
            fail_next=args.fail_next,
            fail_status=args.fail_status,
            delay=args.delay,
            token=args.token,
            allow_any_host=getattr(args, "allow_any_host", False),
        )
        sim.start()
    except SimulatorError as exc:
        print(f"playbook-sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"playbook-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    previous: dict[int, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        if args.url_file:
            try:
                _write_text_atomic(Path(args.url_file), sim.url + "\n")
            except OSError as exc:
                print(f"playbook-sim: cannot write --url-file: {exc}", file=sys.stderr)
                return 2
        elif args.token is None:
            print(
                "playbook-sim: no --url-file and a random token: the hook URL is not shown "
                "anywhere; pass --url-file or --token",
                file=sys.stderr,
            )
        print(
            f"playbook-sim listening on {sim.base_url} (hook path hidden; see --url-file)",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.stop()
    print("playbook-sim stopped", file=sys.stderr)
    return 0


def build_parser(prog: str = "playbook-sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Local simulator of the Make.com playbook webhook."
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
