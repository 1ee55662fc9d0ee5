"""The playbook contract in pure Python: plans per rollout mode, the body, response handling."""

from __future__ import annotations

import pytest

from retentionops import playbook
from retentionops.settings import load_settings

SETTINGS = load_settings(env={})
CRITICAL = {"severity": "CRITICAL", "alert_flag": True}
WARNING = {"severity": "WARNING", "alert_flag": True}


@pytest.mark.parametrize(
    ("decision", "mode", "expected"),
    [
        (CRITICAL, "production", (False, True, "URGENT", "#retention-alerts")),
        (WARNING, "production", (False, False, "HIGH", "#retention-alerts")),
        # pilot: the WARNING playbook only, in the pilot channel (CRITICAL is not escalated)
        (CRITICAL, "pilot", (False, False, "HIGH", "#retention-pilot")),
        (WARNING, "pilot", (False, False, "HIGH", "#retention-pilot")),
        (CRITICAL, "shadow", (True, False, "HIGH", "#retention-pilot")),
    ],
)
def test_plan_by_severity_and_rollout_mode(decision, mode, expected):
    plan = playbook.playbook_plan(decision, mode, SETTINGS)
    assert (plan["shadow"], plan["escalation"], plan["ticket_priority"], plan["slack_channel"]) == (
        expected
    )
    assert plan["rollout_mode"] == mode


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="shadow, pilot, production"):
        playbook.playbook_plan(CRITICAL, "canary", SETTINGS)


class FakeResponse:
    def __init__(self, status, body=None, reason="", text=None):
        self.status_code, self._body, self.reason = status, body, reason
        self.text = text

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_transient_statuses_raise_a_retryable_error(status):
    with pytest.raises(playbook.TransientWebhookError, match=f"HTTP {status}"):
        playbook.classify_response(FakeResponse(status, reason="x"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_are_permanent(status):
    with pytest.raises(playbook.PermanentWebhookError, match=f"HTTP {status}"):
        playbook.classify_response(FakeResponse(status))


def test_success_and_response_parsing():
    assert playbook.classify_response(FakeResponse(200)) is True
    parsed = playbook.parse_response(
        FakeResponse(200, {"slack_message_ts": "1.2", "ticket_id": "RET-7", "x": 1})
    )
    assert parsed == {
        "status_code": 200,
        "slack_message_ts": "1.2",
        "ticket_id": "RET-7",
        "slack_channel": None,
    }
    with pytest.raises(playbook.PermanentWebhookError, match="Webhook response"):
        playbook.parse_response(FakeResponse(200, None, text="Accepted"))


def test_secrets_of_a_connection_and_redaction():
    from retentionops import connections

    url = "https://hook.eu1.make.com/abcdef123456token"
    secrets = connections.connection_secrets(url, None, '{"api_key": "s3cr3t-key"}')
    assert url in secrets and "/abcdef123456token" in secrets and "s3cr3t-key" in secrets
    message = (
        "HTTPSConnectionPool(host='hook.eu1.make.com'): Max retries exceeded with url: "
        "/abcdef123456token (Caused by ...) key=s3cr3t-key see https://other.example/x"
    )
    clean = connections.redact(message, secrets)
    assert "abcdef123456token" not in clean and "s3cr3t-key" not in clean
    assert "https://" not in clean and "***" in clean


def context(severity="CRITICAL", mode="production"):
    value = {
        "run_date": "2011-05-13",
        "decision": {
            "severity": severity, "alert_flag": True, "current_value": 45.2,
            "baseline_value": 32.55142857142857, "delta_pct": 12.648571428571428,
            "delta_relative_pct": 38.86, "sample_size": 2396, "threshold_warning": 15.0,
            "threshold_critical": 25.0, "alert_date": "2011-05-13",
        },
        "tiers": {"P1": {"count": 47}, "P2": {"count": 300}, "P3": {"count": 0}},
    }  # fmt: skip
    value["plan"] = playbook.playbook_plan(value["decision"], mode, SETTINGS)
    return value


@pytest.mark.parametrize("mode", ["shadow", "pilot", "production"])
@pytest.mark.parametrize("severity", ["WARNING", "CRITICAL"])
def test_the_body_satisfies_the_published_schema(mode, severity):
    from devtools.playbook_sim import first_violation

    exports = [
        {"tier": "P2", "link": "artifacts/runs/2011-05-13/audience_p2.csv", "row_count": 300},
        {"tier": "P1", "link": "artifacts/runs/2011-05-13/audience_p1.csv", "row_count": 47},
    ]
    body = playbook.build_payload(
        run_id="scheduled__2011-05-13T00:00:00+00:00",
        context=context(severity, mode),
        slack_brief={"text": "*brief*", "blocks": [{"type": "divider"}]},
        exports=exports,
        brief_link="artifacts/runs/2011-05-13/brief.md",
    )
    assert first_violation(body) is None
    assert [e["tier"] for e in body["exports"]] == ["P1", "P2"]
    assert body["tier_counts"] == {"P1": 47, "P2": 300, "P3": 0}
    assert body["escalation"] is (severity == "CRITICAL" and mode == "production")
    assert "alert_date" not in body["decision"]  # only the contract's fields


@pytest.mark.parametrize(
    ("decision", "mode", "expected"),
    [
        # the audiences follow the alert's severity whatever the rollout stage
        (CRITICAL, "production", ("critical", ["P1", "P2", "P3"], "<!here>")),
        (CRITICAL, "pilot", ("critical", ["P1", "P2", "P3"], None)),
        (CRITICAL, "shadow", ("critical", ["P1", "P2", "P3"], None)),
        (WARNING, "production", ("warning", ["P1", "P2"], None)),
        ({"severity": "WARNING", "alert_flag": False}, "production", ("no_alert", [], None)),
        ({"severity": "INFO", "alert_flag": False}, "production", ("no_alert", [], None)),
    ],
)
def test_plan_branch_tiers_and_mention(decision, mode, expected):
    plan = playbook.playbook_plan(decision, mode, SETTINGS)
    assert (plan["branch"], plan["tiers"], plan["mention"]) == expected
    if not plan["alerting"]:
        assert (plan["ticket_priority"], plan["slack_channel"]) == (None, None)
