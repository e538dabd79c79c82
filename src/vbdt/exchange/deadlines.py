"""Working days and the deadlines of Decree 30/2020/NĐ-CP, on Vietnam's public-holiday calendar.

Decree 30 asks that an incoming electronic document be registered and handed on the day it
arrives, at the latest on the next working day, and that it be handled by its due date. Whether a
receiver is late therefore depends on weekends and public holidays (Tết alone closes offices for
most of a week), not on calendar days. The holidays come from the ``holidays`` package (``VN``:
fixed and lunar holidays, observed and substituted days off); a deployment adds its own decisions
(a province's extra day off, a Saturday worked in exchange) with ``extra_days_off`` and
``extra_working_days``.

Pure: dates and times in, dates and times out; the clock is always passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import holidays

from vbdt.edxml.model import VIETNAM_TZ

__all__ = ["DEFAULT_CALENDAR", "WorkCalendar"]


@dataclass(frozen=True)
class WorkCalendar:
    """Vietnam's working days: Monday to Friday, less public holidays, with local adjustments."""

    extra_days_off: frozenset[dt.date] = field(default_factory=frozenset)
    """Days off decided locally, on top of the national holidays."""
    extra_working_days: frozenset[dt.date] = field(default_factory=frozenset)
    """Weekend days worked in exchange for a bridge day off."""

    @classmethod
    def with_changes(cls, days_off: Iterable[dt.date] = (), working_days: Iterable[dt.date] = ()) -> WorkCalendar:
        """A calendar with local days off and worked weekend days."""
        return cls(frozenset(days_off), frozenset(working_days))

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays("VN")

    def holiday_name(self, day: dt.date) -> str | None:
        """The name of the public holiday on ``day``, if it is one."""
        name = self._holidays.get(day)
        return str(name) if name else None

    def is_working_day(self, day: dt.date) -> bool:
        """Whether offices work on ``day``."""
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off or day.weekday() >= 5:
            return False
        return day not in self._holidays

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        day += dt.timedelta(days=1)
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        """The working day ``count`` working days after ``day`` (``day`` itself need not be one)."""
        for _ in range(count):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def arrival_deadline(self, sent_at: dt.datetime) -> dt.datetime:
        """When a receiver must have confirmed arrival: the end of the next working day after sending.

        A document sent on Friday evening before Tết is due at the end of the first working day after
        the holiday, not on Saturday.
        """
        sent_day = sent_at.astimezone(VIETNAM_TZ).date()
        due_day = self.next_working_day(sent_day)
        return dt.datetime.combine(due_day, dt.time(23, 59, 59), VIETNAM_TZ)

    def handling_deadline(self, due_date: dt.date) -> dt.datetime:
        """The end of the due date written on a document (a due date on a day off stays that day)."""
        return dt.datetime.combine(due_date, dt.time(23, 59, 59), VIETNAM_TZ)

    def late_by(self, deadline: dt.datetime, now: dt.datetime) -> int:
        """Working days ``now`` is past ``deadline`` (0 when it is not past)."""
        if now <= deadline:
            return 0
        return max(1, self.working_days_between(deadline.astimezone(VIETNAM_TZ).date(), now.astimezone(VIETNAM_TZ).date()))


DEFAULT_CALENDAR = WorkCalendar()
"""Vietnam's national calendar with no local changes."""
