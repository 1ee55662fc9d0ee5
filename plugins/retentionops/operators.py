"""Airflow operators of the package (imported by the DAG; need Airflow installed, not running)."""

from __future__ import annotations

from typing import Any

import requests
from airflow.providers.http.operators.http import HttpOperator

from retentionops.playbook import (
    TransientWebhookError,
    classify_response,
    connection_secrets,
    parse_response,
)


def webhook_secrets(conn_id: str) -> list[str]:
    """The strings of the webhook connection to mask (host = the full URL, password, extra)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return connection_secrets(conn.host, conn.password, conn.extra)


class PlaybookWebhookOperator(HttpOperator):
    """POST the playbook JSON to the Make webhook held in an Airflow connection.

    Before calling, every secret of the connection is registered with Airflow's secrets
    masker, so the URL never shows in task logs. Transport failures are re-raised as
    ``TransientWebhookError`` without the ``requests`` message (which embeds the URL).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("method", "POST")
        kwargs.setdefault("headers", {"Content-Type": "application/json"})
        kwargs.setdefault("response_check", classify_response)
        kwargs.setdefault("response_filter", parse_response)
        super().__init__(**kwargs)

    def execute(self, context: Any) -> Any:
        from airflow.sdk.log import mask_secret

        for secret in webhook_secrets(self.http_conn_id):
            mask_secret(secret)
        try:
            return super().execute(context)
        except requests.Timeout:
            timeout = (self.extra_options or {}).get("timeout")
            raise TransientWebhookError(f"webhook timed out after {timeout} s") from None
        except requests.ConnectionError as error:
            reason = type(error).__name__
            raise TransientWebhookError(f"webhook unreachable ({reason})") from None
