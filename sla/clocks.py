"""Business-hours arithmetic for response clocks.

A clock runs only on working days, between the day's start and end, in the
calendar's own time zone, and never on holidays. Opening and closing times
are built as wall-clock times in that zone (zoneinfo) and then handled in
UTC: Python compares and subtracts two datetimes of the same zone by their
wall clocks, which is wrong across a daylight-saving change, so all the
arithmetic here is done on UTC times, and a clock counts real elapsed
working time.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

MAX_DAYS_SEARCHED = 3660  # ten years: a calendar with no working day at all is refused sooner


@dataclass(frozen=True)
class BusinessCalendar:
    time_zone: str
    working_days: frozenset[int]  # 0 = Monday
    day_starts: time
    day_ends: time
    holidays: frozenset[date] = frozenset()

    def __post_init__(self):
        if not self.working_days:
            raise ValueError("A business calendar needs at least one working day.")
        if self.day_ends <= self.day_starts:
            raise ValueError("The working day must end after it starts.")

    @classmethod
    def of(cls, sla) -> "BusinessCalendar":
        return cls(
            time_zone=sla.calendar_time_zone,
            working_days=frozenset(sla.working_days or (0, 1, 2, 3, 4)),
            day_starts=sla.day_starts,
            day_ends=sla.day_ends,
            holidays=frozenset(sla.holidays or ()),
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def opening(self, day: date) -> datetime:
        """When the working day opens, in UTC."""
        return _utc(day, self.day_starts, self.zone)

    def closing(self, day: date) -> datetime:
        """When the working day closes, in UTC."""
        return _utc(day, self.day_ends, self.zone)

    def is_open(self, moment: datetime) -> bool:
        """Is `moment` inside working hours (start inclusive, end inclusive)?"""
        moment = moment.astimezone(UTC)
        day = moment.astimezone(self.zone).date()
        return self.is_working_day(day) and self.opening(day) <= moment <= self.closing(day)

    def next_opening(self, moment: datetime) -> datetime:
        """`moment` (in UTC) if the calendar is open then and not at closing,
        else the next time it opens."""
        moment = moment.astimezone(UTC)
        day = moment.astimezone(self.zone).date()
        for _ in range(MAX_DAYS_SEARCHED):
            if self.is_working_day(day):
                opening, closing = self.opening(day), self.closing(day)
                if moment < opening:
                    return opening
                if moment < closing:
                    return moment
            day += timedelta(days=1)
        raise ValueError("The calendar has no working time in the next ten years.")


def _utc(day: date, at: time, zone) -> datetime:
    """A wall-clock time on a day in a zone, as a UTC time. In a
    daylight-saving gap the wall time does not exist; it is read with the
    offset before the change (fold 0), which lands just past the gap."""
    return datetime.combine(day, at).replace(tzinfo=zone).astimezone(UTC)


def business_due(start: datetime, hours: Decimal | float, calendar: BusinessCalendar) -> datetime:
    """When a clock started at `start` runs out after `hours` working hours.

    The result is always inside working hours (a clock that runs out exactly
    at closing time is due at closing, not the next morning), never earlier
    than `start`, and non-decreasing in `start`. Returned in UTC."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime.")
    remaining = timedelta(seconds=float(Decimal(str(hours)) * 3600))
    if remaining <= timedelta(0):
        raise ValueError("A response time must be positive.")
    current = calendar.next_opening(start)
    for _ in range(MAX_DAYS_SEARCHED):
        closing = calendar.closing(current.astimezone(calendar.zone).date())
        available = closing - current  # both UTC: real elapsed time
        if remaining <= available:
            return current + remaining
        remaining -= available
        current = calendar.next_opening(closing + timedelta(seconds=1))
    raise ValueError("The response time does not fit in ten years of working hours.")


def business_hours_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Working hours elapsed between two moments (0 when end <= start)."""
    if end <= start:
        return 0.0
    total = timedelta(0)
    end = end.astimezone(UTC)
    current = calendar.next_opening(start)
    while current < end:
        closing = calendar.closing(current.astimezone(calendar.zone).date())
        total += min(closing, end) - current
        if end <= closing:
            break
        current = calendar.next_opening(closing + timedelta(seconds=1))
    return total.total_seconds() / 3600
