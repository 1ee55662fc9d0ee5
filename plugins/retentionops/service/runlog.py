"""The run log operation: every standalone run (CLI, MCP) leaves one ``ops_runs_log`` row,
written here whether the operation succeeds, fails or is refused (:func:`recorded`); a DAG
run's row is written by its ``write_run_log`` task through :func:`write_run_log`, from the
outcome ``runlog.dag_outcome`` assembles."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from retentionops import runlog
from retentionops.connections import known_secrets, redact
from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.runlog import RunOutcome
from retentionops.service.request import DateLike, Run
from retentionops.settings import Settings
from retentionops.warehouse import open_warehouse

log = logging.getLogger(__name__)


@contextmanager
def recorded(
    settings: Settings, run: Run, operation: str, run_date: dt.date | None
) -> Iterator[RunOutcome]:
    """Run an operation and, for a standalone run, log what happened: success, failure, or
    a refusal (bad input or a missing precondition, before it did anything:
    ``runlog.refusal``), which health counts apart from the runs that ran."""
    outcome = RunOutcome(run.run_id, run_date, run.interface, run.started_at)
    try:
        yield outcome
    except BaseException as error:
        if run.standalone and not isinstance(error, KeyboardInterrupt):
            if not outcome.failed_steps:  # the operation did not record its own cause(s)
                message = redact(f"{type(error).__name__}: {error}", known_secrets(settings))
                if runlog.refusal(error, outcome):
                    outcome.refuse(operation, message)
                else:
                    outcome.fail(operation, message)
            _write_quietly(settings, outcome)
        raise
    if run.standalone:
        write_run_log(settings, outcome)


def _write_quietly(settings: Settings, outcome: RunOutcome) -> None:
    """Log a failed or refused run without letting a second error hide the first."""
    try:
        write_run_log(settings, outcome)
    except Exception:
        log.exception("could not record the failed run %s in ops_runs_log", outcome.run_id)


def write_run_log(settings: Settings, outcome: RunOutcome) -> dict[str, Any]:
    """Record a run in ops_runs_log (one row per run id) from what happened in it."""
    with open_warehouse(settings) as warehouse:
        if outcome.failed_steps and not outcome.errors:
            stored = runlog.read(warehouse, outcome.run_id) or {}
            if not stored.get("error_message"):  # no failure callback recorded the cause
                outcome.errors.append(f"step(s) failed: {', '.join(outcome.failed_steps)}")
        return runlog.write(warehouse, settings, runlog.summarize(outcome))


def run_log_rows(settings: Settings, run_date: DateLike) -> list[dict[str, Any]]:
    """Every logged run of a date, newest first."""
    day = as_date(run_date)
    with open_warehouse(settings, read_only=True) as warehouse:
        rows = runlog.read_for_date(warehouse, day)
    if not rows:
        raise ServiceError(f"no run logged for {day}: run the DAG (or `retentionops queue`) first")
    return rows


def run_failure_reason(settings: Settings, run_id: str) -> str:
    """Why a run failed, as its log row says (the failure callbacks wrote it), or a hint."""
    with open_warehouse(settings, read_only=True) as warehouse:
        stored = runlog.read(warehouse, run_id) or {}
    return str(stored.get("error_message") or "see the run log")
