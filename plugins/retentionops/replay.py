"""``retentionops replay``: a quarter (or a year) of mornings, faults included, with proof.

The daily loop of the DAG — detection and the queue, the operational context, then the
day's delivery (``service.trigger_playbook`` on an event day, ``service.catch_up`` on a
day without one) — run date after date over a range, on a **copy** of the warehouse,
against the local playbook simulator (``devtools.playbook_sim``, real HTTP on 127.0.0.1),
with an optional fault schedule. Then it reports what reached people (incidents, tickets,
Slack posts, ``@here`` pings, contacts per customer) and checks what must hold whatever
happened, exiting non-zero on any broken invariant:

- **lost**: every event the ledger recorded reached the receiver (or was withheld, or
  refused for good, saying why) once the next morning has run;
- **duplicated**: one ticket per incident, and no event posted twice unless resent;
- **out of order**: each ticket starts with its open and its events follow their dates;
- **after resolve**: nothing reaches a ticket after its resolve (but a resend of it);
- **contacted twice**: no customer delivered twice for dates inside the contact cooldown
  of each other, unless the later contact was in a more urgent tier (the escalation);
- **holdout treated**: no customer an incident held out in any export (every door: the
  day's delivery and an analyst's export of every tier, every day) from the incident's
  opening until its resolution + ``impact_horizon_days`` (the release the holdout
  recorded, and independently the ledger's delivered resolve).

The fault schedule is a YAML mapping (``docs/incidents.md``, "Replay")::

    2011-05-13: webhook_down            # every POST of the day's run answers 503
    2011-05-14: timeout_after_acting    # the receiver acts, then answers too late
    2011-09-09: [gcs_credentials_missing, two_doors]
    2011-09-10: kill_after_post         # the sender dies between its POST and the ledger
    settings:                           # from a date on, settings change mid-incident
      2011-09-20: {threshold_warning_pct: 40, threshold_critical_pct: 60}
    backfill: [2011-09-10, 2011-05-14]  # run again after the range, in this order, resend

Settings of a replay (they model a fast morning, not a slow one): ``notify_max_age_days``
0 (the sample is history), webhook timeout 1 s, one retry, no waits, a 3 s claim lease,
``production`` (``pilot`` when the settings say pilot). The warehouse copy, the runs' files and
the simulator's posts stay in the work folder (``--keep``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from retentionops.dates import as_date
from retentionops.errors import ServiceError, UserError
from retentionops.settings import PROJECT_ROOT, Settings, load_settings

#: The faults a day can have (docs/incidents.md, "Replay").
FAULTS = (
    "webhook_down",
    "timeout_after_acting",
    "gcs_credentials_missing",
    "kill_after_post",
    "two_doors",
)
#: The settings a replay runs under, whatever the file says (a fast morning).
REPLAY_SETTINGS = {
    "notify_max_age_days": 0,
    "webhook_timeout_seconds": 1.0,
    "webhook_retries": 1,
    "webhook_retry_delay_seconds": 0,
    "webhook_max_wait_seconds": 0.0,
    "delivery_lease_seconds": 3,
}
_GCS_FAULT = {"export_destinations": "csv,gcs", "export_gcs_uri": "gs://replay-exports/daily"}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The faults of a replay: per day, the settings changes from a date on, and the dates
    run again after the range (out of order, with resend)."""

    faults: dict[dt.date, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    settings_from: tuple[tuple[dt.date, dict[str, Any]], ...] = ()
    backfill: tuple[dt.date, ...] = ()

    def settings_on(self, day: dt.date) -> dict[str, Any]:
        changed: dict[str, Any] = {}
        for start, values in self.settings_from:
            if start <= day:
                changed.update(values)
        return changed


def load_schedule(path: str | os.PathLike[str] | None) -> Schedule:
    """The fault schedule of a YAML file (None: no faults); a clear error for a bad one."""
    if path is None:
        return Schedule()
    file = Path(path)
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ServiceError(f"cannot read the fault schedule {file}: {error}") from None
    except ValueError as error:  # YAML reads 2011-02-30 as a date, and it is none
        raise ServiceError(f"fault schedule {file} has an impossible date: {error}") from None
    if not isinstance(loaded, dict):
        raise ServiceError(f"fault schedule {file} must be a mapping of date: fault(s)")
    faults: dict[dt.date, tuple[str, ...]] = {}
    settings_from: list[tuple[dt.date, dict[str, Any]]] = []
    backfill: list[dt.date] = []
    for key, value in loaded.items():
        if key == "settings":
            if not isinstance(value, dict):
                raise ServiceError("fault schedule: 'settings' maps a date to settings")
            for start, values in value.items():
                if not isinstance(values, dict):
                    raise ServiceError(f"fault schedule: settings of {start} must be a mapping")
                load_settings(env={}, **values)  # a bad name or value: its own clear error
                settings_from.append((_day(start), dict(values)))
        elif key == "backfill":
            backfill = [_day(v) for v in (value if isinstance(value, list) else [value])]
        else:
            names = value if isinstance(value, list) else [value]
            unknown = [n for n in names if n not in FAULTS]
            if unknown:
                raise ServiceError(
                    f"fault schedule: unknown fault(s) {', '.join(map(str, unknown))} on {key}; "
                    f"known: {', '.join(FAULTS)}"
                )
            faults[_day(key)] = tuple(names)
    return Schedule(faults, tuple(sorted(settings_from, key=lambda item: item[0])), tuple(backfill))


def _day(value: Any) -> dt.date:
    try:
        return as_date(value)
    except (UserError, ValueError, TypeError):
        raise ServiceError(f"fault schedule: {value!r} is not a date (YYYY-MM-DD)") from None


def _simulator() -> Any:
    """The playbook simulator of the repository's devtools (not part of the package)."""
    if str(PROJECT_ROOT) not in sys.path and (PROJECT_ROOT / "devtools").is_dir():
        sys.path.insert(0, str(PROJECT_ROOT))
    try:
        from devtools.playbook_sim import PlaybookSimulator
    except ImportError:
        raise ServiceError(
            "replay needs the playbook simulator of a repository checkout "
            "(devtools/playbook_sim.py): run it from a checkout installed with `make install`"
        ) from None
    return PlaybookSimulator


@contextlib.contextmanager
def _env(changes: dict[str, str | None]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def replay(
    settings: Settings,
    start: Any,
    end: Any,
    schedule: Schedule | None = None,
    *,
    workdir: str | os.PathLike[str],
) -> dict[str, Any]:
    """Run the daily loop over ``start``..``end`` on a copy of the warehouse (see the
    module); return the report, whose ``broken`` lists every broken invariant."""
    from retentionops import service

    span = service.DateRange.of(settings, start, end)
    first, last = span.start, span.end
    if not settings.duckdb_file.exists():
        raise ServiceError(
            f"no warehouse at {settings.duckdb_file}: load orders first "
            "(`retentionops load-sample` or `retentionops load-orders PATH`)"
        )
    schedule = schedule or Schedule()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "warehouse.duckdb"
    shutil.copyfile(settings.duckdb_file, copy)
    base = {
        **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)},
        **REPLAY_SETTINGS,
        "warehouse_backend": "duckdb",
        "duckdb_path": str(copy),
        "artifacts_dir": str(work / "runs"),
        "export_root": str(work),
        # what reaches people: production, or the pilot when the settings say pilot
        "rollout_mode": "pilot" if settings.rollout_mode == "pilot" else "production",
    }
    simulator = _simulator()(work / "sim", log_stream=open(os.devnull, "w"))  # noqa: SIM115
    failures: list[dict[str, str]] = []
    with simulator as sim, _env(
        {"AIRFLOW_CONN_MAKE_WEBHOOK": json.dumps({"conn_type": "http", "host": sim.url})}
    ):
        day, exported_days = first, 0
        while day <= last:
            exported_days += _run_day(service, sim, base, schedule, day, failures, work)
            day += dt.timedelta(days=1)
        for again in schedule.backfill:
            _run_day(service, sim, base, schedule, again, failures, work, resend=True)
        # the next morning: a sender killed mid-send has lost its claim by then
        time.sleep(REPLAY_SETTINGS["delivery_lease_seconds"] + 0.5)
        morning = last + dt.timedelta(days=1)
        _catch_up(service, _settings_of(base, schedule, last), morning, failures)
        report = _report(service, _settings_of(base, schedule, last), sim, first, last)
    return {
        **report,
        # the days every tier was exported by an analyst's door too (the holdout invariant
        # is checked over these exports as well as the deliveries')
        "analyst_export_days": exported_days,
        "faults": _faults_of(schedule),
        "runs_failed": failures,
    }


def _settings_of(base: dict[str, Any], schedule: Schedule, day: dt.date) -> Settings:
    return Settings(**{**base, **schedule.settings_on(day)})


def _run_day(
    service: Any,
    sim: Any,
    base: dict[str, Any],
    schedule: Schedule,
    day: dt.date,
    failures: list[dict[str, str]],
    work: Path,
    *,
    resend: bool = False,
) -> bool:
    """One morning of ``day``: the queue, the context, the day's delivery, then an
    analyst's export of every tier (a standalone door, which reaches nobody: it is how the
    holdout invariant sees every date, not only the event days)."""
    faults = schedule.faults.get(day, ()) if not resend else ()
    values = {**base, **schedule.settings_on(day)}
    if "gcs_credentials_missing" in faults:
        values.update(_GCS_FAULT)
    settings = Settings(**values)
    if "webhook_down" in faults:
        sim.configure(fail_next=1000, fail_status=503)
    if "timeout_after_acting" in faults:
        sim.configure(delay=settings.webhook_timeout_seconds + 0.5)
    env = {"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": None} if "gcs_credentials_missing" in faults else {}
    try:
        with _env(env):
            service.build_priority_queue(settings, day)
            doors = "two_doors" in faults or "kill_after_post" in faults
            if doors and service.get_operational_context(settings, day)["plan"]["event"]:
                _trigger_in_processes(settings, day, sim, faults, work, failures)
            else:  # the day's event, and first what earlier days owe (catch_up on a day
                # without one: what the DAG's deliver_owed does)
                service.trigger_playbook(settings, day, resend=resend)
    except service.NothingToDeliver:
        pass  # a quiet day: nothing was due either
    except UserError as error:  # a fault doing what it should: the run says why
        failures.append({"day": day.isoformat(), "error": str(error).splitlines()[0][:300]})
    finally:
        sim.configure(fail_next=0, delay=0)
    return not resend and _analyst_export(service, settings, day, failures)


def _analyst_export(service: Any, settings: Settings, day: dt.date, failures: list) -> bool:
    """Every tier of ``day`` exported by a standalone door (local CSVs only); False when it
    could not be (no queue: the day's run failed before it)."""
    from retentionops.vocabulary import TIERS

    try:
        service.export_audiences(settings, day, list(TIERS), destinations=["csv"])
    except UserError as error:
        failures.append(
            {"day": day.isoformat(), "error": "analyst export: " + str(error).splitlines()[0]}
        )
        return False
    return True


def _catch_up(service: Any, settings: Settings, day: dt.date, failures: list) -> None:
    try:
        service.catch_up(settings, day, service.Run.start("cli", "replay", day))
    except UserError as error:
        failures.append({"day": day.isoformat(), "error": str(error).splitlines()[0][:300]})


def _trigger_in_processes(
    settings: Settings,
    day: dt.date,
    sim: Any,
    faults: tuple[str, ...],
    work: Path,
    failures: list[dict[str, str]],
) -> None:
    """Two doors at once (two ``retentionops trigger`` processes), or one killed between
    its POST and the ledger (it dies once the receiver has the request and acted)."""
    env = {**os.environ, **_settings_env(settings)}
    command = [sys.executable, "-m", "retentionops.cli", "trigger", "--date", day.isoformat()]
    doors = 2 if "two_doors" in faults else 1
    if "kill_after_post" in faults:
        sim.configure(delay=60)  # the receiver acts, then the answer is late: the kill lands
    seen = len(sim.requests)
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)  # fmt: skip
        for _ in range(doors)
    ]
    if "kill_after_post" in faults:
        deadline = time.monotonic() + 300
        while len(sim.requests) == seen and time.monotonic() < deadline:
            if all(p.poll() is not None for p in processes):
                break
            time.sleep(0.05)
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
        sim.configure(delay=0)
    for process in processes:
        _, err = process.communicate(timeout=600)
        if process.returncode not in (0, -9):
            failures.append({"day": day.isoformat(), "error": err.decode()[-300:].strip()})


def _settings_env(settings: Settings) -> dict[str, str]:
    """The settings as RETENTIONOPS_* variables, for a door in another process."""
    return {
        f"RETENTIONOPS_{f.name.upper()}": str(getattr(settings, f.name)).lower()
        if isinstance(getattr(settings, f.name), bool)
        else str(getattr(settings, f.name))
        for f in dataclasses.fields(settings)
    }


def _faults_of(schedule: Schedule) -> dict[str, Any]:
    return {
        "days": {day.isoformat(): list(names) for day, names in sorted(schedule.faults.items())},
        "settings_from": {day.isoformat(): values for day, values in schedule.settings_from},
        "backfill": [day.isoformat() for day in schedule.backfill],
    }


# -- what reached people, and what must hold ----------------------------------------------------


def _report(
    service: Any, settings: Settings, sim: Any, first: dt.date, last: dt.date
) -> dict[str, Any]:
    from retentionops import holdouts, ledger
    from retentionops.warehouse import open_warehouse

    tickets = [json.loads(p.read_text()) for p in sorted(sim.out_dir.glob("ticket_*.json"))]
    posts = [json.loads(p.read_text()) for p in sorted(sim.out_dir.glob("slack_*.json"))]
    with open_warehouse(settings) as warehouse:
        events = ledger.events(warehouse)
        told = ledger.delivered_incidents(warehouse)
        twice = warehouse.query(
            "replay/contacts_inside_cooldown",
            {"contact_cooldown_days": settings.contact_cooldown_days},
        )
        held = warehouse.query(
            "replay/holdout_exported", {"horizon_days": settings.impact_horizon_days}
        )
        drawn = [
            holdout
            for incident_id in dict.fromkeys(known.incident_id for known in told)
            if (holdout := holdouts.incident_holdout(warehouse, settings, incident_id))
        ]
        [contacts] = warehouse.query("replay/contacts", {})
    broken = [
        *_lost(events),
        *_duplicated(tickets, posts),
        *_out_of_order(tickets),
        *[
            f"contacted twice inside the cooldown: customer {r['customer_id']} on "
            f"{r['first_date']} ({r['first_tier']}) and {r['second_date']} ({r['second_tier']})"
            for r in twice
        ],
        *[
            f"holdout treated: customer {r['customer_id']} exported on {r['run_date']} "
            f"(run {r['run_id']}) while {r['incident_id']} held it out"
            for r in held
        ],
    ]
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days": (last - first).days + 1,
        "incidents": [known.as_dict() for known in told],
        "events": {state: sum(e.state == state for e in events) for state in ledger.STATES},
        "tickets": len(tickets),
        "posts": len(posts),
        "here_pings": sum(1 for post in posts if post.get("mention")),
        "contacts": {key: int(value or 0) for key, value in contacts.items()},
        # each incident's holdout: drawn at its first export, held until resolve + horizon
        "holdouts": drawn,
        "broken": broken,
    }


def _lost(events: list[Any]) -> list[str]:
    return [
        f"event lost: the {e.summary()} is still {e.state} after the next morning"
        for e in events
        if e.state in ("pending", "unknown", "sending")
    ]


def _duplicated(tickets: list[dict], posts: list[dict]) -> list[str]:
    broken = []
    per_incident: dict[str, int] = {}
    for ticket in tickets:
        per_incident[ticket["incident_id"]] = per_incident.get(ticket["incident_id"], 0) + 1
    broken += [
        f"event duplicated: incident {incident} has {count} tickets"
        for incident, count in per_incident.items()
        if count > 1
    ]
    seen: dict[tuple, int] = {}
    for post in posts:
        key = (post["incident_id"], post["event"], post["run_date"])
        seen[key] = seen.get(key, 0) + 1
    resent = {
        (t["incident_id"], e["event"], e["run_date"])
        for t in tickets
        for e in t["events"]
        if e.get("resend")
    }
    broken += [
        f"event duplicated: the {event} of {incident} ({day}) was posted {count} times"
        for (incident, event, day), count in seen.items()
        if count > 1 and (incident, event, day) not in resent
    ]
    return broken


def _out_of_order(tickets: list[dict]) -> list[str]:
    broken = []
    for ticket in tickets:
        events = [e for e in ticket["events"] if not e.get("resend")]
        name = f"ticket {ticket['id']} ({ticket['incident_id']})"
        if events and events[0]["event"] != "open":
            broken.append(f"out of order: {name} starts with {events[0]['event']}, not open")
        days = [e["run_date"] for e in events]
        if days != sorted(days):
            broken.append(f"out of order: {name} got {', '.join(days)}")
        closed = [i for i, e in enumerate(events) if e["event"] == "resolve"]
        if closed and closed[0] < len(events) - 1:
            after = ", ".join(f"{e['event']} of {e['run_date']}" for e in events[closed[0] + 1 :])
            broken.append(f"after resolve: {name} got {after} after its resolve")
    return broken
