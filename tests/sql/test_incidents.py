"""The incident layer (include/sql/incidents/incident_days.sql) on hand-made alert histories.

Each test writes SQL5 rows by hand (the day's share, its rolling baseline, severity and
alert flag) and one order on the first day (the start of the history, for warm-up), then
reads the incident of every day. Settings: warm-up 3 days, WARNING 15 %, CRITICAL 25 %,
resolve after 3 calm days, de-escalate after 3 days below CRITICAL, gap 2. With a frozen
baseline of 20.00 %, a day is "elevated" (WARNING) from 23.00 % and CRITICAL from 25.00 %.
"""

from __future__ import annotations

import datetime as dt

import pytest

from retentionops import incidents

START = dt.date(2011, 1, 1)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n - 1)


@pytest.fixture
def history(load_orders, settings):
    """Write a day-by-day SQL5 history: {n: (current, baseline, severity)}; severity None
    or INFO means no alert. Returns a function reading the incident days back."""
    from retentionops.settings import load_settings

    warehouse = load_orders([("a", "1", day(1).isoformat(), 10)])

    def write(
        series: dict[int, tuple[float, float | None, str | None]],
        gap_days: int = 2,
        deescalate_days: int = 3,
        **overrides: object,
    ) -> list[dict]:
        tuned = load_settings(
            warmup_days=3,
            resolve_after_days=3,
            deescalate_after_days=deescalate_days,
            incident_gap_days=gap_days,
            **overrides,
        )
        warehouse.ensure_tables(("alert_logic",))
        warehouse.con.execute("delete from alert_logic")
        for n, (current, baseline, severity) in sorted(series.items()):
            alert = severity in ("WARNING", "CRITICAL")
            warehouse.con.execute(
                "insert into alert_logic values (?, 'retention_status_degradation', "
                "'at_risk_pct', 'global', ?, ?, null, null, 15.0, 25.0, ?, ?, 500)",
                [day(n), current, baseline, severity or "INFO", alert],
            )
        last = max(series)
        return incidents.incident_days(warehouse, tuned, day(1), day(last))

    return write


def events(rows: list[dict]) -> list[tuple[int, str, str | None]]:
    """(day number, event, incident id) of the days that carry an event."""
    return [
        ((dt.date.fromisoformat(r["day"]) - START).days + 1, r["event"], r["incident_id"])
        for r in rows
        if r["event"]
    ]


QUIET = (20.0, 20.0, None)


def test_open_a_gap_day_then_resolve_after_three_calm_days(history):
    rows = history({
        1: QUIET, 2: QUIET, 3: QUIET, 4: QUIET,
        5: (24.0, 20.0, "WARNING"),   # opens; frozen baseline 20.0
        6: (24.5, 21.0, None),        # a gap day: no alert, still elevated (+22.5 %)
        7: (24.8, 22.0, "WARNING"),   # same incident (it is still open): update (+24 %)
        8: (21.0, 23.0, None),        # calm: +5 % against the frozen 20.0
        9: (22.0, 23.0, None),        # calm: +10 %
        10: (22.9, 23.0, None),       # calm: +14.5 %: the third calm day resolves
        11: QUIET,
    })  # fmt: skip
    assert events(rows) == [
        (5, "open", "INC-20110105"), (7, "update", "INC-20110105"), (10, "resolve", "INC-20110105"),
    ]  # fmt: skip
    by_day = {r["day"]: r for r in rows}
    sixth = by_day[day(6).isoformat()]
    assert (sixth["phase"], sixth["event"], sixth["days_open"]) == ("incident", None, 2)
    assert sixth["frozen_baseline"] == 20.0 and sixth["relative_to_frozen_pct"] == 22.5
    assert by_day[day(10).isoformat()]["resolved_on"] == day(10).isoformat()
    eleventh = by_day[day(11).isoformat()]
    assert eleventh["phase"] == "quiet"
    # a day outside an incident describes none (no severity, peak or last alert carried over)
    for quiet_day in (by_day[day(4).isoformat()], eleventh):
        assert [quiet_day[k] for k in ("incident_id", "incident_severity", "peak_severity",
                "previous_severity", "last_alert_day", "days_open")] == [None] * 6  # fmt: skip


def test_the_incident_is_judged_against_its_frozen_baseline(history):
    """SQL5 de-escalating because its rolling baseline caught up (day 7) does not ease the
    incident: +30 % against the frozen 20.00 % is still CRITICAL. It de-escalates on a day
    without an alert once 3 days in a row were below CRITICAL against the frozen baseline
    (days 9, 10, 11), and escalates again the day the share is back at +25 %."""
    rows = history({
        1: QUIET, 2: QUIET, 3: QUIET, 4: QUIET,
        5: (24.0, 20.0, "WARNING"),    # opens: +20 % WARNING
        6: (26.0, 20.5, "CRITICAL"),   # +30 %: escalate
        7: (26.0, 23.0, "WARNING"),    # SQL5 eases; +30 % against the frozen 20.0: update
        8: (25.5, 25.0, None),         # no alert, +27.5 %: still CRITICAL, no event
        9: (24.0, 25.0, None),         # +20 %: a first day below CRITICAL
        10: (24.0, 24.0, None),        # the second
        11: (24.0, 24.0, None),        # the third: de-escalate (no alert today)
        12: (25.0, 24.0, None),        # +25 %: escalate, without an SQL5 alert
    })  # fmt: skip
    assert [(n, e) for n, e, _ in events(rows)] == [
        (5, "open"), (6, "escalate"), (7, "update"), (11, "de-escalate"), (12, "escalate"),
    ]  # fmt: skip
    by_day = {r["day"]: r for r in rows}
    seventh = by_day[day(7).isoformat()]
    assert (seventh["severity"], seventh["incident_severity"]) == ("WARNING", "CRITICAL")
    assert seventh["relative_to_frozen_pct"] == 30.0
    assert [by_day[day(n).isoformat()]["incident_severity"] for n in (8, 9, 10)] == ["CRITICAL"] * 3
    eleventh = by_day[day(11).isoformat()]
    assert (eleventh["incident_severity"], eleventh["previous_severity"]) == (
        "WARNING", "CRITICAL",
    )  # fmt: skip
    assert eleventh["peak_severity"] == "CRITICAL"
    assert eleventh["last_alert_day"] == day(7).isoformat()


def test_a_share_swinging_around_critical_does_not_flap(history):
    """Two days below CRITICAL, one above, again and again (a weekday pattern): with 3 days
    needed to de-escalate the incident stays CRITICAL and sends nothing; with 1 it would
    de-escalate and escalate on every swing."""
    series = {n: QUIET for n in range(1, 5)}
    series[5] = (26.0, 20.0, "CRITICAL")  # opens CRITICAL: +30 %
    series.update(
        {
            6: (24.0, 26.0, None),
            7: (24.0, 26.0, None),
            8: (25.2, 25.0, None),
            9: (24.0, 25.0, None),
            10: (24.0, 25.0, None),
            11: (25.4, 25.0, None),
        }
    )
    assert [(n, e) for n, e, _ in events(history(series))] == [(5, "open")]
    assert [(n, e) for n, e, _ in events(history(series, deescalate_days=1))] == [
        (5, "open"), (6, "de-escalate"), (8, "escalate"), (9, "de-escalate"), (11, "escalate"),
    ]  # fmt: skip


def test_the_rolling_baseline_catching_up_does_not_resolve(history):
    """The alert stops because the 7-day baseline absorbed the shift; the share is still
    far above the pre-incident level: the incident stays open."""
    series = {n: QUIET for n in range(1, 5)}
    series[5] = (30.0, 20.0, "CRITICAL")
    series.update({n: (30.0, 30.0, None) for n in range(6, 20)})  # +50 % vs frozen, no alert
    rows = history(series)
    assert events(rows) == [(5, "open", "INC-20110105")]
    assert rows[-1]["phase"] == "incident" and rows[-1]["days_open"] == 15


def test_flapping_around_the_threshold_stays_one_incident(history):
    rows = history({
        1: QUIET, 2: QUIET, 3: QUIET, 4: QUIET,
        5: (24.0, 20.0, "WARNING"),
        6: (22.0, 21.0, None), 7: (22.5, 21.0, None),  # two calm days ...
        8: (23.5, 21.5, None),                          # ... then above the line: count restarts
        9: (22.0, 22.0, None), 10: (22.0, 22.0, None),
        11: (24.0, 20.5, "WARNING"),                    # an alert: same incident, update
        12: (21.0, 22.0, None), 13: (21.0, 22.0, None), 14: (21.0, 22.0, None),  # resolves
    })  # fmt: skip
    assert [(n, e) for n, e, _ in events(rows)] == [(5, "open"), (11, "update"), (14, "resolve")]


def test_a_second_incident_after_the_first_resolved(history):
    rows = history({
        1: QUIET, 2: QUIET, 3: QUIET, 4: QUIET,
        5: (24.0, 20.0, "WARNING"), 6: QUIET, 7: QUIET, 8: QUIET,  # resolves on day 8
        9: QUIET, 10: (30.0, 24.0, "CRITICAL"),  # a new incident, its own frozen baseline
        11: (29.0, 25.0, None),
    })  # fmt: skip
    assert events(rows) == [
        (5, "open", "INC-20110105"), (8, "resolve", "INC-20110105"),
        (10, "open", "INC-20110110"),
    ]  # fmt: skip
    eleventh = rows[-1]
    assert eleventh["frozen_baseline"] == 24.0 and eleventh["relative_to_frozen_pct"] == 20.83


def test_the_gap_setting_delays_resolution(history):
    """Alerts on days 5 and 6, calm from day 7. With gap 2 the third calm day (9) resolves:
    9 - 6 = 3 > 2. With gap 4 the calm days are there but the last alert is too recent until
    day 11 (11 - 6 = 5 > 4; day 10 gives 4, not more than 4)."""
    series = {1: QUIET, 2: QUIET, 3: QUIET, 4: QUIET, 5: (24.0, 20.0, "WARNING"),
              6: (24.0, 20.0, "WARNING"), 7: QUIET, 8: QUIET, 9: QUIET, 10: QUIET,
              11: QUIET}  # fmt: skip
    assert [(n, e) for n, e, _ in events(history(series))] == [
        (5, "open"), (6, "update"), (9, "resolve"),
    ]  # fmt: skip
    assert [(n, e) for n, e, _ in events(history(series, gap_days=4))] == [
        (5, "open"), (6, "update"), (11, "resolve"),
    ]  # fmt: skip


def test_no_incident_opens_during_warm_up(history):
    """Warm-up 3: a day with less than 3 days of order history (days 1 and 2, the first
    order on day 1) opens nothing; day 3 has 3 days of history and its alert opens."""
    rows = history({
        1: QUIET, 2: (30.0, 20.0, "CRITICAL"), 3: (31.0, 20.0, "CRITICAL"),
        4: (32.0, 21.0, "CRITICAL"),
    })  # fmt: skip
    assert [(r["phase"], r["event"], r["incident_id"]) for r in rows] == [
        ("warmup", None, None), ("warmup", None, None),
        ("incident", "open", "INC-20110103"), ("incident", "update", "INC-20110103"),
    ]  # fmt: skip


def test_a_day_sees_only_the_history_up_to_it(history, load_orders):
    """Point-in-time: the incident state of day 6 read on day 6 equals the one read later."""
    series = {n: QUIET for n in range(1, 5)}
    series.update({5: (24.0, 20.0, "WARNING"), 6: (25.0, 21.0, "CRITICAL"), 7: QUIET, 8: QUIET,
                   9: QUIET})  # fmt: skip
    later = {r["day"]: r for r in history(series)}
    earlier = history({n: v for n, v in series.items() if n <= 6})
    assert earlier[-1] == later[day(6).isoformat()]


def test_a_slow_climb_is_drift_beside_sql5(history):
    """Four flat weeks at 20.00 %, then five weeks climbing 0.3 points a day: SQL5's 7-day
    baseline climbs along (INFO every day), the drift check (the share 28 days before, +15 %)
    sees it from day 38 (23.00 against 20.00 on day 10: +15.00 %). Shadow by default: shown,
    no incident. With drift_mode incident it opens DRIFT-20110207, judged against the 20.00
    it started from: CRITICAL on day 45 (25.10, +25.50 %)."""
    series = {n: QUIET for n in range(1, 29)}
    series.update({n: (round(20 + 0.3 * (n - 28), 2), None, None) for n in range(29, 64)})
    rows = history(series)
    assert events(rows) == []
    assert [n for n, r in enumerate(rows, start=1) if r["drift_flag"]] == list(range(38, 64))
    by_day = {r["day"]: r for r in rows}
    first = by_day[day(38).isoformat()]
    assert (first["drift_compared_with"], first["drift_earlier_value"], first["drift_pct"]) == (
        day(10).isoformat(), 20.0, 15.0,
    )  # fmt: skip
    assert by_day[day(37).isoformat()]["drift_pct"] == 13.5  # 22.70 against 20.00
    assert by_day[day(63).isoformat()]["drift_pct"] == 38.01  # 30.50 against 22.10 (day 35)

    opened = history(series, drift_mode="incident")
    assert events(opened) == [(38, "open", "DRIFT-20110207"), (45, "escalate", "DRIFT-20110207")]
    last = opened[-1]
    assert (last["frozen_baseline"], last["incident_severity"], last["relative_to_frozen_pct"]) == (
        20.0, "CRITICAL", 52.5,
    )  # fmt: skip
