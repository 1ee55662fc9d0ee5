"""The one base class of every error a person can act on.

The CLI prints such an error as one line on stderr (exit code 2), the MCP server returns it
as a tool error, the DAG's task log shows it; the message says what is wrong and what to do,
and never carries a secret. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(RuntimeError):
    """A problem the user can fix; the message says what is wrong and what to do."""


class ServiceError(UserError):
    """An operation could not be done (missing prerequisite, bad argument, refused call)."""


class DetectionError(UserError):
    """Detection cannot give a decision for the date; the message says why."""
