"""slack.py: the line put on top of a written Slack message keeps Block Kit's limits."""

from __future__ import annotations

from retentionops.slack import (
    SLACK_FALLBACK_MAX,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_TEXT_MAX,
    slack_escape,
    with_first_line,
)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_the_first_line_goes_on_top_of_the_text_and_the_blocks():
    payload = {"dedupe_key": "k", "brief": {"text": "body", "blocks": [section("body")]}}
    out = with_first_line(payload, ":hourglass: late")
    assert out["brief"] == {
        "text": ":hourglass: late\nbody",
        "blocks": [section(":hourglass: late"), section("body")],
    }
    assert out["dedupe_key"] == "k" and payload["brief"]["text"] == "body"  # a copy


def test_the_first_line_keeps_the_limits_and_the_last_block_gives_way():
    blocks = [section(str(i)) for i in range(SLACK_MAX_BLOCKS)]
    payload = {"brief": {"text": "x" * SLACK_FALLBACK_MAX, "blocks": blocks}}
    out = with_first_line(payload, "L" * (SLACK_SECTION_TEXT_MAX + 10))
    assert len(out["brief"]["blocks"]) == SLACK_MAX_BLOCKS
    assert out["brief"]["blocks"][1:] == blocks[:-1]
    assert len(out["brief"]["blocks"][0]["text"]["text"]) == SLACK_SECTION_TEXT_MAX
    assert len(out["brief"]["text"]) == SLACK_FALLBACK_MAX


def test_a_brief_without_blocks_gets_one():
    out = with_first_line({"brief": {"text": "t"}}, "first")
    assert out["brief"]["blocks"] == [section("first")]


def test_slack_escape_escapes_the_three_reserved_characters_once():
    assert slack_escape("a & <b> > c") == "a &amp; &lt;b&gt; &gt; c"
    assert slack_escape(5) == "5"
