"""Progress reporting: silent unless a reporter is installed; where it shows is the caller's."""

from __future__ import annotations

import io
import threading

from retentionops import progress


class Recorder(progress.Reporter):
    """Keeps every step and every update it was given."""

    def __init__(self) -> None:
        self.steps: list[progress.Step] = []
        self.updates: list[tuple[str, float, float | None]] = []
        self.closed = False

    def step(self, description, total=None):
        recorder = self

        class Recorded(progress.Step):
            def update(self, completed=None, *, total=None, description=None):
                super().update(completed, total=total, description=description)
                recorder.updates.append((self.description, self.completed, self.total))

        shown = Recorded(description, total)
        self.steps.append(shown)
        return _yielding(shown)

    def close(self) -> None:
        self.closed = True


def _yielding(value):
    import contextlib

    @contextlib.contextmanager
    def manager():
        yield value

    return manager()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_reporter_a_step_shows_nothing_and_costs_nothing():
    assert not progress.active()
    with progress.step("reading orders.csv", total=10) as step:
        step.update(5)
    assert (step.description, step.completed, step.total) == ("reading orders.csv", 5, 10)


def test_a_reporter_sees_the_steps_of_the_code_inside_and_is_closed_after():
    recorder = Recorder()
    with progress.reporting(recorder):
        assert progress.active()
        with progress.step("cleaning 3 lines", total=3) as step:
            step.update(2)
    assert not progress.active() and recorder.closed
    assert [s.description for s in recorder.steps] == ["cleaning 3 lines"]
    assert recorder.updates == [("cleaning 3 lines", 2, 3)]
    # another thread started outside the block sees no reporter (context variables)
    seen = []
    with progress.reporting(Recorder()):
        worker = threading.Thread(target=lambda: seen.append(progress.active()))
    worker.start()
    worker.join()
    assert seen == [False]


def test_the_cli_shows_progress_on_a_terminal_only_unless_asked():
    assert progress.cli_reporter("auto", io.StringIO()) is None  # a pipe or a log file
    assert progress.cli_reporter("off", Terminal()) is None  # --quiet
    assert isinstance(progress.cli_reporter("on", io.StringIO()), progress.LineReporter)
    shown = progress.cli_reporter("auto", Terminal())
    assert isinstance(shown, progress.RichReporter)
    shown.close()


def test_plain_lines_say_when_a_step_starts_and_ends():
    out = io.StringIO()
    with progress.reporting(progress.LineReporter(out)), progress.step("reading a.csv"):
        pass
    first, second = out.getvalue().splitlines()
    assert first == "retentionops: reading a.csv ..."
    assert second.startswith("retentionops: reading a.csv: done in ") and second.endswith(" s")


def test_the_rich_display_goes_to_its_stream_and_leaves_stdout_alone(capsys):
    terminal = Terminal()
    reporter = progress.RichReporter(terminal)
    with progress.reporting(reporter), progress.step("computing the alert series", 4) as step:
        step.update(4)
        print("result on stdout")
    assert capsys.readouterr().out == "result on stdout\n"
    assert "computing the alert series" in terminal.getvalue()
    assert "100%" in terminal.getvalue()


class SlowStatement:
    """A connection whose one statement is still running (at 37.5 %) until it has been
    asked for its progress three times: a statement slower than any poll, however busy the
    machine, without a clock in the test."""

    def __init__(self) -> None:
        self.polled = threading.Event()
        self.asked = 0

    def execute(self, sql):  # DuckDB's progress settings
        return self

    def query_progress(self) -> float:
        self.asked += 1
        if self.asked >= 3:
            self.polled.set()
        return 37.5


def test_a_slow_statement_inside_a_counted_step_leaves_its_count_intact():
    # the benchmark's bar counts step runs (3 of 10): a statement run inside it is not its
    # percentage, and the bar never jumps to "37.5 of 100" and back
    recorder, statement = Recorder(), SlowStatement()
    with progress.reporting(recorder), progress.step("benchmark", total=10) as bar:
        bar.update(3)
        with progress.watch_query(statement, every=0.01):
            statement.polled.wait(0.5)  # the statement runs; nothing asks for its progress
        bar.update(4)
    assert recorder.updates == [("benchmark", 3, 10), ("benchmark", 4, 10)]
    assert statement.asked == 0


def test_a_statement_moves_the_step_that_owns_it_and_never_its_parents_count():
    recorder, statement = Recorder(), SlowStatement()
    with progress.reporting(recorder), progress.step("benchmark", total=10) as bar:
        bar.update(3)
        with progress.step("loading 20,000 orders"), progress.watch_query(statement, every=0.01):
            assert statement.polled.wait(30), "the statement was never polled"
    loading = {(completed, total) for d, completed, total in recorder.updates if d != "benchmark"}
    assert loading == {(37.5, 100)}
    assert [u for u in recorder.updates if u[0] == "benchmark"] == [("benchmark", 3, 10)]
    assert bar.completed == 3 and bar.total == 10


def test_duckdb_reports_the_percentage_of_a_long_statement():
    import duckdb

    recorder = Recorder()
    connection = duckdb.connect()
    long = "select count(*) from range(120000000) r where hash(r.range) % 7 = 3"
    with progress.reporting(recorder), progress.step("a long statement"):
        # DuckDB reports a percentage once a statement has run 100 ms: a machine fast enough
        # to finish it sooner runs it again (at most five times), never a shorter wait
        for _ in range(5):
            with progress.watch_query(connection, every=0.05):
                connection.execute(long).fetchall()
            if recorder.updates:
                break
    percents = [completed for _, completed, total in recorder.updates if total == 100]
    assert percents, "no percentage was reported"
    assert all(0 <= p <= 100 for p in percents) and max(percents) > 0
    assert percents == sorted(percents)  # it only moves forward
    # without a shown step, nothing is touched: DuckDB's progress bar stays off
    other = duckdb.connect()
    with progress.watch_query(other):
        other.execute("select 1").fetchall()
    assert other.execute("select current_setting('enable_progress_bar')").fetchone() == (False,)


def test_lines_printed_while_the_display_runs_go_above_it_only_on_a_terminal(monkeypatch):
    # `make bench` prints its record on stdout while its bar runs on stderr: when both are
    # the terminal, rich prints the lines above the bar; a redirected stdout is never touched
    screen, stdout = Terminal(), Terminal()
    monkeypatch.setattr("sys.stdout", stdout)
    with progress.reporting(progress.RichReporter(screen)), progress.step("benchmark", 2):
        print("[10,000] repeat 1/1 floor 0.52 s")
    assert stdout.getvalue() == ""
    assert "[10,000] repeat 1/1 floor 0.52 s" in screen.getvalue()
    import sys

    assert sys.stdout is stdout  # given back when the display ends


def test_a_failed_step_is_not_drawn_as_complete():
    screen = Terminal()
    try:
        with progress.reporting(progress.RichReporter(screen)), progress.step("loading", 4) as s:
            s.update(1)
            raise RuntimeError("the warehouse is locked")
    except RuntimeError:
        pass
    assert "25%" in screen.getvalue() and "100%" not in screen.getvalue()


def test_a_webhook_retry_wait_is_a_step_saying_which_attempt_failed_and_why(settings):
    import dataclasses

    import tenacity

    from retentionops.playbook import TransientWebhookError, retry_args

    quick = dataclasses.replace(settings, webhook_retry_delay_seconds=0, webhook_retries=2)
    answers = iter([TransientWebhookError("webhook answered HTTP 503"), None])

    def post():
        answer = next(answers)
        if answer is not None:
            raise answer
        return "ok"

    recorder = Recorder()
    with progress.reporting(recorder):
        assert tenacity.Retrying(**retry_args(quick))(post) == "ok"
    assert [s.description for s in recorder.steps] == [
        "webhook attempt 1 failed (webhook answered HTTP 503); retrying in 0 s"
    ]
    # without a reporter (the DAG's task) the same policy just sleeps: nothing is recorded
    answers = iter([TransientWebhookError("webhook answered HTTP 503"), None])
    assert tenacity.Retrying(**retry_args(quick))(post) == "ok"
    assert len(recorder.steps) == 1


def test_a_wait_counts_its_seconds_up_to_its_total():
    from retentionops.playbook import wait_with_progress

    recorder = Recorder()
    with progress.reporting(recorder):
        wait_with_progress(0.3, "retrying in 0.3 s", tick=0.1)
    [step] = recorder.steps
    waited = [completed for _, completed, total in recorder.updates if total == 0.3]
    assert len(waited) >= 2 and waited == sorted(waited)
    assert abs(waited[-1] - 0.3) < 1e-9


def test_the_mcp_client_sees_the_innermost_step_and_its_count():
    from retentionops.mcp_tools import ClientProgress

    shown = ClientProgress()
    assert shown.message() is None
    with progress.reporting(shown), progress.step("posting the open event to the webhook"):
        assert shown.message() == "posting the open event to the webhook"
        with progress.step("webhook attempt 1 failed; retrying in 30 s", total=30) as wait:
            wait.update(12)
            assert shown.message() == "webhook attempt 1 failed; retrying in 30 s (12/30 s)"
        assert shown.message() == "posting the open event to the webhook"
        with progress.step("loading 20,000 orders") as loading:
            loading.update(37.5, total=100)  # a statement's percentage (watch_query)
            assert shown.message() == "loading 20,000 orders (38 %)"
    assert shown.message() is None
