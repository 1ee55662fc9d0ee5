"""Files and paths: atomic writes, and the paths a person gives checked before any work.

Every file a run leaves is either the old one or the whole new one. A path given at a door
(``--to ~user/x``, a warehouse under ``/proc``) is checked up front, with a one-line error
naming it, rather than failing mid-run with a traceback.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from retentionops.errors import UserError


class PathError(UserError, ValueError):
    """A path given cannot be used; the message names it and why."""


def expand_home(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; a one-line error when that home
    folder is unknown (``Path.expanduser`` raises a bare RuntimeError)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = str(path)[1:].split(os.sep, 1)[0]
        whose = f"user '{user}'" if user else "the current user"
        raise PathError(
            f"'{path}': the home folder of {whose} is unknown; give the folder without ~"
        ) from None


def check_can_create(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` if its file exists or can be created there; else a one-line error naming
    ``what`` (the setting) and the reason, e.g. a folder under ``/proc`` or a read-only one.

    Its folder is created (as the writer would) and a probe file made and removed in it.
    """
    target = expand_home(path)
    if target.is_dir():
        raise PathError(f"{what} {target} is a folder, not a file")
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".probe", dir=target.parent
        )
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PathError(
            f"{what} {target} cannot be created: {reason} in {target.parent}; "
            "choose a folder you can write to"
        ) from None
    return target


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write ``path`` through a temporary file in the same folder, then a rename.

    A crash or an error leaves the previous file (or none) and no temporary file behind.
    ``mode`` defaults to world-readable: a run artifact is meant to be shared.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    return write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Make a warehouse row JSON- and XCom-friendly (ISO dates, floats)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal):
            value = float(value)
        out[key] = value
    return out
