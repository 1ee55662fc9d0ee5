"""The playbook webhook contract (JSON Schemas) and its local simulator, over real HTTP.

Everything talks to 127.0.0.1 only; every test stays well under two seconds.
"""

from __future__ import annotations

import copy
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator

from devtools.playbook_sim import (
    PlaybookSimulator,
    SimulatorError,
    build_parser,
    first_violation,
    load_schema,
    run_from_args,
)

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 5


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def critical_body(**changes):
    body = copy.deepcopy(load_schema("playbook_webhook")["examples"][0])
    body.update(changes)
    return body


def warning_body(**changes):
    body = critical_body(
        severity="WARNING",
        escalation=False,
        mention=None,
        ticket_priority="HIGH",
        exports=[
            {
                "tier": "P1",
                "link": "gs://bucket/2011-05-13/audience_p1.csv",
                "row_count": 9,
                "status": "ok",
            }
        ],
        brief={
            "text": "WARNING retention alert 2011-05-13",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Situation*"}}],
        },
    )
    body.update(changes)
    return body


def files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file())


@pytest.fixture
def log():
    return io.StringIO()


@pytest.fixture
def sim(tmp_path, log):
    with PlaybookSimulator(tmp_path / "out", log_stream=log) as server:
        yield server


def post(sim, body, **kwargs):
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.post(sim.url, json=body, **kwargs)


# --------------------------------------------------------------------------- the schemas


def test_schemas_are_valid_2020_12_and_document_the_contract():
    for name in ("playbook_webhook", "playbook_response"):
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] and schema["title"]
        assert "Make.com" in schema["description"]
        assert "make_webhook" in schema["description"]
    webhook = load_schema("playbook_webhook")
    assert webhook["additionalProperties"] is False
    assert set(webhook["required"]) == set(webhook["properties"])


def test_the_schema_examples_validate():
    example = load_schema("playbook_webhook")["examples"][0]
    assert example["severity"] == "CRITICAL"
    _validator("playbook_webhook").validate(example)
    _validator("playbook_response").validate(load_schema("playbook_response")["examples"][0])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"run_date": "2011-02-30"}, "is not a 'date'"),
        ({"run_date": "13/05/2011"}, "'13/05/2011'"),
        ({"alert_flag": "yes"}, "is not of type 'boolean'"),
        (
            {
                "incident": {
                    **load_schema("playbook_webhook")["examples"][0]["incident"],
                    "event": "reopen",
                }
            },
            "'reopen' is not one of",
        ),  # fmt: skip
        ({"mention": "x" * 101}, "is too long"),
        ({"contract_version": "2"}, "'3' was expected"),
        ({"dedupe_key": "short"}, "is too short"),
        ({"slack_channel": "retention-alerts"}, "does not match"),
        ({"tier_counts": {"P1": 1, "P2": 2, "P3": -1}}, "less than the minimum"),
        (
            {"exports": [{"tier": "P4", "link": "x", "row_count": 1, "status": "ok"}]},
            "is not one of",
        ),
        ({"exports": [{"tier": "P1", "link": "x", "row_count": 1}]}, "'status' is a required"),
        (
            {"exports": [{"tier": "P1", "link": "x", "row_count": 1, "status": "lost"}]},
            "'lost' is not one of",
        ),
        ({"brief": {"text": "", "blocks": []}}, "should be non-empty"),
        ({"brief": {"text": "t", "blocks": [{"type": "divider"}] * 51}}, "is too long"),
        ({"brief_link": 3}, "is not of type"),
    ],
)
def test_the_webhook_schema_rejects(change, expected):
    violation = first_violation(critical_body(**change))
    assert violation is not None
    assert expected in violation["message"]
    assert len(violation["message"]) <= 300


def test_nullable_decision_fields_and_empty_exports_are_valid():
    body = warning_body(exports=[], brief_link=None)
    body["decision"].update(baseline_value=None, delta_pct=None, delta_relative_pct=None)
    assert first_violation(body) is None


# --------------------------------------------------------------------------- happy path


def test_critical_request_posts_message_and_opens_tickets_in_sequence(sim):
    out = sim.out_dir
    rerun = {
        "run_id": "manual__2011-05-13T09:00:00+00:00",
        "dedupe_key": "retentionops:2011-05-13:manual__2011-05-13T09:00:00+00:00",
    }
    first = post(sim, critical_body())
    second = post(sim, critical_body(**rerun))

    assert first.status_code == second.status_code == 200
    assert first.headers["Content-Type"] == "application/json"
    one, two = first.json(), second.json()
    _validator("playbook_response").validate(one)
    _validator("playbook_response").validate(two)
    assert (one["ticket_id"], two["ticket_id"]) == ("RET-0001", "RET-0002")
    assert one["slack_message_ts"] != two["slack_message_ts"]
    assert one["slack_channel"] == "#retention-alerts"
    assert one["ticket_url"] == f"{sim.base_url}/tickets/RET-0001"
    assert sim.requests == [critical_body(), critical_body(**rerun)]
    assert sim.statuses == [200, 200]

    slack = json.loads((out / f"slack_{one['slack_message_ts']}.json").read_text())
    assert slack["channel"] == "#retention-alerts"
    assert slack["text"].startswith("<!here> CRITICAL retention alert 2011-05-13")
    assert slack["blocks"] == critical_body()["brief"]["blocks"]
    assert slack["escalation"] is True

    ticket = json.loads((out / "ticket_RET-0001.json").read_text())
    assert ticket["id"] == "RET-0001"
    assert ticket["priority"] == "URGENT"
    assert ticket["title"] == "[CRITICAL] Retention incident INC-20110513 (opened 2011-05-13)"
    assert (ticket["status"], ticket["incident_id"]) == ("open", "INC-20110513")
    assert [e["event"] for e in ticket["events"]] == ["open"]
    assert "P1=120, P2=340, P3=515" in ticket["body"]
    for export in critical_body()["exports"]:
        assert export["link"] in ticket["body"]
    assert ticket["slack_thread_ts"] == one["slack_message_ts"]
    assert files(out) == sorted(
        [
            f"slack_{one['slack_message_ts']}.json",
            f"slack_{two['slack_message_ts']}.json",
            "ticket_RET-0001.json",
            "ticket_RET-0002.json",
        ]
    )  # atomic writes leave no temporary files behind

    served = requests.get(one["ticket_url"], timeout=TIMEOUT)
    assert served.status_code == 200 and served.json() == ticket


def test_no_escalation_means_no_mention(sim):
    response = post(sim, warning_body())
    assert response.status_code == 200
    answer = response.json()
    slack = json.loads((sim.out_dir / f"slack_{answer['slack_message_ts']}.json").read_text())
    assert "<!here>" not in slack["text"]
    assert slack["escalation"] is False
    ticket = json.loads((sim.out_dir / f"ticket_{answer['ticket_id']}.json").read_text())
    assert ticket["priority"] == "HIGH"
    assert ticket["title"] == "[WARNING] Retention incident INC-20110513 (opened 2011-05-13)"


def test_one_ticket_per_incident_updated_in_its_thread_and_closed_on_resolve(sim):
    """open creates RET-0001; the update names it (ticket_id, thread_ts from the ledger) and
    is appended to it, its Slack post a reply in the first post's thread; resolve closes it.
    No second ticket is opened."""
    opened = post(sim, critical_body()).json()
    incident = {**critical_body()["incident"], "ticket_id": opened["ticket_id"],
                "thread_ts": opened["slack_message_ts"]}  # fmt: skip
    update = critical_body(
        run_date="2011-05-14", dedupe_key="INC-20110513:update:2011-05-14:production",
        incident={**incident, "event": "update", "days_open": 2}, mention=None,
    )  # fmt: skip
    resolve = warning_body(
        run_date="2011-07-01", alert_flag=False, exports=[],
        dedupe_key="INC-20110513:resolve:2011-07-01:production",
        incident={**incident, "event": "resolve", "days_open": 50},
    )  # fmt: skip
    answers = [post(sim, update).json(), post(sim, resolve).json()]
    assert [a["ticket_id"] for a in answers] == ["RET-0001", "RET-0001"]
    ticket = json.loads((sim.out_dir / "ticket_RET-0001.json").read_text())
    assert [(e["event"], e["run_date"]) for e in ticket["events"]] == [
        ("open", "2011-05-13"), ("update", "2011-05-14"), ("resolve", "2011-07-01"),
    ]  # fmt: skip
    assert ticket["status"] == "closed" and ticket["closed_at"]
    posts = [json.loads((sim.out_dir / f"slack_{a['slack_message_ts']}.json").read_text())
             for a in [opened, *answers]]  # fmt: skip
    assert [p["thread_ts"] for p in posts] == [
        None, opened["slack_message_ts"], opened["slack_message_ts"],
    ]  # fmt: skip
    assert not (sim.out_dir / "ticket_RET-0002.json").exists()


def test_a_repeated_dedupe_key_acts_once_unless_it_is_a_resend(sim):
    first = post(sim, critical_body()).json()
    again = post(sim, critical_body()).json()
    assert again["ticket_id"] == first["ticket_id"] and again.get("duplicate") is True
    assert again["slack_message_ts"] == first["slack_message_ts"]  # nothing posted again
    resent = post(sim, critical_body(resend=True)).json()
    assert resent["slack_message_ts"] != first["slack_message_ts"]  # an explicit resend acts
    slack_files = [n for n in files(sim.out_dir) if n.startswith("slack_")]
    assert len(slack_files) == 2


def test_escalation_mention_is_not_doubled(sim):
    body = critical_body()
    body["brief"]["text"] = "<!here> already mentioned"
    answer = post(sim, body).json()
    slack = json.loads((sim.out_dir / f"slack_{answer['slack_message_ts']}.json").read_text())
    assert slack["text"] == "<!here> already mentioned"


def test_shadow_mode_writes_under_shadow_with_shadow_ids(sim):
    body = critical_body(rollout_mode="shadow", shadow=True, escalation=False)
    first = post(sim, body)
    second = post(sim, {**body, "dedupe_key": "retentionops:2011-05-13:second-delivery"})
    assert first.status_code == second.status_code == 200
    assert [first.json()["ticket_id"], second.json()["ticket_id"]] == [
        "SHADOW-RET-0001",
        "SHADOW-RET-0002",
    ]
    _validator("playbook_response").validate(first.json())
    shadow_files = files(sim.out_dir / "shadow")
    assert "ticket_SHADOW-RET-0001.json" in shadow_files
    assert f"slack_{first.json()['slack_message_ts']}.json" in shadow_files
    assert files(sim.out_dir) == []  # nothing in the "real" channel/project
    # A real request afterwards starts its own sequence.
    real = critical_body(dedupe_key="retentionops:2011-05-13:real-delivery")
    assert post(sim, real).json()["ticket_id"] == "RET-0001"


def test_restart_continues_the_ticket_sequence(tmp_path, log):
    out = tmp_path / "out"
    with PlaybookSimulator(out, log_stream=log) as first:
        assert post(first, critical_body()).json()["ticket_id"] == "RET-0001"
    with PlaybookSimulator(out, log_stream=log) as second:
        answer = post(second, critical_body(dedupe_key="retentionops:another-delivery")).json()
    assert answer["ticket_id"] == "RET-0002"
    assert len([name for name in files(out) if name.startswith("slack_")]) == 2


# --------------------------------------------------------------------------- rejected requests


@pytest.mark.parametrize(
    ("mutate", "expected_message", "expected_path"),
    [
        (lambda b: b.pop("tier_counts"), "'tier_counts' is a required property", "/"),
        (lambda b: b.update(severity="INFO"), "'INFO' is not one of", "/severity"),
        (lambda b: b.update(surprise=1), "'surprise' was unexpected", "/"),
        (lambda b: b["decision"].update(sample_size=1.5), "is not of type 'integer'", None),
    ],
    ids=["missing-tier_counts", "severity-INFO", "extra-property", "float-sample-size"],
)
def test_invalid_body_is_400_naming_the_problem_and_writes_nothing(
    sim, mutate, expected_message, expected_path
):
    body = critical_body()
    mutate(body)
    response = post(sim, body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "schema_violation"
    assert expected_message in error["message"]
    if expected_path:
        assert error["path"] == expected_path
    assert sim._token not in response.text
    assert files(sim.out_dir) == []
    assert sim.statuses == [400]


def test_non_json_and_wrong_content_type_are_400(sim):
    not_json = requests.post(
        sim.url, data="{nope", headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_json"
    form = requests.post(sim.url, data={"severity": "CRITICAL"}, timeout=TIMEOUT)
    assert form.status_code == 400 and form.json()["error"] == "unsupported_content_type"
    charset = requests.post(
        sim.url,
        data=json.dumps(critical_body()),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert charset.status_code == 200
    assert sim.statuses == [400, 400, 200]


def test_other_paths_are_404_and_the_hook_wants_post(sim):
    for url in (
        sim.base_url + "/hook/not-the-token",
        sim.base_url + "/",
        sim.url + "/extra",
        sim.base_url + "/hook/" + sim._token.upper(),
    ):
        response = requests.post(url, json=critical_body(), timeout=TIMEOUT)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"
    assert requests.get(sim.url, timeout=TIMEOUT).status_code == 405
    assert requests.get(sim.base_url + "/tickets/RET-9999", timeout=TIMEOUT).status_code == 404
    assert sim.requests == []
    assert files(sim.out_dir) == []


# --------------------------------------------------------------------------- faults


def test_fail_next_answers_errors_then_recovers(tmp_path, log):
    with PlaybookSimulator(tmp_path, fail_next=2, fail_status=500, log_stream=log) as sim:
        statuses = [post(sim, critical_body()).status_code for _ in range(3)]
        assert statuses == [500, 500, 200]
        assert sim.statuses == statuses
        assert len(sim.requests) == 3
        # Failed calls open nothing and do not use up ticket ids.
        names = files(tmp_path)
        assert len(names) == 2
        assert names[0].startswith("slack_") and names[1] == "ticket_RET-0001.json"


@pytest.mark.parametrize("status", [429, 400, 503])
def test_fail_status_is_honoured(sim, status):
    sim.configure(fail_next=1, fail_status=status)
    failed = post(sim, critical_body())
    assert failed.status_code == status
    assert failed.json() == {
        "error": "injected_failure",
        "message": f"simulated failure (status {status})",
    }
    assert files(sim.out_dir) == []
    assert post(sim, critical_body()).status_code == 200


def test_delay_makes_a_short_client_timeout_fire(sim):
    sim.configure(delay=5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        post(sim, critical_body(), timeout=0.2)
    assert time.monotonic() - started < 4  # the client gave up long before the answer
    # Like a slow Make scenario: the modules ran, only the answer was late; the client's
    # retry carries the same idempotency key and gets that first ticket, not a second one.
    sim.configure(delay=0)
    retry = post(sim, critical_body()).json()
    assert (retry["ticket_id"], retry["duplicate"]) == ("RET-0001", True)
    assert [f for f in files(sim.out_dir) if f.startswith("ticket_")] == ["ticket_RET-0001.json"]


def test_configure_rejects_bad_values(sim):
    with pytest.raises(SimulatorError):
        sim.configure(fail_next=-1)
    with pytest.raises(SimulatorError):
        sim.configure(fail_status=200)
    with pytest.raises(SimulatorError):
        sim.configure(delay=-0.5)
    assert sim.config == {"fail_next": 0, "fail_status": 500, "delay": 0.0}


def test_control_endpoint_reconfigures_a_running_server(sim):
    control = sim.base_url + "/_control"
    health = requests.get(sim.base_url + "/_health", timeout=TIMEOUT)
    assert health.status_code == 200 and health.json() == {"ok": True}

    answer = requests.post(control, json={"fail_next": 1, "fail_status": 429}, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "config": {"fail_next": 1, "fail_status": 429, "delay": 0.0},
    }
    assert post(sim, critical_body()).status_code == 429
    assert post(sim, critical_body()).status_code == 200

    assert requests.post(control, json={"delay": 0.05}, timeout=TIMEOUT).status_code == 200
    assert sim.config["delay"] == 0.05

    for bad in ({"fail_next": -1}, {"fail_status": 200}, {"bogus": 1}, [1]):
        rejected = requests.post(control, json=bad, timeout=TIMEOUT)
        assert rejected.status_code == 400, bad
        assert rejected.json()["error"] == "invalid_control"
    assert sim.config == {"fail_next": 0, "fail_status": 429, "delay": 0.05}


# --------------------------------------------------------------------------- secrecy, host


def test_log_lines_never_contain_the_token(sim, log):
    post(sim, critical_body())
    post(sim, critical_body(severity="INFO"))
    requests.post(sim.url, data="x", headers={"Content-Type": "text/plain"}, timeout=TIMEOUT)
    requests.get(sim.url, timeout=TIMEOUT)
    requests.post(sim.base_url + "/hook/" + sim._token[:-1], json={}, timeout=TIMEOUT)
    requests.get(sim.base_url + "/_health", timeout=TIMEOUT)
    sim.configure(fail_next=1)
    post(sim, critical_body())

    lines = log.getvalue().splitlines()
    assert len(lines) == 7
    assert sim._token not in log.getvalue()
    assert sim._token[:-1] not in log.getvalue()
    assert "/hook/" not in log.getvalue()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "POST <hook> 200",
        "POST <hook> 400",
        "POST <hook> 400",
        "GET <hook> 405",
        "POST <other> 404",
        "GET /_health 200",
        "POST <hook> 500",
    ]
    assert sim._token not in repr(sim)


def test_default_log_goes_to_stderr_without_the_token(tmp_path, capsys):
    with PlaybookSimulator(tmp_path) as sim:
        assert post(sim, critical_body()).status_code == 200
        token = sim._token
    err = capsys.readouterr().err
    assert "POST <hook> 200" in err
    assert token not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_non_loopback_host_is_refused(tmp_path, host, capsys):
    with pytest.raises(SimulatorError, match="non-loopback"):
        PlaybookSimulator(tmp_path, host=host)
    args = build_parser().parse_args(["--host", host, "--out", str(tmp_path)])
    assert run_from_args(args) == 2
    assert "refusing to listen on non-loopback host" in capsys.readouterr().err
    assert files(tmp_path) == []


def test_token_must_be_url_safe(tmp_path):
    with pytest.raises(SimulatorError, match="token"):
        PlaybookSimulator(tmp_path, token="a/b")


def test_cli_serves_until_sigterm_and_keeps_the_url_out_of_stdout(tmp_path):
    url_file = tmp_path / "hook.url"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    command = [sys.executable, "-m", "devtools.playbook_sim", "--port", "0"]
    command += ["--out", str(tmp_path / "out"), "--url-file", str(url_file)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("playbook-sim listening on http://127.0.0.1:")
        assert line.rstrip().endswith("(hook path hidden; see --url-file)")
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:") and "/hook/" in url
        assert oct(url_file.stat().st_mode & 0o777) == "0o600"
        assert requests.post(url, json=critical_body(), timeout=TIMEOUT).status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    token = url.rsplit("/", 1)[1]
    assert token not in line + out + err
    assert "POST <hook> 200" in err
    assert (tmp_path / "out" / "ticket_RET-0001.json").exists()


def test_a_repeated_delivery_is_answered_once_without_acting_again(sim):
    """The same idempotency key (a retry after a timeout) gets the first answer back."""
    first = post(sim, critical_body())
    again = post(sim, critical_body())
    assert again.status_code == 200
    assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert again.json()["duplicate"] is True
    assert len([f for f in files(sim.out_dir) if f.startswith("ticket_")]) == 1
    other = post(sim, critical_body(dedupe_key="retentionops:2011-05-13:another-run"))
    assert other.json()["ticket_id"] != first.json()["ticket_id"]
