"""The Airflow hook of the Make webhook, shared by the DAG's operator and the service layer.

Needs Airflow's HTTP provider (imported when this module is): ``service`` imports it only
when a playbook is actually posted, so the MCP server and the CLI load Airflow for that and
nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from retentionops import connections
from retentionops.playbook import (
    IDEMPOTENCY_HEADER,
    TransientWebhookError,
    classify_response,
    parse_response,
    retry_args,
)
from retentionops.settings import Settings


class PlaybookHook(HttpHook):
    """The HTTP hook of the Make webhook, held in an Airflow HTTP connection.

    ``run_and_check`` sends the request and classifies the answer itself: transport faults,
    408, 429 and 5xx become :class:`TransientWebhookError` (retried), other refusals
    ``PermanentWebhookError``, and so does a redirect (never followed). Neither message nor
    any log line carries the URL (the stock hook logs the ``requests`` error, which embeds
    it).
    """

    def run_and_check(
        self, session: requests.Session, prepped_request: Any, extra_options: dict[Any, Any]
    ) -> Any:
        environment = session.merge_environment_settings(
            prepped_request.url,
            proxies=session.proxies,
            stream=session.stream,
            verify=session.verify,
            cert=session.cert,
        )
        timeout = extra_options.get("timeout")
        try:
            # only a 2xx answer to the POST itself is a delivery: a redirect is never
            # followed (requests would follow a 301/302 with a GET that carries no body)
            response = session.send(
                prepped_request, timeout=timeout, allow_redirects=False, **environment
            )
        except requests.ConnectTimeout:  # never reached the receiver
            raise TransientWebhookError(
                f"webhook connection timed out after {timeout} s"
            ) from None
        except requests.Timeout:  # sent, no answer in time: the receiver may have acted
            raise TransientWebhookError(
                f"webhook timed out after {timeout} s", unanswered=True
            ) from None
        except requests.ConnectionError as error:
            raise TransientWebhookError(f"webhook unreachable ({type(error).__name__})") from None
        classify_response(response)
        return response

    def post_playbook(
        self,
        payload: dict[str, Any],
        settings: Settings,
        failures: list[BaseException] | None = None,
    ) -> dict[str, Any]:
        """POST the body with the retry policy; return the scenario's parsed answer.
        ``failures`` collects the errors of the attempts that were retried."""
        connections.webhook_url(settings)  # a missing connection: a clear error, no traceback
        connections.mask(connections.known_secrets(settings))
        response = self.run_with_advanced_retry(
            retry_args(settings, failures),
            endpoint=None,
            data=json.dumps(payload),
            headers={
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: payload["dedupe_key"],
            },
            extra_options={"timeout": settings.webhook_timeout_seconds},
        )
        return parse_response(response)
