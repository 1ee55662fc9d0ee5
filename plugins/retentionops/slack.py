"""Slack's rules, for every module that writes to Slack: mrkdwn escaping, the Block Kit
limits, and a line put on top of a message that is already written.

A leaf (it imports nothing of the package): the brief builds its blocks with it, and the
approval (an approved event's first line, the waiting notice) and the playbook (a late
event's first line) write their lines with it, so none of them imports another for it.
"""

from __future__ import annotations

from typing import Any

# Block Kit limits (api.slack.com/reference/block-kit/blocks).
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_MAX = 150
SLACK_SECTION_TEXT_MAX = 3000
SLACK_FIELDS_MAX = 10
SLACK_FIELD_MAX = 2000
SLACK_CONTEXT_ELEMENTS_MAX = 10
SLACK_CONTEXT_TEXT_MAX = 2000
SLACK_FALLBACK_MAX = 40_000


def slack_escape(text: Any) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def with_first_line(payload: dict[str, Any], line: str) -> dict[str, Any]:
    """``payload`` whose brief (``{"text", "blocks"}``) starts with ``line`` (mrkdwn): a
    section block on top of its blocks and a line on top of its text, both cut to Slack's
    limits (the brief's last block gives way to the new one)."""
    brief = payload["brief"]
    first = {"type": "section", "text": {"type": "mrkdwn", "text": line[:SLACK_SECTION_TEXT_MAX]}}
    return {
        **payload,
        "brief": {
            "text": f"{line}\n{brief['text']}"[:SLACK_FALLBACK_MAX],
            "blocks": [first, *list(brief.get("blocks") or [])[: SLACK_MAX_BLOCKS - 1]],
        },
    }
