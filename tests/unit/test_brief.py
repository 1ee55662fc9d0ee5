"""The manager brief and its chart: hand-built contexts, hand-computed numbers."""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import re
import subprocess
import sys

import pytest

from retentionops import brief
from retentionops.brief import (
    SLACK_FALLBACK_MAX,
    render_brief,
    render_chart,
    slack_limit_violations,
    truncate,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
P3_EMPTY = "no INACTIVE customer can be HIGH under the current scoring weights (max score 50 < 51)"
LINKS = {
    "P1": "artifacts/runs/2011-09-22/audience_p1.csv",
    "P2": "artifacts/runs/2011-09-22/audience_p2.csv",
    "P3": "artifacts/runs/2011-09-22/audience_p3.csv",
}
CHART = "artifacts/runs/2011-09-22/at_risk_last_60_days.png"


RUN_ID = "scheduled__2011-09-22T00:00:00+00:00"


def make_context(
    severity: str = "CRITICAL", alert_flag: bool = True, rollout_mode: str = "production"
) -> dict:
    from retentionops.playbook import playbook_plan
    from retentionops.settings import load_settings

    exported = {"WARNING": ["P1", "P2"], "CRITICAL": ["P1", "P2", "P3"]}.get(severity, [])
    if not alert_flag:
        exported = []
    tiers = {
        "P1": {
            "count": 300,
            "definition": "ACTIVE + HIGH risk",
            "action": "VIP outreach + light incentive",
            "empty_reason": None,
        },
        "P2": {
            "count": 421,
            "definition": "AT_RISK + HIGH or MEDIUM risk",
            "action": "Win-back sequence + free shipping / discount",
            "empty_reason": None,
        },
        "P3": {
            "count": 0,
            "definition": "INACTIVE + HIGH risk",
            "action": "Strong comeback offer or survey",
            "empty_reason": P3_EMPTY,
        },
    }
    for key, tier in tiers.items():
        tier["exported"] = key in exported
    context = {
        "run_date": "2011-09-22",
        "decision": {
            "alert_date": "2011-09-22",
            "current_value": 23.11,
            "baseline_value": 17.95,
            "delta_pct": 5.16,
            "delta_relative_pct": 28.75,
            "threshold_warning": 15.0,
            "threshold_critical": 25.0,
            "severity": severity,
            "alert_flag": alert_flag,
            "sample_size": 3120,
        },
        "status_distribution": {"ACTIVE": 1200, "AT_RISK": 721, "INACTIVE": 1199},
        "risk_by_status": {
            "ACTIVE": {"HIGH": 300, "MEDIUM": 0, "LOW": 900},
            "AT_RISK": {"HIGH": 0, "MEDIUM": 421, "LOW": 300},
            "INACTIVE": {"HIGH": 0, "MEDIUM": 0, "LOW": 1199},
        },
        "tiers": tiers,
        "exported_tiers": exported,
        "value_per_customer": 612.4,
        "value_basis": "median total_revenue",
        "impact_rates": [0.1, 0.2, 0.3],
    }
    context["plan"] = playbook_plan(context["decision"], rollout_mode, load_settings(env={}))
    return context


def markdown(context: dict, **kwargs) -> str:
    kwargs.setdefault("run_id", RUN_ID)
    return render_brief(context, "markdown", links=LINKS, chart_link=CHART, **kwargs)


def section(text: str, title: str) -> str:
    """One '## title' section of the Markdown brief."""
    match = re.search(rf"^## {re.escape(title)}.*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(0)


def all_formats(context: dict, links=LINKS, chart=CHART) -> dict[str, str]:
    slack = render_brief(context, "slack", links=links, chart_link=chart)
    email = render_brief(context, "email", links=links, chart_link=chart)
    return {
        "markdown": render_brief(context, "markdown", links=links, chart_link=chart),
        "slack": json.dumps(slack, ensure_ascii=False),
        "slack_text": slack["text"],
        "email_subject": email["subject"],
        "email_html": email["html"],
        "email_text": email["text"],
    }


def bodies(context: dict) -> dict[str, str]:
    """Every format but the email's subject, where a line of the brief stands in full (the
    Slack payload's JSON newlines as newlines)."""
    return {
        name: text.replace("\\n", "\n")
        for name, text in all_formats(context).items()
        if name != "email_subject"
    }


# -- formats and numbers -------------------------------------------------------------------


def test_import_stays_light():
    code = (
        "import sys; import retentionops.brief; "
        "bad = [m for m in ('airflow', 'matplotlib', 'duckdb') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=brief.TEMPLATE_DIR.parents[2],
        env={"PYTHONPATH": str(brief.TEMPLATE_DIR.parents[2] / "plugins")},
    )


def test_unknown_format_names_the_allowed_ones():
    with pytest.raises(ValueError, match="markdown, slack, email"):
        render_brief(make_context(), "pdf")


def test_return_types():
    context = make_context()
    assert isinstance(render_brief(context, "markdown"), str)
    slack = render_brief(context, "slack")
    assert set(slack) == {"text", "blocks"} and isinstance(slack["blocks"], list)
    email = render_brief(context, "email")
    assert set(email) == {"subject", "html", "text"}


def test_situation_numbers_are_formatted_in_every_format():
    for name, text in all_formats(make_context()).items():
        if name == "email_subject":
            assert "23.11 %" in text and "+28.75 %" in text and "CRITICAL" in text
            continue
        for expected in ("23.11 %", "17.95 %", "+5.16 pts", "+28.75 %", "3,120"):
            assert expected in text, (name, expected)


def test_title_names_date_and_severity():
    text = markdown(make_context())
    assert text.splitlines()[0] == "# RetentionOps brief — 2011-09-22 — CRITICAL"
    assert "alert flag TRUE" in section(text, "Appendix — for analysts")


def test_threshold_crossed_uses_the_decisions_thresholds():
    critical = section(markdown(make_context()), "Situation")
    assert "crossed the CRITICAL threshold (≥ 25 %)" in critical

    context = make_context("WARNING")
    context["decision"].update(delta_relative_pct=18.4, threshold_warning=12.5)
    warning = section(markdown(context), "Situation")
    assert "+18.40 %" in warning
    assert "crossed the WARNING threshold (≥ 12.5 %), below CRITICAL (≥ 25 %)" in warning


def test_missing_baseline_is_said_not_zero():
    context = make_context("INFO", alert_flag=False)
    context["decision"].update(baseline_value=None, delta_pct=None, delta_relative_pct=None)
    text = markdown(context)
    assert "Usual level (7-day baseline) | n/a (warming up)" in text
    assert "Change against the usual level | n/a" in text
    assert "no usual level yet" in text.splitlines()[2]  # the first line says it too
    assert "no relative delta yet" in text


def test_warning_exports_p1_and_p2_not_p3():
    text = markdown(make_context("WARNING"))
    ready = section(text, "What is ready")
    assert "Exported for this severity: **P1 + P2**" in ready
    assert "- **P1 Prevention: 300 customers** — VIP outreach" in ready
    assert "- **P2 Intervention: 421 customers** — Win-back" in ready
    assert "P3 Win-back: 0" not in ready  # not exported: only the appendix lists it
    appendix = section(text, "Appendix — for analysts")
    assert re.search(r"^\| P1 Prevention \| 300 \|.*\| yes \|$", appendix, re.M)
    assert re.search(r"^\| P2 Intervention \| 421 \|.*\| yes \|$", appendix, re.M)
    assert re.search(r"^\| P3 Win-back \| 0 \|.*\| no \|$", appendix, re.M)
    playbook = section(text, "Playbook")
    assert "#retention-alerts" in playbook
    assert "priority HIGH" in playbook
    assert "Export the P1 + P2 audiences" in playbook
    assert "run log" in playbook
    assert "P3" not in playbook and "@here" not in playbook
    artifacts = section(text, "Artifacts")
    assert LINKS["P1"] in artifacts and LINKS["P2"] in artifacts
    assert LINKS["P3"] not in artifacts  # only this playbook's exports are linked


def test_critical_exports_all_three_with_escalation():
    context = make_context("CRITICAL")
    text = markdown(context)
    assert "Exported for this severity: **P1 + P2 + P3**" in text
    playbook = section(text, "Playbook")
    assert "escalation mention (@here)" in playbook and "priority URGENT" in playbook
    assert "Export the P1 + P2 + P3 audiences" in playbook
    slack = render_brief(context, "slack")
    assert slack["text"].startswith("<!here>")
    assert slack["blocks"][1]["text"]["text"].startswith("<!here>")
    assert "<!here>" not in json.dumps(render_brief(make_context("WARNING"), "slack"))


def test_no_alert_has_no_playbook_and_is_skipped():
    context = make_context("INFO", alert_flag=False)
    context["decision"].update(delta_relative_pct=3.2)
    for name, text in bodies(context).items():
        assert "No playbook; run logged as skipped" in text, name
    text = markdown(context)
    assert "Exported for this severity: **none**" in text
    assert "#retention-alerts" not in text
    assert "nothing to size" in section(text, "Illustrative impact")
    assert "below the WARNING threshold" in text


def test_flag_false_with_warning_severity_explains_why():
    context = make_context("WARNING", alert_flag=False)
    text = section(markdown(context), "Playbook")
    assert "run logged as skipped" in text
    assert "although severity is WARNING" in text


def test_empty_tier_states_its_reason_everywhere():
    for name, text in all_formats(make_context()).items():
        if name.startswith("slack"):
            assert P3_EMPTY.replace("<", "&lt;") in text, name
        elif name == "email_html":
            assert P3_EMPTY.replace("<", "&lt;") in text
        elif name != "email_subject":
            assert P3_EMPTY in text, name


def test_empty_tier_without_reason_is_never_a_silent_zero():
    context = make_context()
    context["tiers"]["P3"]["empty_reason"] = None
    assert "P3 is empty:** no reason recorded" in markdown(context)


def test_impact_table_is_hand_computed():
    # N = P1 300 + P2 421 = 721 (WARNING), V = 612.4; amounts to the cent, thousands sep.
    # 721 × 0.1 × 612.4 = 44,154.04; × 0.2 = 88,308.08; × 0.3 = 132,462.12
    impact = section(markdown(make_context("WARNING")), "Illustrative impact")
    assert "illustrative, not a forecast" in impact
    assert "| 10 % | 721 × 10 % × 612.40 | 44,154.04 |" in impact
    assert "| 20 % | 721 × 20 % × 612.40 | 88,308.08 |" in impact
    assert "| 30 % | 721 × 30 % × 612.40 | 132,462.12 |" in impact
    # before the export, N is what the export takes (here: every customer of the tiers)
    assert "N = 721 customers contacted today, what the export takes (P1 300 + P2 421" in impact
    assert "median total_revenue" in impact
    assert "assumption, not a measured rate" in impact


def test_impact_counts_only_exported_tiers_and_uses_given_rates():
    context = make_context("CRITICAL")
    context["tiers"]["P3"].update(count=1000, empty_reason=None)
    context["impact_rates"] = [0.05]
    context["value_per_customer"] = 1234.5
    # N = 300 + 421 + 1000 = 1721; 1721 × 0.05 × 1234.5 = 106,228.725 -> 106,228.73 (half up)
    impact = section(markdown(context), "Illustrative impact")
    assert "| 5 % | 1,721 × 5 % × 1,234.50 | 106,228.73 |" in impact
    assert "10 %" not in impact


#: 2011-05-14 of the April incident as its run left it (issue 25): P1 47 and P2 313 in the
#: tiers, but the contact cooldown keeps back everyone delivered on 05-13 and the holdout
#: its 31: the run exports 13 P2 customers and no P1 one.
HOLDOUT = {
    "run_date": "2011-05-14",
    "holdout_pct": 10.0,
    "min_customers": 10,
    "horizon_days": 30,
    "tiers": {"P1": {"customers": 47, "held_out": 0}, "P2": {"customers": 313, "held_out": 31},
              "P3": {"customers": 0, "held_out": 0}},
    "incidents": [{
        "incident_id": "INC-20110513", "opened_on": "2011-05-13", "resolved_on": None,
        "held_until": None, "holdout_pct": 10.0,
        "tiers": {
            "P1": {"customers": 47, "drawn": False, "seen": 47, "held_out": 0,
                   "note": "P1: 47 customers, a 10 % holdout would be 4, under the minimum "
                   "10: no holdout, its impact cannot be measured"},
            "P2": {"customers": 300, "drawn": True, "seen": 313, "held_out": 31, "note": None},
        },
    }],
}  # fmt: skip


def contacted_context() -> dict:
    context = make_context("WARNING")
    context["tiers"]["P1"].update(count=47, exported_rows=0, holdout=0, cooldown_suppressed=47,
                                  new=0, still=47, left=0)  # fmt: skip
    context["tiers"]["P2"].update(count=313, exported_rows=13, holdout=31, cooldown_suppressed=269,
                                  new=13, still=300, left=0)  # fmt: skip
    context.update(cooldown_days=14, holdout=HOLDOUT, previous_run_date="2011-05-13")
    context["incident"] = {
        "incident_id": "INC-20110513", "phase": "incident", "event": "update", "days_open": 2,
        "opened_on": "2011-05-13", "peak_severity": "CRITICAL", "current_value": 46.35,
        "frozen_baseline": 32.55, "relative_to_frozen_pct": 42.39,
    }  # fmt: skip
    return context


def test_impact_counts_the_customers_contacted_not_the_tiers():
    """Issue 25, part 3: on 05-14 the tiers hold 360 customers but the run contacts 13 (the
    exported rows); the holdout and the cooldown are not contacted, and the brief says so.
    N = 13, V = 612.40: 13 × 0.1 × 612.4 = 796.12; × 0.2 = 1,592.24; × 0.3 = 2,388.36."""
    impact = section(markdown(contacted_context()), "Illustrative impact")
    assert "| 10 % | 13 × 10 % × 612.40 | 796.12 |" in impact
    assert "| 20 % | 13 × 20 % × 612.40 | 1,592.24 |" in impact
    assert "| 30 % | 13 × 30 % × 612.40 | 2,388.36 |" in impact
    assert "360" not in impact and "every one of them is contacted" not in impact
    assert (
        "N = 13 customers contacted today, the rows exported (P1 0 + P2 13); not counted: 31 "
        "held out (the holdout, which measures C) and 316 kept back by the 14-day contact "
        "cooldown (contacted recently)." in impact
    )
    # the holdout is stated, not denied: no "No ... holdout ... modelled" footnote
    assert "No costs, holdout" not in impact
    assert (
        "Holdout of INC-20110513 (10 % of each tier, held until INC-20110513 resolves + the "
        "30-day measurement horizon): P1: 47 customers, a 10 % holdout would be 4, under the "
        "minimum 10: no holdout, its impact cannot be measured; P2: 31 held out of the 313 "
        "customers it saw, never exported while it holds." in impact
    )
    ready = section(markdown(contacted_context()), "What is ready")
    assert "31 held out (the incident's holdout: not contacted, to measure the effect)" in ready
    formats = all_formats(contacted_context())
    for name in ("markdown", "slack", "email_html", "email_text"):  # every format: the same N
        assert "13 × 10 % × 612.40" in formats[name].replace("&#215;", "×"), name


def test_the_brief_before_the_incidents_first_export_says_the_holdout_is_drawn_then():
    context = contacted_context()
    context["holdout"] = {**HOLDOUT, "incidents": []}
    impact = section(markdown(context), "Illustrative impact")
    assert (
        "Holdout of INC-20110513: not drawn yet; its first export draws 10 % of each tier "
        "(tiers under 10 held out get none)." in impact
    )


def test_impact_value_is_exact_decimal():
    assert str(brief.impact_value(721, 0.3, 612.4)) == "132462.12"
    assert brief.fmt_money(1234567.891) == "1,234,567.89"


def test_guardrails_section():
    guardrails = section(markdown(make_context()), "Guardrails")
    assert "no customer id or other personal data" in guardrails
    assert "holdout" in guardrails and "contact policy" in guardrails
    assert "Rule-based and explainable" in guardrails


def test_artifacts_list_exports_and_chart():
    text = section(markdown(make_context()), "Artifacts")
    for link in [*LINKS.values(), CHART]:
        assert link in text
    no_links = section(render_brief(make_context(), "markdown"), "Artifacts")
    assert no_links.count("not produced") == 4


def test_url_links_become_links():
    sheet = "https://docs.google.com/spreadsheets/d/abc/edit (tab 'P1 2011-09-22')"
    links = {"P1": sheet}
    slack = render_brief(make_context("WARNING"), "slack", links=links)
    assert (
        "<https://docs.google.com/spreadsheets/d/abc/edit|open> (tab 'P1 2011-09-22')"
        in (slack["text"])
    )
    html = render_brief(make_context("WARNING"), "email", links=links)["html"]
    assert '<a href="https://docs.google.com/spreadsheets/d/abc/edit">' in html


def test_no_personal_data_leaks():
    """Customer-id-like strings passed in by mistake never reach any output."""
    customer_id = "CUST-17850"
    context = make_context()
    # Keys the renderer does not know about are ignored, not dumped.
    context["customer_ids"] = [customer_id, "12583"]
    context["decision"]["top_customer"] = customer_id
    context["tiers"]["P1"]["sample_customer_id"] = customer_id
    for name, text in all_formats(context).items():
        assert customer_id not in text, name
        assert "12583" not in text, name


# -- Slack ----------------------------------------------------------------------------------


def test_slack_uses_mrkdwn_bold_not_markdown():
    slack = render_brief(make_context(), "slack", links=LINKS, chart_link=CHART)
    dumped = json.dumps(slack)
    assert "**" not in dumped
    assert "*What is ready*" in dumped and "*Situation:*" in slack["text"]
    kinds = [block["type"] for block in slack["blocks"]]
    assert kinds[0] == "header" and {"section", "context", "divider"} <= set(kinds)
    assert slack_limit_violations(slack) == []


def test_slack_limits_hold_with_huge_inputs():
    context = make_context()
    context["tiers"]["P3"]["empty_reason"] = "x" * 5000
    context["tiers"]["P1"]["definition"] = "d" * 5000
    context["tiers"]["P2"]["action"] = "a" * 5000
    context["run_date"] = "2011-09-22" + "r" * 300
    context["value_basis"] = "v" * 5000
    links = {tier: "p" * 5000 for tier in ("P1", "P2", "P3")}
    slack = render_brief(context, "slack", links=links, chart_link="c" * 5000)
    assert slack_limit_violations(slack) == []
    header = slack["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    p3_field = slack["blocks"][4]["fields"][2]["text"]
    assert len(p3_field) == 2000 and p3_field.endswith("…")
    assert 0 < len(slack["text"]) <= SLACK_FALLBACK_MAX
    assert len(slack["blocks"]) <= 50
    for block in slack["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))


def test_slack_fallback_is_truncated_at_40000():
    context = make_context()
    context["tiers"]["P3"]["empty_reason"] = "y" * 50_000
    slack = render_brief(context, "slack")
    assert len(slack["text"]) == SLACK_FALLBACK_MAX and slack["text"].endswith("…")
    assert slack_limit_violations(slack) == []


def test_slack_limit_checker_can_fail():
    bad = {"text": "", "blocks": [{"type": "header", "text": {"text": "h" * 151}}] * 51}
    problems = slack_limit_violations(bad)
    assert any("fallback" in p for p in problems)
    assert any("51 blocks" in p for p in problems)
    assert any("header" in p for p in problems)


def test_slack_escapes_control_characters():
    context = make_context()
    context["tiers"]["P1"]["definition"] = "ACTIVE <!channel> & HIGH"
    dumped = json.dumps(render_brief(context, "slack"))
    assert "<!channel>" not in dumped
    assert "&lt;!channel&gt; &amp; HIGH" in dumped


def test_truncate():
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 4) == "abc…"
    with pytest.raises(ValueError):
        truncate("abc", 0)


# -- email ----------------------------------------------------------------------------------


def test_email_html_escapes_and_text_stays_plain():
    context = make_context()
    context["tiers"]["P1"]["definition"] = "<script>alert('x')</script> ACTIVE + HIGH"
    email = render_brief(context, "email", links=LINKS, chart_link=CHART)
    assert "<script>" not in email["html"]
    assert "&lt;script&gt;" in email["html"]
    assert "<script>alert('x')</script> ACTIVE + HIGH" in email["text"]
    assert "&lt;" not in email["text"]
    assert email["html"].lstrip().startswith("<!DOCTYPE html>")


def test_email_subject_is_one_line():
    context = make_context("WARNING")
    context["run_date"] = "2011-09-22\nBcc: someone@example.com"
    subject = render_brief(context, "email")["subject"]
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("[RetentionOps] WARNING — AT_RISK 23.11 % (+28.75 %")
    no_alert = render_brief(make_context("INFO", alert_flag=False), "email")["subject"]
    assert no_alert.startswith("[RetentionOps] No alert (INFO)")


def test_markdown_table_cells_escape_pipes():
    context = make_context()
    context["tiers"]["P1"]["action"] = "call | email"
    assert "call \\| email" in markdown(context)


def test_missing_context_key_fails_loudly():
    context = make_context()
    del context["decision"]["sample_size"]
    with pytest.raises(KeyError):
        render_brief(context, "markdown")


def test_render_does_not_mutate_context():
    context = make_context()
    before = copy.deepcopy(context)
    for fmt in ("markdown", "slack", "email"):
        render_brief(context, fmt, links=LINKS, chart_link=CHART)
    assert context == before


# -- chart ----------------------------------------------------------------------------------


def series_rows(end: dt.date, days: int) -> list[dict]:
    rows = []
    for i in range(days):
        day = end - dt.timedelta(days=days - 1 - i)
        rows.append(
            {
                "alert_date": day.isoformat(),
                "current_value": 18.0 + (i % 7) * 0.3 + (5.0 if day == end else 0.0),
                "baseline_value": None if i < 7 else 18.5,
                "threshold_warning": 15.0,
                "threshold_critical": 25.0,
            }
        )
    return rows


def test_chart_writes_a_png_atomically(tmp_path):
    end = dt.date(2011, 9, 22)
    # 90 days in, the chart keeps the last 60; rows after the run date are ignored.
    rows = series_rows(end + dt.timedelta(days=5), 95)
    target = tmp_path / "run" / "at_risk_last_60_days.png"
    path = render_chart(rows, target, run_date=end.isoformat(), days=60)
    assert path == target
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_chart_replaces_an_existing_file(tmp_path):
    target = tmp_path / "chart.png"
    target.write_bytes(b"old")
    render_chart(series_rows(dt.date(2011, 9, 22), 10), target, run_date="2011-09-22")
    assert target.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("count", [0, 1])
def test_chart_with_fewer_than_two_points_still_draws(tmp_path, count):
    """Documented choice: a brief never fails on its chart; 0 or 1 point still gives a PNG."""
    rows = series_rows(dt.date(2011, 9, 22), count)
    path = render_chart(rows, tmp_path / "c.png", run_date="2011-09-22", days=60)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_chart_accepts_date_objects_and_rejects_bad_days(tmp_path):
    rows = series_rows(dt.date(2011, 9, 22), 3)
    for row in rows:
        row["alert_date"] = dt.date.fromisoformat(row["alert_date"])
    assert render_chart(rows, tmp_path / "c.png", run_date="2011-09-22").exists()
    with pytest.raises(ValueError, match="days"):
        render_chart(rows, tmp_path / "c.png", run_date="2011-09-22", days=0)


def test_chart_failure_leaves_no_temp_file_and_keeps_the_old_chart(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken_savefig(self, fname, **kwargs):
        fname.write(b"half a png")
        raise OSError("disk full")

    target = tmp_path / "c.png"
    target.write_bytes(b"previous chart")
    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        render_chart(series_rows(dt.date(2011, 9, 22), 3), target, run_date="2011-09-22")
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]
    assert target.read_bytes() == b"previous chart"


# -- the brief describes the playbook that runs (rollout mode x severity) -------------------

PLAYBOOK_CASES = [
    # mode, severity -> channel, mention?, ticket priority, banner at the top
    ("production", "WARNING", "#retention-alerts", False, "HIGH", None),
    ("production", "CRITICAL", "#retention-alerts", True, "URGENT", None),
    ("pilot", "WARNING", "#retention-pilot", False, "HIGH", "PILOT"),
    ("pilot", "CRITICAL", "#retention-pilot", False, "HIGH", "PILOT"),
    ("shadow", "WARNING", "#retention-pilot", False, "HIGH", "SHADOW"),
    ("shadow", "CRITICAL", "#retention-pilot", False, "HIGH", "SHADOW"),
]


@pytest.mark.parametrize(
    ("mode", "severity", "channel", "mention", "ticket", "banner"), PLAYBOOK_CASES
)
def test_every_format_describes_the_playbook_that_runs(
    mode, severity, channel, mention, ticket, banner
):
    context = make_context(severity, rollout_mode=mode)
    formats = all_formats(context)
    playbook = section(formats["markdown"], "Playbook")
    assert channel in playbook
    assert f"priority {ticket}" in playbook
    other = "#retention-pilot" if channel == "#retention-alerts" else "#retention-alerts"
    for name, text in formats.items():
        assert other not in text, name  # never the channel that is not used
        assert ("<!here>" in text or "@here" in text) == (mention and name != "email_subject"), name
    first_lines = {
        "markdown": formats["markdown"].split("## Situation")[0],
        "slack_text": formats["slack_text"].split("*Situation")[0],
        "email_text": formats["email_text"].split("SITUATION")[0],
        "email_subject": formats["email_subject"],
    }
    for name, head in first_lines.items():
        if banner:
            assert banner in head, name
        else:
            assert "SHADOW" not in head and "PILOT" not in head, name


def test_production_names_the_configured_channel():
    from retentionops.playbook import playbook_plan
    from retentionops.settings import load_settings

    context = make_context("CRITICAL")
    settings = load_settings(env={}, slack_channel="#crm-retention")
    context["plan"] = playbook_plan(context["decision"], "production", settings)
    text = section(markdown(context), "Playbook")
    assert "Post to Slack #crm-retention with an escalation mention (@here)" in text
    assert "#retention-alerts" not in markdown(context)


# -- incidents across days -------------------------------------------------------------------


def incident_context(event: str | None, severity: str = "CRITICAL", **plan_changes) -> dict:
    """The CRITICAL context on day 3 of an incident opened 2011-09-20 at a 17.95 % baseline
    frozen (today 23.11 %: +28.75 %), with the day's event; a resolve day has no alert."""
    from retentionops.playbook import playbook_plan
    from retentionops.settings import load_settings

    alert = event not in (None, "resolve")
    context = make_context(severity if alert else "INFO", alert_flag=alert)
    context["incident"] = {
        "incident_id": "INC-20110920", "event": event, "phase": "incident",
        "opened_on": "2011-09-20", "days_open": 3, "peak_severity": "CRITICAL",
        "incident_severity": severity, "previous_severity": "CRITICAL",
        "current_value": 23.11, "frozen_baseline": 17.95, "relative_to_frozen_pct": 28.75,
    }  # fmt: skip
    plan = playbook_plan(
        context["decision"], "production", load_settings(env={}), context["incident"]
    )
    context["plan"] = {**plan, **plan_changes}
    return context


def test_the_incident_is_named_in_every_format():
    context = incident_context("update")
    line = (
        "Incident INC-20110920 continues: day 3 since 2011-09-20, peak CRITICAL; AT_RISK "
        "23.11 % against 17.95 % before the incident (+28.75 %)."
    )
    for name, text in bodies(context).items():
        assert line in text, name


def test_an_open_incident_without_an_event_says_so_and_sends_nothing():
    context = incident_context(None, severity="WARNING")
    context["decision"].update(severity="INFO", alert_flag=False)
    text = markdown(context)
    assert "Incident INC-20110920 is open, no change today: day 3" in text
    assert (
        text.splitlines()[0]
        == "# RetentionOps brief — 2011-09-22 — INC-20110920 open, no change (INFO)"
    )
    assert context["plan"]["branch"] == "no_alert" and context["plan"]["tiers"] == []


def test_a_resolution_brief_is_titled_resolved_and_exports_nothing():
    context = incident_context("resolve")
    assert (context["plan"]["branch"], context["plan"]["tiers"]) == ("resolved", [])
    text = markdown(context)
    assert text.splitlines()[0] == "# RetentionOps brief — 2011-09-22 — RESOLVED (INC-20110920)"
    assert "Incident INC-20110920 is resolved" in text
    assert "Exported for this severity: **none**" in text


def test_a_withheld_event_carries_a_not_sent_banner_with_the_reason():
    reason = "already delivered (update of INC-20110920, 2026-11-26 06:00 UTC by r1)"
    context = incident_context("update", send=False, reason=reason)
    for name, text in bodies(context).items():
        assert f"NOT SENT — {reason}." in text, name
    assert "NOT SENT" not in markdown(incident_context("update"))


def test_a_warm_up_day_says_so_in_the_title_and_the_note():
    context = make_context("CRITICAL", alert_flag=True)
    context["incident"] = {"phase": "warmup", "incident_id": None, "event": None}
    context["note"] = "warm-up: 41 days of history; alerts start on 2011-03-07"
    from retentionops.playbook import playbook_plan
    from retentionops.settings import load_settings

    context["plan"] = playbook_plan(
        context["decision"], "production", load_settings(env={}), context["incident"]
    )
    text = markdown(context)
    assert text.splitlines()[0] == (
        "# RetentionOps brief — 2011-09-22 — warm-up, not acted on (CRITICAL)"
    )
    assert "warm-up: 41 days of history; alerts start on 2011-03-07" in text
    assert context["plan"]["tiers"] == [] and context["plan"]["branch"] == "no_alert"


def test_the_first_lines_say_what_happened_what_is_ready_and_the_ask():
    """A manager's 30 seconds: plain words, the lists with their sizes (the files' rows),
    who is asked to do what by when, the incident and ticket; in every format."""
    context = incident_context("update", severity="WARNING")
    context["plan"]["tiers"] = ["P1", "P2"]
    context["tiers"]["P1"].update(exported=True, exported_rows=12)
    context["tiers"]["P2"].update(exported=True, exported_rows=30)
    context["response"] = {"owner": "@retention-oncall", "sla_hours": 24,
                           "due_at": "2011-09-23T06:00+00:00", "ticket_id": "RET-0007"}  # fmt: skip
    context["status_windows"] = {"active_days": 30, "at_risk_days": 90}
    lines = [
        "Churn risk is still high: 23.11 % of customers are at risk of churning (last order "
        "31 to 90 days ago), still +28.75 % above the 17.95 % before incident INC-20110920 "
        "(WARNING).",
        "Ready: 42 customers to contact, in 2 lists: P1 Prevention (12: VIP outreach + light "
        "incentive); P2 Intervention (30: Win-back sequence + free shipping / discount).",
        "Ask: @retention-oncall, start the outreach by 2011-09-23 06:00 UTC (incident "
        "INC-20110920, day 3; ticket RET-0007).",
    ]
    text = markdown(context)
    assert text.splitlines()[2:7:2] == [f"**{lines[0]}**", lines[1], f"**{lines[2]}**"]
    for name, rendered in bodies(context).items():
        for line in lines:
            assert line in rendered, (name, line)


def test_the_email_message_carries_the_chart_inline(tmp_path):
    """brief_email.eml: text and HTML alternatives; the HTML shows the chart through a cid:
    that names the image part of the same message (no external link to load)."""
    import email
    from email import policy

    from retentionops import pack

    chart = render_chart([], tmp_path / "chart.png", run_date="2011-09-22")
    rendered = render_brief(make_context(), "email", chart_src=f"cid:{pack.CHART_CID}")
    message = email.message_from_bytes(
        pack.email_message(rendered, chart.read_bytes()), policy=policy.default
    )
    assert message["Subject"] == rendered["subject"]
    kinds = [part.get_content_type() for part in message.walk()]
    assert kinds == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
    ]  # fmt: skip
    html = message.get_body(("html",)).get_content()
    assert f'<img src="cid:{pack.CHART_CID}"' in html
    [image] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<{pack.CHART_CID}>"
    assert image.get_content() == chart.read_bytes() and image.get_content()[:8] == PNG_MAGIC
    assert "Churn risk jumped" in message.get_body(("plain",)).get_content()


def test_the_ask_says_which_ticket_exists_or_why_none_is_opened():
    """The ask's ticket part follows the plan: a known ticket, a shadow rollout (no real
    ticket), a withheld event (its reason), or the ticket this run's playbook opens."""

    def ask(context) -> str:
        context["plan"]["tiers"] = ["P1"]
        context["tiers"]["P1"].update(exported=True, exported_rows=5)
        context["response"] = {"owner": "ops", "due_at": "2011-09-23T06:00+00:00"}
        [line] = [x for x in markdown(context).splitlines() if x.startswith("**Ask:")]
        return line

    assert ask(incident_context("update")).endswith(
        "day 3; the ticket is opened by this run's playbook).**"
    )
    shadow = incident_context("update")
    shadow["plan"].update(shadow=True, rollout_mode="shadow")
    assert ask(shadow).endswith("day 3; shadow rollout: no real ticket is opened).**")
    withheld = incident_context("update", send=False, reason="the playbook is switched off")
    assert ask(withheld).endswith("no ticket from this run: the playbook is switched off).**")


def test_a_historical_run_says_so_instead_of_a_deadline():
    """A backfill (older than notify_max_age_days when it starts: playbook.history_age)
    gets no deadline computed from today, in every format."""
    context = incident_context("update", send=False, reason="2011-09-22 is 9 days old")
    context["plan"]["tiers"] = ["P1"]
    context["tiers"]["P1"].update(exported=True, exported_rows=5)
    context["response"] = {"owner": "ops", "due_at": None, "historical": True}
    line = (
        "Ask: historical run for 2011-09-22 (backfill): no deadline (incident INC-20110920, "
        "day 3; no ticket from this run: 2011-09-22 is 9 days old)."
    )
    for name, rendered in bodies(context).items():
        assert line in rendered, name
        assert "start the outreach by" not in rendered and "None" not in rendered, name


@pytest.mark.parametrize("event", ["update", "de-escalate"])
def test_a_later_day_of_an_incident_is_measured_against_where_it_started(event):
    """SQL5's rolling baseline catches up with a lasting shift (here it says +3 %): the
    brief measures the day against the incident's frozen baseline, never "easing"."""
    context = incident_context(event, severity="WARNING")
    context["decision"].update(baseline_value=22.44, delta_relative_pct=2.99)
    first = markdown(context).splitlines()[2]
    assert "still +28.75 % above the 17.95 % before incident INC-20110920 (WARNING)" in first
    assert "easing" not in first and "22.44" not in first and "+2.99" not in first


def test_slow_drift_and_a_high_orders_day_are_watched_in_every_format():
    context = incident_context("update", severity="WARNING")
    context["incident"].update(
        drift_flag=True, drift_pct=28.75, drift_earlier_value=17.95,
        drift_compared_with="2011-08-23",
    )  # fmt: skip
    context["data_freshness"] = {
        "note": "orders high: 175 orders on 2011-09-20 against a usual 48 on Tuesdays"
    }
    drift = (
        "Slow drift: AT_RISK 23.11 % against 17.95 % on 2011-08-23 (+28.75 %); SQL5's 7-day "
        "baseline climbs along with a slow rise. A shadow check (drift_mode: shadow): nothing "
        "is opened for it."
    )
    for name, rendered in bodies(context).items():
        text = html.unescape(rendered)
        assert drift in text and "orders high: 175 orders" in text, name
    # a day held for its data says so in its first line, not again under Watch
    context["plan"]["held_event"] = "update"
    context["data_freshness"]["note"] = "data short: 2 orders on 2011-09-20"
    assert "data short" not in markdown(context).split("**Watch**")[1]


def test_a_held_day_says_so_in_its_title_not_that_an_incident_is_open():
    context = incident_context("open", severity="CRITICAL")
    context["plan"].update(event=None, held_event="open", branch="no_alert", tiers=[])
    context["data_freshness"] = {"status": "late", "note": "data late — orders feed late"}
    assert markdown(context).splitlines()[0].endswith("— data late, held (CRITICAL)")
    context["data_freshness"] = {"status": "fresh", "volume": "low", "note": "data short: 3"}
    assert markdown(context).splitlines()[0].endswith("— data short, held (CRITICAL)")
