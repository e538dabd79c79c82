"""Working days and Decree 30 deadlines on Vietnam's holiday calendar."""

from __future__ import annotations

import datetime as dt

from vbdt.edxml.model import VIETNAM_TZ
from vbdt.exchange.deadlines import DEFAULT_CALENDAR, WorkCalendar


def at(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=VIETNAM_TZ)


def test_weekends_and_public_holidays_are_not_working_days() -> None:
    cal = DEFAULT_CALENDAR
    assert cal.is_working_day(dt.date(2026, 11, 23))  # a Monday
    assert not cal.is_working_day(dt.date(2026, 11, 28))  # Saturday
    assert not cal.is_working_day(dt.date(2026, 9, 2))  # National Day
    assert not cal.is_working_day(dt.date(2026, 2, 17))  # Tết
    assert cal.holiday_name(dt.date(2026, 9, 2))


def test_arrival_is_due_by_the_end_of_the_next_working_day() -> None:
    cal = DEFAULT_CALENDAR
    # sent on a Monday → due at the end of Tuesday
    assert cal.arrival_deadline(at(2026, 11, 30)) == dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=VIETNAM_TZ)
    # sent on Friday 13 Feb 2026, just before Tết (16-20 Feb): due Monday 23 Feb, not Saturday
    assert cal.arrival_deadline(at(2026, 2, 13, 22)).date() == dt.date(2026, 2, 23)
    # a time in another zone counts in Vietnam time: 20:00 UTC on Friday is already Saturday in Hà Nội
    friday_utc = dt.datetime(2026, 11, 27, 20, tzinfo=dt.UTC)
    assert cal.arrival_deadline(friday_utc).date() == dt.date(2026, 11, 30)


def test_late_by_counts_working_days_only() -> None:
    cal = DEFAULT_CALENDAR
    deadline = cal.arrival_deadline(at(2026, 2, 13))  # Monday 23 Feb
    assert cal.late_by(deadline, at(2026, 2, 23, 12)) == 0
    assert cal.late_by(deadline, at(2026, 2, 24)) == 1
    assert cal.late_by(deadline, at(2026, 3, 2)) == 5  # Tue..Fri + Mon, the weekend not counted


def test_local_days_off_and_worked_saturdays() -> None:
    bridge = dt.date(2026, 11, 27)
    worked_saturday = dt.date(2026, 12, 5)
    cal = WorkCalendar.with_changes(days_off=[bridge], working_days=[worked_saturday])
    assert not cal.is_working_day(bridge) and cal.is_working_day(worked_saturday)
    assert cal.next_working_day(dt.date(2026, 11, 26)) == dt.date(2026, 11, 30)
    assert cal.add_working_days(dt.date(2026, 12, 4), 1) == worked_saturday
    assert cal.working_days_between(dt.date(2026, 11, 26), dt.date(2026, 11, 30)) == 1
