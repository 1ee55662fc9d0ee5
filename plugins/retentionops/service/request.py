"""What a door hands an operation: who runs it (:class:`Run`), for which day and how
(:class:`RunRequest`), over which dates (:class:`DateRange`). Each door (the DAG's tasks,
the CLI, the MCP tools) builds these once from what it was given; the operations take
typed values from here on (``dt.date``, never text)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from retentionops.dates import as_date
from retentionops.errors import ServiceError
from retentionops.playbook import Delivery
from retentionops.settings import Settings
from retentionops.vocabulary import INTERFACES, ROLLOUT_MODES

#: What a door may hand as a date: a ``dt.date``, a datetime, or ISO text (parsed once,
#: by :func:`retentionops.dates.as_date`, bounded to 1970 .. tomorrow).
DateLike = dt.date | dt.datetime | str


@dataclasses.dataclass(frozen=True)
class Run:
    """The run an operation belongs to: its id, its interface and when it started."""

    run_id: str
    interface: str
    started_at: dt.datetime
    standalone: bool = True

    @classmethod
    def start(cls, interface: str, operation: str, day: dt.date | None) -> Run:
        """A new standalone run (CLI, MCP) that logs its own row (``day``: the date the
        operation parsed, None for one without a date)."""
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}")
        run_id = f"{interface}__{operation}__{day or 'no-date'}__{uuid.uuid4().hex[:8]}"
        return cls(run_id, interface, dt.datetime.now(dt.UTC))

    @classmethod
    def of_dag(cls, run_id: str, started_at: dt.datetime | None = None) -> Run:
        """A task of a DAG run: the run's ``write_run_log`` task logs it."""
        return cls(run_id, "dag", started_at or dt.datetime.now(dt.UTC), standalone=False)

    def part(self) -> Run:
        """This run as a step of a larger operation: the larger one logs the row."""
        return dataclasses.replace(self, standalone=False)


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One run of the daily job for one day, as a door built it once: the settings of the
    run (file, environment, Variables, Params), the day, the run, how it delivers
    (``Delivery``: when it started, dry run, resend, late data) and where its exports go
    (None: the settings' ``export_destinations``)."""

    settings: Settings
    day: dt.date
    run: Run
    delivery: Delivery
    destination: str | None = None

    @property
    def run_id(self) -> str:
        return self.run.run_id


@dataclasses.dataclass(frozen=True)
class DateRange:
    """A range of days a door was given, checked once: in order, and at most
    ``max_range_days`` long."""

    start: dt.date
    end: dt.date

    @classmethod
    def of(cls, settings: Settings, from_date: DateLike, to_date: DateLike) -> DateRange:
        start, end = as_date(from_date), as_date(to_date)
        if start > end:
            raise ServiceError(f"from {start} is after to {end}")
        if (end - start).days + 1 > settings.max_range_days:
            raise ServiceError(
                f"the range {start}..{end} is longer than max_range_days "
                f"({settings.max_range_days})"
            )
        return cls(start, end)


def with_rollout(settings: Settings, rollout_mode: str | None) -> Settings:
    """The settings in another rollout mode (a door's ``rollout_mode`` argument)."""
    if rollout_mode is None:
        return settings
    if rollout_mode not in ROLLOUT_MODES:
        raise ServiceError(
            f"rollout mode '{rollout_mode}' is not one of {', '.join(ROLLOUT_MODES)}"
        )
    return dataclasses.replace(settings, rollout_mode=rollout_mode)
