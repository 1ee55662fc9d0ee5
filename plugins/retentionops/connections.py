"""Airflow connections and their secrets: looked up, masked and scrubbed in one place.

The Make webhook URL (its path token is the secret) and the Slack webhook live only in
Airflow connections. Everything that may print an error (task logs, the run log, MCP tool
errors, CLI messages) goes through :func:`redact` with the secrets of :func:`known_secrets`;
tasks that call out register them with Airflow's secrets masker first (:func:`mask`).
Airflow is imported only when a connection is looked up.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any
from urllib.parse import urlsplit

from retentionops.errors import UserError
from retentionops.settings import Settings

_URL = re.compile(r"https?://[^\s'\"<>]+")
#: Shorter values are not treated as secrets (they would blank out ordinary words).
_MIN_SECRET_LENGTH = 6


class ConnectionMissingError(UserError):
    """An Airflow connection the operation needs is not defined."""


def connection_secrets(host: str | None, password: str | None, extra: Any = None) -> list[str]:
    """Every string of a connection that must never reach a log, XCom or table."""
    secrets = []
    for value in (host, password):
        if value:
            secrets.append(value)
            path = urlsplit(value).path if "://" in value else ""
            if len(path.strip("/")) >= _MIN_SECRET_LENGTH:
                secrets.append(path)
                secrets.append(path.strip("/"))
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra else {}
        except ValueError:
            extra = {}
    if isinstance(extra, dict):
        secrets += [
            str(v) for v in extra.values() if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH
        ]
    return sorted(set(secrets), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Remove secrets, and any URL at all, from a message meant for logs or the run log."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _URL.sub("<url>", text)


def get_connection(conn_id: str) -> Any:
    """The Airflow connection, or a clear error naming how to define it."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        raise ConnectionMissingError(
            f"no Airflow connection '{conn_id}' is defined: define it (e.g. the environment "
            f"variable AIRFLOW_CONN_{conn_id.upper()}) and retry"
        ) from None


def known_secrets(settings: Settings) -> list[str]:
    """The secrets of every connection the package calls out through (missing ones skipped)."""
    secrets: list[str] = []
    for conn_id in (settings.make_conn_id, settings.slack_conn_id):
        try:
            conn = get_connection(conn_id)
        except ConnectionMissingError:
            continue
        secrets += connection_secrets(conn.host, conn.password, conn.extra)
    return sorted(set(secrets), key=len, reverse=True)


class _Redactor(logging.Filter):
    """A logging filter replacing every registered secret in a record by ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = message
            for secret in self.secrets:
                clean = clean.replace(secret, "***")
            if clean != message:
                record.msg, record.args = clean, ()
        return True


_REDACTOR = _Redactor()


def mask(secrets: list[str]) -> None:
    """Hide secrets from every log line: Airflow's masker (task logs) and a filter on the
    root logger's handlers (the CLI, the MCP server), fed with every variant of them."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        mask_secret(secret)
    _REDACTOR.secrets = sorted({*_REDACTOR.secrets, *secrets}, key=len, reverse=True)
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and _REDACTOR not in handler.filters:
            handler.addFilter(_REDACTOR)


# -- stdout is data at some doors ----------------------------------------------------------

_stdout_is_data = False


def stdout_is_data() -> None:
    """Said by a door whose stdout carries data: the CLI's JSON and CSV, the MCP server's
    stdio protocol. See :func:`keep_logs_off_stdout`."""
    global _stdout_is_data
    _stdout_is_data = True


def keep_logs_off_stdout() -> None:
    """Importing Airflow (the webhook's hook, loaded on first use) points the root logger at
    stdout: at a door whose stdout is data, its stream handlers move to stderr, so a log
    line never lands inside the JSON or the MCP protocol."""
    if not _stdout_is_data:
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stdout,
            sys.__stdout__,
        ):
            handler.setStream(sys.stderr)


def webhook_url(settings: Settings) -> str:
    """The full webhook URL held by the ``make_conn_id`` connection's host."""
    conn = get_connection(settings.make_conn_id)
    if not conn.host or "://" not in conn.host:
        raise ConnectionMissingError(
            f"connection '{settings.make_conn_id}' must hold the full webhook URL as its host"
        )
    return str(conn.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``make airflow`` and the MCP
    server's HTTP transport serve without a login or token only there)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
