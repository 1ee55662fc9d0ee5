"""Progress of long work, for a person watching: shown on stderr, never mixed into results.

The library announces its long steps (reading a file, a long SQL statement, a webhook wait)
with :func:`step`; whoever runs it decides whether and where they show, by installing a
reporter for the duration of a call (:func:`reporting`):

- nothing installed (the DAG's tasks, the tests, a library caller): every step is a no-op;
- the CLI: a live progress display on stderr with rich when stderr is a terminal; plain
  start/done lines when ``--progress`` asks for progress on a non-terminal (a log file);
  nothing with ``--quiet`` or by default on a non-terminal, so logs stay clean. JSON and CSV
  on stdout are never touched;
- the MCP server: progress notifications to the client (``progress_callback``), see
  ``mcp_server``.

A step's completion may come from DuckDB itself: :func:`watch_query` polls
``query_progress()`` of a connection while one statement runs and moves the percentage of
the step that owns the statement. A step opened with a ``total`` is a count its code keeps
(the benchmark's step runs, the seconds of a wait): a statement run inside it never moves
it, so "3 of 10" never turns into "88.9 of 100". Only a step opened without a total (its
work is the statement: "loading 20,000 orders into the warehouse") shows the percentage.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TextIO

#: How progress shows: ``auto`` (on a terminal only), ``on`` (also on a non-terminal, as plain
#: lines) or ``off``.
MODES = ("auto", "on", "off")


class Step:
    """One long piece of work; ``update`` moves it (``completed`` out of ``total``).

    ``counted``: the step was opened with a total, so only its own code moves it (a
    statement's percentage is never fed to it: :func:`watch_query`). ``push``, when given,
    receives the step's state (``completed``, ``total``, ``description``) after each update:
    a live display follows the step that way."""

    def __init__(
        self,
        description: str,
        total: float | None = None,
        push: Callable[..., None] | None = None,
    ) -> None:
        self.description, self.total, self.completed = description, total, 0.0
        self.counted = total is not None
        self._push = push

    def update(
        self,
        completed: float | None = None,
        *,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        if self._push is not None:
            self._push(completed=self.completed, total=self.total, description=self.description)


class Reporter:
    """Shows steps; the base class shows nothing."""

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        yield Step(description, total)

    def close(self) -> None:
        """Finish the display (the reporter is not used afterwards)."""


_reporter: ContextVar[Reporter | None] = ContextVar("retentionops_progress", default=None)
_current: ContextVar[Step | None] = ContextVar("retentionops_progress_step", default=None)


@contextlib.contextmanager
def step(description: str, total: float | None = None) -> Iterator[Step]:
    """A long piece of work, shown by the installed reporter (if any)."""
    reporter = _reporter.get()
    if reporter is None:
        yield Step(description, total)
        return
    with reporter.step(description, total) as shown:
        token = _current.set(shown)
        try:
            yield shown
        finally:
            _current.reset(token)


def active() -> bool:
    """Whether a reporter shows steps (lets callers skip work done only for progress)."""
    return _reporter.get() is not None


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Install a reporter for the code inside (None: nothing shows)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
        if reporter is not None:
            reporter.close()


@contextlib.contextmanager
def watch_query(connection: Any, every: float = 0.2) -> Iterator[None]:
    """While one DuckDB statement runs on ``connection``, feed its ``query_progress()``
    (percent) to the current step when that step owns the statement (it was opened without
    a total). Does nothing when no step is shown, or when the current step is a count of its
    own: the statement is one part of it, and its percentage is not the count's."""
    shown = _current.get()
    if shown is None or shown.counted or _reporter.get() is None:
        yield
        return
    try:  # DuckDB tracks progress only with its progress bar on (never printed here)
        connection.execute("set enable_progress_bar = true")
        connection.execute("set enable_progress_bar_print = false")
        connection.execute("set progress_bar_time = 100")
    except Exception:  # not a DuckDB connection: no percentage, the step still shows
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(every):
            try:
                percent = float(connection.query_progress())
            except Exception:  # no statement running (yet), or a closed connection
                continue
            if 0 <= percent <= 100:
                shown.update(percent, total=100)

    watcher = threading.Thread(target=poll, name="duckdb-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


# -- the CLI's reporters ------------------------------------------------------------------


class RichReporter(Reporter):
    """A live display on a terminal (rich): spinner, description, bar, percent, elapsed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        stream = stream or sys.stderr
        console = Console(file=stream, force_terminal=True)
        # A job that prints its own lines while the display runs (``make bench``): when stdout
        # is this same terminal, rich prints them above the display so neither garbles the
        # other; stdout that is a pipe or a file (JSON, CSV, a log) is never touched.
        above = _is_terminal(stream) and _is_terminal(sys.stdout)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            redirect_stdout=above,
            redirect_stderr=False,
        )
        self._progress.start()

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        progress = self._progress
        task = progress.add_task(description, total=total)
        shown = Step(description, total, lambda **kw: progress.update(task, **kw))
        try:
            yield shown
        except BaseException:  # a failed step stays where it stopped: the bar does not lie
            progress.stop_task(task)
            raise
        progress.update(task, total=shown.total or 1, completed=shown.total or 1)
        progress.stop_task(task)

    def close(self) -> None:
        self._progress.stop()


class LineReporter(Reporter):
    """Plain lines for a non-terminal (a log file): one when a step starts, one when it ends."""

    def __init__(self, stream: TextIO | None = None, prefix: str = "retentionops") -> None:
        self._stream, self._prefix = stream or sys.stderr, prefix

    def _say(self, text: str) -> None:
        print(f"{self._prefix}: {text}", file=self._stream, flush=True)

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        started = time.monotonic()
        self._say(f"{description} ...")
        shown = Step(description, total)
        yield shown
        self._say(f"{shown.description}: done in {time.monotonic() - started:.1f} s")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def cli_reporter(mode: str, stream: TextIO | None = None) -> Reporter | None:
    """The CLI's reporter for a mode (``MODES``); None when nothing should show."""
    stream = stream or sys.stderr
    terminal = _is_terminal(stream)
    if mode == "off" or (mode == "auto" and not terminal):
        return None
    return RichReporter(stream) if terminal else LineReporter(stream)


def add_flags(parser: argparse.ArgumentParser, default: Any = "auto") -> None:
    """``-q/--quiet`` and ``--progress`` on a command line (``dest="progress"``, a mode of
    ``MODES``): by default progress shows when stderr is a terminal, so logs and pipes stay
    clean. ``default=argparse.SUPPRESS`` on a subcommand lets the flags come after its name
    without overriding the main parser's value."""
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument(
        "-q",
        "--quiet",
        dest="progress",
        action="store_const",
        const="off",
        default=default,
        help="no progress on stderr (warnings and errors still show)",
    )
    flags.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const="on",
        default=default,
        help="progress on stderr even when it is not a terminal (plain lines)",
    )
